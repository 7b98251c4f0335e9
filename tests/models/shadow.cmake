# Shadow evaluation of staged model versions (issue 9, docs/model.md "Shadow evaluation").
# Unit: the promote/reject rule, the tally, model events (tests/models/model_shadow_test.cpp) and
# the analytics worker's shadow scoring on real synthetic machines.
add_executable(model_shadow_test models/model_shadow_test.cpp)
target_link_libraries(model_shadow_test
  PRIVATE vibgate_gateway vibgate_daemon vibgate::analytics vibgate_build_flags GTest::gtest_main)
target_include_directories(model_shadow_test PRIVATE ${PROJECT_SOURCE_DIR}/uplink/src)
add_test(NAME model_shadow_test COMMAND model_shadow_test)
set_tests_properties(model_shadow_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 300)
# System: simulator + daemon + mosquitto + CLI: a good version promoted, a bad one rolled back,
# the model events at the broker, SIGHUP cancel, resume after a restart (~30 s).
vibgate_add_pytest(model_shadow_system models/test_model_shadow.py)
set_tests_properties(model_shadow_system PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR}"
  RUN_SERIAL TRUE TIMEOUT 240 LABELS system)
