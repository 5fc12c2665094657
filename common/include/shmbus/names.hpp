#pragma once
/// \file
/// Naming rules for buses and topics, and the OS object names built from them.
/// Names are checked before any object is created, so a bad name never leaves
/// anything behind.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace shmbus {

inline constexpr std::size_t max_bus_name = 32;
inline constexpr std::size_t max_topic_name = 63;

/// Checks a bus name: 1..32 characters of [A-Za-z0-9_-]. Returns
/// `errc::invalid_name` and fills `why` on failure.
std::error_code validate_bus_name(std::string_view name, std::string* why = nullptr);

/// Checks a topic name: 1..63 characters of [A-Za-z0-9_.-], starting with a
/// letter, digit or '_', no "..".
std::error_code validate_topic_name(std::string_view name, std::string* why = nullptr);

/// The bus name used when none is given: $SHMBUS_BUS, else "default".
std::string default_bus_name();

namespace detail {
/// Name of the broker's endpoint (its claim on the bus, and on POSIX the
/// abstract socket that hands out control segments), e.g. "shmbus.default".
std::string endpoint_name(std::string_view bus);
/// OS object name of the bus registry, e.g. "shmbus.default.registry".
/// Platform layers add their own prefix ("/" on POSIX, "Local\\" on Windows).
std::string registry_object_name(std::string_view bus);
/// OS object name of a topic segment, e.g.
/// "shmbus.default.5f3a9c0e12b4d7a1.prices". The broker instance is part of
/// the name because on Windows a name lives as long as any handle to it: the
/// objects of a dead broker, still held by its old clients, must not stand in
/// the way of a new broker's.
std::string topic_object_name(std::string_view bus, std::uint64_t instance, std::string_view topic);
/// Prefix shared by every object of a bus, for stale-object cleanup.
std::string bus_object_prefix(std::string_view bus);
}  // namespace detail

}  // namespace shmbus
