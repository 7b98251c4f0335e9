# Drift monitoring (analytics/drift.hpp, docs/model.md "Drift"): quantile references, PSI, the
# sliding-window monitor, the model-file round trip of a reference. A few seconds (trains a model).
vibgate_add_gtest(drift_test analytics/drift_test.cpp)
