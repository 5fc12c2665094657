// Unit tests: naming rules, configuration parsing, segment validation, the
// event, error messages.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "shmbus/broker.hpp"
#include "shmbus/detail/layout.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/child_process.hpp"

using namespace shmbus;

TEST_CASE("bus and topic names: good ones pass, bad ones are rejected with a reason") {
  CHECK_FALSE(validate_bus_name("default"));
  CHECK_FALSE(validate_bus_name("md_feed-2"));
  CHECK_FALSE(validate_topic_name("md.ES.depth"));
  CHECK_FALSE(validate_topic_name(std::string(63, 't')));
  const std::vector<std::pair<std::string, std::string>> bad_topics = {
      {"", "empty"},
      {std::string(64, 't'), "longer than 63"},
      {"a/b", "'/'"},
      {"a\\b", "'\\'"},
      {"a..b", "'..'"},
      {"..", "start with"},
      {".hidden", "start with"},
      {"tab\there", "control character"},
      {"caf\xc3\xa9", "non-ASCII"},
      {"sp ace", "' '"},
  };
  for (const auto& [name, reason] : bad_topics) {
    std::string why;
    CAPTURE(name);
    CHECK(validate_topic_name(name, &why) == errc::invalid_name);
    CHECK(why.find(reason) != std::string::npos);
  }
  std::string why;
  CHECK(validate_bus_name("a.b", &why) == errc::invalid_name);  // '.' separates object names
  CHECK(validate_bus_name(std::string(33, 'b'), &why) == errc::invalid_name);
}

TEST_CASE("error codes have the shmbus category and readable messages") {
  std::error_code ec = errc::no_broker;
  CHECK(std::string(ec.category().name()) == "shmbus");
  CHECK(ec.message().find("no broker") != std::string::npos);
  try {
    throw_error(errc::unknown_topic, "bus 'x' has no topic 'y'");
  } catch (const std::system_error& e) {
    CHECK(e.code() == errc::unknown_topic);
    CHECK(std::string(e.what()) == "bus 'x' has no topic 'y'");
  }
  try {
    throw_error(std::error_code(ENOENT, std::system_category()), "shm_open('/x')");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("shm_open('/x'): ") == 0);
    CHECK(std::string(e.what()).find("native error 2") != std::string::npos);
  }
}

TEST_CASE("topic specs from --topic") {
  auto t = parse_topic_spec("prices:512:64");
  CHECK(t.name == "prices");
  CHECK(t.max_message_size == 512);
  CHECK(t.depth == 64);
  t = parse_topic_spec("frames:4M");
  CHECK(t.max_message_size == 4u << 20);
  CHECK(t.depth == 1);
  t = parse_topic_spec("status");
  CHECK(t.max_message_size == 4096);
  CHECK(t.key_capacity == 0);
  t = parse_topic_spec("md:408:4096:25000");  // a fourth field: a keyed topic
  CHECK(t.depth == 4096);
  CHECK(t.key_capacity == 25000);
  CHECK(t.keyed());
  CHECK_THROWS_WITH_AS(parse_topic_spec("md:408:64:many"), doctest::Contains("keys"), std::system_error);
  CHECK_THROWS_WITH_AS(parse_topic_spec("p:abc"), doctest::Contains("not a number"), std::system_error);
  CHECK_THROWS_WITH_AS(parse_topic_spec("a/b:12"), doctest::Contains("'/'"), std::system_error);
  CHECK_THROWS_WITH_AS(parse_topic_spec("p:2G"), doctest::Contains("larger than"), std::system_error);
}

