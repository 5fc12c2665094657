#pragma once
// An in-process broker on a bus name unique to the test.
#include <string>
#include <vector>

#include "shmbus/broker.hpp"
#include "shmbus/detail/registry.hpp"
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

inline topic_config topic(std::string name, std::uint64_t max_size, std::uint32_t depth,
                          std::uint32_t type_size = 0) {
  topic_config t;
  t.name = std::move(name);
  t.max_message_size = max_size;
  t.depth = depth;
  t.type_size = type_size;
  return t;
}

/// The OS object name of a topic of a running bus (for tests that damage it).
inline std::string topic_object(const std::string& bus, const std::string& topic) {
  std::error_code ec;
  std::string what;
  const auto r = detail::registry::open(bus, ec, what);
  if (ec) throw std::system_error(ec, what);
  return detail::topic_object_name(bus, r.instance(), topic);
}

}  // namespace shmbus::test
