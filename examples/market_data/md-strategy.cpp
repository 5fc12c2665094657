// md-strategy: a strategy-style subscriber to the market-data feed. Keeps the
// newest snapshot of every instrument and shows, per instrument, last price,
// best bid and ask, snapshots per second, gaps and publish-to-receive latency
// (p50/p99): a table redrawn in place on a terminal, one line per interval
// otherwise, nothing more with --headless. Prints a summary when it ends: after
// --seconds, on Ctrl-C / SIGTERM, or when the broker stops.
//
//   md-strategy [--bus NAME] [--topic md] [--instruments ID,ID,...] [--seconds S]
//               [--interval S] [--headless] [--label TEXT]
//
// On a keyed topic (md-feed's) it joins with a snapshot: every instrument's
// latest snapshot first, so a strategy started or restarted mid-session has
// the whole table at once (it prints the instruments it joined with, in every
// mode, then draws the table at once), then the stream from exactly there.
// --instruments follows only those keys: the others are skipped uncopied. A
// reported loss (it fell more than the ring's depth behind) is followed by a
// resync, so that no row stays stale: every followed instrument's current
// snapshot again, then the stream. Each instrument's gaps are its updates
// never seen, from the update count each message carries (a value a resync
// delivers is seen); the total is their sum. A plain topic (md-feed --layout
// ring) is read as a ring: no snapshot, and only the total, of the ring's
// lost messages.
//
// It reads any of the CTP layouts of shmbus/market_data.hpp (v6.3, 408
// bytes; v6.5.1, 568; v6.6.7+, 584), whichever md-feed --ctp publishes:
// the layouts differ in size, so a topic's declared type size, or on an
// untyped topic each message's size, says which one it is.
//
// Exits 0 once it has received market data, 1 if it received none.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "command_line.hpp"
#include "latency_histogram.hpp"
#include "shmbus/client.hpp"
#include "shmbus/clock.hpp"
#include "shmbus/market_data.hpp"
#include "shmbus/platform/process.hpp"

