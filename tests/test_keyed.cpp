// Keyed topics (issue 12): a whole market in one topic. Each publish names
// a key, replaces that key's latest value and joins the ordered stream; a
// subscriber follows every key or a few, joins with a snapshot of the
// latest values and resumes the stream exactly where they leave off, and
// resynchronises after an overrun. Checked in one process for the rules
// and errors, and against a hammering publisher process for exactness.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shmbus/client.hpp"
#include "support/multiprocess.hpp"
#include "support/test_bus.hpp"

using namespace shmbus;
using namespace shmbus::test;
using namespace std::chrono_literals;

namespace {

topic_config keyed(std::string name, std::uint64_t max_size, std::uint32_t depth, std::uint32_t keys) {
  topic_config t = topic(std::move(name), max_size, depth);
  t.key_capacity = keys;
  return t;
}

subscriber_options following(std::vector<std::string> keys, bool snapshot = false) {
  subscriber_options o;
  o.keys = std::move(keys);
  o.snapshot = snapshot;
  return o;
}

// Every message readable now, as "key=text" strings.
std::vector<std::string> drain(subscriber& sub) {
  std::vector<std::string> out;
  message m;
  while (sub.try_read(m)) out.push_back(std::string(m.key()) + "=" + std::string(m.text()));
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("keyed topic: each publish replaces its key's value and joins the stream, and get and keys report them") {
  test_bus tb({keyed("md", 64, 16, 8)});
  bus b(tb.name);
  CHECK(b.topics().at(0).key_capacity == 8);
  auto sub = b.make_subscriber("md");
  auto pub = b.make_publisher("md");
  CHECK(pub.publish("rb2605", "3500") == 1);
  CHECK(pub.publish("cu2606", "70000") == 2);
  CHECK(pub.publish("rb2605", "3501") == 3);

  message m;
  REQUIRE(sub.try_read(m));
  CHECK(m.key() == "rb2605");
  CHECK(m.text() == "3500");
  CHECK(m.info().key_seq == 1);
  CHECK(!m.from_snapshot());
  CHECK(drain(sub) == strings{"cu2606=70000", "rb2605=3501"});

  REQUIRE(sub.get("rb2605", m));
  CHECK(m.text() == "3501");
  CHECK(m.sequence() == 3);
  CHECK(m.info().key_seq == 2);
  CHECK(!sub.get("ag2612", m));  // no such key: false, no error
  CHECK(!sub.try_read(m));       // get() does not move the stream

  const auto keys = sub.keys();
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].key == "rb2605");
  CHECK(keys[0].sequence == 3);
  CHECK(keys[0].updates == 2);
  CHECK(keys[0].size == 4);
  CHECK(keys[1].key == "cu2606");
  CHECK(keys[1].sequence == 2);
  CHECK(keys[1].updates == 1);
  CHECK(keys[1].timestamp_ns > 0);
  CHECK(b.stats().at(0).keys == 2);

  // Typed values under a key.
  test_bus typed({keyed("q", sizeof(double), 4, 4)});
  bus tbus(typed.name);
  auto qpub = tbus.make_publisher("q");
  auto qsub = tbus.make_subscriber("q");
  qpub.publish_value("IF2612", 4012.5);
  double v = 0;
  CHECK(qsub.get("IF2612", v));
  CHECK(v == 4012.5);
  float wrong = 0;
  std::error_code ec;
  CHECK(!qsub.get("IF2612", wrong, ec));
  CHECK(ec == errc::type_size_mismatch);
}

