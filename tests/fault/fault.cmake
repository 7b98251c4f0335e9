# Fault injection (issue 7, docs/reliability.md): the fault-injecting SQLite VFS as a library for
# in-process tests and as an LD_PRELOAD module for the daemon.
add_library(vibgate_fault_vfs STATIC ${CMAKE_CURRENT_LIST_DIR}/fault_vfs.cpp)
set_target_properties(vibgate_fault_vfs PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(vibgate_fault_vfs PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(vibgate_fault_vfs PUBLIC PkgConfig::VIBGATE_TEST_SQLITE3
                      PRIVATE vibgate_build_flags)
add_library(vibgate_fault_vfs_preload MODULE ${CMAKE_CURRENT_LIST_DIR}/fault_vfs_preload.cpp)
target_link_libraries(vibgate_fault_vfs_preload PRIVATE vibgate_fault_vfs vibgate_build_flags)
