// shmbus-bench: one-way latency, throughput, fan-out and idle CPU of shmbus
// against a minimal reference of the same design and the usual
// alternatives (Unix socket, pipe, ZeroMQ), all in one run, through one
// harness, the publish jitter of shmbus and the reference (every publish
// of seconds of publishing timed), and keyed topics beside plain ones
// (issue 12). See docs/performance.md.
//
//   shmbus-bench [--quick] [--runs N] [--json FILE] [--plot FILE.png] ...
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "costs.hpp"
#include "jitter.hpp"
#include "keyed.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "shmbus/platform/process.hpp"
#include "support/child_process.hpp"
#include "sys.hpp"

namespace {

using namespace shmbus::bench;

constexpr std::int64_t ms = 1'000'000;

struct options {
  bool quick = false;
  unsigned runs = 3;
  std::set<std::string> modes{"latency", "throughput",    "fanout",     "idle",         "pingpong", "costs",
                              "jitter",  "keyed-publish", "keyed-join", "keyed-filter", "keyed-get"};
  std::set<std::string> only_transports;  // empty: all
  std::set<wait_mode> waits{wait_mode::block, wait_mode::busy_poll, wait_mode::spin_then_block};
  std::vector<std::size_t> sizes{64, 512, 4096, 65536, 1048576};
  bool sizes_given = false;
  std::uint64_t messages = 0;  // 0: by size
  double seconds = 0;          // throughput duration; 0: default
  double jitter_seconds = 0;   // publish-jitter duration per transport; 0: default
  std::int64_t gap_us = 40;
  std::int64_t spin_us = 100;
  std::string json, plot;
  bool pin = true;
  bool verbose = false;
};

const char* usage =
    "usage: shmbus-bench [options]\n"
    "  --quick            a seconds-long smoke run (few messages, small sizes, 1 run)\n"
    "  --runs N           repeat every measurement N times, report medians (default 3)\n"
    "  --modes LIST       latency,throughput,fanout,idle,pingpong,costs,jitter,\n"
    "                     keyed-publish,keyed-join,keyed-filter,keyed-get (keyed topics,\n"
    "                     issue 12; keyed: all four) (default: all)\n"
    "  --transports LIST  shmbus,shmbus-exclusive,shmbus-loan,reference,reference+ts+lock,\n"
    "                     unix-socket,pipe,zeromq,boost-interprocess,iceoryx (default: all built)\n"
    "  --waits LIST       block,busy-poll,spin (spin-then-block; default: all)\n"
    "  --sizes LIST       payload bytes, K/M suffixes (default 64,512,4K,64K,1M)\n"
    "  --messages N       latency samples per run (default by size: 5000 .. 300)\n"
    "  --seconds S        throughput run length (default 0.3)\n"
    "  --jitter-seconds S publish-jitter run length per transport (default 3.5; --quick 1.1)\n"
    "  --gap-us N         pause before each latency message (default 40)\n"
    "  --spin-us N        spin of the spin-then-block mode (default 100)\n"
    "  --no-pin           do not pin publisher and subscribers to CPUs\n"
    "  --json FILE        every figure, as JSON\n"
    "  --plot FILE.png    latency percentiles per transport and size (needs gnuplot)\n"
    "  -v                 progress on stderr\n";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::size_t parse_size(const std::string& s) {
  std::size_t pos = 0;
  std::size_t n = std::stoul(s, &pos);
  const std::string suffix = s.substr(pos);
  if (suffix == "K" || suffix == "k")
    n *= 1024;
  else if (suffix == "M" || suffix == "m")
    n *= 1024 * 1024;
  else if (!suffix.empty())
    throw std::invalid_argument("bad size " + s);
  return n;
}

std::uint64_t latency_messages(const options& o, std::size_t size) {
  if (o.messages != 0) return o.messages;
  if (o.quick) return size <= 4096 ? 300 : 50;
  if (size <= 4096) return 5000;
  return size <= 65536 ? 2000 : 300;
}

// A lossless ring holds this many messages: enough that the publisher
// rarely waits for credit, small enough to stay in cache for small sizes.
std::uint32_t ring_depth(std::size_t size) {
  const std::size_t target = 8 * 1024 * 1024 / size;
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(target, 8, 4096));
}

bool wanted(const options& o, const std::string& transport) {
  return (o.only_transports.empty() || o.only_transports.count(transport) != 0) && find_transport(transport) != nullptr;
}

