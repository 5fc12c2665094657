// The soak run: `shmbus_tests --child soak SECONDS` (scripts/soak). Several
// publishers and subscribers on one topic for SECONDS, publishers and some
// subscribers killed and restarted at random; the report counts what was
// published, delivered, reported missed, and torn (which must be 0).
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/platform/process.hpp"
#include "support/payload.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

SHMBUS_CHILD("soak")(const std::vector<std::string>& a) {
  const double seconds = std::stod(a.at(0));
  const auto seed = static_cast<std::uint64_t>(platform::monotonic_ns());
  std::mt19937_64 rng(seed);
  test_bus tb({topic("soak", 1024, 512)});
  auto raw = open_raw(tb.name, "soak");

  // Two subscribers live through the whole run and report at the end; one
  // more is killed and restarted at random, while reading or waiting.
  std::vector<child_process> steady;
  for (int i = 0; i < 2; ++i) {
    steady.push_back(child_process::self("fault-subscriber", {tb.name, "soak"}));
    steady.back().expect_line("ready");
  }
  std::optional<child_process> transient;
  std::vector<std::optional<child_process>> publishers(2);
  std::uint64_t publisher_kills = 0, subscriber_kills = 0, next_seed = 1;

  auto start_publisher = [&](std::optional<child_process>& slot) {
    slot.emplace(child_process::self("fault-publisher", {tb.name, "soak", std::to_string(next_seed++)}));
    slot->expect_line("running");
  };
  for (auto& p : publishers) start_publisher(p);

  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    // A random moment (not synchronisation), then a random victim.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    if (rng() % 4 == 0) {
      if (transient) {
        transient->kill_hard();
        transient->wait();
        ++subscriber_kills;
      }
      transient.emplace(child_process::self("reading-subscriber", {tb.name, "soak"}));
      transient->expect_line("ready");
    } else {
      auto& victim = publishers[rng() % publishers.size()];
      victim->kill_hard();
      victim->wait();
      ++publisher_kills;
      start_publisher(victim);
    }
    tb.brk.maintain();
  }
  for (auto& p : publishers) {
    p->kill_hard();
    p->wait();
  }
  // The last kill may have left the mutex abandoned: the stop message's
  // publish recovers it like any other.
  bus b(tb.name);
  auto pub = b.make_publisher("soak");
  std::vector<std::byte> buf(64);
  make_payload(~std::uint64_t{0}, buf);
  pub.publish(buf);

  std::uint64_t delivered = 0, missed = 0, torn = 0, disorder = 0;
  bool complete = true;
  for (auto& s : steady) {
    const std::string line = s.expect_line("result", std::chrono::seconds(60));
    if (line.find("timeout") != std::string::npos) {
      complete = false;
      continue;
    }
    delivered += field(line, "ok");
    missed += field(line, "missed");
    torn += field(line, "torn");
    disorder += field(line, "disorder");
  }
  const auto& h = raw.header();
  std::printf(
      "soak: %.0f s, seed %llu\n"
      "  publisher kills   %llu (mutex recoveries %llu, half-written messages discarded %llu)\n"
      "  subscriber kills  %llu\n"
      "  published         %llu\n"
      "  delivered         %llu (to %zu steady subscribers)\n"
      "  reported missed   %llu\n"
      "  torn              %llu\n"
      "  out of order      %llu\n",
      seconds, static_cast<unsigned long long>(seed), static_cast<unsigned long long>(publisher_kills),
      static_cast<unsigned long long>(h.mutex_recoveries.load()),
      static_cast<unsigned long long>(h.torn_discarded.load()), static_cast<unsigned long long>(subscriber_kills),
      static_cast<unsigned long long>(h.write_seq.load()), static_cast<unsigned long long>(delivered), steady.size(),
      static_cast<unsigned long long>(missed), static_cast<unsigned long long>(torn),
      static_cast<unsigned long long>(disorder));
  std::fflush(stdout);
  if (!complete) std::puts("  a steady subscriber timed out");
  return (torn == 0 && disorder == 0 && complete) ? 0 : 1;
}
