// Exclusive publishers and loans (issue 11): the exclusive publish right,
// taken once and held for a publisher's life; zero-copy publishing in place;
// and both surviving a holder that dies, across real processes. (The
// fault-injection suite kills them hundreds of times; the seccomp test shows
// their publishes make no system call.)
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "shmbus/platform/process.hpp"
#include "support/multiprocess.hpp"
#include "support/payload.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;
using namespace std::chrono_literals;

namespace {

publisher_options exclusive_options(std::optional<std::chrono::nanoseconds> wait = std::nullopt) {
  publisher_options o;
  o.exclusive = true;
  o.wait_for_right = wait;
  return o;
}

std::string pid_text(std::uint64_t pid) { return "pid " + std::to_string(pid); }

// Every message a subscriber can read now: whole, in order, ids = sequences.
std::uint64_t drain_checked(subscriber& sub) {
  message m;
  std::uint64_t prev = 0;
  while (sub.try_read(m)) {
    CHECK(payload_ok(m.payload()));
    CHECK(payload_id(m.payload()) == m.sequence());
    CHECK(m.sequence() > prev);
    prev = m.sequence();
  }
  return prev;
}

}  // namespace

// ---- the exclusive right -----------------------------------------------------

TEST_CASE("exclusive publisher: holds the right for its life, others are refused naming it, released on destruction") {
  test_bus tb({topic("x", 64, 8)});
  bus b(tb.name);
  auto sub = b.make_subscriber("x");
  const std::string me = pid_text(platform::current_process().pid);
  {
    auto feed = b.make_publisher("x", exclusive_options());
    CHECK(feed.exclusive());
    CHECK(feed.publish("one") == 1);
    CHECK(feed.publish("two") == 2);
    CHECK(b.stats().at(0).exclusive_pid == platform::current_process().pid);

    // A second exclusive publisher, even in the same process, is refused.
    error_info err;
    auto second = b.make_publisher("x", exclusive_options(), err);
    CHECK(!second.is_open());
    CHECK(err.code == errc::exclusive_publisher);
    CHECK(err.what.find("topic 'x'") != std::string::npos);
    CHECK(err.what.find(me + " holds the exclusive publish right") != std::string::npos);
    CHECK_THROWS_WITH_AS(b.make_publisher("x", exclusive_options()), doctest::Contains("exclusive publish right"),
                         const shmbus::error&);

    // A shared publisher opens (the right may be given back) but cannot publish.
    auto shared = b.make_publisher("x");
    CHECK(!shared.exclusive());
    CHECK(shared.publish("refused", err) == 0);
    CHECK(err.code == errc::exclusive_publisher);
    CHECK(err.code == std::errc::device_or_resource_busy);
    CHECK(err.what == "topic 'x': publisher " + me + " holds the exclusive publish right; nothing was published");

    // Waiting for a right nobody gives back ends at the deadline.
    const auto start = std::chrono::steady_clock::now();
    auto waiter = b.make_publisher("x", exclusive_options(50ms), err);
    CHECK(err.code == errc::exclusive_publisher);
    CHECK(err.what.find("(waited 0.050 s)") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
    CHECK(feed.publish("three") == 3);
  }
  CHECK(b.stats().at(0).exclusive_pid == 0);
  // Given back: a shared publisher publishes, the next exclusive one takes it.
  auto shared = b.make_publisher("x");
  CHECK(shared.publish("four") == 4);
  auto next = b.make_publisher("x", exclusive_options());
  CHECK(next.publish("five") == 5);
  CHECK(b.stats().at(0).mutex_recoveries == 0);
  message m;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    REQUIRE(sub.try_read(m));
    CHECK(m.sequence() == seq);
  }
  CHECK(m.text() == "five");
}

TEST_CASE("exclusive publisher: moved, it keeps the right, a moved-from one is empty") {
  test_bus tb({topic("x", 64, 8)});
  bus b(tb.name);
  auto feed = b.make_publisher("x", exclusive_options());
  publisher moved = std::move(feed);
  CHECK(moved.exclusive());
  CHECK(!feed.exclusive());  // NOLINT(bugprone-use-after-move): the empty state is the point
  CHECK(moved.publish("a") == 1);
  error_info err;
  CHECK(!b.make_publisher("x", exclusive_options(), err).is_open());
  moved = publisher{};  // assigning an empty publisher gives the right back
  CHECK(b.make_publisher("x", exclusive_options()).publish("b") == 2);
}

SHMBUS_CHILD("exclusive-holder")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto feed = b.make_publisher(a.at(1), exclusive_options());
  std::vector<std::byte> buf(64);
  make_payload(1, buf);
  feed.publish(buf);
  signal_parent("ready");
  // Holds the right until told to go (stdin closed), then gives it back.
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}

