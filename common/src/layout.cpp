#include "shmbus/detail/layout.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

#include "shmbus/error.hpp"
#include "shmbus/names.hpp"

namespace shmbus::detail {
namespace {

std::error_code fail(errc e, std::string* why, std::string text) {
  if (why != nullptr) *why = std::move(text);
  return make_error_code(e);
}

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t to) noexcept { return (v + to - 1) / to * to; }

// Ring depth N needs N intact messages while message N+1 is being written,
// and a latest-value topic wants a spare so that a reader copying the newest
// message survives the next publish (and the one after).
std::uint32_t slots_for(std::uint32_t depth) noexcept { return std::max<std::uint32_t>(depth + 1, 3); }

}  // namespace

std::string_view fixed_string(const char (&field)[64]) noexcept {
  const void* nul = std::memchr(field, '\0', sizeof field);
  const std::size_t n = nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - field) : sizeof field;
  return {field, n};
}

void set_fixed_string(char (&field)[64], std::string_view value) noexcept {
  std::memset(field, 0, sizeof field);
  std::memcpy(field, value.data(), std::min(value.size(), sizeof field - 1));
}

std::error_code compute_geometry(const topic_params& p, topic_geometry& out, std::string* why) {
  if (auto ec = validate_topic_name(p.name, why)) return ec;
  if (p.max_message_size == 0 || p.max_message_size > max_message_size_limit)
    return fail(
        errc::invalid_argument, why,
        "topic '" + p.name + "': max_message_size must be 1.." + std::to_string(max_message_size_limit) + " bytes");
  if (p.depth == 0 || p.depth > max_depth_limit)
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': depth must be 1.." + std::to_string(max_depth_limit));
  if (p.type_size > p.max_message_size)
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': type_size " + std::to_string(p.type_size) + " exceeds max_message_size " +
                    std::to_string(p.max_message_size));
  if (p.max_subscribers == 0 || p.max_subscribers > max_subscribers_limit)
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': max_subscribers must be 1.." + std::to_string(max_subscribers_limit));
  out.slot_count = slots_for(p.depth);
  out.slot_stride = round_up(sizeof(slot_header) + p.max_message_size, cache_line);
  out.slots_offset = sizeof(topic_header);
  const std::uint64_t ring = out.slot_stride * out.slot_count;  // <= 2^31 * 2^30: no overflow
  out.total_size = out.slots_offset + ring;
  out.subscribers_offset = sizeof(control_header);
  out.control_size = out.subscribers_offset + std::uint64_t{p.max_subscribers} * sizeof(subscriber_entry);
  if (out.total_size > std::numeric_limits<std::size_t>::max() / 2 || out.total_size > (1ULL << 40))
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': max_message_size x depth needs " + std::to_string(out.total_size) +
                    " bytes, more than shmbus allows (1 TiB)");
  return {};
}

topic_params params_of(const topic_header& h) {
  topic_params p;
  p.name = std::string(fixed_string(h.name));
  p.max_message_size = h.max_message_size;
  p.depth = h.depth;
  p.type_size = h.type_size;
  p.type_tag = h.type_tag;
  p.max_subscribers = h.max_subscribers;
  return p;
}

void init_topic_header(void* base, const topic_params& p, const topic_geometry& g) {
  auto* h = new (base) topic_header{};
  h->magic = topic_magic;
  h->abi_version = abi_version;
  h->header_size = sizeof(topic_header);
  h->total_size = g.total_size;
  h->max_message_size = p.max_message_size;
  h->depth = p.depth;
  h->slot_count = g.slot_count;
  h->slot_stride = g.slot_stride;
  h->max_subscribers = p.max_subscribers;
  h->type_size = p.type_size;
  h->type_tag = p.type_tag;
  set_fixed_string(h->name, p.name);
}

