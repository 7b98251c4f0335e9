# Control socket tests (tests/daemon/control_test.cpp): codec, ControlServer on a real Unix socket
# in a temp dir under the build tree, call_control() errors, garbage/idle/oversize clients.
add_executable(daemon_control_test daemon/control_test.cpp)
target_link_libraries(daemon_control_test PRIVATE vibgate_daemon vibgate_build_flags
                      GTest::gtest_main)
target_compile_definitions(daemon_control_test PRIVATE
  VIBGATE_CONTROL_TEST_DIR="${CMAKE_CURRENT_BINARY_DIR}")
add_test(NAME daemon_control_test COMMAND daemon_control_test)
set_tests_properties(daemon_control_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 120)