TEST_CASE("exclusive right across processes: refused while the holder lives, taken when it leaves or dies") {
  test_bus tb({topic("x", 64, 8)});
  bus b(tb.name);
  auto sub = b.make_subscriber("x");

  SUBCASE("the holder exits: a waiting publisher gets the right") {
    auto holder = started_child("exclusive-holder", {tb.name, "x"});
    error_info err;
    CHECK(!b.make_publisher("x", exclusive_options(), err).is_open());
    CHECK(err.what.find(pid_text(static_cast<std::uint64_t>(holder.pid()))) != std::string::npos);
    CHECK(b.make_publisher("x").publish("x", err) == 0);
    CHECK(err.code == errc::exclusive_publisher);
    // Asked to wait, it gets the right as soon as the holder has gone,
    // whichever comes first: the exit or the wait.
    holder.close_stdin();
    auto next = b.make_publisher("x", exclusive_options(60s));
    CHECK(holder.wait() == 0);
    std::vector<std::byte> buf(64);
    make_payload(2, buf);
    CHECK(next.publish(buf) == 2);
    CHECK(next.mutex_recoveries() == 0);
  }
  SUBCASE("the holder is SIGKILLed between publishes: the next publisher recovers, nothing is lost") {
    auto holder = started_child("exclusive-holder", {tb.name, "x"});
    kill_and_reap(holder);
    CHECK(b.stats().at(0).exclusive_pid ==
          static_cast<std::uint64_t>(holder.pid()));  // recorded until someone takes over
    auto shared = b.make_publisher("x");
    std::vector<std::byte> buf(64);
    make_payload(2, buf);
    CHECK(shared.publish(buf) == 2);  // a shared publisher takes the dead holder's right back
    CHECK(shared.mutex_recoveries() == 1);
    CHECK(b.stats().at(0).exclusive_pid == 0);
    CHECK(b.stats().at(0).torn_discarded == 0);
  }
  CHECK(drain_checked(sub) == 2);
}

SHMBUS_CHILD("exclusive-dies-mid-publish")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto feed = b.make_publisher(a.at(1), exclusive_options());
  std::vector<std::byte> buf(256);
  make_payload(1, buf);
  feed.publish(buf);
  detail::publish_hook = [] {
    signal_parent("ready");
    // Holds a half-written slot until killed (idling, not synchronisation).
    for (;;) std::this_thread::sleep_for(1s);
  };
  make_payload(2, buf);
  feed.publish(buf);
  return 1;  // unreachable
}

TEST_CASE("an exclusive publisher SIGKILLed mid-copy: the next one takes over at once, the torn message is discarded") {
  test_bus tb({topic("x", 256, 4)});
  bus b(tb.name);
  auto sub = b.make_subscriber("x");
  auto child = started_child("exclusive-dies-mid-publish", {tb.name, "x"});
  kill_and_reap(child);
  auto raw = open_raw(tb.name, "x");
  CHECK(raw.newest() == 1);
  auto next = b.make_publisher("x", exclusive_options());  // no wait needed: the holder is dead
  CHECK(next.mutex_recoveries() == 1);
  CHECK(raw.header().torn_discarded.load() == 1);
  std::vector<std::byte> buf(256);
  for (std::uint64_t id = 2; id <= 6; ++id) {
    make_payload(id, buf);
    CHECK(next.publish(buf) == id);
  }
  CHECK(drain_checked(sub) == 6);
  CHECK(sub.received_total() + sub.missed_total() == 6);
}

// ---- loans -------------------------------------------------------------------

TEST_CASE("loan: written in place, published by commit, commit(n), abandon and the typed loan") {
  struct quote {
    double bid, ask;
    std::int64_t volume;
  };
  for (const bool exclusive : {false, true}) {
    CAPTURE(exclusive);
    test_bus tb({topic("l", 256, 8), topic("q", sizeof(quote), 8, sizeof(quote))});
    bus b(tb.name);
    auto sub = b.make_subscriber("l");
    publisher_options o;
    o.exclusive = exclusive;
    auto pub = b.make_publisher("l", o);

    std::span<std::byte> slot = pub.loan(100);
    REQUIRE(slot.size() == 100);
    CHECK(pub.loan_open());
    make_payload(1, slot);
    message m;
    CHECK(!sub.try_read(m));  // nothing of it is visible before commit
    CHECK(pub.commit() == 1);
    CHECK(!pub.loan_open());
    REQUIRE(sub.try_read(m));
    CHECK(m.size() == 100);
    CHECK(payload_ok(m.payload()));

    // Loan the maximum, publish what was written.
    slot = pub.loan(256);
    make_payload(2, slot.first(40));
    CHECK(pub.commit(40) == 2);
    REQUIRE(sub.try_read(m));
    CHECK(m.size() == 40);
    CHECK(payload_ok(m.payload()));

    // Abandoned: nothing published, the next message takes the sequence.
    slot = pub.loan(64);
    std::memset(slot.data(), 0x5a, slot.size());
    pub.abandon();
    CHECK(!pub.loan_open());
    CHECK(!sub.try_read(m));
    CHECK(pub.publish("after") == 3);
    REQUIRE(sub.try_read(m));
    CHECK(m.sequence() == 3);
    CHECK(m.missed() == 0);
    CHECK(m.text() == "after");

    // A loan the publisher's destructor drops.
    {
      auto other = b.make_publisher("l");
      if (!exclusive) (void)other.loan(10);
    }
    CHECK(pub.publish("next") == 4);

    // Typed: a value-initialised T in the slot.
    auto typed = b.make_publisher("q", o);
    quote& q = typed.loan<quote>();
    CHECK(q.volume == 0);
    q = {10.5, 10.75, 42};
    CHECK(typed.commit() == 1);
    auto qs = b.make_subscriber<quote>("q");
    CHECK(qs.latest(m));
    CHECK(m.as<quote>().ask == 10.75);
    CHECK(m.as<quote>().volume == 42);
  }
}

