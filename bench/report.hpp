#pragma once
// Turns runs into figures: the median over repeated runs of each figure,
// Markdown tables, the targets as ratios, JSON, and a gnuplot chart.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "costs.hpp"
#include "jitter.hpp"
#include "runner.hpp"

namespace shmbus::bench {

struct keyed_result;  // keyed.hpp (which needs `target` from here)

/// The figures of one spec: each is the median over its runs.
struct row {
  run_spec spec;
  unsigned runs = 0;  ///< runs that worked
  std::string error;  ///< the last failure, if any run failed
  // Latency, ns. p50 ... max are the worst subscriber's (fan-out); p50_best
  // the best subscriber's.
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0, p50_best = 0;
  std::uint64_t samples = 0;
  // Throughput: the slowest subscriber's.
  double msgs_per_s = 0, mb_per_s = 0, delivered = 0, published_per_s = 0;
  std::uint64_t lost = 0;
  // CPU of a subscriber process, percent of one CPU: while receiving, and
  // while idle-waiting (idle runs).
  double sub_cpu_pct = 0, idle_cpu_pct = 0;
  /// shmbus: wake system calls per message made by the publisher.
  double wakes_per_msg = 0;
  std::string pinning;
};

/// Groups runs of the same spec (whatever their run name) into rows.
std::vector<row> summarise(const std::vector<run_result>& runs);

/// One of the targets, measured.
struct target {
  std::string what;
  std::string goal;  ///< e.g. "<= 1.15"
  std::optional<double> ratio;
  bool met = false;
  std::string detail;  ///< the figures the ratio came from
};
std::vector<target> evaluate_targets(const std::vector<row>& rows);

struct report_meta {
  std::string machine;
  std::string command;
  unsigned runs = 1;
  std::string started;                  ///< UTC time of day the run started
  std::string load_before, load_after;  ///< 1-minute load average ("" where unknown)
  double seconds = 0;                   ///< how long the runs took
  std::vector<std::string> not_run;     ///< runs a transport cannot do, with why ("n/a")
};

void write_markdown(std::ostream& out, const report_meta& meta, const std::vector<row>& rows,
                    const std::vector<target>& targets, const std::vector<cost>& costs);
void write_json(std::ostream& out, const report_meta& meta, const std::vector<row>& rows,
                const std::vector<target>& targets, const std::vector<cost>& costs, const std::vector<run_result>& runs,
                const std::vector<jitter_result>& jitter, const keyed_result& keyed);
/// Draws p50 / p99 / p99.9 latency against size per transport and wait
/// mode with gnuplot. Returns an empty string, or why it could not.
std::string write_plot(const std::string& png, const report_meta& meta, const std::vector<row>& rows);

}  // namespace shmbus::bench
