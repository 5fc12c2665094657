// Protocol defects of issue 9, each pinned across real processes: this binary
// re-launches itself as the reader and the publisher that dies.
#include <doctest/doctest.h>

#include <iostream>
#include <string>
#include <thread>

#include "shmbus/client.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "support/multiprocess.hpp"
#include "support/payload.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

// ---- issue 9 item 4: mutex recovery and a lagging reader ------------------

namespace {

// One read (copying or zero-copy), reported as "key=value" fields.
std::string read_once(subscriber& sub, bool zero_copy, std::uint64_t& last) {
  std::error_code ec;
  bool got = false, valid = false;
  std::uint64_t seq = 0, missed = 0;
  if (zero_copy) {
    try {
      got = sub.read_view([&](const message_info& i, std::span<const std::byte> p) {
        valid = payload_ok(p) && payload_id(p) == i.sequence;
        seq = i.sequence;
        missed = i.missed;
      });
    } catch (const std::system_error& e) {
      ec = e.code();
    }
  } else {
    message m;
    got = sub.try_read(m, ec);
    if (got) {
      valid = payload_ok(m.payload()) && payload_id(m.payload()) == m.sequence();
      seq = m.sequence();
      missed = m.missed();
    }
  }
  if (got) last = seq;
  return "got=" + std::to_string(got ? 1 : 0) + " error=" + std::to_string(ec.value()) + " seq=" + std::to_string(seq) +
         " missed=" + std::to_string(missed) + " valid=" + std::to_string(valid ? 1 : 0) + " what=" + ec.message();
}

}  // namespace

// Subscribes, then on "read" makes one read that the test pauses right after
// its load of write_seq (read_hook), until the parent says "go"; then, on
// "drain", reads everything left.
SHMBUS_CHILD("stale-reader")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto sub = b.make_subscriber(a.at(1));
  const bool zero_copy = a.at(2) == "view";
  signal_parent("ready");
  std::string line;
  if (!std::getline(std::cin, line) || line != "read") return 2;
  detail::read_hook = [](std::uint64_t w) {
    detail::read_hook = nullptr;  // this read only, not its retries
    signal_parent("paused w=" + std::to_string(w));
    std::string go;
    std::getline(std::cin, go);
  };
  std::uint64_t last = 0;
  signal_parent("first " + read_once(sub, zero_copy, last));
  if (!std::getline(std::cin, line) || line != "drain") return 3;
  std::uint64_t errors = 0, invalid = 0;
  for (;;) {
    const std::string r = read_once(sub, zero_copy, last);
    if (field(r, "error") != 0) ++errors;
    if (field(r, "got") == 0) break;
    if (field(r, "valid") == 0) ++invalid;
  }
  signal_parent("result received=" + std::to_string(sub.received_total()) +
                " missed=" + std::to_string(sub.missed_total()) + " last=" + std::to_string(last) +
                " errors=" + std::to_string(errors) + " invalid=" + std::to_string(invalid));
  return 0;
}

// Publishes message `id` and is stopped half-way through its copy, holding the
// mutex with the slot marked odd, until killed.
SHMBUS_CHILD("publisher-dies-mid-publish")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto pub = b.make_publisher(a.at(1));
  std::vector<std::byte> buf(pub.topic().max_message_size);
  detail::publish_hook = [] {
    signal_parent("in-lock");
    // Idling until killed, not synchronisation: the parent acts on the line.
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  };
  make_payload(to_u64(a.at(2)), buf);
  pub.publish(buf);
  return 1;  // unreachable
}

namespace {

child_process* g_reader = nullptr;
std::string g_first;  // the reader's report of its paused read

void lagging_reader_across_recovery(const std::string& mode) {
  // Depth 4: five slots, so message 10 goes in the slot of message 5.
  test_bus tb({topic("r", 256, 4)});
  bus b(tb.name);
  auto pub = b.make_publisher("r");
  auto reader = started_child("stale-reader", {tb.name, "r", mode});
  std::vector<std::byte> buf(256);
  for (std::uint64_t id = 1; id <= 8; ++id) {
    make_payload(id, buf);
    REQUIRE(pub.publish(buf) == id);
  }
  // The reader loads write_seq = 8: it will look for message 5 (oldest
  // retained of 8 at depth 4) in slot 0, and stops before looking.
  reader.write("read\n");
  CHECK(field(reader.expect_line("paused"), "w") == 8);
  // Publisher A: message 9, whole.
  make_payload(9, buf);
  REQUIRE(pub.publish(buf) == 9);
  // Publisher B: killed half-way through message 10, in slot 0.
  auto dying = child_process::self("publisher-dies-mid-publish", {tb.name, "r", "10"});
  dying.expect_line("in-lock");
  dying.kill_hard();
  REQUIRE(dying.wait() == child_process::killed_exit_code);
  // Publisher C (this process) recovers the mutex; right after the recovery,
  // before it rewrites anything, the reader resumes and reads slot 0 as
  // recovery left it.
  g_reader = &reader;
  g_first = "no report";
  detail::recovery_hook = [] {
    try {
      g_reader->write("go\n");
      g_first = g_reader->expect_line("first");
    } catch (const std::exception& e) {
      g_first = std::string("failed: ") + e.what();
    }
  };
  make_payload(10, buf);
  const std::uint64_t seq10 = pub.publish(buf);
  detail::recovery_hook = nullptr;
  CHECK(seq10 == 10);
  CHECK(pub.mutex_recoveries() == 1);
  INFO("first read: ", g_first);
  REQUIRE(g_first.rfind("first ", 0) == 0);
  // Message 5 was overwritten by the torn message 10, so the reader skips to
  // message 6: a valid message and an exact gap (1..5), never an error.
  CHECK(field(g_first, "error") == 0);
  CHECK(field(g_first, "got") == 1);
  CHECK(field(g_first, "valid") == 1);
  CHECK(field(g_first, "seq") == 6);
  CHECK(field(g_first, "missed") == 5);
  reader.write("drain\n");
  const std::string result = reader.expect_line("result");
  INFO("result: ", result);
  CHECK(field(result, "errors") == 0);
  CHECK(field(result, "invalid") == 0);
  CHECK(field(result, "last") == 10);
  CHECK(field(result, "received") + field(result, "missed") == 10);
  CHECK(reader.wait() == 0);
}

}  // namespace

TEST_CASE(
    "issue 9.4: a reader paused with a stale write_seq across a publisher's death and the mutex recovery "
    "gets a valid message and an exact gap, never corrupt_segment (copying read)") {
  lagging_reader_across_recovery("copy");
}

TEST_CASE(
    "issue 9.4: a reader paused with a stale write_seq across a publisher's death and the mutex recovery "
    "gets a valid message and an exact gap, never corrupt_segment (zero-copy read)") {
  lagging_reader_across_recovery("view");
}
