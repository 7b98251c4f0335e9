# ONNX import/export (issue 9): the C++ tests build ONNX protobufs directly (libonnx-dev), the
# Python test builds models with python3-onnx and runs the CLI (vibgate synth, model import/export,
# score) and checks the exported file with onnx.checker and a numpy forward pass.
vibgate_add_gtest(onnx_test analytics/onnx_test.cpp)
target_include_directories(onnx_test SYSTEM PRIVATE ${CMAKE_BINARY_DIR}/analytics ${VIBGATE_ONNX_INCLUDE})
target_link_libraries(onnx_test PRIVATE protobuf::libprotobuf ${VIBGATE_ONNX_PROTO})
vibgate_add_pytest(onnx_python analytics/test_onnx_python.py)