namespace {

namespace md = shmbus::market_data;
using md_demo::latency_histogram;

struct options {
  std::string bus, topic = "md", label = "md-strategy";
  std::vector<std::string> instruments;  // empty: all
  bool headless = false;
  double seconds = 0, interval = 1;
  bool keyed = false;  // the topic is (found once subscribed)
};

// The part of a snapshot the table shows, the same for every layout.
struct last_quote {
  std::string exchange;
  double last_price = 0, bid_price = 0, ask_price = 0;
  std::int32_t bid_volume = 0, ask_volume = 0, volume = 0;
};

// What the strategy knows about one instrument.
struct row {
  last_quote last;
  std::uint64_t total = 0, window = 0;  // snapshots from the stream: whole run, this interval
  std::uint64_t key_seq = 0;            // keyed topics: the instrument's update count last applied
  std::uint64_t gaps = 0;               // keyed topics: its updates never seen
  latency_histogram window_latency, total_latency;
};

// Filled by the reader thread, drawn by the main thread.
struct book {
  std::mutex mutex;
  std::map<std::string, row> rows;
  std::uint64_t total = 0, window = 0, gaps = 0;
  std::uint64_t resyncs = 0;  // after reported losses
  latency_histogram window_latency, total_latency;
  // Keyed topics: set once the join's snapshot is in `rows` (the reader saw
  // the first stream message after it, or found nothing more to read).
  bool joined = false;
  std::vector<std::string> joined_with;  // the instruments the snapshot held
  std::string stop_reason;               // set by a reader that had to stop
  bool failed = false;                   // ... because of an error, not the broker stopping
};

// The CTP layout of a message of `size` bytes: calls `f` with the snapshot
// decoded from `bytes` and returns true, or returns false for any other size.
template <class F>
bool with_snapshot(const std::byte* bytes, std::size_t size, F&& f) {
  auto as = [&]<md::depth_market_data_layout T>(T md) {
    std::memcpy(&md, bytes, sizeof md);
    f(md);
    return true;
  };
  switch (size) {
    case sizeof(md::depth_market_data_v6_3): return as(md::depth_market_data_v6_3{});
    case sizeof(md::depth_market_data_v6_5): return as(md::depth_market_data_v6_5{});
    case sizeof(md::depth_market_data_v6_7): return as(md::depth_market_data_v6_7{});
    default: return false;
  }
}

// The layout a topic declares, for the source line; throws for a declared
// type that is none of them (a subscriber could not read a single snapshot).
std::string layout_of(const shmbus::topic_info& t) {
  switch (t.type_size) {
    case 0: return "any CTP layout";
    case sizeof(md::depth_market_data_v6_3): return "CTP v6.3 layout";
    case sizeof(md::depth_market_data_v6_5): return "CTP v6.5 layout";
    case sizeof(md::depth_market_data_v6_7): return "CTP v6.7 layout";
    default:
      throw std::runtime_error("topic '" + t.name + "' declares a " + std::to_string(t.type_size) +
                               "-byte type, not a CTP depth-market-data layout (408, 568 or 584 bytes)");
  }
}

// Reads the topic until `stop`: each snapshot updates its instrument's row.
void read_topic(shmbus::subscriber& sub, book& b, std::atomic<bool>& stop) {
  // The largest message the topic holds, so that no read is too small.
  std::vector<std::byte> buffer(sub.topic().max_message_size);
  const bool keyed = sub.topic().keyed();
  bool joining = keyed;  // the join's snapshot messages come first
  auto finish_join = [&] {
    if (!joining) return;
    joining = false;
    std::lock_guard lock(b.mutex);
    b.joined = true;
  };
  try {
    while (!stop) {
      for (;;) {
        std::error_code read_ec;
        const auto info = sub.try_read(std::span<std::byte>(buffer), read_ec);
        if (read_ec) throw std::system_error(read_ec, "read from topic '" + sub.topic().name + "'");
        if (!info) break;
        if (!info->snapshot) finish_join();
        // Publisher and subscriber read the same system-wide monotonic clock.
        const std::int64_t latency = shmbus::monotonic_ns() - info->timestamp_ns;
        std::string id;
        last_quote q;
        const bool decoded = with_snapshot(buffer.data(), info->size, [&](const auto& md) {
          id = md::text(md.instrument_id);
          q = {std::string(md::text(md.exchange_id)),
               md.last_price,
               md.bid_price1,
               md.ask_price1,
               md.bid_volume1,
               md.ask_volume1,
               md.volume};
        });
        // The key is the instrument (md-feed publishes under its ID).
        if (keyed) id = std::string(info->key);
        const bool resync = keyed && info->missed > 0;
        if (resync) {
          // Fell behind the ring: rather than read on from the oldest
          // message left, get every followed instrument's current snapshot
          // again (delivered next), so that no row shows an old price. (Its
          // count is not a gap count here: it includes the updates whose
          // values it then delivers; the update counts below are exact.)
          if (!sub.resync(read_ec)) throw std::system_error(read_ec, "resync on topic '" + sub.topic().name + "'");
        }
        std::lock_guard lock(b.mutex);
        if (resync) ++b.resyncs;
        // A plain topic tells its gaps per message, for the whole ring.
        if (!keyed) b.gaps += info->missed;
        if (!decoded) {
          // Not a snapshot (an untyped topic, or bytes forged into the ring):
          // the message is consumed; go on.
          std::fprintf(stderr, "md-strategy: topic '%s': message #%llu is %zu bytes, not a snapshot; skipped\n",
                       sub.topic().name.c_str(), static_cast<unsigned long long>(info->sequence), info->size);
          continue;
        }
        row& r = b.rows[id];
        if (keyed) {
          // A resync may deliver a value already applied: nothing new.
          if (info->key_seq <= r.key_seq) continue;
          // Updates of this instrument between the last one applied and this
          // one were lost (told by `missed`, or skipped by a resync). The
          // first sight of an instrument from the stream (listed after the
          // join) counts those before it; one from the snapshot, none.
          if (r.key_seq > 0 || !info->snapshot) {
            r.gaps += info->key_seq - r.key_seq - 1;
            b.gaps += info->key_seq - r.key_seq - 1;
          }
          r.key_seq = info->key_seq;
        }
        r.last = std::move(q);
        if (joining) b.joined_with.push_back(id);
        // A snapshot's value is as old as its last update: neither a tick
        // of this interval nor a latency.
        if (info->snapshot) continue;
        ++r.total, ++r.window, ++b.total, ++b.window;
        r.window_latency.add(latency);
        r.total_latency.add(latency);
        b.window_latency.add(latency);
        b.total_latency.add(latency);
      }
      // Nothing more to read: a snapshot delivered whole (or an empty one).
      finish_join();
      std::error_code ec;
      // Bounded, so that `stop` is seen within 100 ms even with no data.
      if (!sub.wait_available(std::chrono::milliseconds(100), ec)) {
        if (ec == shmbus::errc::topic_closed) {
          std::lock_guard lock(b.mutex);
          b.stop_reason = "the broker stopped";
          stop = true;
        } else if (ec) {
          throw std::system_error(ec, "wait on topic '" + sub.topic().name + "'");
        }
      }
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(b.mutex);
    b.stop_reason = e.what();
    b.failed = true;
    stop = true;
  }
}

std::string price(double p) {
  if (p == md::no_price) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.8g", p);
  return buf;
}

std::string quote(double p, std::int32_t volume) { return price(p) + " x " + std::to_string(volume); }

std::string latency_text(const latency_histogram& h, double p) {
  if (h.count() == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", h.percentile_us(p));
  return buf;
}

// The table, as lines (without escapes). Resets the interval's figures.
std::vector<std::string> draw_table(book& b, const options& o, const std::string& source, double elapsed,
                                    double window_secs) {
  std::vector<std::string> lines;
  char buf[256], limit[32] = "";
  if (o.seconds > 0) std::snprintf(limit, sizeof limit, " of %g s", o.seconds);
  std::snprintf(buf, sizeof buf, "%s on bus '%s', %s: %.1f s%s, Ctrl-C to stop", o.label.c_str(), o.bus.c_str(),
                source.c_str(), elapsed, limit);
  lines.emplace_back(buf);
  std::snprintf(buf, sizeof buf, "%-10s %-6s %10s %16s %16s %9s %6s %8s %8s", "INSTRUMENT", "EXCH", "LAST", "BID",
                "ASK", "TICKS/S", "GAPS", "P50_US", "P99_US");
  lines.emplace_back(buf);
  for (auto& [id, r] : b.rows) {
    std::snprintf(buf, sizeof buf, "%-10s %-6s %10s %16s %16s %9.1f %6s %8s %8s", id.c_str(), r.last.exchange.c_str(),
                  price(r.last.last_price).c_str(), quote(r.last.bid_price, r.last.bid_volume).c_str(),
                  quote(r.last.ask_price, r.last.ask_volume).c_str(), static_cast<double>(r.window) / window_secs,
                  o.keyed ? std::to_string(r.gaps).c_str() : "-", latency_text(r.window_latency, 0.50).c_str(),
                  latency_text(r.window_latency, 0.99).c_str());
    lines.emplace_back(buf);
    r.window = 0;
    r.window_latency.clear();
  }
  std::snprintf(buf, sizeof buf, "%-10s %-6s %10s %16s %16s %9.1f %6llu %8s %8s", "TOTAL", "", "", "", "",
                static_cast<double>(b.window) / window_secs, static_cast<unsigned long long>(b.gaps),
                latency_text(b.window_latency, 0.50).c_str(), latency_text(b.window_latency, 0.99).c_str());
  lines.emplace_back(buf);
  b.window = 0;
  b.window_latency.clear();
  return lines;
}

// One line per interval, for logs and CI. Resets the interval's figures.
std::string status_line(book& b, const options& o, double elapsed, double window_secs) {
  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "%s: %5.1f s  %7.0f snapshots/s  %zu instruments  gaps %llu  resyncs %llu  latency p50 %s us  p99 %s us",
      o.label.c_str(), elapsed, static_cast<double>(b.window) / window_secs, b.rows.size(),
      static_cast<unsigned long long>(b.gaps), static_cast<unsigned long long>(b.resyncs),
      latency_text(b.window_latency, 0.50).c_str(), latency_text(b.window_latency, 0.99).c_str());
  for (auto& [id, r] : b.rows) r.window = 0, r.window_latency.clear();
  b.window = 0;
  b.window_latency.clear();
  return buf;
}

// What a join's snapshot brought: the instruments it held (the first few
// by name, for a market of thousands).
std::string joined_line(const book& b, const options& o) {
  auto ids = b.joined_with;
  std::sort(ids.begin(), ids.end());
  std::string line =
      o.label + ": joined with a snapshot of " + std::to_string(ids.size()) + " instruments" + (ids.empty() ? "" : ":");
  constexpr std::size_t shown = 20;
  for (std::size_t i = 0; i < ids.size() && i < shown; ++i) line += " " + ids[i];
  if (ids.size() > shown) line += " ... and " + std::to_string(ids.size() - shown) + " more";
  return line;
}

void print_summary(const book& b, const options& o, double elapsed, const std::string& reason) {
  const char* l = o.label.c_str();
  std::printf("%s: %llu snapshots from %zu instruments in %.1f s (%.0f/s), %llu missed, %llu resyncs; stopped: %s\n", l,
              static_cast<unsigned long long>(b.total), b.rows.size(), elapsed,
              elapsed > 0 ? static_cast<double>(b.total) / elapsed : 0.0, static_cast<unsigned long long>(b.gaps),
              static_cast<unsigned long long>(b.resyncs), reason.c_str());
  if (b.rows.empty()) return;
  if (b.total > 0)
    std::printf("%s: publish->receive latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n", l,
                b.total_latency.percentile_us(0.50), b.total_latency.percentile_us(0.99),
                b.total_latency.percentile_us(0.999), b.total_latency.max_us());
  for (const auto& [id, r] : b.rows)
    std::printf("%s:   %-10s %-6s %8llu snapshots  last %-10s volume %-9d gaps %-6s p50 %s us  p99 %s us\n", l,
                id.c_str(), r.last.exchange.c_str(), static_cast<unsigned long long>(r.total),
                price(r.last.last_price).c_str(), r.last.volume, o.keyed ? std::to_string(r.gaps).c_str() : "-",
                latency_text(r.total_latency, 0.50).c_str(), latency_text(r.total_latency, 0.99).c_str());
}

constexpr const char* usage =
    "usage: md-strategy [--bus NAME] [--topic md] [--instruments ID,ID,...] [--seconds S]\n"
    "                   [--interval S] [--headless] [--label TEXT]\n"
    "  --instruments L   follow only these instruments of the keyed TOPIC (default: all)\n"
    "  --seconds S       stop after S seconds (default: run until Ctrl-C / SIGTERM)\n"
    "  --interval S      redraw every S seconds (default 1)\n"
    "  --headless        no live display: the snapshot it joined with, then the summary at the end\n";

options parse(int argc, char** argv) {
  options o;
  for (md_demo::command_line args(argc, argv); args.next();) {
    const std::string& a = args.flag();
    if (a == "--bus")
      o.bus = args.value();
    else if (a == "--topic")
      o.topic = args.value();
    else if (a == "--instruments") {
      o.instruments = md_demo::split_list(args.value());
      if (o.instruments.empty()) throw std::invalid_argument("--instruments needs at least one instrument ID");
    } else if (a == "--seconds")
      o.seconds = std::stod(args.value());
    else if (a == "--interval")
      o.interval = std::stod(args.value());
    else if (a == "--headless")
      o.headless = true;
    else if (a == "--label")
      o.label = args.value();
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (!(o.interval >= 0.05)) throw std::invalid_argument("--interval must be at least 0.05 s");
  if (!(o.seconds >= 0)) throw std::invalid_argument("--seconds must be >= 0");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return std::fputs(usage, stdout), 0;
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "md-strategy: %s\n%s", e.what(), usage);
    return 2;
  }
  // Before any thread starts: on POSIX this blocks the termination signals
  // in every thread, so that only the waits below receive them.
  shmbus::platform::wait_for_termination_request(std::chrono::milliseconds(0));

  book b;
  std::atomic<bool> stop{false};
  shmbus::subscriber sub;
  std::string source;
  try {
    shmbus::bus bus(o.bus);
    o.bus = bus.name();
    // A keyed topic is joined with a snapshot, and may be filtered; a plain
    // one takes neither (an unknown topic: make_subscriber says so).
    shmbus::subscriber_options opts;
    for (const auto& t : bus.topics())
      if (t.name == o.topic && t.keyed()) opts.snapshot = true, opts.keys = o.instruments;
    if (!opts.snapshot && !o.instruments.empty())
      for (const auto& t : bus.topics())
        if (t.name == o.topic)
          throw std::runtime_error("topic '" + o.topic +
                                   "' is not keyed: --instruments follows instruments of a keyed topic");
    sub = bus.make_subscriber(o.topic, opts);
    const auto& t = sub.topic();
    o.keyed = t.keyed();
    const std::string layout = layout_of(t);
    source = "topic '" + o.topic + "' (" + (o.keyed ? "keyed, " : "") +
             (t.depth == 1 ? "latest value" : "ring of " + std::to_string(t.depth)) + ", " + layout +
             (o.instruments.empty() ? "" : ", " + std::to_string(o.instruments.size()) + " instruments followed") + ")";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", o.label.c_str(), e.what());
    return 1;
  }

  std::thread reader(read_topic, std::ref(sub), std::ref(b), std::ref(stop));

  const bool tty = !o.headless && shmbus::platform::stdout_is_terminal();
  const std::int64_t start = shmbus::monotonic_ns();
  auto elapsed_at = [&](std::int64_t t) { return static_cast<double>(t - start) / 1e9; };
  const auto interval_ns = static_cast<std::int64_t>(o.interval * 1e9);
  std::int64_t last_draw = start;
  std::size_t drawn = 0;  // lines of the last table, to move back over
  std::string reason = "time is up";
  bool announced = !o.keyed;  // the join's snapshot is told once it is in
  for (;;) {
    const std::int64_t now = shmbus::monotonic_ns();
    if (o.seconds > 0 && elapsed_at(now) >= o.seconds) break;
    std::int64_t wait_ns = last_draw + interval_ns - now;
    // Until the snapshot is in, look often: it is the first screen.
    if (!announced) wait_ns = std::min<std::int64_t>(wait_ns, 10'000'000);
    if (o.seconds > 0) wait_ns = std::min(wait_ns, static_cast<std::int64_t>(o.seconds * 1e9) - (now - start));
    if (shmbus::platform::wait_for_termination_request(
            std::chrono::milliseconds(std::max<std::int64_t>(0, wait_ns / 1'000'000) + 1))) {
      reason = "asked to stop (Ctrl-C or SIGTERM)";
      break;
    }
    if (stop) break;
    const std::int64_t t = shmbus::monotonic_ns();
    std::lock_guard lock(b.mutex);
    bool draw_now = false;
    if (!announced && b.joined) {
      // In every mode (a headless strategy's only line until its summary),
      // so that a restarted strategy shows at once what it knows.
      announced = true;
      std::puts(joined_line(b, o).c_str());
      std::fflush(stdout);
      draw_now = tty;
    }
    if (!draw_now && (t - last_draw < interval_ns || o.headless)) continue;
    const double window_secs = static_cast<double>(std::max<std::int64_t>(t - last_draw, 1)) / 1e9;
    last_draw = t;
    if (tty) {
      const auto lines = draw_table(b, o, source, elapsed_at(t), window_secs);
      std::string out;
      if (drawn > 0) out += "\x1b[" + std::to_string(drawn) + "A";  // back to the table's first line
      for (const auto& line : lines) out += line + "\x1b[K\n";
      out += "\x1b[J";
      std::fputs(out.c_str(), stdout);
      drawn = lines.size();
    } else {
      std::puts(status_line(b, o, elapsed_at(t), window_secs).c_str());
    }
    std::fflush(stdout);
  }
  const double run_secs = elapsed_at(shmbus::monotonic_ns());
  stop = true;
  reader.join();
  {
    std::lock_guard lock(b.mutex);
    if (!b.stop_reason.empty()) reason = b.stop_reason;
    // A run too short to have told it: still the first line.
    if (!announced && b.joined) std::puts(joined_line(b, o).c_str());
  }
  print_summary(b, o, run_secs, reason);
  std::fflush(stdout);  // before any complaint on stderr
  if (b.failed) return 1;
  if (b.rows.empty()) {
    std::fprintf(stderr, "%s: no market data received (is md-feed running on bus '%s'?)\n", o.label.c_str(),
                 o.bus.c_str());
    return 1;
  }
  return 0;
}
