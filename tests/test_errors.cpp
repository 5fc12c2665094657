// Every error a client can meet is produced, and its message checked.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>

#include "shmbus/client.hpp"
#include "shmbus/detail/layout.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;

namespace {

// Runs `f`, expects a shmbus error with `code` whose message contains `text`.
template <class F>
void expect_error(F&& f, std::error_code code, const std::string& text) {
  try {
    f();
    FAIL("no error; expected: " << text);
  } catch (const std::system_error& e) {
    CHECK(e.code() == code);
    CHECK_MESSAGE(std::string(e.what()).find(text) != std::string::npos, "message: " << e.what());
  }
}

// Maps a topic's segment read-write to damage it as a foreign process could.
platform::shared_memory_region raw_topic(const std::string& bus, const std::string& topic) {
  return platform::shared_memory_region(open_only, topic_object(bus, topic), access::read_write);
}

}  // namespace

TEST_CASE("no broker") {
  const std::string name = unique_bus();
  expect_error([&] { bus b(name); }, errc::no_broker, "no broker is running on bus '" + name + "'");
  std::error_code ec;
  bus b(name, ec);
  CHECK(ec == errc::no_broker);
}

TEST_CASE("invalid bus and topic names are rejected before anything is created") {
  expect_error([] { bus b("bad/name"); }, errc::invalid_name, "bus name contains '/'");
  test_bus tb({topic("t", 64, 1)});
  bus b(tb.name);
  expect_error([&] { b.make_publisher("../etc"); }, errc::invalid_name, "topic name");
  expect_error([] { broker br(options("ok", {topic("a\\b", 64, 1)})); }, errc::invalid_name, "'\\'");
  CHECK(platform::shared_memory_region::list(detail::bus_object_prefix("ok")).empty());
}

TEST_CASE("broker already running") {
  test_bus tb({topic("t", 64, 1)});
  expect_error([&] { broker second(options(tb.name, {topic("t", 64, 1)})); }, errc::broker_running,
               "already owns bus '" + tb.name + "'");
}

TEST_CASE("unknown topic lists the topics that exist") {
  test_bus tb({topic("alpha", 64, 1), topic("beta", 64, 1)});
  bus b(tb.name);
  expect_error([&] { b.make_subscriber("gamma"); }, errc::unknown_topic, "has no topic 'gamma' (topics: alpha, beta)");
  std::error_code ec;
  auto p = b.make_publisher("gamma", 0, ec);
  CHECK(ec == errc::unknown_topic);
}

TEST_CASE("message too large: nothing is published") {
  one_topic fixture(topic("t", 16, 4));
  auto& [tb, b, pub, sub] = fixture;
  expect_error([&] { pub.publish(std::string(17, 'x')); }, errc::message_too_large,
               "message of 17 bytes exceeds max_message_size 16");
  message m;
  CHECK_FALSE(sub.try_read(m));
  CHECK(pub.publish(std::string(16, 'x')) == 1);
}

TEST_CASE("type size mismatch, on publishers and subscribers") {
  test_bus tb({topic("typed", 64, 1, 24), topic("raw", 16, 1)});
  bus b(tb.name);
  expect_error([&] { b.make_publisher<std::uint64_t>("typed"); }, errc::type_size_mismatch,
               "declares a 24-byte type, the caller's type is 8 bytes");
  expect_error([&] { b.make_subscriber<std::uint64_t>("typed"); }, errc::type_size_mismatch, "24-byte");
  struct big {
    char x[32];
  };
  expect_error([&] { b.make_subscriber<big>("raw"); }, errc::type_size_mismatch, "holds at most 16 bytes");
  struct ok24 {
    char x[24];
  };
  CHECK_NOTHROW(b.make_publisher<ok24>("typed"));
}

TEST_CASE("ABI mismatch in a topic segment") {
  test_bus tb({topic("t", 64, 1)});
  auto raw = raw_topic(tb.name, "t");
  reinterpret_cast<detail::topic_header*>(raw.data())->preamble.abi_version = detail::abi_version + 1;
  bus b(tb.name);
  expect_error([&] { b.make_subscriber("t"); }, errc::abi_mismatch,
               "topic 't': topic segment ABI version " + std::to_string(detail::abi_version + 1));
}

TEST_CASE("corrupt or foreign segment at a topic's name") {
  test_bus tb({topic("t", 64, 1)});
  auto raw = raw_topic(tb.name, "t");
  std::memset(raw.data(), 0x5a, 64);
  bus b(tb.name);
  expect_error([&] { b.make_publisher("t"); }, errc::corrupt_segment, "not a shmbus topic segment");
}

TEST_CASE("corrupt registry") {
  test_bus tb({topic("t", 64, 1)});
  platform::shared_memory_region raw(open_only, detail::registry_object_name(tb.name), access::read_write);
  reinterpret_cast<detail::registry_header*>(raw.data())->topic_count = 100000;
  expect_error([&] { bus b(tb.name); }, errc::corrupt_segment, "registry of bus '" + tb.name + "'");
}

