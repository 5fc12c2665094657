# Warnings and sanitizers, applied through an interface target so that only
# shmbus's own targets get them (never a consumer's).
add_library(shmbus_build_options INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(shmbus_build_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
  if(SHMBUS_WERROR)
    target_compile_options(shmbus_build_options INTERFACE -Werror)
  endif()
elseif(MSVC)
  target_compile_options(shmbus_build_options INTERFACE /W4 /permissive-)
endif()

if(SHMBUS_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(SHMBUS_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  # GCC's TSan does not model std::atomic_thread_fence and warns about each.
  # The fences order the seqlock's payload copies, which TSan could only see
  # racing when writer and reader share one mapping; they never do (each
  # publisher and subscriber maps the segment itself).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=thread)
elseif(NOT SHMBUS_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SHMBUS_SANITIZE must be '', 'address' or 'thread', not '${SHMBUS_SANITIZE}'")
endif()

# libFuzzer: everything gets coverage instrumentation and ASan+UBSan; only the
# fuzz targets link the fuzzer's main.
if(SHMBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SHMBUS_FUZZ needs clang (e.g. -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
