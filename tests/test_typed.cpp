// Typed topics across real processes: a topic that declares a type size
// accepts only messages of that size, from every publish path, and a typed
// read never reports success for a message that is not exactly sizeof(T).
#include <doctest/doctest.h>

#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "shmbus/client.hpp"
#include "shmbus/detail/publisher_port.hpp"
#include "shmbus/platform/process.hpp"
#include "support/multiprocess.hpp"
#include "support/payload.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

namespace {

// The size of CTP's depth market data, the issue's example; self-checking
// bytes (make_payload) so a reader can tell a whole message from a partial one.
struct snapshot {
  std::byte bytes[408];
};
constexpr std::byte untouched_byte{0xAB};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

std::string code_name(const std::error_code& ec) {
  if (!ec) return "ok";
  if (ec == errc::type_size_mismatch) return "type_size_mismatch";
  return "other(" + ec.message() + ")";
}

// Publishes message `id` of `size` bytes by `form`: "span", "text" (the
// string_view overload), "ec" (the error_code overload), "raw"
// (detail::publisher_port::publish, below the client API). Reports one line.
void publish_one(publisher& pub, detail::publisher_port& raw, const std::string& form, std::size_t size,
                 std::uint64_t id) {
  std::vector<std::byte> buf(size);
  if (size >= 16) make_payload(id, buf);
  std::error_code ec;
  std::string what;
  std::uint64_t seq = 0;
  try {
    if (form == "span")
      seq = pub.publish(std::span<const std::byte>(buf));
    else if (form == "text")
      seq = pub.publish(std::string_view(reinterpret_cast<const char*>(buf.data()), size));
    else if (form == "ec")
      seq = pub.publish(std::span<const std::byte>(buf), ec);
    else
      seq = raw.publish(buf, ec);
  } catch (const error& e) {
    ec = e.code();
    what = e.what();
  }
  if (ec) {
    signal_parent("refused form=" + form + " size=" + std::to_string(size) + " code=" + code_name(ec));
    if (!what.empty()) signal_parent("what " + what);
  } else {
    signal_parent("published form=" + form + " size=" + std::to_string(size) + " seq=" + std::to_string(seq));
  }
}

}  // namespace

// Args: bus, topic, then FORM:SIZE items, comma-separated. Message ids count
// the items from 1.
SHMBUS_CHILD("typed-publisher")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto pub = b.make_publisher(a.at(1));  // untyped open: the topic's own rule must hold
  detail::publisher_port raw(open_raw(a.at(0), a.at(1)));
  std::uint64_t id = 0;
  for (const auto& item : split(a.at(2))) {
    const auto colon = item.find(':');
    publish_one(pub, raw, item.substr(0, colon), std::stoul(item.substr(colon + 1)), ++id);
  }
  signal_parent("done");
  return 0;
}

// A hostile publisher that ignores the API: writes a complete-looking
// 5-byte message straight into the ring (the next slot, a valid seqlock
// word), then one correct message through the API.
SHMBUS_CHILD("typed-forger")(const std::vector<std::string>& a) {
  auto raw = open_raw(a.at(0), a.at(1));
  detail::topic_geometry g{};
  if (detail::compute_geometry(raw.params(), g, nullptr)) return 2;
  auto* base = reinterpret_cast<std::byte*>(&raw.header());
  const std::uint64_t seq = raw.header().write_seq.load() + 1;
  auto* slot = reinterpret_cast<detail::slot_header*>(base + g.slots_offset + (seq % g.slot_count) * g.slot_stride);
  slot->seq.store(2 * seq - 1);
  std::memcpy(reinterpret_cast<std::byte*>(slot) + sizeof(detail::slot_header), "hello", 5);
  slot->size.store(5);
  slot->timestamp_ns.store(platform::monotonic_ns());
  slot->seq.store(2 * seq);
  raw.header().publish_seq.store(seq);
  raw.header().write_seq.store(seq);
  signal_parent("forged seq=" + std::to_string(seq));
  bus b(a.at(0));
  auto pub = b.make_publisher<snapshot>(a.at(1));
  snapshot s;
  make_payload(2, s.bytes);
  signal_parent("published seq=" + std::to_string(pub.publish_value(s)));
  return 0;
}