// Every measurement, in the order they run, built one mode at a time.
class planner {
 public:
  explicit planner(const options& o)
      : o_(o),
        block_(wait_strategy::blocking()),
        busy_(wait_strategy::busy_polling()),
        spin_(wait_strategy::spin_then_blocking(std::chrono::microseconds(o.spin_us))),
        budget_((o.quick ? 2000 : 8000) * ms) {
    // "reference+ts+lock" explains the gap between the reference and
    // shmbus; it runs at the two sizes the targets are about.
    for (const auto& t : {"shmbus", "shmbus-exclusive", "shmbus-loan", "reference", "reference+ts+lock", "unix-socket",
                          "pipe", "zeromq", "boost-interprocess", "iceoryx"})
      if (wanted(o, t)) transports_.emplace_back(t);
  }

  std::vector<run_spec> plan() && {
    if (o_.modes.count("latency")) plan_latency();
    if (o_.modes.count("throughput")) plan_throughput();
    if (o_.modes.count("fanout")) plan_fanout();
    if (o_.modes.count("idle")) plan_idle();
    if (o_.modes.count("pingpong")) plan_pingpong();
    return std::move(specs_);
  }

  /// Runs a transport could not do, with why (the report's "n/a" lines).
  [[nodiscard]] const std::vector<std::string>& not_run() const noexcept { return not_run_; }

 private:
  static run_spec spec(const std::string& transport, run_kind kind, const wait_strategy& wait, std::size_t size) {
    run_spec s;
    s.transport = transport;
    s.kind = kind;
    s.wait = wait;
    s.size = size;
    return s;
  }

  [[nodiscard]] std::vector<wait_strategy> waits_for(const std::string& t) const {
    std::vector<wait_strategy> w{block_, busy_};
    if (t == "shmbus") w.push_back(spin_);
    return w;
  }

  // Keeps `s` if its wait is wanted and its transport runs it.
  void add(run_spec s) {
    if (o_.waits.count(s.wait.mode) == 0) return;
    if (s.transport == "reference+ts+lock" && (s.size != 64 && s.size != 512)) return;
    if (s.transport == "reference+ts+lock" && (s.kind == run_kind::idle || s.conflate)) return;
    if (const auto* t = find_transport(s.transport); t != nullptr && t->supports(s)) specs_.push_back(std::move(s));
  }

  void plan_latency() {
    for (const std::size_t size : o_.sizes)
      for (const auto& t : transports_)
        for (const auto& w : waits_for(t)) {
          run_spec s = spec(t, run_kind::latency, w, size);
          s.messages = latency_messages(o_, size);
          s.duration_ns = budget_;
          s.gap_ns = o_.gap_us * 1000;
          add(s);
        }
  }

  void plan_throughput() {
    const auto secs = o_.seconds > 0 ? o_.seconds : (o_.quick ? 0.05 : 0.3);
    for (const std::size_t size : o_.sizes)
      for (const auto& t : transports_)
        for (const auto& [w, conflate] : throughput_variants(t)) {
          run_spec s = spec(t, run_kind::throughput, w, size);
          s.conflate = conflate;
          s.depth = conflate ? 1 : ring_depth(size);
          s.duration_ns = static_cast<std::int64_t>(secs * 1e9);
          add(s);
        }
  }

  // (wait, conflate) pairs: shared-memory transports also busy-poll, shmbus
  // and they also run conflated.
  [[nodiscard]] std::vector<std::pair<wait_strategy, bool>> throughput_variants(const std::string& t) const {
    const bool shm = t.rfind("shmbus", 0) == 0 || t.rfind("reference", 0) == 0;
    std::vector<std::pair<wait_strategy, bool>> variants{{block_, false}};
    if (t == "iceoryx") variants.push_back({busy_, false});  // shared memory too, but no latest-value topic
    if (shm) variants.push_back({busy_, false});
    if (t == "shmbus") variants.push_back({block_, true});
    if (shm) variants.push_back({busy_, true});
    return variants;
  }

  void plan_fanout() {
    const std::vector<unsigned> counts = o_.quick ? std::vector<unsigned>{1, 2} : std::vector<unsigned>{1, 2, 4, 8};
    const std::vector<std::pair<std::string, wait_strategy>> series{{"shmbus", busy_},
                                                                    {"shmbus", block_},
                                                                    {"reference", busy_},
                                                                    {"unix-socket", block_},
                                                                    {"boost-interprocess", block_},
                                                                    {"iceoryx", block_}};
    for (const auto& [t, w] : series) {
      if (!wanted(o_, t)) continue;
      for (const unsigned n : counts)
        if (!(n == 1 && planned_single_latency(t, w))) add(fanout_spec(t, w, n));
    }
  }

