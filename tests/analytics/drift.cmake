# Drift monitoring (analytics/drift.hpp, docs/model.md "Drift"): quantile references, PSI, the
# sliding-window monitor, the model-file round trip of a reference. A few seconds (trains a model).
vibgate_add_gtest(drift_test analytics/drift_test.cpp)
# Drift end to end (tests/daemon/test_drift.py): the daemon against the simulator and a real
# broker; a healthy machine stays undrifted, a developing bearing fault reaches "drifted" in
# `vibgate assets`, the uplinked results and health records, and Prometheus. About 80 s.
vibgate_add_pytest(drift_system daemon/test_drift.py --build ${CMAKE_BINARY_DIR})
set_tests_properties(drift_system PROPERTIES RUN_SERIAL TRUE TIMEOUT 240 LABELS system)
