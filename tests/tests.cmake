vibgate_add_gtest(recording_test analytics/recording_test.cpp)
vibgate_add_pytest(features_vs_reference reference/test_features_vs_reference.py)
vibgate_add_pytest(accuracy accuracy/test_accuracy.py)
vibgate_add_gtest(quantized_test analytics/quantized_test.cpp)
vibgate_add_gtest(model_file_test analytics/model_file_test.cpp)
target_include_directories(model_file_test SYSTEM PRIVATE ${CMAKE_BINARY_DIR}/analytics)
target_link_libraries(model_file_test PRIVATE protobuf::libprotobuf)
vibgate_add_gtest(features_test analytics/features_test.cpp)
vibgate_add_gtest(detector_test analytics/detector_test.cpp)
vibgate_add_pytest(cli_errors cli/test_cli_errors.py)
vibgate_add_ingest_gtest(tags_test ingest/tags_test.cpp)
vibgate_add_ingest_gtest(config_test ingest/config_test.cpp)
# Modbus poller against real peers (pymodbus TCP/RTU servers, socat ptys, fake slaves).
add_executable(poll_driver ingest/poll_driver.cpp)
target_link_libraries(poll_driver PRIVATE vibgate::ingest vibgate_build_flags)
vibgate_add_pytest(poller_peers ingest/test_poller_peers.py)
set_tests_properties(poller_peers PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_POLL_DRIVER=$<TARGET_FILE:poll_driver>"
  RUN_SERIAL TRUE TIMEOUT 300)
vibgate_add_ingest_gtest(serial_frame_test ingest/serial_frame_test.cpp)
vibgate_add_ingest_gtest(serial_sensor_test ingest/serial_sensor_test.cpp)
vibgate_add_pytest(sim_mbpoll sim/test_sim_mbpoll.py)
set_tests_properties(sim_mbpoll PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_SIM=$<TARGET_FILE:vibgate-sim>" TIMEOUT 300)
vibgate_add_gtest(sim_test sim/sim_test.cpp)
target_link_libraries(sim_test PRIVATE vibgate_sim)
# Storage: the durable SQLite store against real files in /tmp (sqlite3 linked directly to
# inspect the files behind the store's back; the schema fixtures' folder compiled in).
pkg_check_modules(VIBGATE_TEST_SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
include(${CMAKE_CURRENT_SOURCE_DIR}/fault/fault.cmake)
function(vibgate_add_storage_gtest name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE vibgate::storage vibgate_build_flags GTest::gtest_main
                        PkgConfig::VIBGATE_TEST_SQLITE3 vibgate_fault_vfs)
  target_compile_definitions(${name} PRIVATE
    VIBGATE_STORAGE_SCHEMA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/storage/schemas")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}" TIMEOUT 120)
endfunction()
vibgate_add_storage_gtest(storage_test storage/store_test.cpp)
vibgate_add_storage_gtest(storage_quota_test storage/quota_test.cpp)
vibgate_add_storage_gtest(storage_crash_test storage/crash_test.cpp)
vibgate_add_storage_gtest(storage_fault_test storage/fault_test.cpp)
# MQTT test infrastructure of the uplink (tests/uplink/mqtt_env.py): real mosquitto, paho
# collector, fault-injecting proxy, PKI, Tahu JS + protoc Sparkplug decoders. npm installs
# sparkplug-payload into ${CMAKE_BINARY_DIR}/npm-sparkplug on the first run (needs the network).
vibgate_add_pytest(uplink_mqtt_env uplink/test_mqtt_env.py)
set_tests_properties(uplink_mqtt_env PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR}" TIMEOUT 300)
# Store + uplink wired as in the daemon, against a real broker through outages (docs/uplink.md).
add_executable(uplink_driver uplink/uplink_driver.cpp)
target_link_libraries(uplink_driver PRIVATE vibgate::storage vibgate::uplink vibgate_build_flags
                      CLI11::CLI11 nlohmann_json::nlohmann_json spdlog::spdlog)
vibgate_add_pytest(uplink_outage uplink/test_uplink_outage.py)
set_tests_properties(uplink_outage PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR};VIBGATE_UPLINK_DRIVER=$<TARGET_FILE:uplink_driver>"
  RUN_SERIAL TRUE TIMEOUT 600)
# Daemon pieces (issue 5).
include(${CMAKE_CURRENT_SOURCE_DIR}/daemon/alarm.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/daemon/facade.cmake)
add_executable(daemon_config_test daemon/store_uplink_config_test.cpp)
target_link_libraries(daemon_config_test PRIVATE vibgate_daemon vibgate_build_flags GTest::gtest_main)
add_test(NAME daemon_config_test COMMAND daemon_config_test)
set_tests_properties(daemon_config_test PROPERTIES ENVIRONMENT "${VIBGATE_TEST_ENV}")
include(${CMAKE_CURRENT_SOURCE_DIR}/daemon/worker.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/daemon/control.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/cli/online.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/daemon/metrics.cmake)
# vibgated end to end (tests/daemon/test_daemon_e2e.py): the demo plant (vibgate-sim), a real
# mosquitto + paho collector, mbpoll as the PLC, the vibgate CLI, Prometheus, sd_notify, SQLite;
# then bad input (configurations, state directory, second daemon, control socket garbage, missing
# serial port, unreachable broker, SIGHUP). State in a temp dir under the build tree.
vibgate_add_pytest(daemon_e2e daemon/test_daemon_e2e.py)
set_tests_properties(daemon_e2e PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR};VIBGATED=$<TARGET_FILE:vibgated>;VIBGATE_SIM=$<TARGET_FILE:vibgate-sim>"
  RUN_SERIAL TRUE TIMEOUT 300)
