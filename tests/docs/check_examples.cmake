# Checks that every code block of docs/*.md and README.md marked
#   <!-- example: PATH -->
#   ```lang
#   ...
#   ```
# holds exactly the file PATH (relative to the source tree), so the examples
# the docs show are the ones the build compiles. cmake -DSOURCE_DIR=... -P
cmake_minimum_required(VERSION 3.20)
if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_examples.cmake needs -DSOURCE_DIR=...")
endif()

set(marker "<!-- example: ")
set(checked 0)
set(failures "")
file(GLOB docs "${SOURCE_DIR}/docs/*.md")
list(APPEND docs "${SOURCE_DIR}/README.md")
foreach(doc IN LISTS docs)
  file(READ "${doc}" text)
  # Work on the text as one string: markdown is full of ';', which CMake
  # lists would split on.
  while(TRUE)
    string(FIND "${text}" "${marker}" at)
    if(at EQUAL -1)
      break()
    endif()
    string(LENGTH "${marker}" marker_length)
    math(EXPR path_start "${at} + ${marker_length}")
    string(SUBSTRING "${text}" ${path_start} -1 text)
    string(FIND "${text}" " -->" path_end)
    string(SUBSTRING "${text}" 0 ${path_end} path)
    # The fence line after the marker, then the block up to the closing fence.
    string(FIND "${text}" "\n```" fence)
    math(EXPR after_fence "${fence} + 4")
    string(SUBSTRING "${text}" ${after_fence} -1 text)
    string(FIND "${text}" "\n" line_end)
    math(EXPR body_start "${line_end} + 1")
    string(SUBSTRING "${text}" ${body_start} -1 text)
    string(FIND "${text}" "```\n" body_end)
    string(SUBSTRING "${text}" 0 ${body_end} body)
    string(SUBSTRING "${text}" ${body_end} -1 text)
    if(NOT EXISTS "${SOURCE_DIR}/${path}")
      string(APPEND failures "${doc}: quotes ${path}, which does not exist\n")
    else()
      file(READ "${SOURCE_DIR}/${path}" expected)
      if(NOT body STREQUAL expected)
        string(APPEND failures "${doc}: the block marked ${path} differs from the file\n")
      endif()
    endif()
    math(EXPR checked "${checked} + 1")
  endwhile()
endforeach()
if(failures)
  message(FATAL_ERROR "${failures}")
endif()
if(checked EQUAL 0)
  message(FATAL_ERROR "no example blocks found in ${SOURCE_DIR}/docs")
endif()
message(STATUS "${checked} example block(s) match their files")
