# Analytics worker tests (tests/daemon/analytics_worker_test.cpp): real synthetic machines scored
# by a model trained in the test, through the bounded queue and the worker thread.
add_executable(daemon_analytics_worker_test daemon/analytics_worker_test.cpp)
target_link_libraries(daemon_analytics_worker_test
  PRIVATE vibgate_daemon vibgate::analytics vibgate_build_flags GTest::gtest_main)
add_test(NAME daemon_analytics_worker_test COMMAND daemon_analytics_worker_test)
set_tests_properties(daemon_analytics_worker_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 600)

# The per-channel raw-sample ring behind alert snapshots (daemon_impl.hpp).
add_executable(daemon_sample_ring_test daemon/sample_ring_test.cpp)
target_link_libraries(daemon_sample_ring_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
add_test(NAME daemon_sample_ring_test COMMAND daemon_sample_ring_test)
