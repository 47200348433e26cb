# strata_test(NAME SOURCES... DEPS ... [LABELS ...])
# One GoogleTest executable registered with CTest; tests sit beside the code they test.
function(strata_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main Threads::Threads)
  gtest_discover_tests(${name} PROPERTIES LABELS "unit;${T_LABELS}" DISCOVERY_TIMEOUT 30)
endfunction()
