// The role ports of the topic protocol, each on its own, without a broker:
// the test plays the broker with a broker_port and a bus endpoint, and opens
// publisher, subscriber and observer ports on the same objects in-process.
// (The multi-process, fault and hostile suites run the same ports across
// processes through the client API.)
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "shmbus/detail/broker_port.hpp"
#include "shmbus/detail/observer_port.hpp"
#include "shmbus/detail/publisher_port.hpp"
#include "shmbus/detail/seqlock.hpp"
#include "shmbus/detail/subscriber_port.hpp"
#include "shmbus/detail/subscriber_table.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/bus_endpoint.hpp"
#include "support/child_process.hpp"

using namespace shmbus;
using namespace shmbus::detail;
using namespace std::chrono_literals;

namespace {

void require_ok(const std::error_code& ec, const std::string& what) {
  REQUIRE_MESSAGE(!ec, what << ": " << ec.message());
}

// One topic's objects and the endpoint that hands out its control segment:
// what a broker holds for one topic, and nothing else.
struct lone_topic {
  std::string bus = test::unique_bus();
  std::uint64_t instance = 0x5eed;
  topic_params params;
  platform::bus_endpoint endpoint;
  broker_port topic;

  explicit lone_topic(topic_params p, bool ready = true) : params(std::move(p)) {
    std::error_code ec;
    std::string what;
    endpoint = platform::bus_endpoint(create_only, endpoint_name(bus), ec, what);
    require_ok(ec, what);
    topic = broker_port::create(bus, instance, params, {}, ec, what);
    require_ok(ec, what);
    endpoint.offer(control_object_name(topic_object_name(bus, instance, params.name)), topic.control_region(), {}, ec,
                   what);
    require_ok(ec, what);
    endpoint.serve(ec, what);
    require_ok(ec, what);
    if (ready) topic.mark_ready();
  }
  lone_topic(const lone_topic&) = delete;
  lone_topic& operator=(const lone_topic&) = delete;
  ~lone_topic() {
    topic.close();
    std::error_code ignored;
    platform::shared_memory_region::remove(topic_object_name(bus, instance, params.name), ignored);
  }

  publisher_port publisher() { return open_port<publisher_port>(); }
  subscriber_port subscriber() { return open_port<subscriber_port>(); }
  observer_port observer() { return open_port<observer_port>(); }

