# Runs one Spin model exhaustively and checks the verdict:
#   cmake -DSPIN=... -DCC=... -DMODEL=file.pml -DWORK_DIR=dir -DEXPECT=pass|fail
#         [-DSPIN_DEFINES=-DX;-DY] -P windows_check.cmake
# pass: no error (no assertion violation, no invalid end state) in a full
# search; fail: at least one. Prints pan's summary either way.
foreach(v SPIN CC MODEL WORK_DIR EXPECT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "windows_check.cmake: ${v} not set")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
get_filename_component(_name "${MODEL}" NAME)
configure_file("${MODEL}" "${WORK_DIR}/${_name}" COPYONLY)
execute_process(COMMAND "${SPIN}" ${SPIN_DEFINES} -a "${_name}" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "spin -a ${_name} failed (${rc}):\n${out}")
endif()
# -DSAFETY: safety properties only (assertions, invalid end states);
# -DMEMLIM: fail loudly rather than swap if the model grows.
execute_process(COMMAND "${CC}" -O2 -w -DSAFETY -DMEMLIM=2048 -o pan pan.c WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling pan.c for ${_name} failed (${rc}):\n${out}")
endif()
execute_process(COMMAND ./pan -m100000 WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT out MATCHES "errors: ([0-9]+)")
  message(FATAL_ERROR "no verdict from pan for ${_name}")
endif()
set(errors ${CMAKE_MATCH_1})
if(out MATCHES "search not completed|max search depth too small|out of memory")
  message(FATAL_ERROR "${_name}: the search was not exhaustive")
endif()
if(EXPECT STREQUAL "pass" AND NOT errors EQUAL 0)
  execute_process(COMMAND "${SPIN}" ${SPIN_DEFINES} -t -p "${_name}" WORKING_DIRECTORY "${WORK_DIR}" OUTPUT_VARIABLE trail)
  message(FATAL_ERROR "${_name}: ${errors} error(s), expected none. Counterexample:\n${trail}")
elseif(EXPECT STREQUAL "fail" AND errors EQUAL 0)
  message(FATAL_ERROR "${_name}: no error found, but this model must fail (it is the protocol with the defect)")
endif()
message("${_name}: ${errors} error(s), as expected (${EXPECT})")
