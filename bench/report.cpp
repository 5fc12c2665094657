#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "keyed.hpp"
#include "sys.hpp"

namespace shmbus::bench {
namespace {

std::string key_of(const run_spec& s) {
  std::ostringstream k;
  k << s.transport << '|' << kind_name(s.kind) << '|' << wait_name(s.wait) << '|' << s.size << '|' << s.subscribers
    << '|' << s.conflate << '|' << s.touch;
  return k.str();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One run's figures, before the median over runs.
row figures_of(const run_result& r) {
  row x;
  x.spec = r.spec;
  const auto& subs = r.subs;
  if (subs.empty()) return x;
  auto worst = [&](auto f) {
    double m = 0;
    for (const auto& s : subs) m = std::max(m, static_cast<double>(f(s)));
    return m;
  };
  auto best = [&](auto f) {
    double m = HUGE_VAL;
    for (const auto& s : subs) m = std::min(m, static_cast<double>(f(s)));
    return m;
  };
  x.p50 = worst([](const auto& s) { return s.p50; });
  x.p90 = worst([](const auto& s) { return s.p90; });
  x.p99 = worst([](const auto& s) { return s.p99; });
  x.p999 = worst([](const auto& s) { return s.p999; });
  x.max = worst([](const auto& s) { return s.max; });
  x.mean = worst([](const auto& s) { return s.mean; });
  x.p50_best = best([](const auto& s) { return s.p50; });
  for (const auto& s : subs) x.samples += s.samples;
  x.msgs_per_s = best([](const auto& s) {
    const double secs = static_cast<double>(s.last_ns - s.first_stamp) / 1e9;
    return secs > 0 ? static_cast<double>(s.received) / secs : 0.0;
  });
  x.mb_per_s = best([](const auto& s) {
    const double secs = static_cast<double>(s.last_ns - s.first_stamp) / 1e9;
    return secs > 0 ? static_cast<double>(s.bytes) / secs / 1e6 : 0.0;
  });
  x.delivered =
      r.published > 0
          ? best([&](const auto& s) { return static_cast<double>(s.received) / static_cast<double>(r.published); })
          : 0;
  for (const auto& s : subs) x.lost += s.missed;
  x.published_per_s =
      r.publish_ns > 0 ? static_cast<double>(r.published) / (static_cast<double>(r.publish_ns) / 1e9) : 0;
  double cpu = 0;
  for (const auto& s : subs)
    cpu += s.wall_ns > 0 ? 100.0 * static_cast<double>(s.cpu_ns) / static_cast<double>(s.wall_ns) : 0;
  x.sub_cpu_pct = cpu / static_cast<double>(subs.size());
  x.idle_cpu_pct = worst([](const auto& s) {
    return s.idle_wall_ns > 0 ? 100.0 * static_cast<double>(s.idle_cpu_ns) / static_cast<double>(s.idle_wall_ns) : 0.0;
  });
  x.wakes_per_msg = r.published > 0 ? static_cast<double>(r.wake_calls) / static_cast<double>(r.published) : 0;
  std::string pins = "publisher " + r.publisher_pinned + ", subscribers";
  for (const auto& s : subs) pins += " " + s.pinned;
  x.pinning = pins;
  return x;
}

std::string fmt(double v, int decimals = 0) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// 12345678 -> "12,345,678": readable in a table.
std::string grouped(double v) {
  std::string digits = fmt(v);
  std::string out;
  const std::size_t lead = digits[0] == '-' ? 1 : 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > lead && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string size_label(std::size_t n) {
  if (n >= 1048576 && n % 1048576 == 0) return std::to_string(n / 1048576) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n / 1024) + " KiB";
  return std::to_string(n) + " B";
}

// Transports in a fixed order: shmbus first, then the reference, then the
// baselines as registered.
int transport_rank(const std::string& t) {
  static const char* const order[] = {
      "shmbus", "shmbus-exclusive", "shmbus-loan",        "reference", "reference+ts+lock", "unix-socket",
      "pipe",   "zeromq",           "boost-interprocess", "iceoryx"};
  for (int i = 0; i < static_cast<int>(std::size(order)); ++i)
    if (t == order[i]) return i;
  return static_cast<int>(std::size(order));
}

bool row_order(const row& a, const row& b) {
  const auto ka = std::make_tuple(a.spec.size, a.spec.subscribers, transport_rank(a.spec.transport), a.spec.conflate,
                                  static_cast<int>(a.spec.wait.mode), a.spec.touch);
  const auto kb = std::make_tuple(b.spec.size, b.spec.subscribers, transport_rank(b.spec.transport), b.spec.conflate,
                                  static_cast<int>(b.spec.wait.mode), b.spec.touch);
  return ka < kb;
}

const row* find(const std::vector<row>& rows, const std::string& transport, run_kind kind, wait_mode wait,
                std::size_t size, unsigned subs = 1, bool conflate = false) {
  for (const auto& r : rows)
    if (r.runs > 0 && r.spec.transport == transport && r.spec.kind == kind && r.spec.wait.mode == wait &&
        r.spec.size == size && r.spec.subscribers == subs && r.spec.conflate == conflate)
      return &r;
  return nullptr;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

}  // namespace

std::vector<row> summarise(const std::vector<run_result>& runs) {
  std::map<std::string, std::vector<const run_result*>> groups;
  std::vector<std::string> order;
  for (const auto& r : runs) {
    const std::string k = key_of(r.spec);
    if (groups.find(k) == groups.end()) order.push_back(k);
    groups[k].push_back(&r);
  }
  std::vector<row> rows;
  for (const auto& k : order) {
    std::vector<row> ok;
    row out;
    out.spec = groups[k].front()->spec;
    for (const auto* r : groups[k]) {
      if (!r->error.empty()) {
        out.error = r->error;
        continue;
      }
      ok.push_back(figures_of(*r));
    }
    out.runs = static_cast<unsigned>(ok.size());
    if (!ok.empty()) {
      auto med = [&](double row::*field) {
        std::vector<double> v;
        for (const auto& x : ok) v.push_back(x.*field);
        return median(v);
      };
      out.p50 = med(&row::p50);
      out.p90 = med(&row::p90);
      out.p99 = med(&row::p99);
      out.p999 = med(&row::p999);
      out.max = med(&row::max);
      out.mean = med(&row::mean);
      out.p50_best = med(&row::p50_best);
      out.msgs_per_s = med(&row::msgs_per_s);
      out.mb_per_s = med(&row::mb_per_s);
      out.delivered = med(&row::delivered);
      out.published_per_s = med(&row::published_per_s);
      out.sub_cpu_pct = med(&row::sub_cpu_pct);
      out.idle_cpu_pct = med(&row::idle_cpu_pct);
      out.wakes_per_msg = med(&row::wakes_per_msg);
      for (const auto& x : ok) {
        out.samples += x.samples;
        out.lost += x.lost;
      }
      out.pinning = ok.front().pinning;
    }
    rows.push_back(out);
  }
  std::stable_sort(rows.begin(), rows.end(), row_order);
  return rows;
}

std::vector<target> evaluate_targets(const std::vector<row>& rows) {
  std::vector<target> out;
  auto ratio_target = [&](std::string what, std::string goal, const row* a, const row* b, double row::*field,
                          bool at_most, double limit, const char* unit, bool invert = false) {
    target t{std::move(what), std::move(goal), std::nullopt, false, {}};
    if (a == nullptr || b == nullptr || b->*field <= 0 || a->*field <= 0) {
      t.detail = "not measured in this run";
    } else {
      const double r = invert ? (b->*field) / (a->*field) : (a->*field) / (b->*field);
      t.ratio = r;
      t.met = at_most ? r <= limit : r >= limit;
      t.detail = a->spec.transport + " " + wait_name(a->spec.wait) + " " + fmt(a->*field, 1) + " " + unit + " vs " +
                 b->spec.transport + " " + wait_name(b->spec.wait) + " " + fmt(b->*field, 1) + " " + unit;
    }
    out.push_back(std::move(t));
  };
  using enum run_kind;
  const auto block = wait_mode::block, busy = wait_mode::busy_poll;
  const row* sb = find(rows, "shmbus", latency, block, 512);
  const row* rb = find(rows, "reference", latency, block, 512);
  const row* ub = find(rows, "unix-socket", latency, block, 512);
  ratio_target("blocking wait, 512 B: p50 / reference p50", "<= 1.15", sb, rb, &row::p50, true, 1.15, "ns");
  ratio_target("blocking wait, 512 B: p99 / reference p99", "<= 1.5", sb, rb, &row::p99, true, 1.5, "ns");
  ratio_target("blocking wait, 512 B: p99 / Unix socket p99", "<= 0.1", sb, ub, &row::p99, true, 0.1, "ns");

  const row* sp = find(rows, "shmbus", latency, busy, 512);
  const row* rp = find(rows, "reference", latency, busy, 512);
  const row* up = find(rows, "unix-socket", latency, busy, 512);
  ratio_target("busy-poll, 512 B: p50 / reference busy-poll p50", "<= 1.3", sp, rp, &row::p50, true, 1.3, "ns");
  // The socket as it is usually read (blocking), and at its fastest (a
  // non-blocking read in a loop).
  ratio_target("busy-poll, 512 B: Unix socket (blocking read) p50 / shmbus p50", ">= 10", sp, ub, &row::p50, false, 10,
               "ns", true);
  ratio_target("busy-poll, 512 B: Unix socket (busy-poll read) p50 / shmbus p50", ">= 10", sp, up, &row::p50, false, 10,
               "ns", true);

  for (const auto mode : {block, busy}) {
    const std::string w = mode == block ? "block" : "busy-poll";
    const row* st = find(rows, "shmbus", throughput, mode, 64);
    const row* rt = find(rows, "reference", throughput, mode, 64);
    ratio_target("ring throughput, 64 B, " + w + ": msgs/s / reference", ">= 0.8", st, rt, &row::msgs_per_s, false, 0.8,
                 "msg/s");
    const row* st64k = find(rows, "shmbus", throughput, mode, 65536);
    const row* rt64k = find(rows, "reference", throughput, mode, 65536);
    ratio_target("ring throughput, 64 KiB, " + w + ": MB/s / reference", ">= 0.8", st64k, rt64k, &row::mb_per_s, false,
                 0.8, "MB/s");
  }
  ratio_target("ring throughput, 64 B: msgs/s / Unix socket (both block)", ">= 5",
               find(rows, "shmbus", throughput, block, 64), find(rows, "unix-socket", throughput, block, 64),
               &row::msgs_per_s, false, 5, "msg/s");

  // Issue 11: the exclusive publisher (what a feed handler uses) against the
  // reference and iceoryx, and the loan at large sizes.
  const std::string x = "shmbus-exclusive";
  for (const std::size_t size : {std::size_t{64}, std::size_t{512}}) {
    const std::string at = size_label(size);
    const row* xp = find(rows, x, latency, busy, size);
    const row* rp2 = find(rows, "reference", latency, busy, size);
    ratio_target("issue 11: exclusive busy-poll, " + at + ": p50 / reference p50", "<= 1.2", xp, rp2, &row::p50, true,
                 1.2, "ns");
    ratio_target("issue 11: exclusive busy-poll, " + at + ": p99 / reference p99", "<= 2", xp, rp2, &row::p99, true, 2,
                 "ns");
    const row* xb = find(rows, x, latency, block, size);
    const row* rb2 = find(rows, "reference", latency, block, size);
    ratio_target("issue 11: exclusive blocking, " + at + ": p50 / reference p50", "<= 1.05", xb, rb2, &row::p50, true,
                 1.05, "ns");
    ratio_target("issue 11: exclusive blocking, " + at + ": p99 / reference p99", "<= 1.2", xb, rb2, &row::p99, true,
                 1.2, "ns");
  }
  for (const std::size_t size : {std::size_t{64}, std::size_t{512}, std::size_t{4096}})
    for (const auto mode : {block, busy}) {
      const std::string w = mode == block ? "block" : "busy-poll";
      ratio_target("issue 11: exclusive ring throughput, " + size_label(size) + ", " + w + ": msgs/s / reference",
                   ">= 0.9", find(rows, x, throughput, mode, size), find(rows, "reference", throughput, mode, size),
                   &row::msgs_per_s, false, 0.9, "msg/s");
    }
  for (const std::size_t size : {std::size_t{65536}, std::size_t{1} << 20})
    for (const auto mode : {block, busy}) {
      const std::string w = mode == block ? "block" : "busy-poll";
      const std::string at = size_label(size);
      ratio_target("issue 11: loan latency, " + at + ", " + w + ": p50 / reference p50", "<= 1",
                   find(rows, "shmbus-loan", latency, mode, size), find(rows, "reference", latency, mode, size),
                   &row::p50, true, 1, "ns");
      ratio_target("issue 11: loan ring throughput, " + at + ", " + w + ": MB/s / reference", ">= 1",
                   find(rows, "shmbus-loan", throughput, mode, size), find(rows, "reference", throughput, mode, size),
                   &row::mb_per_s, false, 1, "MB/s");
    }
  for (const std::size_t size : {std::size_t{64}, std::size_t{512}, std::size_t{4096}})
    for (const auto mode : {block, busy}) {
      const std::string w = mode == block ? "block" : "busy-poll";
      ratio_target("issue 11: exclusive latency, " + size_label(size) + ", " + w + ": p50 / iceoryx p50", "<= 0.5",
                   find(rows, x, latency, mode, size), find(rows, "iceoryx", latency, mode, size), &row::p50, true, 0.5,
                   "ns");
    }
  for (const auto mode : {block, busy})
    ratio_target(std::string("issue 11: exclusive lossless throughput, 64 B, ") +
                     (mode == block ? "block" : "busy-poll") + ": msgs/s / iceoryx",
                 ">= 3", find(rows, x, throughput, mode, 64), find(rows, "iceoryx", throughput, mode, 64),
                 &row::msgs_per_s, false, 3, "msg/s");

  {
    // Publishes that found nobody asleep: every busy-poll run.
    target t{"publish with no subscriber asleep: wake system calls per publish", "= 0", std::nullopt, false, {}};
    double worst = -1;
    std::string where;
    for (const auto& r : rows) {
      // Ping-pong runs do not count the wakes (both ends publish).
      if (r.runs == 0 || r.spec.transport.rfind("shmbus", 0) != 0 || r.spec.wait.mode != busy ||
          r.spec.kind == run_kind::pingpong)
        continue;
      if (r.wakes_per_msg > worst) {
        worst = r.wakes_per_msg;
        where = std::string(kind_name(r.spec.kind)) + " " + size_label(r.spec.size) + " x" +
                std::to_string(r.spec.subscribers);
      }
    }
    if (worst >= 0) {
      t.ratio = worst;
      t.met = worst == 0;
      t.detail = "worst over every shmbus busy-poll run (" + where + "); the test suite checks the same with a counter";
    } else {
      t.detail = "not measured in this run";
    }
    out.push_back(std::move(t));
  }
  {
    target t{"idle subscriber in blocking wait: CPU % of one core", "~0 (< 0.5)", std::nullopt, false, {}};
    if (const row* r = find(rows, "shmbus", idle, block, 512)) {
      t.ratio = r->idle_cpu_pct;
      t.met = r->idle_cpu_pct < 0.5;
      t.detail = "process CPU time over " + fmt(static_cast<double>(r->spec.duration_ns) / 1e9, 1) +
                 " s of wait_available(100 ms) calls";
    } else {
      t.detail = "not measured in this run";
    }
    out.push_back(std::move(t));
  }
  {
    const row* one = find(rows, "shmbus", latency, busy, 512, 1);
    const row* eight = find(rows, "shmbus", latency, busy, 512, 8);
    target t{
        "fan-out to 8, busy-poll, 512 B: worst subscriber p50 / 1-subscriber p50", "<= 2", std::nullopt, false, {}};
    if (one != nullptr && eight != nullptr && one->p50 > 0) {
      t.ratio = eight->p50 / one->p50;
      t.met = *t.ratio <= 2;
      t.detail = fmt(eight->p50) + " ns vs " + fmt(one->p50) + " ns";
      const unsigned cpus = sys::cpu_count();
      if (cpus < 9)
        t.detail += "; " + std::to_string(cpus) + " CPUs: 8 busy-polling subscribers share " +
                    std::to_string(cpus > 1 ? cpus - 1 : 1) + " (needs 9 to test the target)";
    } else {
      t.detail = "not measured in this run";
    }
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

// Round trip / 2, and the runs a transport cannot do.
template <class Failed>
void write_pingpong_markdown(std::ostream& out, const report_meta& meta, const std::vector<row>& rows,
                             Failed&& failed) {
  bool any = !meta.not_run.empty();
  for (const auto& r : rows) any |= r.spec.kind == run_kind::pingpong;
  if (!any) return;
  out << "\n### Ping-pong: round trip / 2 (ns)\n\n"
      << "One ping at a time from the publisher, answered by the subscriber process on a second channel of the same "
         "transport; each figure is half the round trip as the publisher timed it. Touched: the sender writes every "
         "payload byte before sending and the receiver sums every byte (and checks the sum) after its copy; "
         "untouched: only the header. Every transport copies the message in and out (the harness's send and "
         "receive), touched or not.\n\n"
      << "| size | transport | wait | payload | mean | p50 | p90 | p99 | p99.9 | max | samples |\n"
      << "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    if (r.spec.kind != run_kind::pingpong || failed(r)) continue;
    out << "| " << size_label(r.spec.size) << " | " << r.spec.transport << " | " << wait_name(r.spec.wait) << " | "
        << (r.spec.touch ? "touched" : "untouched") << " | " << grouped(r.mean) << " | " << grouped(r.p50) << " | "
        << grouped(r.p90) << " | " << grouped(r.p99) << " | " << grouped(r.p999) << " | " << grouped(r.max) << " | "
        << r.samples << " |\n";
  }
  if (!meta.not_run.empty()) {
    out << "\n";
    for (const auto& n : meta.not_run) out << "- n/a: " << n << "\n";
  }
}

}  // namespace

void write_markdown(std::ostream& out, const report_meta& meta, const std::vector<row>& rows,
                    const std::vector<target>& targets, const std::vector<cost>& costs) {
  out << "## shmbus-bench\n\n"
      << "- machine: " << meta.machine << "\n"
      << "- command: `" << meta.command << "`\n"
      << "- started " << meta.started << ", took " << fmt(meta.seconds) << " s"
      << (meta.load_before.empty() ? std::string()
                                   : "; 1-minute load average " + meta.load_before + " before, " + meta.load_after +
                                         " after (other work on these CPUs shows in every figure)")
      << "\n"
      << "- each figure is the median of " << meta.runs << " run" << (meta.runs == 1 ? "" : "s") << "\n";
  for (const auto& r : rows)
    if (r.runs > 0) {
      out << "- pinning (first row): " << r.pinning << "\n";
      break;
    }
  out << "- latency: one way, from just before the publish call to just after the subscriber's copy; "
         "one message at a time, each published once every subscriber took the previous one\n\n";

  auto failed = [&](const row& r) {
    if (!r.error.empty())
      out << "\n> " << r.spec.transport << " " << kind_name(r.spec.kind) << " " << size_label(r.spec.size) << " "
          << wait_name(r.spec.wait) << " failed: " << r.error << "\n\n";
    return r.runs == 0;
  };

  out << "### One-way latency, 1 subscriber (ns)\n\n"
      << "| size | transport | wait | p50 | p99 | p99.9 | max | subscriber CPU | samples |\n"
      << "|---:|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    if (r.spec.kind != run_kind::latency || r.spec.subscribers != 1 || failed(r)) continue;
    out << "| " << size_label(r.spec.size) << " | " << r.spec.transport << " | " << wait_name(r.spec.wait) << " | "
        << grouped(r.p50) << " | " << grouped(r.p99) << " | " << grouped(r.p999) << " | " << grouped(r.max) << " | "
        << fmt(r.sub_cpu_pct) << " % | " << r.samples << " |\n";
  }

  out << "\n### Throughput (slowest subscriber)\n\n"
      << "| size | transport | topic | wait | msgs/s | MB/s | delivered | lost | subscriber CPU | wake calls / msg |\n"
      << "|---:|---|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    if (r.spec.kind != run_kind::throughput || failed(r)) continue;
    const std::string topic = r.spec.conflate ? "latest value" : "ring " + std::to_string(r.spec.depth);
    const bool shmbus = r.spec.transport.rfind("shmbus", 0) == 0;
    const bool shm = shmbus || r.spec.transport.rfind("reference", 0) == 0;
    const std::string kind = shm ? topic
                             : r.spec.transport == "iceoryx"
                                 ? "queue " + std::to_string(std::min<std::uint32_t>(r.spec.depth, 256))
                                 : "stream";
    out << "| " << size_label(r.spec.size) << " | " << r.spec.transport << " | " << kind << " | "
        << wait_name(r.spec.wait) << " | " << grouped(r.msgs_per_s) << " | " << fmt(r.mb_per_s, 1) << " | "
        << fmt(100 * r.delivered, 1) << " % | " << r.lost << " | " << fmt(r.sub_cpu_pct) << " % | "
        << (shmbus ? fmt(r.wakes_per_msg, 3) : "-") << " |\n";
  }

