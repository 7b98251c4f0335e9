# ONNX import/export (issue 9): the C++ tests build ONNX protobufs directly (libonnx-dev), the
# Python test builds models with python3-onnx and runs the CLI (vibgate synth, model import/export,
# score) and checks the exported file with onnx.checker and a numpy forward pass.
vibgate_add_gtest(onnx_test analytics/onnx_test.cpp)
target_include_directories(onnx_test SYSTEM PRIVATE ${CMAKE_BINARY_DIR}/analytics ${VIBGATE_ONNX_INCLUDE})
target_link_libraries(onnx_test PRIVATE protobuf::libprotobuf ${VIBGATE_ONNX_PROTO})
target_compile_definitions(onnx_test PRIVATE
  VIBGATE_ONNX_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/analytics/data")
vibgate_add_pytest(onnx_python analytics/test_onnx_python.py)
# Online import/export against a running daemon + simulator (system test, ~15 s).
vibgate_add_pytest(model_onnx_online daemon/test_model_onnx_online.py)
set_tests_properties(model_onnx_online PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR};VIBGATED=$<TARGET_FILE:vibgated>;VIBGATE_SIM=$<TARGET_FILE:vibgate-sim>"
  RUN_SERIAL TRUE TIMEOUT 300 LABELS system)
# The control codec's import/export messages (tests/daemon/control_onnx_test.cpp).
add_executable(control_onnx_test daemon/control_onnx_test.cpp)
target_link_libraries(control_onnx_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
add_test(NAME control_onnx_test COMMAND control_onnx_test)
set_tests_properties(control_onnx_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 60)
