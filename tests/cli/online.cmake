# Operator CLI tests (tests/cli/online_render_test.cpp): durations, tables, charts, spectrum
# markers, JSON of every payload, and the commands end to end against a ControlServer with a fake
# handler on a Unix socket in a temp dir under the build tree (plus exit code 3 without a daemon).
add_executable(online_render_test cli/online_render_test.cpp)
target_link_libraries(online_render_test PRIVATE vibgate_gateway vibgate_daemon vibgate_build_flags
                      GTest::gtest_main)
target_compile_definitions(online_render_test PRIVATE
  VIBGATE_ONLINE_TEST_DIR="${CMAKE_CURRENT_BINARY_DIR}")
add_test(NAME online_render_test COMMAND online_render_test)
set_tests_properties(online_render_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 120)
