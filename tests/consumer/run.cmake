# Runs one packaging test (cmake -P), building tests/consumer/main.cpp the
# way a user would:
#   MODE=install       cmake --install the build into a scratch prefix, then
#                      find_package(shmbus) from there
#   MODE=subdirectory  add_subdirectory(<source tree>)
#   MODE=deb           cpack -G DEB, extract the .debs with dpkg-deb -x, run
#                      the packaged binaries, then find_package(shmbus) from
#                      the extracted /usr
# Inputs: MODE SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER BUILD_TYPE
#         CXX_FLAGS LINKER_FLAGS (sanitizer builds: the libraries need them)
cmake_minimum_required(VERSION 3.20)

foreach(var MODE SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake needs -D${var}=...")
  endif()
endforeach()
# An untyped build's consumer is built as Release.
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()

# Runs a command; on failure prints what it printed and fails the test.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}")
  endif()
  message(STATUS "${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_file path)
  if(NOT EXISTS "${path}")
    message(FATAL_ERROR "expected ${path} to exist")
  endif()
endfunction()

# The installed headers are the public ones only: include/shmbus/*.hpp, no
# detail/ or platform/ folder (internal headers a user must not reach).
function(expect_public_headers_only include_dir)
  expect_file("${include_dir}/shmbus/client.hpp")
  expect_file("${include_dir}/shmbus/clock.hpp")
  expect_file("${include_dir}/shmbus/market_data.hpp")
  expect_file("${include_dir}/shmbus/broker.hpp")
  file(GLOB_RECURSE installed RELATIVE "${include_dir}" "${include_dir}/*")
  foreach(header IN LISTS installed)
    if(NOT header MATCHES "^shmbus/[^/]+\\.hpp$")
      message(FATAL_ERROR "installed a header that is not public: ${include_dir}/${header}")
    endif()
  endforeach()
  message(STATUS "only public headers installed: ${installed}")
endfunction()

# Configures, builds and runs the consumer project in `project_dir`.
function(build_and_run_consumer project_dir)
  set(build "${WORK_DIR}/consumer-build")
  step("configure the consumer" ${CMAKE_COMMAND} -S "${project_dir}" -B "${build}" -G "${GENERATOR}"
       "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
       "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}" ${ARGN})
  step("build the consumer" ${CMAKE_COMMAND} --build "${build}" --parallel 2)
  step("run the consumer" "${build}/shmbus_consumer")
  if(NOT step_output MATCHES "shmbus consumer: ok")
    message(FATAL_ERROR "the consumer said: ${step_output}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "install")
  set(prefix "${WORK_DIR}/prefix")
  step("cmake --install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
  expect_public_headers_only("${prefix}/include")
  file(GLOB config "${prefix}/lib*/cmake/shmbus/shmbus-config.cmake" "${prefix}/lib/*/cmake/shmbus/shmbus-config.cmake")
  if(NOT config)
    message(FATAL_ERROR "no shmbus-config.cmake under ${prefix}")
  endif()
  step("installed shmbus-broker --version" "${prefix}/bin/shmbus-broker" --version)
  step("installed shmbus --help" "${prefix}/bin/shmbus" --help)
  build_and_run_consumer("${SOURCE_DIR}/tests/consumer" "-DCMAKE_PREFIX_PATH=${prefix}")

elseif(MODE STREQUAL "subdirectory")
  build_and_run_consumer("${SOURCE_DIR}/tests/consumer_subdir" "-DSHMBUS_SOURCE_DIR=${SOURCE_DIR}")

elseif(MODE STREQUAL "deb")
  foreach(var CPACK_COMMAND DPKG_DEB)
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "run.cmake MODE=deb needs -D${var}=...")
    endif()
  endforeach()
  step("cpack -G DEB" ${CPACK_COMMAND} -G DEB --config "${BUILD_DIR}/CPackConfig.cmake" -B "${WORK_DIR}/packages")
  file(GLOB debs "${WORK_DIR}/packages/*.deb")
  list(LENGTH debs count)
  if(NOT count EQUAL 2)
    message(FATAL_ERROR "expected 2 .deb files (shmbus, libshmbus-dev), got: ${debs}")
  endif()
  set(root "${WORK_DIR}/root")
  foreach(deb IN LISTS debs)
    step("dpkg-deb --info ${deb}" ${DPKG_DEB} --info "${deb}")
    step("dpkg-deb -x ${deb}" ${DPKG_DEB} -x "${deb}" "${root}")
  endforeach()
  # The runtime package declares what the binaries link against.
  file(GLOB runtime_deb "${WORK_DIR}/packages/shmbus_*.deb")
  step("dpkg-deb -f Depends" ${DPKG_DEB} -f "${runtime_deb}" Depends)
  if(NOT step_output MATCHES "libspdlog")
    message(FATAL_ERROR "the shmbus package should depend on libspdlog: Depends: ${step_output}")
  endif()
  step("packaged shmbus-broker --version" "${root}/usr/bin/shmbus-broker" --version)
  if(NOT step_output MATCHES "^shmbus-broker [0-9]+\\.[0-9]+\\.[0-9]+")
    message(FATAL_ERROR "unexpected version output: ${step_output}")
  endif()
  step("packaged shmbus --help" "${root}/usr/bin/shmbus" --help)
  expect_public_headers_only("${root}/usr/include")
  build_and_run_consumer("${SOURCE_DIR}/tests/consumer" "-DCMAKE_PREFIX_PATH=${root}/usr")

else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