  bool any_fanout = false;
  for (const auto& r : rows) any_fanout |= r.spec.kind == run_kind::latency && r.spec.subscribers > 1;
  if (any_fanout) {
    out << "\n### Fan-out: one publisher, N subscribers, one-way latency (ns)\n\n"
        << "| size | transport | wait | subscribers | p50 best | p50 worst | p99 worst | worst p50 / 1-subscriber p50 "
           "|\n"
        << "|---:|---|---|---:|---:|---:|---:|---:|\n";
    for (const auto& r : rows) {
      if (r.spec.kind != run_kind::latency || r.runs == 0) continue;
      // The 1-subscriber row of the same series, if fan-out ran it.
      bool series = r.spec.subscribers > 1;
      for (const auto& o : rows)
        series |= o.spec.kind == run_kind::latency && o.spec.subscribers > 1 && o.spec.transport == r.spec.transport &&
                  o.spec.size == r.spec.size && o.spec.wait.mode == r.spec.wait.mode;
      if (!series) continue;
      const row* one = find(rows, r.spec.transport, run_kind::latency, r.spec.wait.mode, r.spec.size, 1);
      out << "| " << size_label(r.spec.size) << " | " << r.spec.transport << " | " << wait_name(r.spec.wait) << " | "
          << r.spec.subscribers << " | " << grouped(r.p50_best) << " | " << grouped(r.p50) << " | " << grouped(r.p99)
          << " | " << (one != nullptr && one->p50 > 0 ? fmt(r.p50 / one->p50, 2) : "-") << " |\n";
    }
  }

