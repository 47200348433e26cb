# strata_test(NAME SOURCES... DEPS ... [LABELS ...])
# One GoogleTest executable registered with CTest; tests sit beside the code they test.
function(strata_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  gtest_discover_tests(${name} PROPERTIES LABELS "unit;${T_LABELS}" DISCOVERY_TIMEOUT 30)
endfunction()

# strata_cluster_test(NAME SOURCES... DEPS ... [LABELS ...] [RESOURCE_LOCK name])
# A GoogleTest executable whose tests run against the throwaway distributed cluster
# (scripts/cluster.sh: Ceph mon + memstore OSD + radosgw, memcached). CTest starts the
# cluster once before the first such test (fixture `cluster`) and stops it after the last;
# the tests find it through STRATA_CLUSTER_ENV (see src/strata/store/cluster_env.h).
function(strata_cluster_test name)
  cmake_parse_arguments(T "" "RESOURCE_LOCK" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  # RESOURCE_LOCK keeps tests that share a resource (the executable's own tests among them:
  # each is a CTest test of its own, run side by side under -j) from running at once.
  set(lock)
  if(T_RESOURCE_LOCK)
    set(lock RESOURCE_LOCK ${T_RESOURCE_LOCK})
  endif()
  # DISCOVERY_TIMEOUT is an argument of gtest_discover_tests, not a test property: written
  # inside PROPERTIES it ends the property list and silently drops what follows. CMake 3.25's
  # discovery writes a list-valued property unquoted (LABELS "a;b" becomes `LABELS a b`, and
  # set_tests_properties then pairs the rest askew), so the tests get the one label `cluster`
  # and LABELS are accepted but not applied; select them by name (`ctest -R S3`).
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30
                       PROPERTIES LABELS cluster
                       FIXTURES_REQUIRED cluster
                       ENVIRONMENT "STRATA_CLUSTER_ENV=${STRATA_CLUSTER_DIR}/env"
                       ${lock})
endfunction()
