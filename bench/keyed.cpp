// Keyed topics (keyed.hpp). The publish costs are thread CPU time, one
// thread, nobody reading (as costs.cpp), so that other work on the machine
// distorts them little; the join and get figures are wall time of single
// calls; the filtered subscriber runs against a publisher process on the
// other core, as the cross-process runs do. Rounds interleave the variants,
// so that a disturbance spoils one round of each rather than every round of
// one.
#include "keyed.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string_view>

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"
#include "support/child_process.hpp"
#include "sys.hpp"

namespace shmbus::bench {
namespace {

constexpr std::int64_t second_ns = 1'000'000'000;
const char* const topic_name = "md";

// Instrument-like keys of 7 bytes ("i000042"), as exchange IDs are 5-8.
std::vector<std::string> key_names(std::uint32_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  char b[16];
  for (std::uint32_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "i%06u", static_cast<unsigned>(i));
    out.emplace_back(b);
  }
  return out;
}

// Key indexes in random order, a power of two long so that a loop indexes
// it with a mask; a fixed seed, so that every run and process uses the same.
std::vector<std::uint32_t> random_order(std::uint32_t keys, std::size_t length = std::size_t{1} << 16) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<std::uint32_t> pick(0, keys - 1);
  std::vector<std::uint32_t> out(length);
  for (auto& k : out) k = pick(rng);
  return out;
}

topic_config keyed_topic(std::size_t size, std::uint32_t depth, std::uint32_t keys) {
  topic_config t;
  t.name = topic_name;
  t.max_message_size = size;
  t.depth = depth;
  t.key_capacity = keys;
  return t;
}