TEST_CASE("too many subscribers") {
  auto t = topic("t", 64, 1);
  t.max_subscribers = 2;
  test_bus tb({t});
  bus b(tb.name);
  auto s1 = b.make_subscriber("t");
  auto s2 = b.make_subscriber("t");
  expect_error([&] { b.make_subscriber("t"); }, errc::too_many_subscribers, "all 2 subscriber slots");
  { auto gone = std::move(s1); }  // a closed subscriber frees its slot
  CHECK_NOTHROW(b.make_subscriber("t"));
}

TEST_CASE("bad names are refused with a reason before any object is created") {
  for (const std::string& bad :
       std::vector<std::string>{"a/b", "a\\b", "..", "a.b", "tab\there", "caf\xc3\xa9", std::string(33, 'b')}) {
    CAPTURE(bad);
    expect_error([&] { bus b(bad); }, errc::invalid_name, "bus name");
    broker_options o = options(bad, {topic("t", 64, 1)});
    expect_error([&] { broker brk(o); }, errc::invalid_name, "bus name");
  }
  const std::string name = unique_bus();
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "a\\b", "..", ".x", "sp ace", "caf\xc3\xa9", std::string(64, 't')}) {
    CAPTURE(bad);
    expect_error(
        [&] {
          broker brk(options(name, {topic("ok", 64, 1), topic(bad, 64, 1)}));
        },
        errc::invalid_name, "topic name");
    // Nothing of the bus exists: not even the registry that comes first.
    std::error_code ec;
    std::string what;
    detail::registry::open(name, ec, what);
    CHECK(ec == std::errc::no_such_file_or_directory);
  }
}

namespace {

// What the throwing form threw: its code and what().
template <class F>
error_info thrown_by(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return {e.code(), e.what()};
  }
  FAIL("no error thrown");
  return {};
}

// The error_info form reports what the throwing form throws, word for word.
template <class Throwing, class WithInfo>
void same_report(std::error_code code, Throwing&& throwing, WithInfo&& with_info) {
  const error_info thrown = thrown_by(throwing);
  error_info err{make_error_code(errc::no_broker), "stale"};
  with_info(err);
  CHECK(thrown.code == code);
  CHECK(err.code == code);
  CHECK(static_cast<bool>(err));
  CHECK(err.what == thrown.what);
}

}  // namespace

TEST_CASE("error_info forms report the throwing form's code and sentence, and clear it on success") {
  const std::string missing = unique_bus();
  same_report(
      errc::no_broker, [&] { bus b(missing); }, [&](error_info& e) { bus b(missing, e); });

  auto tb = std::make_unique<test_bus>(std::vector<topic_config>{topic("t", 16, 4), topic("typed", 64, 1, 24)});
  bus b(tb->name);
  same_report(
      errc::unknown_topic, [&] { b.make_publisher("nope"); }, [&](error_info& e) { b.make_publisher("nope", 0, e); });
  same_report(
      errc::type_size_mismatch, [&] { b.make_subscriber<std::uint64_t>("typed"); },
      [&](error_info& e) { b.make_subscriber<std::uint64_t>("typed", e); });
  std::error_code ec;
  CHECK_FALSE(b.make_publisher<std::uint64_t>("typed", ec));
  CHECK(ec == errc::type_size_mismatch);

  auto pub = b.make_publisher("t");
  auto sub = b.make_subscriber("t");
  const std::string big(17, 'x');
  same_report(
      errc::message_too_large, [&] { pub.publish(big); }, [&](error_info& e) { pub.publish(big, e); });
  CHECK(pub.publish("0123456789") == 1);
  std::array<std::byte, 4> small{};
  same_report(
      errc::buffer_too_small, [&] { sub.try_read(std::span<std::byte>(small)); },
      [&](error_info& e) { sub.try_read(std::span<std::byte>(small), e); });
  message m;
  error_info err{make_error_code(errc::no_broker), "stale"};
  CHECK(sub.try_read(m, err));
  CHECK_FALSE(err);
  CHECK(err.what.empty());
  CHECK(m.text() == "0123456789");

  // Once the broker stops, every read and publish says so, in both forms
  // (latest() still hands out the newest message: it is a value, not news).
  tb.reset();
  const auto none = std::chrono::milliseconds(0);
  const auto ignore = [](const message_info&, std::span<const std::byte>) {};
  same_report(
      errc::topic_closed, [&] { sub.try_read(m); }, [&](error_info& e) { sub.try_read(m, e); });
  same_report(
      errc::topic_closed, [&] { sub.wait(m, none); }, [&](error_info& e) { sub.wait(m, none, e); });
  same_report(
      errc::topic_closed, [&] { (void)sub.wait_available(none); }, [&](error_info& e) { sub.wait_available(none, e); });
  same_report(
      errc::topic_closed, [&] { sub.read_view(ignore); }, [&](error_info& e) { sub.read_view(ignore, e); });
  same_report(
      errc::topic_closed, [&] { pub.publish_value(std::uint64_t{1}); },
      [&](error_info& e) { pub.publish_value(std::uint64_t{1}, e); });
  const error_info stats_error = thrown_by([&] { (void)b.stats(); });
  CHECK(stats_error);
  same_report(
      stats_error.code, [&] { (void)b.stats(); }, [&](error_info& e) { (void)b.stats(e); });
}

