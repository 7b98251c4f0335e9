# Drift monitoring (analytics/drift.hpp, docs/model.md "Drift"): quantile references, PSI, the
# sliding-window monitor, the model-file round trip of a reference. A few seconds (trains a model).
vibgate_add_gtest(drift_test analytics/drift_test.cpp)
# Drift end to end (tests/daemon/test_drift.py): the daemon against the simulator and a real
# broker; a healthy machine stays undrifted, a developing bearing fault reaches "drifted" in
# `vibgate assets`, the uplinked results and health records, and Prometheus. About 80 s.
vibgate_add_pytest(drift_system daemon/test_drift.py --build ${CMAKE_BINARY_DIR})
set_tests_properties(drift_system PROPERTIES RUN_SERIAL TRUE TIMEOUT 240 LABELS system)
# Drift inside the daemon's analytics worker (tests/daemon/drift_worker_test.cpp): status cadence,
# PSIs equal to the offline monitor, a swap restarting it, old models, learning. A few seconds.
add_executable(drift_worker_test ${CMAKE_CURRENT_SOURCE_DIR}/daemon/drift_worker_test.cpp)
target_link_libraries(drift_worker_test
  PRIVATE vibgate_daemon vibgate::analytics vibgate_build_flags GTest::gtest_main)
add_test(NAME drift_worker_test COMMAND drift_worker_test)
set_tests_properties(drift_worker_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 600)
