#pragma once
// Runs one measurement: sets up the transport, starts the subscriber
// processes, drives the publisher, collects what each subscriber measured.

#include <cstdint>
#include <string>
#include <vector>

#include "harness.hpp"

namespace shmbus::bench {

/// What one subscriber process measured.
struct subscriber_report {
  std::uint64_t received = 0;  ///< data messages
  std::uint64_t missed = 0;    ///< data messages skipped (sequence gaps)
  std::uint64_t bytes = 0;
  std::int64_t first_stamp = 0;  ///< publish stamp of the first data message
  std::int64_t last_ns = 0;      ///< when the last data message had been copied
  std::int64_t cpu_ns = 0;       ///< process CPU time from the first data message to the end
  std::int64_t wall_ns = 0;      ///< and the wall time it covers
  std::uint64_t samples = 0;     ///< latency samples
  std::int64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, min = 0, mean = 0;
  std::int64_t idle_cpu_ns = 0, idle_wall_ns = 0;
  std::string pinned;  ///< "cpuN" or why not
};

/// One run of one spec.
struct run_result {
  run_spec spec;
  std::vector<subscriber_report> subs;
  std::uint64_t published = 0;   ///< data messages sent
  std::int64_t publish_ns = 0;   ///< the publisher's measurement window
  std::uint64_t wake_calls = 0;  ///< shmbus wake system calls the publisher made in that window
  std::string publisher_pinned;
  std::string error;  ///< empty when the run worked
};

struct runner_options {
  bool pin = true;
};

/// Runs `spec` in subscriber processes started from this executable.
run_result run_once(const run_spec& spec, const runner_options& opt);

/// The subscriber process (`shmbus-bench --child bench-subscriber ...`).
int subscriber_main(const std::vector<std::string>& args);

}  // namespace shmbus::bench
