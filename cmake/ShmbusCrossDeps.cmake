# Dependencies for the mingw cross build. Debian ships GSL, doctest, spdlog
# and fmt as headers for Linux; the headers themselves are portable, but
# -I/usr/include (or Debian's *Config.cmake targets, which add it) would pull
# in glibc's headers. So expose only those folders, through a staging
# directory of links, and use spdlog and fmt header-only.
set(_stage ${CMAKE_BINARY_DIR}/cross-include)
file(MAKE_DIRECTORY ${_stage})
foreach(dir gsl doctest spdlog fmt)
  if(NOT EXISTS /usr/include/${dir})
    message(FATAL_ERROR "/usr/include/${dir} is missing: install libmsgsl-dev doctest-dev libspdlog-dev libfmt-dev")
  endif()
  file(CREATE_LINK /usr/include/${dir} ${_stage}/${dir} SYMBOLIC)
endforeach()

add_library(shmbus_cross_headers INTERFACE)
target_include_directories(shmbus_cross_headers SYSTEM INTERFACE $<BUILD_INTERFACE:${_stage}>)

add_library(Microsoft.GSL::GSL ALIAS shmbus_cross_headers)
add_library(shmbus_cross_spdlog INTERFACE)
target_link_libraries(shmbus_cross_spdlog INTERFACE shmbus_cross_headers)
target_compile_definitions(shmbus_cross_spdlog INTERFACE FMT_HEADER_ONLY SPDLOG_FMT_EXTERNAL)
add_library(spdlog::spdlog ALIAS shmbus_cross_spdlog)
add_library(doctest::doctest ALIAS shmbus_cross_headers)

# doctest_discover_tests() lives beside Debian's doctest config.
list(APPEND CMAKE_MODULE_PATH /usr/lib/cmake/doctest)
