# After the suite's quick bench run (shmbus_bench_quick): it exercised the
# iceoryx baseline and the ping-pong mode, and left no RouDi running and no
# iceoryx shared memory behind, whether it passed or not.
#   cmake -DJSON=bench-quick.json -P check_quick_run.cmake
file(READ "${JSON}" json)
foreach(needle [["transport": "iceoryx"]] [["kind": "pingpong"]])
  string(FIND "${json}" "${needle}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${JSON} has no ${needle}: the quick run did not exercise it")
  endif()
endforeach()
execute_process(COMMAND pgrep -x iox-roudi OUTPUT_VARIABLE roudi RESULT_VARIABLE none_running)
if(none_running EQUAL 0)
  message(FATAL_ERROR "an iox-roudi is still running after the quick bench run: ${roudi}")
endif()
if(EXISTS /dev/shm/iceoryx_mgmt)
  message(FATAL_ERROR "/dev/shm/iceoryx_mgmt is left after the quick bench run")
endif()
