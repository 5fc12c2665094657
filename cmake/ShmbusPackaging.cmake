# cpack -G DEB: two Debian packages from the install components
# (cmake/ShmbusInstall.cmake):
#   shmbus          shmbus-broker and the shmbus CLI (Depends from dpkg-shlibdeps)
#   libshmbus-dev   headers, static libraries, CMake package files
# Run from the build directory: `cpack -G DEB`. tests/consumer/run.cmake
# (ctest test "package: deb") builds both, extracts them and uses them.
set(CPACK_PACKAGE_NAME shmbus)
set(CPACK_PACKAGE_VENDOR "shmbus")
set(SHMBUS_PACKAGE_MAINTAINER "shmbus maintainers <shmbus@localhost>" CACHE STRING
  "Maintainer field of the .deb packages: Name <email>")
set(CPACK_PACKAGE_CONTACT "${SHMBUS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime development)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # NAME_VERSION-REVISION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME shmbus)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
  "shared-memory publish/subscribe broker and CLI\n shmbus-broker creates a bus of topics in shared memory; the shmbus CLI\n lists, watches (shmbus stat), publishes to and subscribes to them.")
find_program(SHMBUS_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(SHMBUS_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
else()
  # Without dpkg-dev the dependencies cannot be computed; these are what the
  # binaries link on Debian 12.
  message(STATUS "dpkg-shlibdeps not found (package dpkg-dev): the .deb's Depends is the Debian 12 list")
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6, libstdc++6, libgcc-s1, libspdlog1.10-fmt9, libfmt9")
endif()

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libshmbus-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
  "shared-memory publish/subscribe: C++ headers, static libraries, CMake package\n find_package(shmbus CONFIG) gives shmbus::client, shmbus::broker and shmbus::market_data.")
# The libraries log with spdlog, so a consumer links it (find_dependency in
# shmbus-config.cmake).
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libspdlog-dev")

include(CPack)
