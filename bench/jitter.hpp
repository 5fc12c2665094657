#pragma once
// Publish jitter: the cost of every single publish over seconds of
// continuous publishing, as a distribution (p50 ... p99.99, max) and the
// largest samples with the time they happened. A rare slow publish (a
// system call on the publish path, a page fault, a preemption) is invisible
// in an average and in a latency run's few thousand samples; here every
// publish of a multi-second run is timed.

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace shmbus::bench {

struct jitter_spike {
  double at_s = 0;  ///< when, in seconds after the publisher was opened (after its constructor returned)
  double ns = 0;    ///< what that publish cost
};

/// One transport's publish-cost distribution.
struct jitter_result {
  std::string transport;  ///< "shmbus", "reference", or "clock only" (a clock read, no publish)
  std::size_t size = 0;
  double seconds = 0;  ///< of continuous publishing
  std::uint64_t samples = 0;
  // ns per publish, a clock read and the recording included (see the
  // "clock only" row): every sample.
  double p50 = 0, p99 = 0, p9999 = 0, max = 0, mean = 0;
  std::uint64_t over_10us = 0;  ///< samples above 10 us
  /// Samples during which the thread was switched out (another process ran
  /// on its CPU): what a loaded machine adds, not what the publish costs.
  /// -1 where the OS does not tell (then nothing is excluded below).
  std::int64_t preempted = 0;
  /// The same figures without the preempted samples: the publish path's own.
  double p9999_own = 0, max_own = 0;
  std::vector<jitter_spike> top;  ///< the largest samples that were not preempted, largest first
  /// [k-1]: the slowest publish (not preempted, over 5 us; else 0) from 1 ms
  /// before to 4 ms after k whole seconds since the publisher was opened,
  /// where work done "once a second" from the open lands; -1 for a window
  /// that opened before the timing started.
  std::vector<double> at_whole_seconds;
  std::string pinned;
  std::string error;
};

/// Publishes back to back for `seconds` to each transport in turn, timing
/// each publish with platform::monotonic_ns() (the clock the harness uses
/// everywhere; user space), one read between consecutive publishes, so the
/// samples tile the run and nothing escapes them. Nobody subscribes: this is
/// the publisher's own path. A sample over 5 us is followed by a look at the
/// thread's involuntary context switches (outside the timing) to tell a
/// preemption from a slow publish. `name`: a prefix for the objects it
/// creates.
std::vector<jitter_result> measure_jitter(const std::string& name, double seconds, std::size_t size, bool pin);

void write_jitter_markdown(std::ostream& out, const std::vector<jitter_result>& results);
/// A JSON array, one object per transport.
void write_jitter_json(std::ostream& out, const std::vector<jitter_result>& results);

}  // namespace shmbus::bench
