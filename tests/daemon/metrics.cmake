# Observability tests. metrics_http_test (tests/daemon/metrics_http_test.cpp): the Prometheus text
# format and MetricsHttpServer on 127.0.0.1 (ephemeral port) against a raw TCP client.
add_executable(metrics_http_test daemon/metrics_http_test.cpp)
target_link_libraries(metrics_http_test PRIVATE vibgate_daemon vibgate_build_flags
                      GTest::gtest_main)
add_test(NAME metrics_http_test COMMAND metrics_http_test)
set_tests_properties(metrics_http_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 60)
# sd_notify_test (tests/daemon/sd_notify_test.cpp): SystemdNotifier against real AF_UNIX datagram
# sockets in a temp dir under the build tree (and abstract ones).
add_executable(sd_notify_test daemon/sd_notify_test.cpp)
target_link_libraries(sd_notify_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
target_compile_definitions(sd_notify_test PRIVATE
  VIBGATE_SD_NOTIFY_TEST_DIR="${CMAKE_CURRENT_BINARY_DIR}")
add_test(NAME sd_notify_test COMMAND sd_notify_test)
set_tests_properties(sd_notify_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 60)
