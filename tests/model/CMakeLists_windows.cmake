# Spin models of the Windows wait protocol (issue 9, items 10 and 12).
# Included by tests/model/CMakeLists.txt (the shared model runner), once;
# paths are taken from this file's own directory.
include_guard(GLOBAL)
# The runner has already returned where models do not run (cross builds,
# sanitizer builds) and found spin and a C compiler for pan.c.
set(_dir ${CMAKE_CURRENT_LIST_DIR})
set(_run ${CMAKE_COMMAND} -DSPIN=${SHMBUS_SPIN} -DCC=${SHMBUS_MODEL_CC})
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