TEST_CASE("keyed topic: bad keys, a full key table and keys on a plain topic are clear errors that publish nothing") {
  test_bus tb({keyed("md", 64, 16, 2), topic("plain", 64, 4)});
  bus b(tb.name);
  auto pub = b.make_publisher("md");
  auto sub = b.make_subscriber("md");
  error_info err;

  CHECK(pub.publish("", "x", err) == 0);
  CHECK(err.code == errc::invalid_key);
  CHECK(err.what.find("keys are 1-63 bytes") != std::string::npos);
  CHECK(pub.publish(std::string(64, 'k'), "x", err) == 0);
  CHECK(err.code == errc::invalid_key);
  CHECK(pub.publish(std::string(63, 'k'), "x", err) == 1);  // 63 is the longest key

  // Without a key, or by loan, a keyed topic refuses.
  CHECK(pub.publish("no key", err) == 0);
  CHECK(err.code == errc::invalid_key);
  CHECK(err.what.find("is keyed: every message needs a key") != std::string::npos);
  CHECK(pub.loan(8, err).empty());
  CHECK(err.code == errc::invalid_key);

  CHECK(pub.publish("b", "x", err) == 2);
  CHECK(pub.publish("c", "x", err) == 0);
  CHECK(err.code == errc::key_table_full);
  CHECK(err.code == std::errc::no_buffer_space);
  CHECK(err.what == "topic 'md': its key table is full (2 keys): key 'c' was not added and nothing was published");
  CHECK_THROWS_WITH_AS(pub.publish("c", "x"), doctest::Contains("key table is full"), const shmbus::error&);
  // A key is any bytes; the sentence stays one readable line.
  CHECK(pub.publish("c\nd'", "x", err) == 0);
  CHECK(err.what.find("key 'c\\x0ad\\x27' was not added") != std::string::npos);
  CHECK(pub.publish("b", "y", err) == 3);  // known keys go on
  CHECK(sub.keys().size() == 2);
  message m;
  CHECK(!sub.get("c", m));
  CHECK(drain(sub).size() == 3);

  // A plain topic takes no key, no key filter, no snapshot.
  auto plain = b.make_publisher("plain");
  CHECK(plain.publish("k", "x", err) == 0);
  CHECK(err.code == errc::invalid_key);
  CHECK(err.what == "topic 'plain' is not keyed: publish without a key");
  CHECK(!b.make_subscriber("plain", following({"k"}), err).is_open());
  CHECK(err.code == errc::invalid_key);
  CHECK(err.what.find("is not keyed") != std::string::npos);
  auto psub = b.make_subscriber("plain");
  CHECK(!psub.get("k", m, err));
  CHECK(err.code == errc::invalid_key);
  CHECK(psub.keys(err).empty());
  CHECK(err.what == "topic 'plain' is not keyed: it has no keys");
  CHECK(!b.make_subscriber("md", following({std::string(64, 'x')}), err).is_open());
  CHECK(err.code == errc::invalid_key);

  // A key capacity past the limit is refused when the broker creates it.
  CHECK_THROWS_WITH_AS(broker(options(unique_bus(), {keyed("huge", 64, 4, detail::max_keys_limit + 1)})),
                       doctest::Contains("keys must be 0 (a plain topic) or 1..4194304"), const std::system_error&);
}

TEST_CASE("keyed topic: a filtered subscriber gets exactly its keys, in order, and counts only their losses") {
  test_bus tb({keyed("md", 64, 4, 16)});
  bus b(tb.name);
  auto pub = b.make_publisher("md");
  pub.publish("a", "a1");
  auto sub = b.make_subscriber("md", following({"a", "c"}));
  pub.publish("b", "b1");
  pub.publish("a", "a2");
  pub.publish("c", "c1");  // a key added after the subscriber started
  pub.publish("b", "b2");
  CHECK(drain(sub) == strings{"a=a2", "c=c1"});
  CHECK(sub.missed_total() == 0);

  // An overrun: 3 updates of "a" and 1 of "c" fall out of the 4-deep ring
  // among many of "b". The loss is told per key, with its next update.
  pub.publish("a", "a3");
  pub.publish("a", "a4");
  pub.publish("c", "c2");
  pub.publish("a", "a5");
  for (int i = 0; i < 8; ++i) pub.publish("b", "bx");
  pub.publish("a", "a6");
  pub.publish("c", "c3");
  message m;
  REQUIRE(sub.try_read(m));
  CHECK(m.key() == "a");
  CHECK(m.text() == "a6");
  CHECK(m.missed() == 3);
  REQUIRE(sub.try_read(m));
  CHECK(m.text() == "c3");
  CHECK(m.missed() == 1);
  CHECK(!sub.try_read(m));
  CHECK(sub.missed_total() == 4);

  // The filter changes: "b" from now on, "a" no more.
  sub.set_keys({"b"});
  pub.publish("a", "a7");
  pub.publish("b", "b3");
  CHECK(drain(sub) == strings{"b=b3"});
  sub.set_keys({});  // every key
  pub.publish("a", "a8");
  pub.publish("c", "c4");
  CHECK(drain(sub) == strings{"a=a8", "c=c4"});

  // From every key to a few: their losses are counted from here on, none before.
  auto wide = b.make_subscriber("md");
  pub.publish("d", "d1");
  pub.publish("a", "a9");
  wide.set_keys({"a", "d"});
  pub.publish("d", "d2");
  pub.publish("a", "a10");
  message w;
  REQUIRE(wide.try_read(w));
  CHECK(w.text() == "d1");
  CHECK(w.missed() == 0);
  CHECK(drain(wide) == strings{"a=a9", "d=d2", "a=a10"});
  CHECK(wide.missed_total() == 0);
}