  [[nodiscard]] run_spec fanout_spec(const std::string& t, const wait_strategy& w, unsigned n) const {
    run_spec s = spec(t, run_kind::latency, w, 512);
    s.subscribers = n;
    // Busy-polling subscribers beyond the free cores share one, so each
    // message waits for the scheduler: fewer samples, and a shorter budget,
    // keep it bounded.
    const bool crowded = w.mode == wait_mode::busy_poll && n + 1 > shmbus::bench::sys::cpu_count();
    s.messages = o_.quick ? 100 : (crowded ? 200 : 3000);
    s.duration_ns = crowded ? std::min<std::int64_t>(budget_, 3000 * ms) : budget_;
    s.gap_ns = o_.gap_us * 1000;
    return s;
  }

  // The 1-subscriber latency run of 512 B already measures fan-out to one.
  [[nodiscard]] bool planned_single_latency(const std::string& t, const wait_strategy& w) const {
    bool dup = false;
    for (const auto& x : specs_)
      dup |= x.kind == run_kind::latency && x.transport == t && x.size == 512 && x.subscribers == 1 &&
             x.wait.mode == w.mode;
    return dup;
  }

  // Round trips, the payload touched by both ends or not, blocking and
  // busy-polling; reference+ts+lock is a latency variant and is not run.
  void plan_pingpong() {
    for (const std::size_t size : o_.sizes)
      for (const auto& t : transports_) {
        if (t == "reference+ts+lock") continue;
        for (const auto& w : {block_, busy_})
          for (const bool touch : {false, true}) {
            run_spec s = spec(t, run_kind::pingpong, w, size);
            s.touch = touch;
            s.messages = latency_messages(o_, size);
            s.duration_ns = budget_;
            s.gap_ns = o_.gap_us * 1000;
            add_or_note(s);
          }
      }
  }

  // As add, noting a run the transport cannot do.
  void add_or_note(run_spec s) {
    if (o_.waits.count(s.wait.mode) == 0) return;
    const auto* t = find_transport(s.transport);
    if (t == nullptr) return;
    if (t->supports(s)) {
      specs_.push_back(std::move(s));
    } else {
      not_run_.push_back(s.transport + " " + kind_name(s.kind) + " " + wait_name(s.wait) + " " +
                         std::to_string(s.size) + " B" + (s.touch ? " touched" : "") + ": " + t->unsupported_reason(s));
    }
  }

  void plan_idle() {
    for (const auto& t : transports_)
      for (const auto& w : waits_for(t)) {
        run_spec s = spec(t, run_kind::idle, w, 512);
        s.duration_ns = (o_.quick ? 200 : 500) * ms;
        add(s);
      }
  }

  const options& o_;
  const wait_strategy block_, busy_, spin_;
  const std::int64_t budget_;
  std::vector<std::string> transports_;
  std::vector<run_spec> specs_;
  std::vector<std::string> not_run_;
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return b;
}

std::set<std::string> parse_modes(const std::string& list) {
  std::set<std::string> modes;
  for (const auto& m : split(list)) {
    if (m == "keyed") {
      modes.insert({"keyed-publish", "keyed-join", "keyed-filter", "keyed-get"});
      continue;
    }
    if (m != "latency" && m != "throughput" && m != "fanout" && m != "idle" && m != "pingpong" && m != "costs" &&
        m != "jitter" && m != "keyed-publish" && m != "keyed-join" && m != "keyed-filter" && m != "keyed-get")
      throw std::invalid_argument("unknown mode " + m);
    modes.insert(m);
  }
  return modes;
}

std::set<wait_mode> parse_waits(const std::string& list) {
  std::set<wait_mode> waits;
  for (const auto& w : split(list)) {
    if (w == "block")
      waits.insert(wait_mode::block);
    else if (w == "busy-poll")
      waits.insert(wait_mode::busy_poll);
    else if (w == "spin")
      waits.insert(wait_mode::spin_then_block);
    else
      throw std::invalid_argument("unknown wait " + w + " (block, busy-poll, spin)");
  }
  return waits;
}

std::vector<std::size_t> parse_sizes(const std::string& list) {
  std::vector<std::size_t> sizes;
  for (const auto& s : split(list)) {
    const std::size_t n = parse_size(s);
    if (n < min_payload) throw std::invalid_argument("sizes start at " + std::to_string(min_payload) + " bytes");
    sizes.push_back(n);
  }
  return sizes;
}