# vibgated stops cleanly on SIGTERM at random moments while polls are in flight (regression).
vibgate_add_pytest(daemon_stop daemon/test_daemon_stop.py)
set_property(TEST daemon_stop APPEND PROPERTY ENVIRONMENT
  "VIBGATE_GATEWAY_DIR=$<TARGET_FILE_DIR:vibgated>" "VIBGATE_TEST_WORK=${CMAKE_CURRENT_BINARY_DIR}")
# Kill -9 crash loop (tests/fault/crash_loop.py, docs/reliability.md): the daemon killed at random
# moments against the simulator and a real broker, then integrity, delivery, order and duplicate
# checks. A short version here; `crash_loop.py --cycles 50` is the full one.
vibgate_add_pytest(crash_loop fault/crash_loop.py --cycles 8 --build ${CMAKE_BINARY_DIR})
set_tests_properties(crash_loop PROPERTIES RUN_SERIAL TRUE TIMEOUT 300)
# Network and field-bus faults under the whole daemon (tests/fault/test_network_faults.py,
# docs/reliability.md): a Modbus device flapping, a serial line unplugged and replugged, the
# broker restarted repeatedly, a blackholed and a slow broker connection (proxy), a long outage
# against a 1 MiB storage quota (evictions counted, no silent loss). ~1.5 min (Release).
vibgate_add_pytest(network_faults fault/test_network_faults.py)
set_tests_properties(network_faults PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_BUILD_DIR=${CMAKE_BINARY_DIR};VIBGATED=$<TARGET_FILE:vibgated>;VIBGATE_SIM=$<TARGET_FILE:vibgate-sim>"
  RUN_SERIAL TRUE TIMEOUT 420)
# Storage faults under the daemon (tests/fault/test_storage_faults.py): the fault-injecting SQLite
# VFS preloaded — disk full while alarming, recovery, Nth write failing, open failing, power cut.
vibgate_add_pytest(storage_faults fault/test_storage_faults.py --build ${CMAKE_BINARY_DIR})
set_tests_properties(storage_faults PROPERTIES RUN_SERIAL TRUE TIMEOUT 300)
# The system tests: whole daemons, brokers and field peers against wall-clock waits (about 7
# minutes). tests/run.sh runs them once, in the ASan+UBSan build (the concurrency ones under TSan
# too), not a second time in the release build, for CI time; `ctest -L system` runs them in any
# build.
set_tests_properties(poller_peers uplink_outage daemon_e2e crash_loop network_faults
                     storage_faults PROPERTIES LABELS system)
include(${CMAKE_CURRENT_SOURCE_DIR}/analytics/onnx.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/analytics/prune.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/analytics/drift.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/models/shadow.cmake)
include(${CMAKE_CURRENT_SOURCE_DIR}/ota/ota.cmake)