std::error_code validate_topic(std::span<const std::byte> mapping, std::string_view expected_name, std::string* why) {
  if (mapping.size() < sizeof(topic_header))
    return fail(errc::corrupt_segment, why,
                "segment is " + std::to_string(mapping.size()) + " bytes, smaller than a topic header");
  topic_header h;  // a copy: the checks below must not race a concurrent writer
  std::memcpy(static_cast<void*>(&h), mapping.data(), sizeof h);
  if (h.magic != topic_magic) return fail(errc::corrupt_segment, why, "not a shmbus topic segment (bad magic)");
  if (h.abi_version != abi_version)
    return fail(
        errc::abi_mismatch, why,
        "segment ABI version " + std::to_string(h.abi_version) + ", this shmbus speaks " + std::to_string(abi_version));
  if (h.header_size != sizeof(topic_header))
    return fail(errc::abi_mismatch, why,
                "topic header is " + std::to_string(h.header_size) + " bytes, expected " +
                    std::to_string(sizeof(topic_header)));
  const topic_params p = params_of(h);
  topic_geometry g{};
  std::string geometry_why;
  if (compute_geometry(p, g, &geometry_why))
    return fail(errc::corrupt_segment, why, "corrupt topic header: " + geometry_why);
  if (g.slot_count != h.slot_count || g.slot_stride != h.slot_stride || g.total_size != h.total_size)
    return fail(errc::corrupt_segment, why, "corrupt topic header: inconsistent geometry");
  // Windows rounds mappings up to a page, so the mapping may be larger; never smaller.
  if (h.total_size > mapping.size())
    return fail(errc::corrupt_segment, why,
                "header claims " + std::to_string(h.total_size) + " bytes but the mapping has " +
                    std::to_string(mapping.size()));
  if (!expected_name.empty() && p.name != expected_name)
    return fail(errc::corrupt_segment, why,
                "segment belongs to topic '" + p.name + "', expected '" + std::string(expected_name) + "'");
  return {};
}

void init_control_header(void* base, const topic_params& p, const topic_geometry& g) {
  auto* h = new (base) control_header{};
  h->magic = control_magic;
  h->abi_version = abi_version;
  h->header_size = sizeof(control_header);
  h->total_size = g.control_size;
  h->max_subscribers = p.max_subscribers;
  set_fixed_string(h->name, p.name);
}

std::error_code validate_control(std::span<const std::byte> mapping, const topic_params& p, std::string* why) {
  // Every subscriber may write this segment, header included, so nothing in
  // it may decide whether the next client can join: its layout follows from
  // the data segment's validated parameters, and only its size, which nobody
  // can change (sealed on POSIX, a fixed section on Windows), is checked.
  const std::uint64_t need = sizeof(control_header) + std::uint64_t{p.max_subscribers} * sizeof(subscriber_entry);
  if (mapping.size() < need)
    return fail(errc::corrupt_segment, why,
                "control segment of topic '" + p.name + "' is " + std::to_string(mapping.size()) +
                    " bytes, smaller than the " + std::to_string(need) + " its topic needs");
  return {};
}

std::error_code validate_registry(std::span<const std::byte> mapping, registry_header& h, std::string* why) {
  if (mapping.size() < sizeof(registry_header))
    return fail(errc::corrupt_segment, why,
                "registry is " + std::to_string(mapping.size()) + " bytes, smaller than its header");
  std::memcpy(static_cast<void*>(&h), mapping.data(), sizeof h);
  if (h.magic != registry_magic) return fail(errc::corrupt_segment, why, "not a shmbus registry (bad magic)");
  if (h.abi_version != abi_version)
    return fail(errc::abi_mismatch, why,
                "registry ABI version " + std::to_string(h.abi_version) + ", this shmbus speaks " +
                    std::to_string(abi_version));
  if (h.header_size != sizeof(registry_header) || h.entry_size != sizeof(topic_entry))
    return fail(errc::abi_mismatch, why, "registry header or entry size differs from this shmbus");
  if (h.topic_count > max_topics_limit)
    return fail(errc::corrupt_segment, why, "registry claims " + std::to_string(h.topic_count) + " topics");
  const std::uint64_t need = sizeof(registry_header) + std::uint64_t{h.topic_count} * sizeof(topic_entry);
  if (h.total_size != need || need > mapping.size())
    return fail(errc::corrupt_segment, why, "registry size fields disagree with its mapping");
  return {};
}

}  // namespace shmbus::detail