// Subscribes with sizeof(snapshot) and, once told "go" on stdin, makes N
// typed reads the way FORM says: "throwing" try_read(snapshot&,
// message_info*), "ec" its error_code form, "info" its error_info form,
// "message" try_read(message&) then message::as<snapshot>(), "wait" the
// typed wait(snapshot&, timeout, message_info*), "wait-info" its error_info
// form. One line per read: what it returned, the
// message_info, whether the caller's object was left as it was, and whether
// it holds a whole message.
SHMBUS_CHILD("typed-reader")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto sub = b.make_subscriber<snapshot>(a.at(1));
  const int reads = std::stoi(a.at(2));
  const std::string form = a.size() > 3 ? a.at(3) : "throwing";
  message m;
  signal_parent("ready");
  std::string line;
  if (!std::getline(std::cin, line) || line != "go") return 2;
  for (int i = 1; i <= reads; ++i) {
    snapshot s;
    std::memset(s.bytes, static_cast<int>(untouched_byte), sizeof s.bytes);
    message_info info{};
    std::string outcome, what;
    try {
      if (form == "ec") {
        std::error_code ec;
        const bool got = sub.try_read(s, &info, ec);
        outcome = got ? "got" : ec == errc::type_size_mismatch ? "mismatch" : ec ? "error" : "none";
      } else if (form == "info" || form == "wait-info") {
        error_info err;
        const bool got =
            form == "info" ? sub.try_read(s, &info, err) : sub.wait(s, std::chrono::seconds(10), &info, err);
        outcome = got ? "got" : err.code == errc::type_size_mismatch ? "mismatch" : err ? "error" : "none";
        what = err.what;
      } else if (form == "wait") {
        // Every message is published before "go": a wait that times out is a failure.
        outcome = sub.wait(s, std::chrono::seconds(10), &info) ? "got" : "timeout";
      } else if (form == "message") {
        const bool got = sub.try_read(m);
        info = m.info();
        if (got) s = m.as<snapshot>();
        outcome = got ? "got" : "none";
      } else {
        outcome = sub.try_read(s, &info) ? "got" : "none";
      }
    } catch (const error& e) {
      outcome = e.code() == errc::type_size_mismatch ? "mismatch" : "error";
      what = e.what();
    }
    bool untouched = true;
    for (std::byte x : s.bytes) untouched &= x == untouched_byte;
    const bool whole = payload_ok(s.bytes);
    signal_parent("read outcome=" + outcome + " seq=" + std::to_string(info.sequence) +
                  " size=" + std::to_string(info.size) + " untouched=" + std::to_string(untouched) +
                  " whole=" + std::to_string(whole) + " id=" + std::to_string(whole ? payload_id(s.bytes) : 0));
    if (!what.empty()) signal_parent("what " + what);
  }
  signal_parent("result received=" + std::to_string(sub.received_total()) +
                " missed=" + std::to_string(sub.missed_total()));
  return 0;
}

namespace {

// The next line of `p` starting with `prefix`; fails loudly on anything else.
std::string next_line(child_process& p, const std::string& prefix) {
  const auto line = p.read_line();
  REQUIRE_MESSAGE(line.has_value(), "child ended before a '" << prefix << "' line");
  REQUIRE_MESSAGE(line->rfind(prefix, 0) == 0, "expected '" << prefix << "...', got: " << *line);
  return *line;
}

bool has(const std::string& line, const std::string& token) { return line.find(token) != std::string::npos; }

}  // namespace

TEST_CASE("typed topic: every publish path refuses a message of another size, naming both sizes") {
  test_bus tb({topic("md", 512, 8, sizeof(snapshot))});
  auto reader = started_child("typed-reader", {tb.name, "md", "3"});
  auto pub = child_process::self("typed-publisher",
                                 {tb.name, "md", "span:5,span:408,text:5,text:409,ec:5,ec:408,raw:5,raw:407,raw:408"});
  for (const auto& [form, size] : std::vector<std::pair<std::string, std::string>>{{"span", "5"},
                                                                                   {"span", "408"},
                                                                                   {"text", "5"},
                                                                                   {"text", "409"},
                                                                                   {"ec", "5"},
                                                                                   {"ec", "408"},
                                                                                   {"raw", "5"},
                                                                                   {"raw", "407"},
                                                                                   {"raw", "408"}}) {
    CAPTURE(form);
    CAPTURE(size);
    const std::string line = pub.read_line().value();
    INFO(line);
    if (size == "408") {
      CHECK(has(line, "published form=" + form + " size=408 "));
      continue;
    }
    CHECK(line == "refused form=" + form + " size=" + size + " code=type_size_mismatch");
    // The throwing forms: one sentence naming the topic and both sizes.
    if ((form == "span" || form == "text") && has(line, "refused "))
      CHECK(next_line(pub, "what ") ==
            "what topic 'md' declares a 408-byte type, the message is " + size + " bytes; nothing was published");
  }
  CHECK(pub.expect_line("done") == "done");
  CHECK(pub.wait() == 0);

  // The subscriber (another process) sees exactly the three whole messages.
  reader.write("go\n");
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    const std::string line = next_line(reader, "read ");
    INFO(line);
    CHECK(has(line, "outcome=got seq=" + std::to_string(seq) + " size=408 untouched=0 whole=1"));
  }
  const std::string result = reader.expect_line("result");
  CHECK(field(result, "received") == 3);
  CHECK(field(result, "missed") == 0);
  CHECK(reader.wait() == 0);
}