 private:
  // Every port opens the same way; a failure ends the test with its sentence.
  template <class Port>
  Port open_port() {
    std::error_code ec;
    std::string what;
    auto port = Port::open(bus, instance, params, ec, what);
    require_ok(ec, what);
    return port;
  }
};

topic_params params_of(std::string name, std::uint64_t max_size, std::uint32_t depth) {
  topic_params p;
  p.name = std::move(name);
  p.max_message_size = max_size;
  p.depth = depth;
  return p;
}

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

std::uint64_t publish(publisher_port& pub, const std::string& text) {
  std::error_code ec;
  const std::uint64_t seq = pub.publish(bytes(text), ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  return seq;
}

// The next message as text, "" when none.
std::string read_text(subscriber_port& sub, message_info& info) {
  std::array<std::byte, 256> buf{};
  std::error_code ec;
  const read_status st = sub.read(buf, info, ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  if (st != read_status::ok) return "";
  return {reinterpret_cast<const char*>(buf.data()), info.size};
}

}  // namespace

TEST_CASE("broker_port: a topic opens only once ready, and close reaches its waiters") {
  lone_topic t(params_of("p", 64, 1), /*ready=*/false);
  std::error_code ec;
  std::string what;
  auto early = subscriber_port::open(t.bus, t.instance, t.params, ec, what);
  CHECK(ec == errc::topic_closed);
  CHECK(!early.is_open());
  t.topic.mark_ready();
  auto sub = t.subscriber();
  CHECK(t.topic.snapshot().live_subscribers == 1);
  t.topic.close();
  CHECK(sub.gone());
  CHECK_FALSE(sub.wait(std::nullopt, wait_strategy::blocking(), ec));  // returns at once, not for ever
  CHECK(ec == errc::topic_closed);
}

TEST_CASE("broker_port: a segment that declares other parameters than the registry is refused") {
  lone_topic t(params_of("p", 64, 1));
  topic_params other = t.params;
  other.depth = 2;
  std::error_code ec;
  std::string what;
  auto pub = publisher_port::open(t.bus, t.instance, other, ec, what);
  CHECK(ec == errc::corrupt_segment);
  CHECK(what.find("differ from the bus registry") != std::string::npos);
}

TEST_CASE("publisher_port: sequences, size rules and a closed topic") {
  topic_params p = params_of("p", 8, 1);
  lone_topic t(p);
  auto pub = t.publisher();
  CHECK(publish(pub, "a") == 1);
  CHECK(publish(pub, "bb") == 2);
  std::error_code ec;
  CHECK(pub.publish(bytes("123456789"), ec) == 0);
  CHECK(ec == errc::message_too_large);
  recovery_report report;
  CHECK(pub.publish(bytes("c"), ec, &report) == 3);
  CHECK_FALSE(report.recovered);
  CHECK(pub.mutex_recoveries() == 0);
  t.topic.close();
  CHECK(pub.publish(bytes("d"), ec) == 0);
  CHECK(ec == errc::topic_closed);
}

TEST_CASE("publisher_port: a declared type size is enforced below the client API") {
  topic_params p = params_of("typed", 16, 1);
  p.type_size = 4;
  lone_topic t(p);
  auto pub = t.publisher();
  std::error_code ec;
  CHECK(pub.publish(bytes("abc"), ec) == 0);
  CHECK(ec == errc::type_size_mismatch);
  CHECK(pub.publish(bytes("abcd"), ec) == 1);
  CHECK(!ec);
}

TEST_CASE("subscriber_port: in order, skips counted once, cursor kept on a too-small buffer") {
  lone_topic t(params_of("r", 64, 2));
  auto pub = t.publisher();
  auto sub = t.subscriber();
  message_info info;
  CHECK(read_text(sub, info).empty());
  for (int i = 1; i <= 5; ++i) publish(pub, "m" + std::to_string(i));
  // Depth 2 keeps 4 and 5: 1..3 are reported missed, with the first delivery.
  CHECK(read_text(sub, info) == "m4");
  CHECK(info.sequence == 4);
  CHECK(info.missed == 3);
  CHECK(read_text(sub, info) == "m5");
  CHECK(info.missed == 0);
  CHECK(sub.missed_total() == 3);
  CHECK(sub.received_total() == 2);

  publish(pub, "a longer message");
  std::array<std::byte, 4> small{};
  std::error_code ec;
  CHECK(sub.read(small, info, ec) == read_status::buffer_too_small);
  CHECK(info.sequence == 6);
  CHECK(read_text(sub, info) == "a longer message");  // still there
  publish(pub, "skipped");
  CHECK(sub.read(small, info, ec) == read_status::buffer_too_small);
  sub.skip(info);
  CHECK(read_text(sub, info).empty());
  CHECK(sub.received_total() == 4);
}

TEST_CASE("subscriber_port: zero-copy read and latest") {
  lone_topic t(params_of("v", 64, 4));
  auto pub = t.publisher();
  auto sub = t.subscriber();
  std::array<std::byte, 64> buf{};
  message_info info;
  std::error_code ec;
  CHECK_FALSE(sub.latest(buf, info, ec));  // nothing ever published
  publish(pub, "one");
  publish(pub, "two");
  publish(pub, "three");
  CHECK(sub.latest(buf, info, ec));
  CHECK(info.sequence == 3);
  CHECK(info.missed == 2);
  CHECK(sub.latest(buf, info, ec));  // again, uncounted
  CHECK(info.sequence == 3);
  CHECK(info.missed == 0);
  CHECK(sub.received_total() == 1);

  publish(pub, "four");
  std::string seen;
  CHECK(sub.read_in_place(
      [&](const message_info& i, std::span<const std::byte> p) {
        seen.assign(reinterpret_cast<const char*>(p.data()), p.size());
        CHECK(i.sequence == 4);
      },
      ec));
  CHECK(seen == "four");
  CHECK_FALSE(sub.read_in_place([](const message_info&, std::span<const std::byte>) {}, ec));
  CHECK(!ec);
}

TEST_CASE("subscriber_port: waits time out, and return as soon as a message is there") {
  lone_topic t(params_of("w", 64, 1));
  auto pub = t.publisher();
  auto sub = t.subscriber();
  std::error_code ec;
  for (const wait_strategy how :
       {wait_strategy::blocking(), wait_strategy::busy_polling(), wait_strategy::spin_then_blocking(1ms)}) {
    CHECK_FALSE(sub.wait(5ms, how, ec));
    CHECK(!ec);
  }
  publish(pub, "x");
  CHECK(sub.available());
  CHECK(sub.wait(std::nullopt, wait_strategy::blocking(), ec));
}

TEST_CASE("observer_port and broker_port: one snapshot of the figures and the live subscribers") {
  lone_topic t(params_of("s", 64, 1));
  auto pub = t.publisher();
  auto sub = t.subscriber();
  publish(pub, "abc");
  publish(pub, "de");
  message_info info;
  CHECK(read_text(sub, info) == "de");
  const topic_stats st = t.observer().snapshot();
  CHECK(st.info == t.params);
  CHECK(st.published == 2);
  CHECK(st.bytes_published == 5);
  CHECK(st.last_publish_ns > 0);
  REQUIRE(st.subscribers.size() == 1);
  CHECK(st.subscribers[0].pid == platform::current_process().pid);
  CHECK(st.subscribers[0].last_read == 2);
  CHECK(st.subscribers[0].received == 1);
  CHECK(st.subscribers[0].missed == 1);
  CHECK(t.topic.snapshot().published == st.published);
}

TEST_CASE("subscriber_table: full, reaped, and a stale registration frees nothing") {
  std::vector<subscriber_entry> storage(2);
  subscriber_table table({storage.data(), storage.size()});
  const platform::process_identity me = platform::current_process();
  const platform::process_identity dead{0, 0};
  std::error_code ec;
  registration a = table.claim(me, 0, ec);
  registration b = table.claim(dead, 0, ec);
  REQUIRE(!ec);
  CHECK(table.live_count() == 1);  // the dead one is registered but not live
  // Full: claiming reaps the dead entry and takes it.
  registration c = table.claim(me, 7, ec);
  REQUIRE(!ec);
  CHECK(c.index == b.index);
  CHECK(table.live_count() == 2);
  // b's registration is stale now: releasing it must not free c's entry.
  table.release(b);
  CHECK(table.live_count() == 2);
  CHECK_FALSE(table.record(b, 1, 0, 1));
  CHECK(b.index == -1);
  CHECK(table.record(c, 9, 1, 2));
  const auto live = table.live();
  REQUIRE(live.size() == 2);
  CHECK(live[1].last_read == 9);
  registration d = table.claim(me, 0, ec);
  CHECK(ec == errc::too_many_subscribers);
  CHECK(d.index == -1);
  table.release(a);
  table.release(c);
  CHECK(table.live_count() == 0);
}

TEST_CASE("seqlock_read: a slot being rewritten is never delivered, a lower word is corruption") {
  // A ring in private memory: 3 slots of 64 + 64 bytes.
  constexpr std::uint64_t stride = 128;
  alignas(64) std::array<std::byte, 3 * stride> slots{};
  a_u64 write_seq{0};
  const ring_view ring{&write_seq, slots.data(), stride, 3, 1, 64};
  auto write = [&](std::uint64_t seq, const std::string& text, bool complete) {
    slot_header& s = ring.slot(seq);
    write_begin(s, seq);
    std::memcpy(ring_view::payload(s), text.data(), text.size());
    if (complete) write_end(s, seq, text.size(), 42);
  };
  auto copy = [](const message_info&, const slot_keys&, std::span<const std::byte>) { return visit_action::take; };
  std::uint64_t next = 1;
  message_info meta;
  std::error_code ec;
  CHECK(seqlock_read(ring, next, meta, copy, ec) == read_status::empty);

  write(1, "one", true);
  write_seq.store(1);
  CHECK(seqlock_read(ring, next, meta, copy, ec) == read_status::ok);
  CHECK(meta.sequence == 1);
  CHECK(meta.size == 3);
  CHECK(meta.timestamp_ns == 42);
  CHECK(next == 2);

  // Message 3's slot (0) being rewritten with message 6 while the reader
  // wants 3: it is never delivered; after its bounded retries the reader
  // gives up for now, with no error.
  write(2, "two", true);
  write(3, "three", true);
  write_seq.store(3);
  next = 3;
  write(6, "six", false);
  CHECK(seqlock_read(ring, next, meta, copy, ec) == read_status::empty);
  CHECK(!ec);
  CHECK(next == 3);

  // A word below what any publisher wrote for an announced message.
  ring.slot(3).seq.store(2);
  CHECK(seqlock_read(ring, next, meta, copy, ec) == read_status::empty);
  CHECK(ec == errc::corrupt_segment);
}
