# strata_test(NAME SOURCES... DEPS ... [LABELS ...])
# One GoogleTest executable registered with CTest; tests sit beside the code they test.
function(strata_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  # DISCOVERY_TIMEOUT is an option of gtest_discover_tests, not a test property: after
  # PROPERTIES it would end the property list. The properties reach the generated
  # set_tests_properties() flattened, so LABELS keeps only its first value there (the extra
  # labels come last, where they cannot shift other properties).
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES LABELS "unit;${T_LABELS}")
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
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30
                       PROPERTIES FIXTURES_REQUIRED cluster
                       ENVIRONMENT "STRATA_CLUSTER_ENV=${STRATA_CLUSTER_DIR}/env"
                       LABELS "cluster;${T_LABELS}")
endfunction()