TEST_CASE("keyed topic: joining with a snapshot gives every key's latest value, then exactly the later stream") {
  test_bus tb({keyed("md", 64, 64, 16)});
  bus b(tb.name);
  auto pub = b.make_publisher("md");
  pub.publish("a", "a1");
  pub.publish("b", "b1");
  pub.publish("a", "a2");

  auto all = b.make_subscriber("md", following({}, true));
  auto only_b = b.make_subscriber("md", following({"b", "z"}, true));
  pub.publish("b", "b2");
  pub.publish("c", "c1");

  message m;
  REQUIRE(all.try_read(m));
  CHECK(m.from_snapshot());
  CHECK(m.key() == "a");
  CHECK(m.text() == "a2");
  CHECK(m.sequence() == 3);
  REQUIRE(all.try_read(m));
  CHECK(m.from_snapshot());
  CHECK(m.text() == "b1");
  REQUIRE(all.try_read(m));
  CHECK(!m.from_snapshot());
  CHECK(m.text() == "b2");
  CHECK(drain(all) == strings{"c=c1"});
  CHECK(drain(only_b) == strings{"b=b1", "b=b2"});

  // An empty topic: the snapshot is empty, the stream is all.
  test_bus empty({keyed("md", 64, 8, 4)});
  bus eb(empty.name);
  auto late = eb.make_subscriber("md", following({}, true));
  eb.make_publisher("md").publish("x", "x1");
  CHECK(drain(late) == strings{"x=x1"});
}

TEST_CASE("keyed topic: after an overrun, resync delivers the current values and counts what it skipped") {
  test_bus tb({keyed("md", 64, 4, 16)});
  bus b(tb.name);
  auto pub = b.make_publisher("md");
  auto all = b.make_subscriber("md");
  auto some = b.make_subscriber("md", following({"a"}));
  pub.publish("a", "a1");
  CHECK(drain(all) == strings{"a=a1"});
  CHECK(drain(some) == strings{"a=a1"});
  for (int i = 2; i <= 5; ++i) pub.publish("a", "a" + std::to_string(i));
  for (int i = 1; i <= 6; ++i) pub.publish("b", "b" + std::to_string(i));
  // Both are 10 behind a 4-deep ring. Resync instead of reading the tail.
  // Skipped: what it will never see, one by one or as a latest value.
  CHECK(all.resync() == 8);   // a2..a4 and b1..b5; a5 and b6 come as values
  CHECK(some.resync() == 3);  // a2..a4
  CHECK(drain(all) == strings{"a=a5", "b=b6"});
  CHECK(drain(some) == strings{"a=a5"});
  pub.publish("a", "a6");
  CHECK(drain(all) == strings{"a=a6"});
  CHECK(drain(some) == strings{"a=a6"});
  CHECK(all.missed_total() == 8);
  CHECK(some.missed_total() == 3);
}

// ---- against a hammering publisher process ----------------------------------

namespace {

// The update a hammer publishes: which key, its count for that key, and a
// check word over both, so a torn value cannot pass.
struct update {
  std::uint32_t key_id;
  std::uint32_t pad;
  std::uint64_t count;
  std::uint64_t check;
};
std::uint64_t check_of(std::uint32_t key_id, std::uint64_t count) {
  return (std::uint64_t{key_id} * 0x9E3779B97F4A7C15ULL) ^ (count * 0xC2B2AE3D27D4EB4FULL) ^ 0x5bd1e995;
}
std::string key_name(std::uint32_t id) {
  char text[16];
  std::snprintf(text, sizeof text, "I%05u", id);
  return text;
}

// The keys of a hammer's run, in publish order: seeded, so the parent can
// replay them and know every key's final count.
std::vector<std::uint32_t> hammer_order(std::uint64_t seed, std::uint32_t keys, std::uint64_t updates) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> order(updates);
  for (auto& k : order) k = static_cast<std::uint32_t>(rng() % keys);
  return order;
}

}  // namespace

SHMBUS_CHILD("keyed-hammer")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  publisher_options o;
  o.exclusive = a.at(5) == "exclusive";
  auto pub = b.make_publisher(a.at(1), o);
  const auto keys = static_cast<std::uint32_t>(std::stoul(a.at(2)));
  const auto order = hammer_order(std::stoull(a.at(4)), keys, std::stoull(a.at(3)));
  std::vector<std::string> names(keys);
  for (std::uint32_t k = 0; k < keys; ++k) names[k] = key_name(k);
  std::vector<std::uint64_t> counts(keys, 0);
  signal_parent("ready");
  for (const std::uint32_t k : order) {
    const update u{k, 0, ++counts[k], check_of(k, counts[k])};
    pub.publish_value(names[k], u);
  }
  signal_parent("done");
  return 0;
}