TEST_CASE("config file: topics, broker settings, and errors that name file and line") {
  broker_options o;
  load_config_text(R"(# market data
[broker]
bus = md
mode = 0660

[topic prices]
max_message_size = 512   ; one snapshot
depth = 1024
type_size = 512

[topic status]

[topic md]
max_message_size = 408
depth = 4096
keys = 25000
)",
                   "md.ini", o);
  CHECK(o.bus == "md");
  CHECK(o.mode == 0660);
  REQUIRE(o.topics.size() == 3);
  CHECK(o.topics[2].key_capacity == 25000);
  CHECK(o.topics[1].key_capacity == 0);
  CHECK(o.topics[0].name == "prices");
  CHECK(o.topics[0].depth == 1024);
  CHECK(o.topics[0].type_size == 512);
  CHECK(o.topics[1].name == "status");
  CHECK(o.topics[1].max_message_size == 4096);

  auto error_of = [](const std::string& text) {
    broker_options x;
    try {
      load_config_text(text, "bad.ini", x);
    } catch (const std::system_error& e) {
      CHECK(e.code() == errc::config_error);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of("[topic a]\ndepth = x\n") == "bad.ini:2: depth 'x' is not a number");
  CHECK(error_of("\n\n[topic a]\nsize = 1\n").find("bad.ini:4: unknown topic key 'size'") == 0);
  CHECK(error_of("depth = 1\n").find("bad.ini:1: 'depth' outside a section") == 0);
  CHECK(error_of("[topic a]\n[topic a]\n").find("bad.ini:2: topic 'a' is defined twice") == 0);
  CHECK(error_of("[topics]\n").find("bad.ini:1: unknown section") == 0);
  CHECK(error_of("[topic a/b]\n").find("bad.ini:1: topic name contains '/'") == 0);
  CHECK(error_of("[broker]\nbus = x y\n").find("bad.ini:2:") == 0);
  CHECK(error_of("[topic a\n").find("bad.ini:1: section header lacks ']'") == 0);

  broker_options missing;
  CHECK_THROWS_WITH_AS(load_config_file("/nonexistent/shmbus.ini", missing),
                       doctest::Contains("/nonexistent/shmbus.ini: cannot open"), std::system_error);
}

TEST_CASE("topic geometry rejects out-of-range parameters") {
  detail::topic_params p;
  p.name = "t";
  detail::topic_geometry g{};
  std::string why;
  p.max_message_size = 0;
  CHECK(detail::compute_geometry(p, g, &why) == errc::invalid_argument);
  p.max_message_size = 64;
  p.depth = 0;
  CHECK(detail::compute_geometry(p, g, &why) == errc::invalid_argument);
  p.depth = 1;
  CHECK_FALSE(detail::compute_geometry(p, g, &why));
  CHECK(g.slot_count == 3);  // a latest-value topic keeps spare buffers
  p.depth = 64;
  CHECK_FALSE(detail::compute_geometry(p, g, &why));
  CHECK(g.slot_count == 65);
  p.type_size = 65;
  CHECK(detail::compute_geometry(p, g, &why) == errc::invalid_argument);
}

namespace {
std::vector<std::byte> valid_segment(std::string_view name, std::uint64_t max, std::uint32_t depth) {
  detail::topic_params p;
  p.name = std::string(name);
  p.max_message_size = max;
  p.depth = depth;
  detail::topic_geometry g{};
  REQUIRE_FALSE(detail::compute_geometry(p, g, nullptr));
  std::vector<std::byte> out(g.total_size);
  alignas(64) static std::byte scratch[1 << 16];  // aligned like a mapping
  REQUIRE(g.total_size <= sizeof scratch);
  std::memset(scratch, 0, sizeof scratch);
  detail::init_topic_header(scratch, p, g);
  std::memcpy(out.data(), scratch, g.total_size);
  return out;
}
}  // namespace