std::unique_ptr<broker> start_broker(const std::string& bus_name, std::vector<topic_config> topics) {
  broker_options o;
  o.bus = bus_name;
  o.topics = std::move(topics);
  return std::make_unique<broker>(std::move(o));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Nearest rank, as the latency runs (runner.cpp).
double percentile(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(p * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return static_cast<double>(v[rank - 1]);
}

std::string fmt(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string with_commas(std::uint64_t n) {
  // Built forwards, char by char: GCC 12 warns falsely (-Wrestrict) on
  // string::insert here.
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

// ---- the publisher process --------------------------------------------------

// `shmbus-bench --child keyed-publisher BUS KEYS SIZE RATE SECONDS CPU`:
// an exclusive publisher that first gives every key a value, says
// "publishing", then publishes RATE updates/s for SECONDS across all keys
// in random order, and says what it achieved. Paced on the clock; after a
// preemption it does not burst to catch up (a feed does not either), so the
// rate it reports can fall short on a loaded machine.
int keyed_publisher_main(const std::vector<std::string>& a) {
  if (a.size() < 6) throw std::invalid_argument("keyed-publisher: BUS KEYS SIZE RATE SECONDS CPU");
  sys::die_with_parent();
  const auto keys = static_cast<std::uint32_t>(std::stoul(a[1]));
  const std::size_t size = std::stoul(a[2]);
  const double rate = std::stod(a[3]);
  const double seconds = std::stod(a[4]);
  const int cpu = std::stoi(a[5]);
  if (cpu >= 0) (void)sys::pin_thread(static_cast<unsigned>(cpu));
  bus b(a[0]);
  publisher_options po;
  po.exclusive = true;
  // The previous round's publisher process may still be giving the right back.
  po.wait_for_right = std::chrono::seconds(5);
  auto pub = b.make_publisher(topic_name, po);
  const auto names = key_names(keys);
  const auto order = random_order(keys);
  const std::size_t mask = order.size() - 1;
  std::vector<std::byte> payload(size, std::byte{0x42});
  for (const auto& k : names) pub.publish(k, payload);
  test::signal_parent("publishing");

  const double period = 1e9 / rate;
  const std::int64_t start = platform::monotonic_ns();
  const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
  std::int64_t base = start;
  std::uint64_t since_base = 0, published = 0;
  for (;;) {
    const std::int64_t now = platform::monotonic_ns();
    if (now >= end) break;
    const auto due = base + static_cast<std::int64_t>(static_cast<double>(since_base) * period);
    if (now < due) {
      detail::cpu_relax();
      continue;
    }
    pub.publish(names[order[published & mask]], payload);
    ++published;
    ++since_base;
    if (now - due > 1'000'000) {  // over 1 ms late: start the schedule again from now
      base = now;
      since_base = 1;
    }
  }
  const std::int64_t took = platform::monotonic_ns() - start;
  test::signal_parent("result published=" + std::to_string(published) + " ns=" + std::to_string(took));
  return 0;
}
const test::child_registrar publisher_role("keyed-publisher", keyed_publisher_main);

// A publisher process for `seconds`, started and publishing.
class publisher_process {
 public:
  publisher_process(const std::string& bus_name, std::uint32_t keys, std::size_t size, double rate, double seconds,
                    bool pin)
      : child_(test::child_process::self(
            "keyed-publisher", {bus_name, std::to_string(keys), std::to_string(size), fmt(rate, 0), fmt(seconds, 3),
                                std::to_string(pin && sys::cpu_count() >= 2 ? 0 : -1)})) {
    child_.expect_line("publishing", std::chrono::seconds(60));
    end_ = platform::monotonic_ns() + static_cast<std::int64_t>(seconds * 1e9);
  }
  /// When it stops publishing (about).
  [[nodiscard]] std::int64_t end_ns() const noexcept { return end_; }
  /// Waits for it to finish: the updates/s it achieved.
  double finish() {
    const std::string line = child_.expect_line("result", std::chrono::seconds(60));
    const int rc = child_.wait(std::chrono::seconds(30));
    if (rc != 0) throw std::runtime_error("keyed-publisher exited with " + std::to_string(rc));
    const auto at = [&](const char* field) {
      const auto p = line.find(field);
      return p == std::string::npos ? 0.0 : std::stod(line.substr(p + std::string_view(field).size()));
    };
    const double ns = at("ns=");
    return ns > 0 ? at("published=") * 1e9 / ns : 0;
  }

 private:
  test::child_process child_;
  std::int64_t end_ = 0;
};

// ---- keyed publish vs plain ring publish -------------------------------------

// ns of thread CPU time per call of `f`, over `n` calls after a warm-up.
template <class F>
double per_call(std::uint64_t n, F&& f) {
  for (std::uint64_t i = 0; i < std::min<std::uint64_t>(n / 10, 20000); ++i) f(i);
  const std::int64_t c0 = sys::thread_cpu_ns();
  for (std::uint64_t i = 0; i < n; ++i) f(i);
  const std::int64_t c1 = sys::thread_cpu_ns();
  return static_cast<double>(c1 - c0) / static_cast<double>(n);
}

void measure_publish(const keyed_params& p, keyed_result& r) {
  // The ring depth of both: what a lossless ring of these sizes uses.
  constexpr std::uint32_t depth = 1024;
  const auto names = key_names(std::max(p.keys, p.small_keys));
  const auto big_order = random_order(p.keys), small_order = random_order(p.small_keys);
  const std::size_t mask = big_order.size() - 1;
  struct size_setup {
    std::size_t size;
    std::unique_ptr<broker> brk;
    std::unique_ptr<bus> b;
  };
  std::vector<size_setup> setups;
  for (const std::size_t size : p.sizes) {
    const std::string bus_name = p.name + "-kp" + std::to_string(size);
    topic_config plain = keyed_topic(size, depth, 0), big = keyed_topic(size, depth, p.keys),
                 small = keyed_topic(size, depth, p.small_keys);
    plain.name = "plain";
    big.name = "big";
    small.name = "small";
    auto brk = start_broker(bus_name, {plain, big, small});
    setups.push_back({size, std::move(brk), std::make_unique<bus>(bus_name)});
    for (const bool exclusive : {true, false})
      for (const std::uint32_t keys : {0u, p.small_keys, p.keys}) r.publish.push_back({size, exclusive, keys, 0, {}});
  }
  for (auto& s : setups) {
    // Every key gets its value before the timing: the timed publishes
    // replace values, as a running feed's do. Adding them is timed apart.
    std::vector<std::byte> payload(s.size, std::byte{1});
    publisher_options po;
    po.exclusive = true;
    auto big = s.b->make_publisher("big", po);
    const std::int64_t c0 = sys::thread_cpu_ns();
    for (std::uint32_t i = 0; i < p.keys; ++i) big.publish(names[i], payload);
    const double insert = static_cast<double>(sys::thread_cpu_ns() - c0) / p.keys;
    if (s.size == p.sizes.front()) r.insert_ns = insert;
    auto small = s.b->make_publisher("small", po);
    for (std::uint32_t i = 0; i < p.small_keys; ++i) small.publish(names[i], payload);
  }
  for (unsigned round = 0; round < p.rounds; ++round)
    for (auto& row : r.publish) {
      auto& s = *std::find_if(setups.begin(), setups.end(), [&](const auto& x) { return x.size == row.size; });
      std::vector<std::byte> payload(s.size, std::byte{static_cast<unsigned char>(round + 2)});
      const std::span<const std::byte> bytes(payload);
      publisher_options po;
      po.exclusive = row.exclusive;
      const char* topic = row.keys == 0 ? "plain" : row.keys == p.keys ? "big" : "small";
      auto pub = s.b->make_publisher(topic, po);
      const auto& order = row.keys == p.keys ? big_order : small_order;
      row.rounds.push_back(
          row.keys == 0 ? per_call(p.publishes, [&](std::uint64_t) { pub.publish(bytes); })
                        : per_call(p.publishes, [&](std::uint64_t i) { pub.publish(names[order[i & mask]], bytes); }));
    }
  for (auto& row : r.publish) row.ns = median(row.rounds);
}

// ---- join with a snapshot ------------------------------------------------------

// ns from opening a subscriber with a snapshot to having read all `keys`
// values of it.
std::int64_t one_join(bus& b, std::uint32_t keys) {
  subscriber_options so;
  so.snapshot = true;
  const std::int64_t t0 = platform::monotonic_ns();
  auto sub = b.make_subscriber(topic_name, so);
  message m;
  for (std::uint32_t got = 0; got < keys; ++got) {
    if (!sub.try_read(m) && !sub.wait(m, std::chrono::seconds(5)))
      throw std::runtime_error("join: the snapshot stopped after " + std::to_string(got) + " of " +
                               std::to_string(keys) + " values");
    if (!m.from_snapshot())
      throw std::runtime_error("join: a stream update came after " + std::to_string(got) + " of " +
                               std::to_string(keys) + " snapshot values");
  }
  return platform::monotonic_ns() - t0;
}

void measure_join(const keyed_params& p, keyed_result& r) {
  // Deep enough that a publisher at 200k/s takes 80 ms to lap the ring
  // (a snapshot it laps meanwhile is taken again).
  constexpr std::uint32_t depth = 16384;
  struct setup {
    std::uint32_t keys;
    std::string bus_name;
    std::unique_ptr<broker> brk;
    std::unique_ptr<bus> b;
    std::vector<std::int64_t> samples;
  };
  std::vector<setup> setups;
  std::vector<std::byte> payload(p.value_size, std::byte{3});
  for (const std::uint32_t keys : p.join_keys) {
    const std::string bus_name = p.name + "-kj" + std::to_string(keys);
    auto brk = start_broker(bus_name, {keyed_topic(p.value_size, depth, keys)});
    auto b = std::make_unique<bus>(bus_name);
    {
      publisher_options po;
      po.exclusive = true;
      auto pub = b->make_publisher(topic_name, po);
      const auto names = key_names(keys);
      for (const auto& k : names) pub.publish(k, payload);
    }
    setups.push_back({keys, bus_name, std::move(brk), std::move(b), {}});
  }
  const unsigned per_round = std::max(1u, p.joins / p.rounds);
  for (unsigned round = 0; round < p.rounds; ++round)
    for (auto& s : setups)
      for (unsigned i = 0; i < per_round; ++i) s.samples.push_back(one_join(*s.b, s.keys));
  for (auto& s : setups) {
    keyed_join_row row;
    row.keys = s.keys;
    row.samples = s.samples.size();
    row.p50_ms = percentile(s.samples, 0.5) / 1e6;
    row.p99_ms = percentile(s.samples, 0.99) / 1e6;
    row.max_ms = static_cast<double>(s.samples.back()) / 1e6;
    r.join.push_back(row);
  }
  // The same joins at the realistic key count while a publisher process
  // hammers the topic: the snapshot competes with it for the key table.
  if (p.join_hammer_rate <= 0) return;
  for (auto& s : setups) {
    if (s.keys != p.keys) continue;
    const double seconds = std::max(0.5, 0.2 + static_cast<double>(p.joins) * 0.05);
    publisher_process pub(s.bus_name, s.keys, p.value_size, p.join_hammer_rate, seconds, p.pin);
    std::vector<std::int64_t> samples;
    // Joins that start once the publisher stopped would not be hammered.
    while (samples.size() < p.joins && platform::monotonic_ns() < pub.end_ns() - 100'000'000)
      samples.push_back(one_join(*s.b, s.keys));
    keyed_join_row row;
    row.keys = s.keys;
    row.hammered = true;
    row.hammer_rate = pub.finish();
    row.samples = samples.size();
    row.p50_ms = percentile(samples, 0.5) / 1e6;
    row.p99_ms = percentile(samples, 0.99) / 1e6;
    row.max_ms = samples.empty() ? 0 : static_cast<double>(samples.back()) / 1e6;
    r.join.push_back(row);
  }
}

// ---- a filtered subscriber in a busy market -------------------------------------

struct phase_figures {
  std::uint64_t received = 0, missed = 0;
  std::int64_t cpu_ns = 0, wall_ns = 0;
  std::vector<std::int64_t> latency;
};

// One blocking subscriber (following `keys`, every key when empty) for
// `seconds`: its thread CPU time and the latency of each message it got,
// from the publisher's stamp to just after the copy.
phase_figures subscribe_phase(bus& b, const std::vector<std::string>& keys, double seconds, double rate) {
  subscriber_options so;
  so.keys = keys;
  auto sub = b.make_subscriber(topic_name, so);
  phase_figures f;
  f.latency.reserve(static_cast<std::size_t>(keys.empty() ? rate * seconds * 1.2 + 1000 : 100000));
  message m;
  const std::int64_t t0 = platform::monotonic_ns(), c0 = sys::thread_cpu_ns();
  const std::int64_t end = t0 + static_cast<std::int64_t>(seconds * 1e9);
  for (std::int64_t now = t0; now < end; now = platform::monotonic_ns()) {
    if (!sub.wait(m, std::chrono::nanoseconds(end - now))) continue;
    const std::int64_t at = platform::monotonic_ns();
    f.latency.push_back(at - m.timestamp_ns());
    ++f.received;
    f.missed += m.missed();
    // The filter's correctness, cheaply: it must never hand over another key.
    if (!keys.empty() && std::find(keys.begin(), keys.end(), m.key()) == keys.end())
      throw std::runtime_error("filtered subscriber got key '" + std::string(m.key()) + "'");
  }
  f.cpu_ns = sys::thread_cpu_ns() - c0;
  f.wall_ns = platform::monotonic_ns() - t0;
  return f;
}

void measure_filter(const keyed_params& p, keyed_result& r) {
  // 80 ms of updates at 200k/s: a subscriber that falls behind that far
  // loses updates, and says so (missed).
  constexpr std::uint32_t depth = 16384;
  const std::string bus_name = p.name + "-kf";
  auto brk = start_broker(bus_name, {keyed_topic(p.value_size, depth, p.keys)});
  bus b(bus_name);
  // Spread over the key set, as a strategy's instruments are over a market.
  const auto names = key_names(p.keys);
  std::vector<std::string> followed;
  const std::uint32_t n = std::min(p.followed, p.keys);
  for (std::uint32_t i = 0; i < n; ++i)
    followed.push_back(names[(static_cast<std::uint64_t>(i) * p.keys) / n + p.keys / n / 2]);

  struct series {
    std::vector<double> rate, received, missed, cpu, p50, p99;
    std::uint64_t samples = 0;
  };
  series filtered, all;
  const double seconds = 2 * p.filter_seconds + 0.3;
  for (unsigned round = 0; round < p.rounds; ++round) {
    publisher_process pub(bus_name, p.keys, p.value_size, p.filter_rate, seconds, p.pin);
    // Which subscriber goes first alternates, so neither always gets the
    // publisher's first (or last) stretch.
    phase_figures f, u;
    if (round % 2 == 0) {
      f = subscribe_phase(b, followed, p.filter_seconds, p.filter_rate);
      u = subscribe_phase(b, {}, p.filter_seconds, p.filter_rate);
    } else {
      u = subscribe_phase(b, {}, p.filter_seconds, p.filter_rate);
      f = subscribe_phase(b, followed, p.filter_seconds, p.filter_rate);
    }
    const double achieved = pub.finish();
    auto add = [&](series& s, phase_figures& x) {
      const double wall = static_cast<double>(x.wall_ns);
      s.rate.push_back(achieved);
      s.received.push_back(static_cast<double>(x.received) * 1e9 / wall);
      s.missed.push_back(static_cast<double>(x.missed));
      s.cpu.push_back(100.0 * static_cast<double>(x.cpu_ns) / wall);
      s.p50.push_back(percentile(x.latency, 0.5));
      s.p99.push_back(percentile(x.latency, 0.99));
      s.samples += x.latency.size();
    };
    add(filtered, f);
    add(all, u);
  }
  auto row_of = [&](const series& s, std::uint32_t keys) {
    keyed_filter_row row;
    row.followed = keys;
    row.publish_rate = median(s.rate);
    row.received_per_s = median(s.received);
    row.missed = median(s.missed);
    row.cpu_pct = median(s.cpu);
    row.p50_us = median(s.p50) / 1e3;
    row.p99_us = median(s.p99) / 1e3;
    row.samples = s.samples;
    return row;
  };
  r.filter.push_back(row_of(filtered, n));
  r.filter.push_back(row_of(all, 0));
}

// ---- get ---------------------------------------------------------------------------

void measure_get(const keyed_params& p, keyed_result& r) {
  const std::string bus_name = p.name + "-kg";
  topic_config latest = keyed_topic(p.value_size, 1, 0), small = keyed_topic(p.value_size, 1024, p.small_keys);
  latest.name = "latest";
  small.name = "small";
  auto brk = start_broker(bus_name, {keyed_topic(p.value_size, 1024, p.keys), small, latest});
  bus b(bus_name);
  const auto names = key_names(std::max(p.keys, p.small_keys));
  const auto order = random_order(p.keys), small_order = random_order(p.small_keys);
  const std::size_t mask = order.size() - 1;
  std::vector<std::byte> payload(p.value_size, std::byte{4});
  publisher_options po;
  po.exclusive = true;
  auto kpub = b.make_publisher(topic_name, po);
  for (std::uint32_t i = 0; i < p.keys; ++i) kpub.publish(names[i], payload);
  auto spub = b.make_publisher("small", po);
  for (std::uint32_t i = 0; i < p.small_keys; ++i) spub.publish(names[i], payload);
  auto lpub = b.make_publisher("latest", po);
  lpub.publish(payload);
  auto keyed_sub = b.make_subscriber(topic_name);
  auto small_sub = b.make_subscriber("small");
  auto latest_sub = b.make_subscriber("latest");
  message m;
  std::vector<std::int64_t> lat(p.gets);
  // One timed call per sample; returns (p50, p99) in ns.
  auto time_each = [&](auto&& call) {
    for (std::uint64_t i = 0; i < std::min<std::uint64_t>(p.gets, 10000); ++i) call(i);  // warm-up
    for (std::uint64_t i = 0; i < p.gets; ++i) {
      const std::int64_t t0 = platform::monotonic_ns();
      call(i);
      lat[i] = platform::monotonic_ns() - t0;
    }
    return std::pair{percentile(lat, 0.5), percentile(lat, 0.99)};
  };
  struct series {
    std::string what;
    std::function<void(std::uint64_t)> call;
    std::vector<double> p50, p99;
  };
  std::vector<series> all;
  all.push_back({"get, 1 key of " + with_commas(p.keys) + " (random order), " + std::to_string(p.value_size) + " B",
                 [&](std::uint64_t i) {
                   if (!keyed_sub.get(names[order[i & mask]], m)) throw std::runtime_error("get: a key has no value");
                 },
                 {},
                 {}});
  // The same with every key in cache: what the lookup itself costs.
  all.push_back(
      {"get, 1 key of " + std::to_string(p.small_keys) + " (random order), " + std::to_string(p.value_size) + " B",
       [&](std::uint64_t i) {
         if (!small_sub.get(names[small_order[i & mask]], m)) throw std::runtime_error("get: a key has no value");
       },
       {},
       {}});
  all.push_back({"latest-value topic, latest(), " + std::to_string(p.value_size) + " B",
                 [&](std::uint64_t) {
                   if (!latest_sub.latest(m)) throw std::runtime_error("latest: no value");
                 },
                 {},
                 {}});
  all.push_back({"clock reads only (the floor of all)", [](std::uint64_t) {}, {}, {}});
  for (unsigned round = 0; round < p.rounds; ++round)
    for (auto& s : all) {
      const auto [p50, p99] = time_each(s.call);
      s.p50.push_back(p50);
      s.p99.push_back(p99);
    }
  for (const auto& s : all) r.get.push_back({s.what, median(s.p50), median(s.p99), p.gets * p.rounds});
}

}  // namespace

keyed_result measure_keyed(const keyed_params& p) {
  keyed_result r;
  // The timing thread on cpu1, the publisher process (filter, hammered
  // joins) on cpu0, as the cross-process runs place subscriber and publisher.
  bool did_pin = false;
  r.pinned = "not pinned";
  if (p.pin && sys::cpu_count() >= 2) {
    const std::string why = sys::pin_thread(1);
    did_pin = why.empty();
    r.pinned = did_pin ? "timing thread cpu1, publisher process cpu0" : "not pinned (" + why + ")";
  } else if (p.pin) {
    r.pinned = "not pinned (1 CPU)";
  }
  auto part = [&](bool wanted, const char* what, auto&& f) {
    if (!wanted) return;
    try {
      f(p, r);
    } catch (const std::exception& e) {
      r.errors.push_back(std::string(what) + ": " + e.what());
    }
  };
  part(p.publish, "keyed publish", measure_publish);
  part(p.join, "join with snapshot", measure_join);
  part(p.filter, "filtered subscriber", measure_filter);
  part(p.get, "get", measure_get);
  if (did_pin) sys::unpin_thread();
  return r;
}

std::vector<target> keyed_targets(const keyed_params& p, const keyed_result& r) {
  std::vector<target> out;
  for (const auto& k : r.publish) {
    if (k.keys == 0) continue;
    const auto plain = std::find_if(r.publish.begin(), r.publish.end(), [&](const auto& x) {
      return x.keys == 0 && x.size == k.size && x.exclusive == k.exclusive;
    });
    target t;
    t.what = "issue 12: keyed publish, " + std::to_string(k.size) + " B, " + (k.exclusive ? "exclusive" : "shared") +
             ", " + with_commas(k.keys) + " keys" + (k.keys == p.keys ? " in random order" : "") +
             ": ns / plain ring ns";
    t.goal = "<= 1.3";
    if (plain == r.publish.end() || plain->ns <= 0 || k.ns <= 0) {
      t.detail = "not measured in this run";
    } else {
      t.ratio = k.ns / plain->ns;
      t.met = *t.ratio <= 1.3;
      t.detail = "keyed " + fmt(k.ns, 1) + " ns vs plain ring " + fmt(plain->ns, 1) + " ns (thread CPU)";
    }
    out.push_back(std::move(t));
  }
  for (const auto& j : r.join) {
    if (j.keys != 25000) continue;
    target t;
    t.what = std::string("issue 12: join with snapshot, 25,000 keys of ") + std::to_string(p.value_size) + " B" +
             (j.hammered ? ", publisher hammering" : "") + ": p99 / 10 ms";
    t.goal = "< 1";
    t.ratio = j.p99_ms / 10;
    t.met = j.p99_ms < 10;
    t.detail =
        "p99 " + fmt(j.p99_ms, 2) + " ms of " + std::to_string(j.samples) + " joins (p50 " + fmt(j.p50_ms, 2) + " ms)";
    out.push_back(std::move(t));
  }
  if (p.join && std::none_of(r.join.begin(), r.join.end(), [](const auto& j) { return j.keys == 25000; }))
    out.push_back({"issue 12: join with snapshot, 25,000 keys: p99 / 10 ms", "< 1", std::nullopt, false,
                   "not measured in this run"});
  return out;
}

void write_keyed_markdown(std::ostream& out, const keyed_params& p, const keyed_result& r) {
  if (r.publish.empty() && r.join.empty() && r.filter.empty() && r.get.empty() && r.errors.empty()) return;
  out << "\n### Keyed topics (issue 12)\n\n- pinning: " << r.pinned << "\n";
  for (const auto& e : r.errors) out << "\n> " << e << "\n";
  if (!r.publish.empty()) {
    out << "\n#### Keyed publish vs plain ring publish (ns per publish, thread CPU time, median of " << p.rounds
        << " round" << (p.rounds == 1 ? "" : "s") << " of " << with_commas(p.publishes)
        << "; nobody subscribed; ring depth 1024 both)\n\n"
        << "| size | publisher | plain ring | keyed, " << p.small_keys << " keys | / plain | keyed, "
        << with_commas(p.keys) << " keys, random | / plain | rounds (plain; small; large) |\n"
        << "|---:|---|---:|---:|---:|---:|---:|---|\n";
    for (const auto& plain : r.publish) {
      if (plain.keys != 0) continue;
      auto find = [&](std::uint32_t keys) {
        return std::find_if(r.publish.begin(), r.publish.end(), [&](const auto& x) {
          return x.keys == keys && x.size == plain.size && x.exclusive == plain.exclusive;
        });
      };
      const auto small = find(p.small_keys), big = find(p.keys);
      auto list = [](const std::vector<double>& v) {
        std::string s;
        for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + fmt(v[i], 1);
        return s;
      };
      out << "| " << plain.size << " B | " << (plain.exclusive ? "exclusive" : "shared") << " | " << fmt(plain.ns, 1)
          << " | " << fmt(small->ns, 1) << " | " << fmt(small->ns / plain.ns, 2) << " | " << fmt(big->ns, 1) << " | "
          << fmt(big->ns / plain.ns, 2) << " | " << list(plain.rounds) << "; " << list(small->rounds) << "; "
          << list(big->rounds) << " |\n";
    }
    out << "\nAdding a key (its first publish), " << p.sizes.front() << " B, exclusive: " << fmt(r.insert_ns, 1)
        << " ns each, over " << with_commas(p.keys) << " new keys.\n";
  }
  if (!r.join.empty()) {
    out << "\n#### Join with snapshot: make_subscriber({.snapshot = true}) and reading every value (ms, wall time; "
        << std::to_string(p.value_size) << " B values; below 100 joins, p99 is their max)\n\n"
        << "| keys | publisher meanwhile | joins | p50 | p99 | max |\n|---:|---|---:|---:|---:|---:|\n";
    for (const auto& j : r.join)
      out << "| " << with_commas(j.keys) << " | "
          << (j.hammered ? "a process at " + with_commas(static_cast<std::uint64_t>(j.hammer_rate)) + " updates/s"
                         : std::string("none"))
          << " | " << j.samples << " | " << fmt(j.p50_ms, 3) << " | " << fmt(j.p99_ms, 3) << " | " << fmt(j.max_ms, 3)
          << " |\n";
  }
  if (!r.filter.empty()) {
    out << "\n#### A subscriber of a busy market: a publisher process updates " << with_commas(p.keys)
        << " keys in random order (" << p.value_size << " B, ring 16384); blocking wait; median of " << p.rounds
        << " round" << (p.rounds == 1 ? "" : "s") << " of " << fmt(p.filter_seconds, 1) << " s each\n\n"
        << "| subscriber | publisher achieved (updates/s) | received/s | missed | subscriber thread CPU | latency p50 "
           "(us) | p99 (us) | samples |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& f : r.filter)
      out << "| " << (f.followed ? "following " + std::to_string(f.followed) + " keys" : std::string("every key"))
          << " | " << with_commas(static_cast<std::uint64_t>(f.publish_rate)) << " | " << fmt(f.received_per_s, 0)
          << " | " << fmt(f.missed, 0) << " | " << fmt(f.cpu_pct, 2) << " % | " << fmt(f.p50_us, 1) << " | "
          << fmt(f.p99_us, 1) << " | " << f.samples << " |\n";
  }
  if (!r.get.empty()) {
    out << "\n#### Latest value of one key (ns per call, wall time, a clock read included; p50 and p99 each the median "
           "of "
        << p.rounds << " round" << (p.rounds == 1 ? "" : "s") << " of " << with_commas(p.gets)
        << ")\n\n| read | p50 | p99 | samples |\n"
        << "|---|---:|---:|---:|\n";
    for (const auto& g : r.get)
      out << "| " << g.what << " | " << fmt(g.p50, 0) << " | " << fmt(g.p99, 0) << " | " << g.samples << " |\n";
  }
  out << "\n";
}

void write_keyed_json(std::ostream& out, const keyed_result& r) {
  auto str = [](const std::string& s) {
    std::string o = "\"";
    for (const char c : s) o += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return o + "\"";
  };
  out << "{\"pinned\": " << str(r.pinned) << ", \"insert_ns\": " << fmt(r.insert_ns, 1) << ",\n    \"publish\": [";
  for (std::size_t i = 0; i < r.publish.size(); ++i) {
    const auto& x = r.publish[i];
    out << (i ? ", " : "") << "{\"size\": " << x.size << ", \"exclusive\": " << (x.exclusive ? "true" : "false")
        << ", \"keys\": " << x.keys << ", \"ns\": " << fmt(x.ns, 2) << "}";
  }
  out << "],\n    \"join\": [";
  for (std::size_t i = 0; i < r.join.size(); ++i) {
    const auto& x = r.join[i];
    out << (i ? ", " : "") << "{\"keys\": " << x.keys << ", \"hammered\": " << (x.hammered ? "true" : "false")
        << ", \"hammer_rate\": " << fmt(x.hammer_rate, 0) << ", \"joins\": " << x.samples
        << ", \"p50_ms\": " << fmt(x.p50_ms, 3) << ", \"p99_ms\": " << fmt(x.p99_ms, 3)
        << ", \"max_ms\": " << fmt(x.max_ms, 3) << "}";
  }
  out << "],\n    \"filter\": [";
  for (std::size_t i = 0; i < r.filter.size(); ++i) {
    const auto& x = r.filter[i];
    out << (i ? ", " : "") << "{\"followed\": " << x.followed << ", \"publish_rate\": " << fmt(x.publish_rate, 0)
        << ", \"received_per_s\": " << fmt(x.received_per_s, 1) << ", \"missed\": " << fmt(x.missed, 0)
        << ", \"cpu_pct\": " << fmt(x.cpu_pct, 3) << ", \"p50_us\": " << fmt(x.p50_us, 2)
        << ", \"p99_us\": " << fmt(x.p99_us, 2) << ", \"samples\": " << x.samples << "}";
  }
  out << "],\n    \"get\": [";
  for (std::size_t i = 0; i < r.get.size(); ++i) {
    const auto& x = r.get[i];
    out << (i ? ", " : "") << "{\"read\": " << str(x.what) << ", \"p50_ns\": " << fmt(x.p50, 0)
        << ", \"p99_ns\": " << fmt(x.p99, 0) << ", \"samples\": " << x.samples << "}";
  }
  out << "],\n    \"errors\": [";
  for (std::size_t i = 0; i < r.errors.size(); ++i) out << (i ? ", " : "") << str(r.errors[i]);
  out << "]}";
}

}  // namespace shmbus::bench