namespace {

// An untyped topic may carry any size; a subscriber opened with
// sizeof(snapshot) reads it with a typed call (`form`, see typed-reader).
void check_typed_reads_on_untyped_topic(const std::string& form) {
  CAPTURE(form);
  test_bus tb({topic("raw", 512, 8)});
  auto reader = started_child("typed-reader", {tb.name, "raw", "5", form});
  auto pub = child_process::self("typed-publisher", {tb.name, "raw", "span:5,span:408,span:500,span:407,span:408"});
  for (int i = 0; i < 5; ++i) CHECK(has(next_line(pub, "published "), "seq=" + std::to_string(i + 1)));
  CHECK(pub.expect_line("done") == "done");
  CHECK(pub.wait() == 0);

  reader.write("go\n");
  const std::vector<std::pair<std::string, std::string>> expected{
      {"mismatch", "5"}, {"got", "408"}, {"mismatch", "500"}, {"mismatch", "407"}, {"got", "408"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& [outcome, size] = expected[i];
    const std::string seq = std::to_string(i + 1);
    const std::string line = next_line(reader, "read ");
    INFO(line);
    if (outcome == "got") {
      // The whole message, exactly as published.
      CHECK(line == "read outcome=got seq=" + seq + " size=408 untouched=0 whole=1 id=" + seq);
      continue;
    }
    // Refused with the message's facts; the caller's object is as it was.
    CHECK(line == "read outcome=mismatch seq=" + seq + " size=" + size + " untouched=1 whole=0 id=0");
    if (form != "ec" && form != "message")
      CHECK(next_line(reader, "what ") == "what topic 'raw': message #" + seq + " is " + size +
                                              " bytes, not the caller's 408-byte type; it was skipped");
    if (form == "message")
      CHECK(next_line(reader, "what ") == "what message #" + seq + " of " + size + " bytes read as a 408-byte type");
  }
  // The refused messages were consumed (counted as received), none missed.
  const std::string result = reader.expect_line("result");
  CHECK(field(result, "received") == 5);
  CHECK(field(result, "missed") == 0);
  CHECK(reader.wait() == 0);
}

}  // namespace

TEST_CASE("typed read: a message of another size on an untyped topic is refused, consumed, and the stream goes on") {
  check_typed_reads_on_untyped_topic("throwing");
}

TEST_CASE("typed read, error_code form and message::as<T>: the same refusals, the stream goes on") {
  check_typed_reads_on_untyped_topic("ec");
  check_typed_reads_on_untyped_topic("message");
}

TEST_CASE("typed read, error_info form: the throwing form's sentence, word for word, without throwing") {
  check_typed_reads_on_untyped_topic("info");
}

TEST_CASE("typed wait: the same reads as typed try_read, refusals and their sentences included") {
  check_typed_reads_on_untyped_topic("wait");
  check_typed_reads_on_untyped_topic("wait-info");
}

TEST_CASE("typed read: a wrong-size message forged in shared memory on a typed topic never fills the caller's struct") {
  test_bus tb({topic("md", 512, 8, sizeof(snapshot))});
  auto reader = started_child("typed-reader", {tb.name, "md", "2", "throwing"});
  auto forger = child_process::self("typed-forger", {tb.name, "md"});
  CHECK(forger.expect_line("forged") == "forged seq=1");
  CHECK(forger.expect_line("published") == "published seq=2");
  CHECK(forger.wait() == 0);

  reader.write("go\n");
  std::string line = next_line(reader, "read ");
  CHECK(line == "read outcome=mismatch seq=1 size=5 untouched=1 whole=0 id=0");
  CHECK(next_line(reader, "what ") ==
        "what topic 'md': message #1 is 5 bytes, not the caller's 408-byte type; it was skipped");
  line = next_line(reader, "read ");
  CHECK(line == "read outcome=got seq=2 size=408 untouched=0 whole=1 id=2");
  CHECK(reader.wait() == 0);
}

TEST_CASE("typed read: a gap before a refused message is reported with it, once") {
  // depth 2: after four publishes only #3 and #4 are retained.
  test_bus tb({topic("raw", 512, 2)});
  bus b(tb.name);
  auto sub = b.make_subscriber<snapshot>("raw");
  auto pub = b.make_publisher("raw");
  snapshot s;
  for (std::uint64_t id = 1; id <= 2; ++id) {
    make_payload(id, s.bytes);
    pub.publish_value(s);
  }
  pub.publish("hello");
  make_payload(4, s.bytes);
  pub.publish_value(s);

  message_info info{};
  std::error_code ec;
  CHECK_FALSE(sub.try_read(s, &info, ec));
  CHECK(ec == errc::type_size_mismatch);
  CHECK(info.sequence == 3);
  CHECK(info.size == 5);
  CHECK(info.missed == 2);  // #1 and #2, overwritten before this read
  REQUIRE(sub.try_read(s, &info, ec));
  CHECK(!ec);
  CHECK(info.sequence == 4);
  CHECK(info.missed == 0);
  CHECK(payload_id(s.bytes) == 4);
  CHECK_FALSE(sub.try_read(s, &info, ec));
  CHECK(!ec);
  CHECK(sub.missed_total() == 2);
  CHECK(sub.received_total() == 2);
}
