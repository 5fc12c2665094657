// demo-monitor: a strategy-style subscriber. Shows the latest quote of each
// instrument, ticks/s, gaps and publish-to-receive latency, redrawn in place
// on a terminal (plain lines otherwise), and a summary on exit.
//   demo-monitor [--bus NAME] [--topic NAME] [--seconds S]
#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/platform/process.hpp"
#include "tick.hpp"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

struct row {
  demo::tick last{};
  std::uint64_t count = 0;
};

double percentile(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bus_name, topic = "ticks";
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--bus") bus_name = next();
    else if (a == "--topic") topic = next();
    else if (a == "--seconds") seconds = std::stod(next());
    else {
      std::fprintf(stderr, "usage: demo-monitor [--bus NAME] [--topic NAME] [--seconds S]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool tty = shmbus::platform::stdout_is_terminal();
  try {
    shmbus::bus bus(bus_name);
    auto sub = bus.make_subscriber<demo::tick>(topic);
    std::map<std::string, row> rows;
    std::vector<std::int64_t> window, all;
    std::uint64_t total = 0, window_count = 0;
    const auto start = std::chrono::steady_clock::now();
    auto last_draw = start;
    demo::tick t{};
    shmbus::message_info info;
    bool first_draw = true;
    while (!g_stop) {
      const auto now = std::chrono::steady_clock::now();
      if (seconds > 0 && now - start > std::chrono::duration<double>(seconds)) break;
      std::error_code ec;
      if (!sub.wait_available(std::chrono::milliseconds(100), ec) && ec) throw std::system_error(ec);
      while (sub.try_read(t, &info)) {
        const auto recv = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch()).count();
        auto& r = rows[t.instrument];
        r.last = t;
        ++r.count;
        ++total;
        ++window_count;
        window.push_back(recv - info.timestamp_ns);
      }
      const auto elapsed = std::chrono::steady_clock::now() - last_draw;
      if (elapsed < std::chrono::seconds(1)) continue;
      const double secs = std::chrono::duration<double>(elapsed).count();
      all.insert(all.end(), window.begin(), window.end());
      if (tty && !first_draw) std::printf("\x1b[%zuA", rows.size() + 2);
      first_draw = false;
      std::printf("%-8s %12s %12s %12s %10s\n", "INSTR", "BID", "ASK", "LAST", "VOLUME");
      for (const auto& [name, r] : rows)
        std::printf("%-8s %12.4f %12.4f %12.4f %10lld\n", name.c_str(), r.last.bid, r.last.ask, r.last.last,
                    static_cast<long long>(r.last.volume));
      std::printf("ticks/s %8.0f   gaps %llu   latency p50 %7.1f us  p99 %7.1f us%s\n",
                  static_cast<double>(window_count) / secs, static_cast<unsigned long long>(sub.missed_total()),
                  percentile(window, 0.50), percentile(window, 0.99), tty ? "\x1b[K" : "");
      std::fflush(stdout);
      window.clear();
      window_count = 0;
      last_draw = std::chrono::steady_clock::now();
    }
    all.insert(all.end(), window.begin(), window.end());
    std::printf("summary: %llu ticks received, %llu missed, %zu instruments, latency p50 %.1f us p99 %.1f us\n",
                static_cast<unsigned long long>(total), static_cast<unsigned long long>(sub.missed_total()),
                rows.size(), percentile(all, 0.50), percentile(all, 0.99));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo-monitor: %s\n", e.what());
    return 1;
  }
  return 0;
}
