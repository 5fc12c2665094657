// Publish jitter (jitter.hpp): every publish of a multi-second run timed,
// kept in a histogram (exact to the nanosecond below 4 us, within 1 % above),
// plus the largest samples with when they happened, so that a periodic cost
// shows as spikes on a grid (1.000 s, 2.000 s, ...).
#include "jitter.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "reference.hpp"
#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "sys.hpp"

namespace shmbus::bench {
namespace {

// Log-linear buckets: one per ns below 2^exact_bits, then 2^sub_bits per
// power of two. Covers up to 2^40 ns (18 minutes); larger samples land in
// the last bucket (max is kept exactly anyway).
class histogram {
 public:
  static constexpr unsigned exact_bits = 12, sub_bits = 7, top_bits = 40;
  static constexpr std::size_t buckets =
      (std::size_t{1} << exact_bits) + (top_bits - exact_bits) * (std::size_t{1} << sub_bits);

  void add(std::int64_t ns) noexcept {
    const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    ++counts_[index(v)];
    ++n_;
    sum_ += static_cast<double>(v);
    max_ = std::max(max_, v);
  }
  [[nodiscard]] std::uint64_t count() const noexcept { return n_; }
  [[nodiscard]] double mean() const noexcept { return n_ ? sum_ / static_cast<double>(n_) : 0; }
  [[nodiscard]] double max() const noexcept { return static_cast<double>(max_); }
  /// The smallest value v such that a fraction >= q of the samples is <= v
  /// (a bucket's upper bound above the exact range, never above max).
  [[nodiscard]] double quantile(double q) const noexcept {
    if (n_ == 0) return 0;
    const auto want = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets; ++i) {
      seen += counts_[i];
      if (seen >= want && seen > 0) return std::min(static_cast<double>(upper(i)), max());
    }
    return max();
  }
  [[nodiscard]] std::uint64_t above(std::uint64_t ns) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = index(ns) + 1; i < buckets; ++i) n += counts_[i];
    return n;
  }

 private:
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < (std::uint64_t{1} << exact_bits)) return static_cast<std::size_t>(v);
    const unsigned log = 63 - static_cast<unsigned>(std::countl_zero(v));
    if (log >= top_bits) return buckets - 1;
    const std::uint64_t sub = (v >> (log - sub_bits)) & ((std::uint64_t{1} << sub_bits) - 1);
    return (std::size_t{1} << exact_bits) + (log - exact_bits) * (std::size_t{1} << sub_bits) + sub;
  }
  static std::uint64_t upper(std::size_t i) noexcept {
    if (i < (std::size_t{1} << exact_bits)) return i;
    const std::size_t k = i - (std::size_t{1} << exact_bits);
    const unsigned log = exact_bits + static_cast<unsigned>(k >> sub_bits);
    const std::uint64_t sub = k & ((std::size_t{1} << sub_bits) - 1);
    return (std::uint64_t{1} << log) + ((sub + 1) << (log - sub_bits)) - 1;
  }

  std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(buckets, 0);
  std::uint64_t n_ = 0, max_ = 0;
  double sum_ = 0;
};

// The `keep` largest samples seen, with their times.
class top_samples {
 public:
  static constexpr std::size_t keep = 12;
  // Called for every sample: one compare unless it is among the largest.
  void offer(std::int64_t ns, std::int64_t at) {
    if (ns <= floor_) return;
    if (items_.size() < keep) {
      items_.push_back({ns, at});
    } else {
      *std::min_element(items_.begin(), items_.end()) = {ns, at};
    }
    if (items_.size() == keep) floor_ = std::min_element(items_.begin(), items_.end())->first;
  }
  [[nodiscard]] std::vector<jitter_spike> sorted(std::int64_t origin) const {
    auto v = items_;
    std::sort(v.begin(), v.end(), std::greater<>());
    std::vector<jitter_spike> out;
    for (const auto& [ns, at] : v) out.push_back({static_cast<double>(at - origin) / 1e9, static_cast<double>(ns)});
    return out;
  }

 private:
  std::vector<std::pair<std::int64_t, std::int64_t>> items_;
  std::int64_t floor_ = -1;
};

// Samples at least this long get the preemption check.
constexpr std::int64_t slow_ns = 5000;
// The window around each whole second since the open that at_whole_seconds
// looks at: from 1 ms before (a once-a-second clock started inside the open
// runs slightly ahead) to 4 ms after (it drifts by each check's own cost).
constexpr std::int64_t whole_second_before_ns = 1'000'000, whole_second_after_ns = 4'000'000;