namespace {

// One subscriber's view of the market, applied from what it reads, with
// every rule of the join checked as it goes.
struct market_view {
  subscriber_options opts;
  subscriber sub;
  std::vector<std::uint64_t> count;  // by key id: the update it holds, 0 none
  std::uint64_t applied = 0, resyncs = 0, bad = 0;

  // Reads what is there now (at most `budget` messages); false when nothing was.
  bool step(unsigned budget) {
    update u{};
    message_info info;
    bool any = false;
    for (unsigned i = 0; i < budget && sub.try_read(u, &info); ++i) {
      any = true;
      if (u.check != check_of(u.key_id, u.count) || u.key_id >= count.size() || info.key != key_name(u.key_id)) {
        ++bad;  // torn, or under the wrong key
        continue;
      }
      std::uint64_t& have = count[u.key_id];
      if (info.snapshot) {
        // A snapshot value never goes back, and is the key's own count.
        if (u.count < have || info.key_seq != u.count) ++bad;
      } else {
        // A stream update is the very next one of its key, or, after a
        // loss, one later: exactly `missed` later when filtered (losses are
        // told per key), or at least later (told for the whole stream).
        const bool filtered = !opts.keys.empty();
        if (info.key_seq != u.count) ++bad;
        if (info.missed == 0 && u.count != have + 1) ++bad;
        if (info.missed != 0 && (filtered ? u.count != have + info.missed + 1 : u.count <= have)) ++bad;
        if (info.missed != 0) {
          have = u.count;
          ++applied;
          ++resyncs;
          sub.resync();
          continue;
        }
      }
      have = u.count;
      ++applied;
    }
    return any;
  }
};

}  // namespace

TEST_CASE("keyed topic under a hammering publisher: snapshot + stream reproduce every key exactly, filtered or not") {
  constexpr std::uint32_t keys = 25000;
  const std::uint64_t updates = stress_count(600000);
  for (const char* mode : {"shared", "exclusive"}) {
    CAPTURE(mode);
    test_bus tb({keyed("md", sizeof(update), 8192, keys)});
    bus b(tb.name);
    const std::uint64_t seed = std::random_device{}();
    CAPTURE(seed);
    auto raw = open_raw_as(tb.name, "md", detail::topic_role::observe);
    auto hammer = started_child(
        "keyed-hammer", {tb.name, "md", std::to_string(keys), std::to_string(updates), std::to_string(seed), mode});
    // Subscribers join at four points of the run: everything, and 20 keys.
    std::vector<market_view> views;
    std::vector<std::string> twenty;
    for (std::uint32_t k = 0; k < 20; ++k) twenty.push_back(key_name(k * 997 % keys));
    const std::uint64_t points[] = {updates / 10, updates / 3, updates / 2, updates * 3 / 4};
    std::size_t joined = 0;
    bool done = false;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!done || joined < 4) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      if (joined < 4 && (raw.newest() >= points[joined] || done)) {
        for (const auto& opts : {following({}, true), following(twenty, true)})
          views.push_back({opts, b.make_subscriber("md", opts), std::vector<std::uint64_t>(keys)});
        ++joined;
      }
      for (auto& v : views) v.step(2000);
      done = raw.newest() >= updates;
    }
    hammer.expect_line("done");
    CHECK(hammer.wait() == 0);
    REQUIRE(raw.newest() == updates);
    // Everything read: each view holds every key's final count (only its keys, filtered).
    std::vector<std::uint64_t> final_count(keys, 0);
    for (const std::uint32_t k : hammer_order(seed, keys, updates)) ++final_count[k];
    for (std::size_t i = 0; i < views.size(); ++i) {
      auto& v = views[i];
      while (v.step(100000)) {
      }
      CAPTURE(i);
      CHECK(v.bad == 0);
      const bool filtered = i % 2 == 1;
      auto followed = [&](std::uint32_t k) {
        return !filtered || std::find(twenty.begin(), twenty.end(), key_name(k)) != twenty.end();
      };
      // What it holds now is exact but for the last updates of keys that
      // an overrun took and that had no update since (a filtered stream
      // learns of those with the key's next update): a resync counts them
      // exactly and brings them.
      std::uint64_t behind = 0;  // updates it will never see: all but the last of each key behind
      for (std::uint32_t k = 0; k < keys; ++k)
        if (followed(k) && final_count[k] > v.count[k]) behind += final_count[k] - v.count[k] - 1;
      if (filtered) {
        CHECK(v.sub.resync() == behind);
      } else {
        CHECK(behind == 0);  // the unfiltered stream is told of every loss at once
        v.sub.resync();
      }
      while (v.step(100000)) {
      }
      CHECK(v.bad == 0);
      std::uint64_t wrong = 0;
      for (std::uint32_t k = 0; k < keys; ++k)
        if (v.count[k] != (followed(k) ? final_count[k] : 0)) ++wrong;
      CHECK(wrong == 0);
      MESSAGE("view " << i << ": applied " << v.applied << ", resyncs " << v.resyncs);
    }
  }
}

