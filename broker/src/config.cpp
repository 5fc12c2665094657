#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

#include "shmbus/broker.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"

namespace shmbus {
namespace {

[[noreturn]] void config_fail(std::string_view where, const std::string& why) {
  throw_error(make_error_code(errc::config_error), std::string(where) + ": " + why);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Unsigned integer with an optional K/M/G suffix (binary multiples); base 8
// when it starts with 0 (for modes).
std::uint64_t parse_number(std::string_view text, std::string_view what, std::string_view where, std::uint64_t max,
                           bool octal = false) {
  text = trim(text);
  std::uint64_t mult = 1;
  if (!text.empty() && !octal) {
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
      case 'K': mult = 1ULL << 10; break;
      case 'M': mult = 1ULL << 20; break;
      case 'G': mult = 1ULL << 30; break;
      default: break;
    }
    if (mult != 1) text.remove_suffix(1);
  }
  std::uint64_t v = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v, octal ? 8 : 10);
  if (text.empty() || err != std::errc{} || end != text.data() + text.size())
    config_fail(where,
                std::string(what) + " '" + std::string(text) + "' is not a " + (octal ? "octal mode" : "number"));
  if (v > max / mult)
    config_fail(where, std::string(what) + " " + std::string(text) + " is larger than " + std::to_string(max));
  return v * mult;
}

void check_topic_name(std::string_view name, std::string_view where) {
  std::string why;
  if (validate_topic_name(name, &why)) config_fail(where, why);
}

void set_topic_key(topic_config& t, std::string_view key, std::string_view value, std::string_view where) {
  constexpr auto u32 = std::numeric_limits<std::uint32_t>::max();
  if (key == "max_message_size")
    t.max_message_size = parse_number(value, key, where, 1ULL << 30);
  else if (key == "depth")
    t.depth = static_cast<std::uint32_t>(parse_number(value, key, where, u32));
  else if (key == "type_size")
    t.type_size = static_cast<std::uint32_t>(parse_number(value, key, where, u32));
  else if (key == "max_subscribers")
    t.max_subscribers = static_cast<std::uint32_t>(parse_number(value, key, where, u32));
  else if (key == "keys")
    t.key_capacity = static_cast<std::uint32_t>(parse_number(value, key, where, u32));
  else
    config_fail(where, "unknown topic key '" + std::string(key) +
                           "' (known: max_message_size, depth, type_size, max_subscribers, keys)");
}

void set_broker_key(broker_options& o, std::string_view key, std::string_view value, std::string_view where) {
  if (key == "bus") {
    std::string why;
    if (validate_bus_name(trim(value), &why)) config_fail(where, why);
    o.bus = std::string(trim(value));
  } else if (key == "mode") {
    o.mode = static_cast<unsigned>(parse_number(value, key, where, 0777, true));
  } else if (key == "group") {
    o.group = std::string(trim(value));
  } else if (key == "group_publish") {
    const std::string_view v = trim(value);
    if (v != "yes" && v != "no" && v != "true" && v != "false")
      config_fail(where, "group_publish must be yes or no, not '" + std::string(v) + "'");
    o.group_publishes = v == "yes" || v == "true";
  } else if (key == "sddl") {
    o.sddl = std::string(trim(value));
  } else if (key == "namespace") {
    const std::string_view v = trim(value);
    if (v != "local" && v != "global")
      config_fail(where, "namespace must be 'local' or 'global', not '" + std::string(v) + "'");
    o.object_namespace = std::string(v);
  } else {
    config_fail(where, "unknown broker key '" + std::string(key) +
                           "' (known: bus, mode, group, group_publish, sddl, namespace)");
  }
}

}  // namespace

topic_config parse_topic_spec(std::string_view spec) {
  const std::string where = "--topic '" + std::string(spec) + "'";
  topic_config t;
  const auto c1 = spec.find(':');
  t.name = std::string(spec.substr(0, c1));
  check_topic_name(t.name, where);
  if (c1 == std::string_view::npos) return t;
  const auto rest = spec.substr(c1 + 1);
  const auto c2 = rest.find(':');
  t.max_message_size = parse_number(rest.substr(0, c2), "max message size", where, 1ULL << 30);
  if (c2 == std::string_view::npos) return t;
  const auto after_depth = rest.substr(c2 + 1);
  const auto c3 = after_depth.find(':');
  constexpr auto u32 = std::numeric_limits<std::uint32_t>::max();
  t.depth = static_cast<std::uint32_t>(parse_number(after_depth.substr(0, c3), "depth", where, u32));
  // A fourth field makes the topic keyed: that many keys at most.
  if (c3 != std::string_view::npos)
    t.key_capacity = static_cast<std::uint32_t>(parse_number(after_depth.substr(c3 + 1), "keys", where, u32));
  return t;
}

void load_config_text(std::string_view text, std::string_view source, broker_options& opts) {
  std::istringstream in{std::string(text)};
  std::string raw;
  enum class section { none, broker, topic } current = section::none;
  topic_config* topic = nullptr;
  for (int line_no = 1; std::getline(in, raw); ++line_no) {
    const std::string where = std::string(source) + ":" + std::to_string(line_no);
    std::string_view line = raw;
    if (const auto hash = line.find_first_of("#;"); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') config_fail(where, "section header lacks ']'");
      const std::string_view name = trim(line.substr(1, line.size() - 2));
      if (name == "broker") {
        current = section::broker;
      } else if (name.substr(0, 6) == "topic ") {
        const std::string topic_name(trim(name.substr(6)));
        check_topic_name(topic_name, where);
        for (const auto& t : opts.topics)
          if (t.name == topic_name) config_fail(where, "topic '" + topic_name + "' is defined twice");
        opts.topics.push_back(topic_config{topic_name});
        topic = &opts.topics.back();
        current = section::topic;
      } else {
        config_fail(where, "unknown section [" + std::string(name) + "] (known: [broker], [topic NAME])");
      }
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) config_fail(where, "expected 'key = value'");
    const std::string_view key = trim(line.substr(0, eq));
    const std::string_view value = trim(line.substr(eq + 1));
    if (current == section::topic)
      set_topic_key(*topic, key, value, where);
    else if (current == section::broker)
      set_broker_key(opts, key, value, where);
    else
      config_fail(where, "'" + std::string(key) + "' outside a section");
  }
}

void load_config_file(const std::filesystem::path& file, broker_options& opts) {
  std::ifstream in(file);
  if (!in) config_fail(file.string(), "cannot open the configuration file");
  std::stringstream text;
  text << in.rdbuf();
  load_config_text(text.str(), file.string(), opts);
}

}  // namespace shmbus
