# Alarm logic tests (tests/daemon/alarm_test.cpp): the per-asset state machine, pure and fast.
add_executable(daemon_alarm_test daemon/alarm_test.cpp)
target_link_libraries(daemon_alarm_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
add_test(NAME daemon_alarm_test COMMAND daemon_alarm_test)
set_tests_properties(daemon_alarm_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 120)
