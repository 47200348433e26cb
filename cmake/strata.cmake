# strata_test(NAME SOURCES... DEPS ... [LABELS ...])
# One GoogleTest executable registered with CTest; tests sit beside the code they test.
function(strata_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  gtest_discover_tests(${name} PROPERTIES LABELS "unit;${T_LABELS}" DISCOVERY_TIMEOUT 30)
endfunction()

# strata_cluster_test(NAME SOURCES... DEPS ... [LABELS ...])
# A GoogleTest executable whose tests run against the throwaway distributed cluster
# (scripts/cluster.sh: Ceph mon + memstore OSD + radosgw, memcached). CTest starts the
# cluster once before the first such test (fixture `cluster`) and stops it after the last;
# the tests find it through STRATA_CLUSTER_ENV (see src/strata/store/cluster_env.h).
function(strata_cluster_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  # DISCOVERY_TIMEOUT is gtest_discover_tests' own keyword: it must come before PROPERTIES
  # (after it, it ends the property list and drops the fixture and environment). The
  # PROPERTIES list cannot carry a second label (a ';' splits it into name/value pairs), so
  # these tests have the one label `cluster`; LABELS is accepted for a later fix.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30
                       PROPERTIES LABELS cluster
                       FIXTURES_REQUIRED cluster
                       ENVIRONMENT "STRATA_CLUSTER_ENV=${STRATA_CLUSTER_DIR}/env")
endfunction()