// Times `publish()` back to back until `seconds` pass; `origin`: when the
// publisher was opened (spike times are relative to it).
template <class F>
jitter_result time_publishes(const std::string& transport, std::size_t size, double seconds, std::int64_t origin,
                             F&& publish) {
  jitter_result r;
  r.transport = transport;
  r.size = size;
  // Two histograms of 0.5 MB: allocated before the run, like everything else.
  auto all = std::make_unique<histogram>();
  auto own = std::make_unique<histogram>();
  top_samples top;
  std::vector<double> whole(static_cast<std::size_t>(seconds + 2), 0.0);
  // Warm-up: caches, TLB and the ring's pages, outside the measurement.
  for (int i = 0; i < 10000; ++i) publish();
  std::int64_t switches = sys::involuntary_switches();
  const bool knows_switches = switches >= 0;
  std::int64_t preempted = 0;
  const std::int64_t start = platform::monotonic_ns();
  const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
  for (std::int64_t t0 = start; t0 < end;) {
    publish();
    const std::int64_t t1 = platform::monotonic_ns();
    const std::int64_t d = t1 - t0;
    all->add(d);
    if (d < slow_ns) {
      own->add(d);
      t0 = t1;
      continue;
    }
    // Rare: was the thread switched out during this sample? (A switch in
    // the untimed check itself is charged to the next slow sample: rare,
    // and it can only hide a slow publish, never invent one.)
    const std::int64_t now_switches = knows_switches ? sys::involuntary_switches() : -1;
    if (knows_switches && now_switches != switches) {
      ++preempted;
    } else {
      own->add(d);
      top.offer(d, t0);
      const std::int64_t since = t0 - origin;
      const std::int64_t k = (since + whole_second_before_ns) / 1'000'000'000;
      const std::int64_t off = since - k * 1'000'000'000;
      if (k >= 1 && off < whole_second_after_ns && static_cast<std::size_t>(k) <= whole.size())
        whole[static_cast<std::size_t>(k - 1)] =
            std::max(whole[static_cast<std::size_t>(k - 1)], static_cast<double>(d));
    }
    switches = now_switches;
    t0 = platform::monotonic_ns();  // the check is not part of any sample
  }
  r.seconds = static_cast<double>(platform::monotonic_ns() - start) / 1e9;
  r.samples = all->count();
  r.p50 = all->quantile(0.5);
  r.p99 = all->quantile(0.99);
  r.p9999 = all->quantile(0.9999);
  r.max = all->max();
  r.mean = all->mean();
  r.over_10us = all->above(10000);
  r.preempted = knows_switches ? preempted : -1;
  r.p9999_own = own->quantile(0.9999);
  r.max_own = own->max();
  r.top = top.sorted(origin);
  // Only the windows wholly inside the run; -1: one that opened before the
  // timing started (a slow warm-up, as under wine).
  whole.resize(
      std::min(whole.size(), static_cast<std::size_t>((end - origin - whole_second_after_ns) / 1'000'000'000)));
  for (std::size_t k = 1; k <= whole.size(); ++k)
    if (origin + static_cast<std::int64_t>(k) * 1'000'000'000 - whole_second_before_ns < start) whole[k - 1] = -1;
  r.at_whole_seconds = whole;
  return r;
}

jitter_result shmbus_jitter(const std::string& name, double seconds, std::size_t size, bool exclusive) {
  broker_options o;
  o.bus = name + (exclusive ? "-jitter-x" : "-jitter");
  topic_config t;
  t.name = "data";
  t.max_message_size = size;
  t.depth = 1;  // latest value, as the latency runs and a market-data feed use
  o.topics = {t};
  broker brk(o);
  bus b(o.bus);
  publisher_options opts;
  opts.exclusive = exclusive;
  auto pub = b.make_publisher("data", opts);
  // Just after the open: a once-a-second clock the open started runs from
  // slightly before this.
  const std::int64_t origin = platform::monotonic_ns();
  std::vector<std::byte> payload(size, std::byte{1});
  return time_publishes(exclusive ? "shmbus-exclusive" : "shmbus", size, seconds, origin,
                        [&] { pub.publish(payload); });
}

jitter_result reference_jitter(const std::string& name, double seconds, std::size_t size) {
  const std::string region_name = name + ".jitter-ref";
  std::error_code ignored;
  platform::shared_memory_region::remove(region_name, ignored);  // a leftover of a killed run
  platform::shared_memory_region region(create_only, region_name, reference::ring::bytes_for(size, 1));
  reference::ring::init(region.data(), size, 1);
  const std::int64_t origin = platform::monotonic_ns();
  reference::ring ring(region.data());
  std::vector<std::byte> payload(size, std::byte{1});
  auto r = time_publishes("reference", size, seconds, origin, [&] { ring.publish(payload); });
  platform::shared_memory_region::remove(region_name, ignored);
  return r;
}

std::string fmt(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

}  // namespace

std::vector<jitter_result> measure_jitter(const std::string& name, double seconds, std::size_t size, bool pin) {
  // The publisher's own core, as in the other runs (cpu0).
  std::string pinned = "not pinned (--no-pin)";
  bool did_pin = false;
  if (pin && sys::cpu_count() >= 2) {
    const std::string why = sys::pin_thread(0);
    did_pin = why.empty();
    pinned = did_pin ? "cpu0" : "not pinned (" + why + ")";
  } else if (pin) {
    pinned = "not pinned (1 CPU)";
  }
  std::vector<jitter_result> out;
  auto run = [&](const char* transport, auto&& f) {
    try {
      out.push_back(f());
    } catch (const std::exception& e) {
      jitter_result r;
      r.transport = transport;
      r.size = size;
      r.error = e.what();
      out.push_back(r);
    }
    out.back().pinned = pinned;
  };
  run("shmbus", [&] { return shmbus_jitter(name, seconds, size, false); });
  run("shmbus-exclusive", [&] { return shmbus_jitter(name, seconds, size, true); });
  run("reference", [&] { return reference_jitter(name, seconds, size); });
  // The floor every sample includes: a clock read and the recording.
  run("clock only",
      [&] { return time_publishes("clock only", 0, std::min(seconds, 1.0), platform::monotonic_ns(), [] {}); });
  if (did_pin) sys::unpin_thread();
  return out;
}

void write_jitter_markdown(std::ostream& out, const std::vector<jitter_result>& results) {
  if (results.empty()) return;
  out << "\n### Publish jitter: the cost of every publish over " << fmt(results.front().seconds, 1)
      << " s of back-to-back publishing, " << results.front().size
      << " B, nobody subscribed (ns, a clock read included)\n\n"
      << "| transport | publishes | p50 | p99 | p99.99 | max | > 10 us | mean | preempted | p99.99 not preempted | "
         "max not preempted | at 1 s, 2 s, ... |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& r : results) {
    if (!r.error.empty()) {
      out << "| " << r.transport << " | failed: " << r.error << " | | | | | | | | | | |\n";
      continue;
    }
    out << "| " << r.transport << " | " << r.samples << " | " << fmt(r.p50, 0) << " | " << fmt(r.p99, 0) << " | "
        << fmt(r.p9999, 0) << " | " << fmt(r.max, 0) << " | " << r.over_10us << " | " << fmt(r.mean, 1) << " | "
        << (r.preempted < 0 ? "-" : std::to_string(r.preempted)) << " | " << fmt(r.p9999_own, 0) << " | "
        << fmt(r.max_own, 0) << " | ";
    for (std::size_t k = 0; k < r.at_whole_seconds.size(); ++k)
      out << (k ? ", " : "")
          << (r.at_whole_seconds[k] < 0   ? std::string("not timed")
              : r.at_whole_seconds[k] > 0 ? fmt(r.at_whole_seconds[k], 0)
                                          : "< " + std::to_string(slow_ns));
    if (r.at_whole_seconds.empty()) out << "-";
    out << " |\n";
  }
  out << "\nLargest publishes not preempted (us, at seconds after the publisher opened):\n\n";
  for (const auto& r : results) {
    if (!r.error.empty()) continue;
    out << "- " << r.transport << ":";
    if (r.top.empty()) out << " none over " << slow_ns / 1000 << " us";
    for (const auto& s : r.top) out << " " << fmt(s.ns / 1e3, 1) << " @" << fmt(s.at_s, 3);
    out << "\n";
  }
  out << "\n";
}

void write_jitter_json(std::ostream& out, const std::vector<jitter_result>& results) {
  out << "[";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::string err;
    for (char c : r.error) err += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    out << (i ? "," : "") << "\n    {\"transport\": \"" << r.transport << "\", \"size\": " << r.size
        << ", \"seconds\": " << fmt(r.seconds, 3) << ", \"publishes\": " << r.samples
        << ", \"p50_ns\": " << fmt(r.p50, 0) << ", \"p99_ns\": " << fmt(r.p99, 0)
        << ", \"p99_99_ns\": " << fmt(r.p9999, 0) << ", \"max_ns\": " << fmt(r.max, 0)
        << ", \"mean_ns\": " << fmt(r.mean, 1) << ", \"over_10us\": " << r.over_10us
        << ", \"preempted\": " << r.preempted << ", \"p99_99_not_preempted_ns\": " << fmt(r.p9999_own, 0)
        << ", \"max_not_preempted_ns\": " << fmt(r.max_own, 0) << ", \"at_whole_seconds_ns\": [";
    for (std::size_t k = 0; k < r.at_whole_seconds.size(); ++k)
      out << (k ? ", " : "") << (r.at_whole_seconds[k] < 0 ? std::string("null") : fmt(r.at_whole_seconds[k], 0));
    out << "], \"pinned\": \"" << r.pinned << "\", \"error\": \"" << err << "\", \"largest\": [";
    for (std::size_t j = 0; j < r.top.size(); ++j)
      out << (j ? ", " : "") << "{\"at_s\": " << fmt(r.top[j].at_s, 6) << ", \"ns\": " << fmt(r.top[j].ns, 0) << "}";
    out << "]}";
  }
  out << "\n  ]";
}

}  // namespace shmbus::bench