TEST_CASE("empty publishers and subscribers are false, and every call says so without crashing") {
  const std::string empty_publisher = "publisher is empty (default-constructed or moved-from)";
  const std::string empty_subscriber = "subscriber is empty (default-constructed or moved-from)";
  const std::error_code invalid = errc::invalid_argument;
  publisher p;
  CHECK_FALSE(p.is_open());
  CHECK_FALSE(p);
  CHECK(p.mutex_recoveries() == 0);
  same_report(
      invalid, [&] { p.publish("x"); }, [&](error_info& e) { p.publish("x", e); });
  CHECK(thrown_by([&] { p.publish_value(1); }).what == empty_publisher);
  std::error_code ec;
  CHECK(p.publish("x", ec) == 0);
  CHECK(ec == errc::invalid_argument);

  subscriber s;
  CHECK_FALSE(s.is_open());
  CHECK_FALSE(s);
  CHECK(s.received_total() == 0);
  message m;
  int value = 0;
  const auto none = std::chrono::milliseconds(0);
  const auto ignore = [](const message_info&, std::span<const std::byte>) {};
  same_report(
      invalid, [&] { s.try_read(m); }, [&](error_info& e) { s.try_read(m, e); });
  same_report(
      invalid, [&] { s.wait(m, none); }, [&](error_info& e) { s.wait(m, none, e); });
  same_report(
      invalid, [&] { s.latest(m); }, [&](error_info& e) { s.latest(m, e); });
  same_report(
      invalid, [&] { s.try_read(value); }, [&](error_info& e) { s.try_read(value, nullptr, e); });
  same_report(
      invalid, [&] { s.wait(value, none); }, [&](error_info& e) { s.wait(value, none, nullptr, e); });
  same_report(
      invalid, [&] { s.read_view(ignore); }, [&](error_info& e) { s.read_view(ignore, e); });
  same_report(
      invalid, [&] { (void)s.wait_available(none); }, [&](error_info& e) { s.wait_available(none, e); });
  CHECK(thrown_by([&] { s.try_read(m); }).what == empty_subscriber);
  CHECK(value == 0);

  // Moved-from objects are empty too; an empty one can be assigned an open one.
  test_bus tb({topic("t", 64, 4)});
  bus b(tb.name);
  publisher pub = b.make_publisher("t");
  CHECK(pub.is_open());
  publisher moved = std::move(pub);
  CHECK_FALSE(pub.is_open());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
  CHECK(thrown_by([&] { pub.publish("x"); }).what == empty_publisher);
  s = b.make_subscriber("t");
  CHECK(s);
  CHECK(moved.publish("x") == 1);
  CHECK(s.try_read(m));
}

TEST_CASE("shmbus codes compare equal to the portable conditions they mean") {
  CHECK(make_error_code(errc::permission_denied) == std::errc::permission_denied);
  CHECK(make_error_code(errc::invalid_argument) == std::errc::invalid_argument);
  CHECK(make_error_code(errc::message_too_large) == std::errc::message_size);
  CHECK(make_error_code(errc::not_found) == std::errc::no_such_file_or_directory);
  // A code with no portable meaning matches none, and stays a shmbus condition.
  CHECK(make_error_code(errc::no_broker) != std::errc::no_such_file_or_directory);
  CHECK(make_error_code(errc::no_broker).default_error_condition().category() == error_category());
  CHECK(make_error_code(errc::invalid_name) != std::errc::permission_denied);
  // Each maps to its own condition only.
  CHECK(make_error_code(errc::permission_denied) != std::errc::invalid_argument);
}

TEST_CASE("an OS refusal becomes errc::permission_denied by condition, native code kept in the message") {
  // The OS's own access-denied code: EACCES on POSIX, ERROR_ACCESS_DENIED
  // (win32 category) on Windows; either compares equal to the condition.
  const std::error_code os_codes[] = {std::make_error_code(std::errc::permission_denied),
                                      std::make_error_code(std::errc::operation_not_permitted)};
  for (const std::error_code& os : os_codes) {
    CAPTURE(os.message());
    std::string what = "open registry 'x'";
    const std::error_code ec = translate_os_error(os, what);
    CHECK(ec == errc::permission_denied);
    CHECK(ec == std::errc::permission_denied);
    CHECK(what == "open registry 'x': " + os.message() + " [native error " + std::to_string(os.value()) + "]");
  }
  // Other codes pass unchanged, and so does their text.
  std::string what = "open registry 'x'";
  const auto missing = std::make_error_code(std::errc::no_such_file_or_directory);
  CHECK(translate_os_error(missing, what) == missing);
  CHECK(translate_os_error(make_error_code(errc::corrupt_segment), what) == errc::corrupt_segment);
  CHECK(what == "open registry 'x'");
}