  write_pingpong_markdown(out, meta, rows, failed);

  out << "\n### Idle subscriber: CPU while waiting with nothing published\n\n"
      << "| transport | wait | CPU (% of one core) |\n|---|---|---:|\n";
  for (const auto& r : rows) {
    if (r.spec.kind != run_kind::idle || failed(r)) continue;
    out << "| " << r.spec.transport << " | " << wait_name(r.spec.wait) << " | " << fmt(r.idle_cpu_pct, 2) << " |\n";
  }

  if (!costs.empty()) {
    out << "\n### Steps of the hot path, one thread, nobody else on the topic (ns per call, CPU time)\n\n"
        << "| step | ns |\n|---|---:|\n";
    for (const auto& c : costs) out << "| " << c.what << " | " << fmt(c.ns, 1) << " |\n";
  }

  out << "\n### Targets (ratios within this run)\n\n| target | goal | measured | met | from "
         "|\n|---|---|---:|---|---|\n";
  for (const auto& t : targets)
    out << "| " << t.what << " | " << t.goal << " | " << (t.ratio ? fmt(*t.ratio, 3) : "-") << " | "
        << (t.ratio ? (t.met ? "yes" : "**no**") : "-") << " | " << t.detail << " |\n";
  out << "\n";
}

void write_json(std::ostream& out, const report_meta& meta, const std::vector<row>& rows,
                const std::vector<target>& targets, const std::vector<cost>& costs, const std::vector<run_result>& runs,
                const std::vector<jitter_result>& jitter, const keyed_result& keyed) {
  out << "{\n  \"machine\": " << json_string(meta.machine) << ",\n  \"command\": " << json_string(meta.command)
      << ",\n  \"started\": " << json_string(meta.started) << ",\n  \"seconds\": " << json_number(meta.seconds)
      << ",\n  \"load_average_before\": " << json_string(meta.load_before)
      << ",\n  \"load_average_after\": " << json_string(meta.load_after) << ",\n  \"runs_per_figure\": " << meta.runs
      << ",\n  \"figures\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const row& r = rows[i];
    out << "    {\"transport\": " << json_string(r.spec.transport)
        << ", \"kind\": " << json_string(kind_name(r.spec.kind))
        << ", \"wait\": " << json_string(wait_name(r.spec.wait)) << ", \"size\": " << r.spec.size
        << ", \"subscribers\": " << r.spec.subscribers << ", \"topic\": "
        << json_string(r.spec.conflate ? "latest" : (r.spec.kind == run_kind::throughput ? "ring" : "latest"))
        << ", \"ring_depth\": " << r.spec.depth << ", \"touched\": " << (r.spec.touch ? "true" : "false")
        << ", \"runs_ok\": " << r.runs << ", \"error\": " << json_string(r.error)
        << ",\n     \"latency_ns\": {\"p50\": " << json_number(r.p50) << ", \"p90\": " << json_number(r.p90)
        << ", \"p99\": " << json_number(r.p99) << ", \"p99_9\": " << json_number(r.p999)
        << ", \"max\": " << json_number(r.max) << ", \"mean\": " << json_number(r.mean)
        << ", \"p50_best_subscriber\": " << json_number(r.p50_best) << ", \"samples\": " << r.samples
        << "},\n     \"throughput\": {\"msgs_per_s\": " << json_number(r.msgs_per_s)
        << ", \"mb_per_s\": " << json_number(r.mb_per_s) << ", \"delivered_fraction\": " << json_number(r.delivered)
        << ", \"lost\": " << r.lost << ", \"published_per_s\": " << json_number(r.published_per_s)
        << "},\n     \"subscriber_cpu_pct\": " << json_number(r.sub_cpu_pct)
        << ", \"idle_cpu_pct\": " << json_number(r.idle_cpu_pct)
        << ", \"wake_calls_per_publish\": " << json_number(r.wakes_per_msg)
        << ", \"pinning\": " << json_string(r.pinning) << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "  ],\n  \"targets\": [\n";
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const target& t = targets[i];
    out << "    {\"target\": " << json_string(t.what) << ", \"goal\": " << json_string(t.goal)
        << ", \"ratio\": " << (t.ratio ? json_number(*t.ratio) : "null") << ", \"met\": " << (t.met ? "true" : "false")
        << ", \"from\": " << json_string(t.detail) << "}" << (i + 1 < targets.size() ? "," : "") << "\n";
  }
  out << "  ],\n  \"not_run\": [";
  for (std::size_t i = 0; i < meta.not_run.size(); ++i) out << (i ? ", " : "") << json_string(meta.not_run[i]);
  out << "],\n  \"costs_ns\": [\n";
  for (std::size_t i = 0; i < costs.size(); ++i)
    out << "    {\"step\": " << json_string(costs[i].what) << ", \"ns\": " << json_number(costs[i].ns) << "}"
        << (i + 1 < costs.size() ? "," : "") << "\n";
  out << "  ],\n  \"publish_jitter\": ";
  write_jitter_json(out, jitter);
  out << ",\n  \"keyed\": ";
  write_keyed_json(out, keyed);
  out << ",\n  \"runs\": [\n";
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const run_result& r = runs[i];
    out << "    {\"transport\": " << json_string(r.spec.transport)
        << ", \"kind\": " << json_string(kind_name(r.spec.kind))
        << ", \"wait\": " << json_string(wait_name(r.spec.wait)) << ", \"size\": " << r.spec.size
        << ", \"subscribers\": " << r.spec.subscribers << ", \"conflate\": " << (r.spec.conflate ? "true" : "false")
        << ", \"touched\": " << (r.spec.touch ? "true" : "false") << ", \"published\": " << r.published
        << ", \"publish_ns\": " << r.publish_ns << ", \"wake_calls\": " << r.wake_calls
        << ", \"publisher_pinned\": " << json_string(r.publisher_pinned) << ", \"error\": " << json_string(r.error)
        << ", \"subscribers_measured\": [";
    for (std::size_t j = 0; j < r.subs.size(); ++j) {
      const auto& s = r.subs[j];
      out << (j ? ", " : "") << "{\"received\": " << s.received << ", \"missed\": " << s.missed
          << ", \"bytes\": " << s.bytes << ", \"window_ns\": " << (s.last_ns - s.first_stamp)
          << ", \"cpu_ns\": " << s.cpu_ns << ", \"wall_ns\": " << s.wall_ns << ", \"samples\": " << s.samples
          << ", \"p50\": " << s.p50 << ", \"p90\": " << s.p90 << ", \"p99\": " << s.p99 << ", \"p99_9\": " << s.p999
          << ", \"max\": " << s.max << ", \"min\": " << s.min << ", \"mean\": " << s.mean
          << ", \"idle_cpu_ns\": " << s.idle_cpu_ns << ", \"idle_wall_ns\": " << s.idle_wall_ns
          << ", \"pinned\": " << json_string(s.pinned) << "}";
    }
    out << "]}" << (i + 1 < runs.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
}

std::string write_plot(const std::string& png, const report_meta& meta, const std::vector<row>& rows) {
  // One series per transport and wait mode, over the sizes it ran.
  std::vector<std::pair<std::string, std::vector<const row*>>> series;
  for (const auto& r : rows) {
    if (r.spec.kind != run_kind::latency || r.spec.subscribers != 1 || r.runs == 0) continue;
    const std::string name = r.spec.transport + " " + wait_name(r.spec.wait);
    auto it = std::find_if(series.begin(), series.end(), [&](const auto& s) { return s.first == name; });
    if (it == series.end()) {
      series.push_back({name, {}});
      it = series.end() - 1;
    }
    it->second.push_back(&r);
  }
  if (series.empty()) return "no latency figures to plot";
  for (auto& s : series)
    std::sort(s.second.begin(), s.second.end(), [](const row* a, const row* b) { return a->spec.size < b->spec.size; });

  const auto script = std::filesystem::temp_directory_path() /
                      ("shmbus-bench-plot-" + std::to_string(std::hash<std::string>{}(png)) + ".gp");
  {
    std::ofstream gp(script);
    for (std::size_t i = 0; i < series.size(); ++i) {
      gp << "$s" << i << " << EOD\n";
      for (const row* r : series[i].second)
        gp << r->spec.size << ' ' << r->p50 << ' ' << r->p99 << ' ' << r->p999 << '\n';
      gp << "EOD\n";
    }
    gp << "set terminal pngcairo size 1800,700 font ',10' noenhanced\n"
       << "set output '" << png << "'\n"
       << "set multiplot layout 1,3 title 'shmbus-bench: one-way latency by payload size (" << meta.machine
       << "; median of " << meta.runs << ")'\n"
       << "set logscale xy\nset grid\nset key below font ',8' maxrows 4\n"
       << "set xtics ('64' 64, '512' 512, '4K' 4096, '64K' 65536, '1M' 1048576)\n"
       << "set xlabel 'payload bytes'\nset ylabel 'ns'\nset format y '%.0s%c'\n";
    const char* titles[] = {"p50", "p99", "p99.9"};
    for (int col = 0; col < 3; ++col) {
      gp << "set title '" << titles[col] << "'\nplot ";
      for (std::size_t i = 0; i < series.size(); ++i) {
        // Colour by transport, dash and point by wait mode; shmbus drawn thick.
        const row& first = *series[i].second.front();
        const std::string& t = first.spec.transport;
        const char* colour = t == "shmbus"              ? "#7b1fa2"
                             : t == "reference"         ? "#404040"
                             : t == "reference+ts+lock" ? "#a0a0a0"
                             : t == "unix-socket"       ? "#1f77b4"
                             : t == "pipe"              ? "#2ca02c"
                                                        : "#ff7f0e";
        const int dash = first.spec.wait.mode == wait_mode::block       ? 1
                         : first.spec.wait.mode == wait_mode::busy_poll ? 2
                                                                        : 3;
        const int point = first.spec.wait.mode == wait_mode::block       ? 7
                          : first.spec.wait.mode == wait_mode::busy_poll ? 5
                                                                         : 9;
        gp << (i ? ", " : "") << "$s" << i << " using 1:" << (col + 2) << " with linespoints lc rgb '" << colour
           << "' lw " << (t == "shmbus" ? 3 : 1.5) << " dt " << dash << " pt " << point << " ps 0.8 title '"
           << series[i].first << "'";
      }
      gp << "\n";
    }
    gp << "unset multiplot\n";
  }
  const std::string cmd = "gnuplot \"" + script.string() + "\"";
  const int rc = std::system(cmd.c_str());
  std::error_code ignored;
  std::filesystem::remove(script, ignored);
  if (rc != 0) return "gnuplot failed or is not installed (exit " + std::to_string(rc) + ")";
  return {};
}

}  // namespace shmbus::bench
