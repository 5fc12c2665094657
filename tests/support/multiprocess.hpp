#pragma once
// What the multi-process tests share: children started up to their "ready"
// line, brokers as processes, bounded spins on the other side's progress,
// and the lockstep publisher that publishes only once its subscriber child
// is back inside wait(). Every wait is bounded and fails the test loudly.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "support/test_bus.hpp"

namespace shmbus::test {

/// Starts this binary as child role `role` and waits for its "ready" line.
inline child_process started_child(const std::string& role, std::vector<std::string> args) {
  auto child = child_process::self(role, std::move(args));
  child.expect_line("ready");
  return child;
}

/// Starts a shmbus-broker process on `bus` (broker_argv) and waits until it
/// says it is ready.
inline child_process started_broker(const std::string& bus) {
  auto broker = child_process(broker_argv(bus), true);
  broker.expect_line("ready");
  return broker;
}

/// A shmbus-broker process on a fresh bus, and a client of that bus. Tests
/// bind its members: `auto& [name, broker, b] = first;`.
struct broker_process_bus {
  std::string name = unique_bus();
  child_process broker = started_broker(name);
  bus b{name};
};

/// SIGKILLs (TerminateProcess) `child` and reaps it.
inline void kill_and_reap(child_process& child) {
  child.kill_hard();
  child.wait();
}

/// Spins (bounded) until `cond` holds: the other side reached a point.
template <class F>
void await(F cond, const std::string& what, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) FAIL("timed out waiting for: " << what);
    std::this_thread::yield();
  }
}

/// In a subscriber child: waits (10 s at a time) until `m` holds message
/// `last`. A lost wake-up shows as one of these bounded waits failing: it
/// then tells the parent "result timeout at=N" and returns false.
inline bool wait_through(subscriber& sub, message& m, std::uint64_t last) {
  while (m.sequence() < last) {
    if (!sub.wait(m, std::chrono::seconds(10))) {
      signal_parent("result timeout at=" + std::to_string(m.sequence()));
      return false;
    }
  }
  return true;
}

/// A verifying subscriber child's counts: whole and broken messages, and
/// sequences that went backwards; reported to the parent as one line.
struct message_tally {
  std::uint64_t whole = 0, broken = 0, disorder = 0, prev = 0;

  /// Counts `m`'s place in the order (after its payload was counted).
  void order(const message& m) {
    if (m.sequence() <= prev) ++disorder;
    prev = m.sequence();
  }
  /// "result ok=N <broken_name>=N disorder=N missed=N".
  [[nodiscard]] std::string result(const std::string& broken_name, std::uint64_t missed) const {
    return "result ok=" + std::to_string(whole) + " " + broken_name + "=" + std::to_string(broken) +
           " disorder=" + std::to_string(disorder) + " missed=" + std::to_string(missed);
  }
};

/// The parent of one subscriber child on `topic`: a publisher, and the
/// child's (live) entry in the raw segment, for publishing in lockstep.
struct lockstep_publisher {
  bus b;
  publisher pub;
  detail::topic_segment raw;
  detail::subscriber_entry& entry;

  lockstep_publisher(const std::string& bus_name, const std::string& topic)
      : b(bus_name), pub(b.make_publisher(topic)), raw(open_raw(bus_name, topic)), entry(raw.subscribers()[0]) {
    REQUIRE(detail::sub_phase(entry.state.load()) == detail::sub_live);
  }

  /// Waits until the child has consumed message `consumed` and, when it
  /// `sleeps` (a blocking strategy), is back inside wait(): the window a
  /// lost wake-up needs.
  void await_back_in_wait(std::uint64_t consumed, bool sleeps = true) {
    await([&] { return entry.read_seq.load() == consumed && (!sleeps || entry.waiting.load() == 1); },
          "subscriber back in wait() for message " + std::to_string(consumed + 1) +
              " read_seq=" + std::to_string(entry.read_seq.load()));
  }
};

}  // namespace shmbus::test
