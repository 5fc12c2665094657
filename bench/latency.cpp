// shmbus-latency: one-way publish -> subscriber latency with a blocking wait,
// publisher and subscriber in separate processes. A first, quick figure; the
// full benchmark with baselines is shmbus-bench (issue 5).
//
//   shmbus-latency [--messages N] [--sizes 64,512] [--gap-us US]
//
// The subscriber is asleep in wait() when each message is published: the
// publisher waits for the previous message's acknowledgement, then a gap.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/platform/process.hpp"
#include "support/child_process.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

int subscriber_role(const std::vector<std::string>& a) {
  shmbus::bus bus(a.at(0));
  auto sub = bus.make_subscriber("data");
  auto ack = bus.make_publisher("ack");
  const std::uint64_t n = std::stoull(a.at(1));
  shmbus::test::signal_parent("ready");
  std::vector<std::int64_t> lat;
  lat.reserve(n);
  shmbus::message m;
  while (lat.size() < n) {
    if (!sub.wait(m, std::chrono::seconds(10))) return 2;
    lat.push_back(now_ns() - m.timestamp_ns());
    ack.publish_value(m.sequence());
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]; };
  shmbus::test::signal_parent("result p50=" + std::to_string(pct(0.5)) + " p99=" + std::to_string(pct(0.99)) +
                              " p999=" + std::to_string(pct(0.999)) + " max=" + std::to_string(lat.back()));
  return 0;
}

const shmbus::test::child_registrar reg("latency-subscriber", subscriber_role);

}  // namespace

int main(int argc, char** argv) {
  shmbus::test::set_self_path(argv[0]);
  spdlog::set_level(spdlog::level::warn);
  if (argc >= 3 && std::string(argv[1]) == "--child") {
    return shmbus::test::child_roles().at(argv[2])(std::vector<std::string>(argv + 3, argv + argc));
  }
  std::uint64_t messages = 20000;
  std::vector<std::size_t> sizes{64, 512};
  int gap_us = 50;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--messages" && i + 1 < argc) messages = std::stoull(argv[++i]);
    else if (a == "--gap-us" && i + 1 < argc) gap_us = std::stoi(argv[++i]);
    else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      std::string s = argv[++i];
      for (std::size_t p = 0; p != std::string::npos;) {
        const auto c = s.find(',', p);
        sizes.push_back(std::stoul(s.substr(p, c - p)));
        p = c == std::string::npos ? c : c + 1;
      }
    } else {
      std::printf("usage: shmbus-latency [--messages N] [--sizes 64,512] [--gap-us US]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  std::printf("| payload | messages | p50 ns | p99 ns | p99.9 ns | max ns |\n|---|---|---|---|---|---|\n");
  for (std::size_t size : sizes) {
    shmbus::broker_options o;
    o.bus = "bench" + std::to_string(::shmbus::platform::current_process().pid);
    shmbus::topic_config data{"data", size, 1}, ack{"ack", 8, 1};
    o.topics = {data, ack};
    shmbus::broker broker(o);
    auto child = shmbus::test::child_process::self("latency-subscriber", {o.bus, std::to_string(messages)});
    child.expect_line("ready");
    shmbus::bus bus(o.bus);
    auto pub = bus.make_publisher("data");
    auto acks = bus.make_subscriber("ack");
    std::vector<std::byte> payload(size, std::byte{0x42});
    std::uint64_t got = 0;
    for (std::uint64_t i = 1; i <= messages; ++i) {
      // Let the subscriber fall asleep in the kernel before publishing.
      const auto until = clock_type::now() + std::chrono::microseconds(gap_us);
      while (clock_type::now() < until) {
      }
      pub.publish(payload);
      const auto deadline = clock_type::now() + std::chrono::seconds(10);
      while (!acks.try_read(got) || got != i) {
        if (clock_type::now() > deadline) {
          std::fprintf(stderr, "shmbus-latency: no acknowledgement for message %llu\n",
                       static_cast<unsigned long long>(i));
          return 1;
        }
      }
    }
    const std::string r = child.expect_line("result");
    long long p50, p99, p999, mx;
    std::sscanf(r.c_str(), "result p50=%lld p99=%lld p999=%lld max=%lld", &p50, &p99, &p999, &mx);
    std::printf("| %zu B | %llu | %lld | %lld | %lld | %lld |\n", size, static_cast<unsigned long long>(messages),
                p50, p99, p999, mx);
    child.wait();
  }
  return 0;
}