TEST_CASE("loan misuse: every mistake is refused with a sentence, and the open loan survives it") {
  test_bus tb({topic("l", 64, 8), topic("q", 32, 8, 32)});
  bus b(tb.name);
  auto sub = b.make_subscriber("l");
  auto pub = b.make_publisher("l");
  error_info err;
  CHECK(pub.commit(err) == 0);
  CHECK(err.code == errc::invalid_argument);
  CHECK(err.what == "topic 'l': commit without an open loan");
  CHECK(pub.loan(65, err).empty());
  CHECK(err.code == errc::message_too_large);
  CHECK(err.what == "topic 'l': message of 65 bytes exceeds max_message_size 64");

  auto slot = pub.loan(16);
  REQUIRE(slot.size() == 16);
  CHECK(pub.loan(8, err).empty());
  CHECK(err.what == "topic 'l': a loan is open: commit or abandon it first");
  CHECK(pub.publish("x", err) == 0);
  CHECK(err.what == "topic 'l': a loan is open: commit or abandon it first");
  CHECK(pub.commit(17, err) == 0);
  CHECK(err.what == "topic 'l': commit of 17 bytes exceeds the loan of 16 bytes");
  CHECK_THROWS_WITH_AS(pub.commit(17), "topic 'l': commit of 17 bytes exceeds the loan of 16 bytes",
                       const shmbus::error&);
  CHECK(pub.loan_open());
  std::memcpy(slot.data(), "still here", 10);
  CHECK(pub.commit(10) == 1);
  message m;
  REQUIRE(sub.try_read(m));
  CHECK(m.text() == "still here");

  auto typed = b.make_publisher("q");
  CHECK(typed.loan(16, err).empty());
  CHECK(err.code == errc::type_size_mismatch);
  slot = typed.loan(32);
  CHECK(typed.commit(16, err) == 0);  // a typed topic takes exactly its type
  CHECK(err.code == errc::type_size_mismatch);
  CHECK(typed.loan_open());
  CHECK(typed.commit() == 1);

  publisher empty;
  CHECK(empty.loan(8, err).empty());
  CHECK(err.what == "publisher is empty (default-constructed or moved-from)");
  CHECK(!empty.loan_open());
  empty.abandon();  // harmless
}

SHMBUS_CHILD("dies-with-loan")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  publisher_options o;
  o.exclusive = a.at(2) == "exclusive";
  auto pub = b.make_publisher(a.at(1), o);
  std::vector<std::byte> buf(256);
  make_payload(1, buf);
  pub.publish(buf);
  auto slot = pub.loan(256);
  make_payload(2, buf);
  std::memcpy(slot.data(), buf.data(), 128);  // half of message 2, in place
  signal_parent("ready");
  for (;;) std::this_thread::sleep_for(1s);  // idling until killed
}

TEST_CASE("a publisher SIGKILLed with a loan open: the next publisher recovers at once, the loan is never delivered") {
  for (const char* mode : {"shared", "exclusive"}) {
    CAPTURE(mode);
    test_bus tb({topic("l", 256, 4)});
    bus b(tb.name);
    auto sub = b.make_subscriber("l");
    auto child = started_child("dies-with-loan", {tb.name, "l", mode});
    kill_and_reap(child);
    auto raw = open_raw(tb.name, "l");
    CHECK(raw.newest() == 1);
    auto next = b.make_publisher("l");
    std::vector<std::byte> buf(256);
    for (std::uint64_t id = 2; id <= 5; ++id) {
      make_payload(id, buf);
      CHECK(next.publish(buf) == id);
    }
    CHECK(next.mutex_recoveries() == 1);
    CHECK(raw.header().torn_discarded.load() == 1);
    CHECK(drain_checked(sub) == 5);
  }
}
