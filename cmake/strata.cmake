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
  # DISCOVERY_TIMEOUT goes before PROPERTIES: after it, it ended the property list, and the
  # fixture and the environment were silently dropped (the tests then ran without a cluster).
  # LABELS last: an extra label (LABELS ceph) is not applied yet (the list reaches
  # set_tests_properties unescaped), but it can no longer shift the fixture away.
  set(labels cluster ${T_LABELS})
  string(REPLACE ";" "\\;" labels "${labels}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30
                       PROPERTIES FIXTURES_REQUIRED cluster
                       ENVIRONMENT "STRATA_CLUSTER_ENV=${STRATA_CLUSTER_DIR}/env"
                       LABELS "${labels}")
endfunction()