TEST_CASE("segment validation: each kind of damage is a clear error, never a crash") {
  auto seg = valid_segment("t", 64, 4);
  std::string why;
  CHECK_FALSE(detail::validate_topic(seg, "t", &why));

  SUBCASE("truncated") {
    CHECK(detail::validate_topic(std::span(seg).first(100), "t", &why) == errc::corrupt_segment);
    CHECK(why.find("smaller than a topic header") != std::string::npos);
    CHECK(detail::validate_topic(std::span(seg).first(seg.size() - 1), "t", &why) == errc::corrupt_segment);
    CHECK(why.find("header claims") != std::string::npos);
  }
  SUBCASE("foreign bytes") {
    std::vector<std::byte> foreign(seg.size(), std::byte{'x'});
    CHECK(detail::validate_topic(foreign, "t", &why) == errc::corrupt_segment);
    CHECK(why.find("bad magic") != std::string::npos);
  }
  SUBCASE("other ABI version") {
    reinterpret_cast<detail::topic_header*>(seg.data())->preamble.abi_version = 99;
    CHECK(detail::validate_topic(seg, "t", &why) == errc::abi_mismatch);
    CHECK(why.find("ABI version 99") != std::string::npos);
  }
  SUBCASE("header claims more than the mapping") {
    auto* h = reinterpret_cast<detail::topic_header*>(seg.data());
    h->decl.depth = 1000;
    h->slot_count = 1001;
    h->preamble.total_size = 1ULL << 30;
    CHECK(detail::validate_topic(seg, "t", &why) == errc::corrupt_segment);
  }
  SUBCASE("inconsistent geometry") {
    reinterpret_cast<detail::topic_header*>(seg.data())->slot_stride = 8;
    CHECK(detail::validate_topic(seg, "t", &why) == errc::corrupt_segment);
  }
  SUBCASE("wrong topic") { CHECK(detail::validate_topic(seg, "other", &why) == errc::corrupt_segment); }
  SUBCASE("random damage never crashes and never passes with a bad geometry") {
    std::mt19937_64 rng(12345);
    for (int i = 0; i < 20000; ++i) {
      auto copy = seg;
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) copy[rng() % sizeof(detail::topic_header)] = std::byte(rng());
      if (!detail::validate_topic(copy, "", &why)) {
        const auto* h = reinterpret_cast<const detail::topic_header*>(copy.data());
        CHECK(h->preamble.total_size <= copy.size());
        CHECK(h->preamble.header_size + h->slot_count * h->slot_stride <= copy.size());
      }
    }
  }
}

TEST_CASE("event: a set between prepare_wait and wait is never lost, and timeouts are honoured") {
  alignas(64) static unsigned char storage[platform::named_event::storage_size];
  static std::atomic<std::uint32_t> waiter_word{0};
  platform::named_event ev(create_only, "unit.event", storage, {&waiter_word, sizeof waiter_word, 1});
  auto t = ev.prepare_wait();
  ev.set();
  CHECK(ev.wait(t, 0, std::nullopt));  // returns at once: the set came after the token
  t = ev.prepare_wait();
  const auto t0 = platform::named_event::clock::now();
  CHECK_FALSE(ev.wait(t, 0, t0 + std::chrono::milliseconds(30)));
  CHECK(platform::named_event::clock::now() - t0 >= std::chrono::milliseconds(30));
  // A sleeping waiter is woken by a set from another thread.
  t = ev.prepare_wait();
  std::thread waker([&] { ev.set(); });
  CHECK(ev.wait(t, 0, platform::named_event::clock::now() + std::chrono::seconds(10)));
  waker.join();
}

TEST_CASE("shared memory region: create_only refuses an existing name, open_only a missing one") {
  const std::string name = "shmbus.unit." + shmbus::test::unique_bus();
  platform::shared_memory_region r(create_only, name, 4096);
  CHECK(r.size() == 4096);
  std::error_code ec;
  platform::shared_memory_region again(create_only, name, 4096, {}, ec);
  CHECK(ec == std::errc::file_exists);
  platform::shared_memory_region ro(open_only, name, access::read_only);
  CHECK(ro.size() == 4096);
  CHECK_FALSE(ro.writable());
  if (platform::shared_memory_region::names_outlive_handles()) {
    CHECK(platform::shared_memory_region::remove(name));
    CHECK_FALSE(platform::shared_memory_region::remove(name));
  } else {
    // Windows: nothing to remove; the name goes with the last handle.
    CHECK_FALSE(platform::shared_memory_region::remove(name));
    r = {};
    ro = {};
  }
  platform::shared_memory_region gone(open_only, name, access::read_only, ec);
  CHECK(ec == std::errc::no_such_file_or_directory);
  // The message names the failing call and the object.
  CHECK_THROWS_WITH_AS(platform::shared_memory_region(open_only, name, access::read_only),
                       doctest::Contains(name.c_str()), std::system_error);
}
