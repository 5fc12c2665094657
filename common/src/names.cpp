#include "shmbus/names.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "shmbus/error.hpp"
#include "shmbus/platform/permissions.hpp"

namespace shmbus {
namespace {

bool is_plain(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string describe(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u == 0x7f) return "a control character";
  if (u >= 0x80) return "a non-ASCII byte";
  return std::string("'") + c + "'";
}

std::error_code fail(std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return make_error_code(errc::invalid_name);
}

std::error_code check(std::string_view kind, std::string_view name, std::size_t max_len, bool allow_dot,
                      std::string* why) {
  if (name.empty()) return fail(why, std::string(kind) + " name is empty");
  if (name.size() > max_len)
    return fail(why, std::string(kind) + " name '" + std::string(name) + "' is longer than " + std::to_string(max_len) +
                         " characters");
  for (char c : name) {
    if (is_plain(c) || (allow_dot && c == '.')) continue;
    return fail(why, std::string(kind) + " name contains " + describe(c) + "; allowed are letters, digits, '_', '-'" +
                         (allow_dot ? " and '.'" : ""));
  }
  if (name.front() == '.' || name.front() == '-')
    return fail(why, std::string(kind) + " name must start with a letter, digit or '_'");
  if (name.find("..") != std::string_view::npos) return fail(why, std::string(kind) + " name must not contain '..'");
  return {};
}

}  // namespace

std::error_code validate_bus_name(std::string_view name, std::string* why) {
  return check("bus", name, max_bus_name, false, why);
}

std::error_code validate_topic_name(std::string_view name, std::string* why) {
  return check("topic", name, max_topic_name, true, why);
}

std::string default_bus_name() {
  const char* env = std::getenv("SHMBUS_BUS");
  return (env != nullptr && *env != '\0') ? std::string(env) : std::string("default");
}

namespace detail {
std::string bus_object_prefix(std::string_view bus) { return "shmbus." + std::string(bus) + "."; }
std::string endpoint_name(std::string_view bus) { return "shmbus." + std::string(bus); }
std::string registry_object_name(std::string_view bus) { return bus_object_prefix(bus) + "registry"; }
std::string topic_object_name(std::string_view bus, std::uint64_t instance, std::string_view topic) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(instance));
  return bus_object_prefix(bus) + hex + "." + std::string(topic);
}
}  // namespace detail

}  // namespace shmbus

namespace shmbus::platform {
namespace {
// -1: not chosen yet (read $SHMBUS_NAMESPACE on first use).
std::atomic<int> g_namespace{-1};
}  // namespace

void set_object_namespace(object_namespace ns) noexcept { g_namespace.store(static_cast<int>(ns)); }

object_namespace current_object_namespace() noexcept {
  int ns = g_namespace.load();
  if (ns < 0) {
    const char* env = std::getenv("SHMBUS_NAMESPACE");
    ns = static_cast<int>(env != nullptr && std::string_view(env) == "global" ? object_namespace::global
                                                                              : object_namespace::local);
    int expected = -1;
    g_namespace.compare_exchange_strong(expected, ns);
    ns = g_namespace.load();
  }
  return static_cast<object_namespace>(ns);
}
}  // namespace shmbus::platform
