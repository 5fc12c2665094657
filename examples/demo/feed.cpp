// demo-feed: publishes random-walk quotes for a few instruments to a topic.
//   demo-feed [--bus NAME] [--topic NAME] [--rate N_PER_SECOND] [--seconds S]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/client.hpp"
#include "tick.hpp"

int main(int argc, char** argv) {
  std::string bus_name, topic = "ticks";
  double rate = 2000, seconds = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--bus") bus_name = next();
    else if (a == "--topic") topic = next();
    else if (a == "--rate") rate = std::stod(next());
    else if (a == "--seconds") seconds = std::stod(next());
    else {
      std::fprintf(stderr, "usage: demo-feed [--bus NAME] [--topic NAME] [--rate N] [--seconds S]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  try {
    shmbus::bus bus(bus_name);
    auto pub = bus.make_publisher<demo::tick>(topic);
    const std::vector<std::string> names{"ESZ6", "NQZ6", "CLF7", "GCG7", "ZNH7", "6EZ6"};
    std::vector<double> mid{5980.25, 21140.5, 68.42, 2651.3, 110.515, 1.0842};
    const std::vector<double> step{0.25, 0.25, 0.01, 0.1, 0.015625, 0.00005};
    std::mt19937_64 rng(std::random_device{}());
    std::normal_distribution<double> walk(0, 1);
    const auto period = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / rate));
    const auto start = std::chrono::steady_clock::now();
    auto next_send = start;
    std::int64_t volume = 0;
    for (std::uint64_t n = 0;; ++n) {
      if (seconds > 0 && std::chrono::steady_clock::now() - start > std::chrono::duration<double>(seconds)) break;
      const std::size_t k = n % names.size();
      mid[k] += std::round(walk(rng)) * step[k];
      demo::tick t{};
      std::strncpy(t.instrument, names[k].c_str(), sizeof t.instrument - 1);
      t.bid = mid[k] - step[k];
      t.ask = mid[k] + step[k];
      t.last = mid[k];
      t.volume = volume += 1 + static_cast<std::int64_t>(rng() % 20);
      t.bid_size = 1 + static_cast<std::uint32_t>(rng() % 50);
      t.ask_size = 1 + static_cast<std::uint32_t>(rng() % 50);
      pub.publish_value(t);
      next_send += period;
      std::this_thread::sleep_until(next_send);  // pacing the feed, not synchronisation
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo-feed: %s\n", e.what());
    return 1;
  }
  return 0;
}
