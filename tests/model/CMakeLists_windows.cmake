# Spin models of the Windows wait protocol (issue 9, items 10 and 12).
# Spin is a Linux tool: the models are checked on the native build only.
# Included by tests/model/CMakeLists.txt (the shared model runner); paths are
# taken from this file's own directory, so it works included from anywhere,
# and only once.
include_guard(GLOBAL)
if(CMAKE_CROSSCOMPILING)
  message(STATUS "model: windows wait: cross-compiling, the Spin model checks run on the native build only")
  return()
endif()
if(NOT SHMBUS_SANITIZE STREQUAL "")
  message(STATUS "model: windows wait: skipped in the ${SHMBUS_SANITIZE} sanitizer build; the plain build runs them")
  return()
endif()
find_program(SHMBUS_SPIN spin)
if(NOT SHMBUS_SPIN)
  message(WARNING "model: windows wait: spin not found (apt-get install spin): the model checks are NOT run")
  # Shown as skipped by ctest, never as passed.
  add_test(NAME "model: windows wait (spin not found: not checked)"
    COMMAND sh -c "echo 'spin not found: install it (apt-get install spin) to check the Windows wait models'; exit 77")
  set_tests_properties("model: windows wait (spin not found: not checked)" PROPERTIES SKIP_RETURN_CODE 77 LABELS model)
  return()
endif()
# pan.c is C; the project enables only C++.
find_program(SHMBUS_SPIN_CC NAMES cc gcc)
if(NOT SHMBUS_SPIN_CC)
  message(WARNING "model: windows wait: no C compiler for Spin's pan.c: the model checks are NOT run")
  return()
endif()
set(_dir ${CMAKE_CURRENT_LIST_DIR})
set(_run ${CMAKE_COMMAND} -DSPIN=${SHMBUS_SPIN} -DCC=${SHMBUS_SPIN_CC})
function(shmbus_windows_model name model expect)
  string(MAKE_C_IDENTIFIER "${name}" _work)
  add_test(NAME "model: windows wait, ${name}"
    COMMAND ${_run} -DMODEL=${_dir}/${model} -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/model/${_work}
            "-DSPIN_DEFINES=${ARGN}" -DEXPECT=${expect} -P ${_dir}/windows_check.cmake)
  set_tests_properties("model: windows wait, ${name}" PROPERTIES TIMEOUT 600 LABELS model)
endfunction()
# The protocol as built: must pass.
shmbus_windows_model("per-waiter auto-reset events: no lost wake-up without the safety slice"
  windows_wait.pml pass)
shmbus_windows_model("a publisher killed inside set() and recovered: no lost wake-up"
  windows_wait.pml pass -DCRASH -DROUNDS=2)
shmbus_windows_model("the broker closing concurrently with publishes: no lost wake-up"
  windows_wait.pml pass -DCLOSER -DROUNDS=2)
# The seed's protocol put back: the same check must fail.
shmbus_windows_model("the old protocol (gate, SignalObjectAndWait, 20 ms re-arm) FAILS: it loses a wake-up"
  windows_wait_old.pml fail)
shmbus_windows_model("the old protocol FAILS even with an atomic SignalObjectAndWait (the 20 ms re-arm)"
  windows_wait_old.pml fail -DATOMIC_SOAW)
