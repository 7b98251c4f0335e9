# Modbus server facade tests (mbpoll as the PLC): facade_driver drives a ModbusFacade from stdin,
# test_facade_mbpoll.py reads it with Debian's mbpoll and raw sockets (docs/modbus-facade.md).
add_executable(facade_driver daemon/facade_driver.cpp)
target_link_libraries(facade_driver PRIVATE vibgate_daemon spdlog::spdlog vibgate_build_flags)
vibgate_add_pytest(facade_mbpoll daemon/test_facade_mbpoll.py)
set_tests_properties(facade_mbpoll PROPERTIES
  ENVIRONMENT "${VIBGATE_TEST_ENV};VIBGATE_FACADE_DRIVER=$<TARGET_FILE:facade_driver>" TIMEOUT 300)
