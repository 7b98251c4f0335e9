# Over-the-air model updates (issue 9, docs/ota.md).
# ota_bundle_test (tests/ota/bundle_test.cpp): the bundle codec and Ed25519 signatures (tampered
# manifest byte, tampered signature, wrong key, unknown key), trusted-key loading, version
# comparison, chunk staging with resume across a re-open, and the accepted-sequence file.
add_executable(ota_bundle_test ota/bundle_test.cpp)
target_link_libraries(ota_bundle_test PRIVATE vibgate::ota vibgate_build_flags GTest::gtest_main)
target_compile_definitions(ota_bundle_test PRIVATE VIBGATE_OTA_TEST_DIR="${CMAKE_CURRENT_BINARY_DIR}")
add_test(NAME ota_bundle_test COMMAND ota_bundle_test)
set_tests_properties(ota_bundle_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 60)
# ota_control_test (tests/ota/ota_control_test.cpp): `vibgate ota`'s control request (24) and
# answer (22) through the control-socket codec, every field.
add_executable(ota_control_test ota/ota_control_test.cpp)
target_link_libraries(ota_control_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
add_test(NAME ota_control_test COMMAND ota_control_test)
set_tests_properties(ota_control_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 60)
# The whole path (tests/ota/test_ota.py): real vibgated + simulator + mosquitto, bundles signed
# with the CLI, delivered in chunks by tests/ota/ota_sender.py (JSON and Sparkplug), every kind of
# bad bundle refused, SIGKILL mid-transfer and resume. About 1 minute.
vibgate_add_pytest(ota_system ota/test_ota.py --build ${CMAKE_BINARY_DIR})
set_tests_properties(ota_system PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR};VIBGATED=$<TARGET_FILE:vibgated>;VIBGATE_SIM=$<TARGET_FILE:vibgate-sim>"
  RUN_SERIAL TRUE TIMEOUT 300 LABELS system)
