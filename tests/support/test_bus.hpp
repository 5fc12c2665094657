#pragma once
// An in-process broker on a bus name unique to the test.
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/detail/topic_segment.hpp"
#include "shmbus/names.hpp"
#include "support/child_process.hpp"

namespace shmbus::test {

inline broker_options options(const std::string& bus, std::vector<topic_config> topics) {
  broker_options o;
  o.bus = bus;
  o.topics = std::move(topics);
  return o;
}

struct test_bus {
  std::string name = unique_bus();
  broker brk;
  explicit test_bus(std::vector<topic_config> topics) : brk(options(name, std::move(topics))) {}
};

inline topic_config topic(std::string name, std::uint64_t max_size, std::uint32_t depth, std::uint32_t type_size = 0) {
  topic_config t;
  t.name = std::move(name);
  t.max_message_size = max_size;
  t.depth = depth;
  t.type_size = type_size;
  return t;
}

/// A bus with one topic, a publisher on it, then a subscriber. Tests bind
/// its members: `auto& [tb, b, pub, sub] = fixture;`.
struct one_topic {
  test_bus tb;
  bus b;
  publisher pub;
  subscriber sub;
  explicit one_topic(const topic_config& t)
      : tb({t}), b(tb.name), pub(b.make_publisher(t.name)), sub(b.make_subscriber(t.name)) {}
};

/// The OS object name of a topic of a running bus (for tests that damage it).
inline std::string topic_object(const std::string& bus, const std::string& topic) {
  std::error_code ec;
  std::string what;
  const auto r = detail::registry::open(bus, ec, what);
  if (ec) throw std::system_error(ec, what);
  return detail::topic_object_name(bus, r.instance(), topic);
}

/// A shmbus-broker process's arguments: bus `bus`, one ring topic "b" of
/// 64-byte messages, depth 8, logging what it does.
inline std::vector<std::string> broker_argv(const std::string& bus) {
  return {SHMBUS_BROKER_PATH, "--bus", bus, "--topic", "b:64:8", "--log-level", "info"};
}

inline std::uint64_t to_u64(const std::string& s) { return std::stoull(s); }

/// Parses "key=value key=value" lines printed by children.
inline std::uint64_t field(const std::string& line, const std::string& key) {
  std::istringstream in(line);
  std::string tok;
  while (in >> tok)
    if (tok.rfind(key + "=", 0) == 0) return to_u64(tok.substr(key.size() + 1));
  throw std::runtime_error("no field '" + key + "' in: " + line);
}

/// The raw topic segment of a running bus, opened in `role` (for tests that
/// inspect or damage it).
inline detail::topic_segment open_raw_as(const std::string& bus, const std::string& topic, detail::topic_role role) {
  std::error_code ec;
  std::string what;
  const auto r = detail::registry::open(bus, ec, what);
  if (ec) throw std::system_error(ec, what);
  auto seg = detail::topic_segment::open(bus, r.instance(), topic, role, ec, what);
  if (ec) throw std::system_error(ec, what);
  return seg;
}

/// The raw topic segment of a running bus, everything mapped read-write.
inline detail::topic_segment open_raw(const std::string& bus, const std::string& topic) {
  return open_raw_as(bus, topic, detail::topic_role::publish);
}

}  // namespace shmbus::test
