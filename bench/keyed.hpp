#pragma once
// Keyed topics (issue 12): what a keyed publish costs beside a plain ring
// publish of the same size, how long a join with a snapshot takes, what a
// subscriber following a few keys of a busy market pays, and a get of one
// key's latest value beside a latest-value topic read. Each part beside its
// same-run baseline; the figures are medians of the rounds.

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "report.hpp"

namespace shmbus::bench {

/// Everything the keyed parts take (main.cpp fills it from the options).
struct keyed_params {
  bool publish = true, join = true, filter = true, get = true;  ///< which parts run
  unsigned rounds = 3;                                          ///< medians over this many rounds, interleaved
  bool pin = true;                                              ///< timing thread on cpu1, publisher process on cpu0
  std::vector<std::size_t> sizes{64, 408};  ///< keyed vs plain publish sizes (408 B: the CTP struct)
  std::uint64_t publishes = 1'000'000;      ///< timed publishes per variant and round
  std::uint32_t keys = 25'000;              ///< the realistic key set (a CTP front's contracts)
  std::uint32_t small_keys = 16;            ///< the small one (every key in L1)
  std::size_t value_size = 408;             ///< join, filter and get values
  std::vector<std::uint32_t> join_keys{1'000, 10'000, 25'000, 100'000};
  unsigned joins = 30;                ///< joins per key count, over all rounds
  double join_hammer_rate = 200'000;  ///< a publisher process's rate during the hammered joins; 0: none
  std::uint32_t followed = 20;        ///< keys the filtered subscriber follows
  double filter_rate = 200'000;       ///< updates/s the publisher process makes across all keys
  double filter_seconds = 2;          ///< per subscriber and round
  std::uint64_t gets = 100'000;       ///< timed gets per round
  std::string name;                   ///< prefix for the buses it creates
};

/// One publish variant: ns per publish (thread CPU time), median of rounds.
struct keyed_publish_row {
  std::size_t size = 0;
  bool exclusive = true;
  std::uint32_t keys = 0;  ///< 0: the plain ring
  double ns = 0;
  std::vector<double> rounds;
};

/// Joins with a snapshot at one key count.
struct keyed_join_row {
  std::uint32_t keys = 0;
  bool hammered = false;   ///< a publisher process published meanwhile
  double hammer_rate = 0;  ///< what it achieved, updates/s
  std::uint64_t samples = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

/// One subscriber while the publisher process publishes across all keys.
struct keyed_filter_row {
  std::uint32_t followed = 0;  ///< 0: every key
  double publish_rate = 0;     ///< the publisher's achieved updates/s
  double received_per_s = 0, missed = 0;
  double cpu_pct = 0;  ///< the subscriber thread's CPU time per second of wall time, %
  double p50_us = 0, p99_us = 0;
  std::uint64_t samples = 0;  ///< latency samples, all rounds
};

/// Single-call read latency (a clock read included), p50/p99 medians of rounds.
struct keyed_get_row {
  std::string what;
  double p50 = 0, p99 = 0;
  std::uint64_t samples = 0;
};

struct keyed_result {
  std::vector<keyed_publish_row> publish;
  double insert_ns = 0;  ///< a publish that adds a new key, mean over the big key set
  std::vector<keyed_join_row> join;
  std::vector<keyed_filter_row> filter;
  std::vector<keyed_get_row> get;
  std::string pinned;
  std::vector<std::string> errors;
};

keyed_result measure_keyed(const keyed_params& p);

/// The keyed targets, as ratios, for the report's target table.
std::vector<target> keyed_targets(const keyed_params& p, const keyed_result& r);

void write_keyed_markdown(std::ostream& out, const keyed_params& p, const keyed_result& r);
/// A JSON object.
void write_keyed_json(std::ostream& out, const keyed_result& r);

}  // namespace shmbus::bench
