# cmake --install: headers, libraries, binaries, and a package config so that
# find_package(shmbus CONFIG) gives shmbus::client, shmbus::broker,
# shmbus::market_data and shmbus::common. Two components, which cpack turns into two packages
# (cmake/ShmbusPackaging.cmake): `runtime` (shmbus-broker and the shmbus CLI)
# and `development` (headers, static libraries, CMake package files).
include(CMakePackageConfigHelpers)

set(SHMBUS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/shmbus)

# The libraries and public headers shmbus_add_library recorded
# (cmake/ShmbusLibrary.cmake): only include/shmbus/*.hpp, never detail/ or
# platform/, which no public header includes.
get_property(shmbus_install_targets GLOBAL PROPERTY SHMBUS_INSTALL_TARGETS)
get_property(shmbus_public_headers GLOBAL PROPERTY SHMBUS_PUBLIC_HEADERS)
install(TARGETS ${shmbus_install_targets}
  EXPORT shmbus-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
install(FILES ${shmbus_public_headers}
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmbus COMPONENT development)
if(SHMBUS_BUILD_TOOLS)
  install(TARGETS shmbus_cli shmbus_broker_main RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
endif()

install(EXPORT shmbus-targets NAMESPACE shmbus:: DESTINATION ${SHMBUS_CMAKE_DIR} COMPONENT development)
configure_package_config_file(cmake/shmbus-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/shmbus-config.cmake
  INSTALL_DESTINATION ${SHMBUS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/shmbus-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shmbus-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/shmbus-config-version.cmake
  DESTINATION ${SHMBUS_CMAKE_DIR} COMPONENT development)
