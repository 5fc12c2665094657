# shmbus_add_library(<name> [SOURCES ...] [PUBLIC_LINK ...] [PRIVATE_LINK ...])
#
# Sets up one of shmbus's libraries the same way (the model is fmt's
# CMakeLists): a static library shmbus_<name> (header-only, an INTERFACE
# library, when it has no SOURCES) with the namespaced alias shmbus::<name>,
# exported as shmbus::<name>, its include/ folder on the include path in the
# build tree and the install tree, C++20 for its users, shmbus's warnings for
# its own sources only, and a place in the install export
# (cmake/ShmbusInstall.cmake installs what is recorded here).
include(GNUInstallDirs)

function(shmbus_add_library name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;PUBLIC_LINK;PRIVATE_LINK")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "shmbus_add_library(${name}): unknown arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  set(target shmbus_${name})
  if(arg_SOURCES)
    add_library(${target} STATIC ${arg_SOURCES})
    set(public PUBLIC)
    target_link_libraries(${target} PRIVATE ${arg_PRIVATE_LINK} $<BUILD_INTERFACE:shmbus_build_options>)
  elseif(arg_PRIVATE_LINK)
    message(FATAL_ERROR "shmbus_add_library(${name}): a header-only library has nothing to link privately")
  else()
    add_library(${target} INTERFACE)
    set(public INTERFACE)
  endif()
  add_library(shmbus::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME ${target})
  target_include_directories(${target} ${public}
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} ${public} cxx_std_20)
  target_link_libraries(${target} ${public} ${arg_PUBLIC_LINK})
  # Only the top-level headers are public; detail/ and platform/ stay in the
  # source tree.
  file(GLOB public_headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/shmbus/*.hpp)
  set_property(GLOBAL APPEND PROPERTY SHMBUS_INSTALL_TARGETS ${target})
  set_property(GLOBAL APPEND PROPERTY SHMBUS_PUBLIC_HEADERS ${public_headers})
endfunction()