// Applies option `a` (with `next` giving its value); false if it is unknown.
bool apply_option(options& o, const std::string& a, const std::function<std::string()>& next) {
  if (a == "--quick") {
    o.quick = true;
  } else if (a == "--runs") {
    o.runs = static_cast<unsigned>(std::stoul(next()));
    if (o.runs == 0) throw std::invalid_argument("--runs must be at least 1");
    o.runs = std::min(o.runs, 99u);
  } else if (a == "--modes") {
    o.modes = parse_modes(next());
  } else if (a == "--transports") {
    for (const auto& t : split(next())) {
      if (find_transport(t) == nullptr) throw std::invalid_argument("transport " + t + " is not built in");
      o.only_transports.insert(t);
    }
  } else if (a == "--waits") {
    o.waits = parse_waits(next());
  } else if (a == "--sizes") {
    o.sizes = parse_sizes(next());
    o.sizes_given = true;
  } else if (a == "--messages") {
    o.messages = std::stoull(next());
  } else if (a == "--seconds") {
    o.seconds = std::stod(next());
  } else if (a == "--jitter-seconds") {
    o.jitter_seconds = std::stod(next());
    if (!(o.jitter_seconds > 0)) throw std::invalid_argument("--jitter-seconds must be > 0");
  } else if (a == "--gap-us") {
    o.gap_us = std::stoll(next());
  } else if (a == "--spin-us") {
    o.spin_us = std::stoll(next());
  } else if (a == "--json") {
    o.json = next();
  } else if (a == "--plot") {
    o.plot = next();
  } else if (a == "--no-pin") {
    o.pin = false;
  } else if (a == "-v" || a == "--verbose") {
    o.verbose = true;
  } else {
    return false;
  }
  return true;
}

// Parses the command line into `o` and the command it echoes in the
// report; an exit code when the program should stop (help, bad option).
std::optional<int> parse_command_line(int argc, char** argv, options& o, std::string& command) {
  command = "shmbus-bench";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    command += " " + a;
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      command += " " + std::string(argv[i + 1]);
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    }
    if (!apply_option(o, a, next)) {
      std::cerr << "shmbus-bench: unknown option " << a << "\n" << usage;
      return 2;
    }
  }
  if (o.quick) {
    if (!o.sizes_given) o.sizes = {64, 512};
    o.runs = 1;
  }
  return std::nullopt;
}

// What one whole bench run measured.
struct measurements {
  std::vector<run_result> results;
  std::vector<cost> costs;
  std::vector<jitter_result> jitter;
  keyed_params keyed_in;
  keyed_result keyed;
  unsigned failures = 0;
};

// Runs every spec o.runs times, in rounds, not repeats in a row: a
// disturbance (another build on this machine) then spoils one run of many
// specs, not all runs of one.
void run_rounds(const options& o, const std::vector<run_spec>& specs, const std::string& prefix, measurements& m) {
  runner_options ropt;
  ropt.pin = o.pin;
  unsigned n = 0;
  for (unsigned round = 0; round < o.runs; ++round) {
    for (auto s : specs) {
      // Bus and object names: [A-Za-z0-9_-], unique per run.
      s.name = prefix + "-" + std::to_string(++n);
      if (o.verbose)
        std::cerr << "[" << round + 1 << "/" << o.runs << "] " << s.transport << " " << kind_name(s.kind) << " "
                  << wait_name(s.wait) << " " << s.size << " B x" << s.subscribers << (s.conflate ? " latest" : "")
                  << (s.kind == run_kind::pingpong ? (s.touch ? " touched" : " untouched") : "") << "\n";
      m.results.push_back(run_once(s, ropt));
      if (!m.results.back().error.empty()) {
        ++m.failures;
        std::cerr << "shmbus-bench: " << s.transport << " " << kind_name(s.kind) << " " << wait_name(s.wait) << " "
                  << s.size << " B: " << m.results.back().error << "\n";
      }
    }
  }
}

// The publish-jitter mode: long enough to hold 3 (quick: 1) whole seconds
// after the publisher opened.
void run_jitter(const options& o, const std::string& prefix, measurements& m) {
  const double secs = o.jitter_seconds > 0 ? o.jitter_seconds : (o.quick ? 1.1 : 3.5);
  if (o.verbose) std::cerr << "publish jitter, " << secs << " s per transport\n";
  m.jitter = measure_jitter(prefix, secs, min_payload, o.pin);
  for (const auto& j : m.jitter)
    if (!j.error.empty()) {
      ++m.failures;
      std::cerr << "shmbus-bench: publish jitter, " << j.transport << ": " << j.error << "\n";
    }
}