// ---- a publisher dying at the protocol's points -------------------------------

namespace {

// The point of a keyed publish a "keyed-dies" child stops at, until killed.
void hold_forever() {
  signal_parent("ready");
  for (;;) std::this_thread::sleep_for(1s);  // idling until killed, not synchronisation
}

}  // namespace

SHMBUS_CHILD("keyed-dies")(const std::vector<std::string>& a) {
  bus b(a.at(0));
  auto pub = b.make_publisher(a.at(1));
  pub.publish("old", "v1");
  static int copies = 0;
  if (a.at(2) == "in-insert") {
    detail::insert_hook = hold_forever;
    pub.publish("new", "n1");
  } else {
    // The first copy is the ring's, the second the key's value.
    const int at = a.at(2) == "in-ring" ? 1 : 2;
    static int stop_at = 0;
    stop_at = at;
    detail::publish_hook = [] {
      if (++copies == stop_at) hold_forever();
    };
    pub.publish("old", "v2-never");
  }
  return 1;  // unreachable
}

TEST_CASE("keyed topic: a publisher SIGKILLed in the ring copy, the value copy or a key insertion is recovered from") {
  for (const char* where : {"in-ring", "in-value", "in-insert"}) {
    CAPTURE(where);
    test_bus tb({keyed("md", 64, 8, 8)});
    bus b(tb.name);
    auto sub = b.make_subscriber("md", following({}, true));
    auto child = started_child("keyed-dies", {tb.name, "md", where});
    kill_and_reap(child);
    auto raw = open_raw(tb.name, "md");
    CHECK(raw.newest() == 1);
    auto pub = b.make_publisher("md");
    message m;
    CHECK(pub.publish("other", "o1") == 2);  // the dead one's message is discarded: its sequence is reused
    CHECK(pub.mutex_recoveries() == 1);
    CHECK(raw.header().torn_discarded.load() == (std::string(where) == "in-insert" ? 0u : 1u));
    // The key it was rewriting keeps its last whole value.
    REQUIRE(sub.get("old", m));
    CHECK(m.text() == "v1");
    if (std::string(where) == "in-insert") {
      // Counted but not indexed when it died: recovery indexed it, so it is
      // found, and publishing it adds no second entry.
      CHECK(raw.keys().count() == 3);
      CHECK(raw.keys().find("new") == std::optional<std::uint32_t>(1));
      CHECK(!sub.get("new", m));  // no value: its first publish died
      CHECK(pub.publish("new", "n2") == 3);
      CHECK(raw.keys().count() == 3);
      REQUIRE(sub.get("new", m));
      CHECK(m.text() == "n2");
    }
    CHECK(drain(sub).front() == "old=v1");  // the snapshot, then the stream, whole
  }
}

TEST_CASE("keyed topic: a corrupted key table is a clear error to its readers, never a crash") {
  test_bus tb({keyed("md", 64, 8, 4)});
  bus b(tb.name);
  auto pub = b.make_publisher("md");
  auto sub = b.make_subscriber("md");
  pub.publish("a", "a1");
  pub.publish("b", "b1");
  auto raw = open_raw(tb.name, "md");
  error_info err;
  message m;

  // A key count past the capacity is clamped to it.
  raw.header().key_count.store(1000);
  CHECK(raw.keys().count() == 4);
  raw.header().key_count.store(2);

  // A stream message naming a key the table does not hold.
  raw.ring().slot(2).key.store(3);
  REQUIRE(sub.try_read(m));  // a1, whole
  CHECK(!sub.try_read(m, err));
  CHECK(err.code == errc::corrupt_segment);
  CHECK(err.what.find("topic 'md'") != std::string::npos);
  raw.ring().slot(2).key.store(1);

  // An entry whose size is out of range.
  auto fresh = b.make_subscriber("md");
  raw.keys().entries[1].size = 0;
  CHECK(fresh.keys(err).empty());
  CHECK(err.code == errc::corrupt_segment);
  auto joining = b.make_subscriber("md", following({}, true), err);
  CHECK(!joining.is_open());
  CHECK(err.code == errc::corrupt_segment);
}