// The keyed-topic modes (issue 12), all in one parameter struct: the issue's
// sizes and key counts, or a smoke-sized set with --quick (fast enough for
// the sanitizer builds' quick run).
keyed_params keyed_parameters(const options& o, const std::string& prefix) {
  keyed_params p;
  p.publish = o.modes.count("keyed-publish") != 0;
  p.join = o.modes.count("keyed-join") != 0;
  p.filter = o.modes.count("keyed-filter") != 0;
  p.get = o.modes.count("keyed-get") != 0;
  p.rounds = o.runs;
  p.pin = o.pin;
  p.name = prefix + "-keyed";
  if (o.quick) {
    p.publishes = 20000;
    p.keys = 2000;
    p.join_keys = {1000, 2000};
    p.joins = 3;
    p.join_hammer_rate = 50000;
    p.filter_rate = 50000;
    p.filter_seconds = 0.2;
    p.gets = 2000;
  }
  return p;
}

void run_keyed(const options& o, const std::string& prefix, measurements& m) {
  m.keyed_in = keyed_parameters(o, prefix);
  const auto& p = m.keyed_in;
  if (!(p.publish || p.join || p.filter || p.get)) return;
  if (o.verbose) std::cerr << "keyed topics\n";
  m.keyed = measure_keyed(p);
  for (const auto& e : m.keyed.errors) {
    ++m.failures;
    std::cerr << "shmbus-bench: keyed topics, " << e << "\n";
  }
}

// Markdown on stdout, and the JSON and plot files asked for; false if the
// JSON cannot be written.
bool write_outputs(const options& o, const report_meta& meta, const measurements& m, std::size_t planned) {
  const auto rows = summarise(m.results);
  auto targets = evaluate_targets(rows);
  for (auto& t : keyed_targets(m.keyed_in, m.keyed)) targets.push_back(std::move(t));
  write_markdown(std::cout, meta, rows, targets, m.costs);
  write_jitter_markdown(std::cout, m.jitter);
  write_keyed_markdown(std::cout, m.keyed_in, m.keyed);
  std::cout << "_" << planned * o.runs << " runs, " << m.failures << " failed._\n";
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    write_json(f, meta, rows, targets, m.costs, m.results, m.jitter, m.keyed);
    if (!f) {
      std::cerr << "shmbus-bench: cannot write " << o.json << "\n";
      return false;
    }
  }
  if (!o.plot.empty()) {
    const std::string why = write_plot(o.plot, meta, rows);
    if (!why.empty()) std::cerr << "shmbus-bench: no plot: " << why << "\n";
  }
  return true;
}

int bench_main(int argc, char** argv) {
  options o;
  report_meta meta;
  if (const auto stop = parse_command_line(argc, argv, o, meta.command)) return *stop;

  meta.started = utc_now();
  meta.load_before = shmbus::bench::sys::load_average();
  planner p(o);
  const auto& not_run = p.not_run();
  const auto specs = std::move(p).plan();
  meta.not_run = not_run;
  const std::string prefix = "shmbench-" + std::to_string(shmbus::platform::current_process().pid);
  measurements m;
  const auto t0 = std::chrono::steady_clock::now();
  run_rounds(o, specs, prefix, m);
  if (o.modes.count("costs")) m.costs = measure_costs(prefix + "-costs", o.quick);
  if (o.modes.count("jitter")) run_jitter(o, prefix, m);
  run_keyed(o, prefix, m);
  meta.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  meta.machine = shmbus::bench::sys::machine_description();
  meta.runs = o.runs;
  meta.load_after = shmbus::bench::sys::load_average();
  if (!write_outputs(o, meta, m, specs.size())) return 1;
  return m.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  shmbus::test::set_self_path(argv[0]);
  spdlog::set_level(spdlog::level::warn);
  shmbus::bench::sys::prepare_process();
  try {
    if (argc >= 3 && std::string(argv[1]) == "--child") {
      const std::vector<std::string> args(argv + 3, argv + argc);
      if (std::string(argv[2]) == "bench-subscriber") return subscriber_main(args);
      // A transport's own helper processes (iceoryx's RouDi guard).
      const auto& roles = shmbus::test::child_roles();
      if (const auto it = roles.find(argv[2]); it != roles.end()) return it->second(args);
      std::fprintf(stderr, "unknown child role '%s'\n", argv[2]);
      return 100;
    }
    return bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmbus-bench: %s\n", e.what());
    return 2;
  }
}
