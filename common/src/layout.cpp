#include "shmbus/detail/layout.hpp"

#include <algorithm>
#include <bit>
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

// The checks every segment header starts with, on a private copy of it.
std::error_code check_preamble(const char* segment, const segment_preamble& got, std::uint64_t magic,
                               std::uint32_t header_size, std::string* why) {
  if (got.magic != magic)
    return fail(errc::corrupt_segment, why, std::string("not a shmbus ") + segment + " (bad magic)");
  if (got.abi_version != abi_version)
    return fail(errc::abi_mismatch, why,
                std::string(segment) + " ABI version " + std::to_string(got.abi_version) + ", this shmbus speaks " +
                    std::to_string(abi_version));
  if (got.header_size != header_size)
    return fail(errc::abi_mismatch, why,
                std::string(segment) + " header is " + std::to_string(got.header_size) + " bytes, expected " +
                    std::to_string(header_size));
  return {};
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
  if (p.key_capacity > max_keys_limit)
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': keys must be 0 (a plain topic) or 1.." + std::to_string(max_keys_limit));
  out = {};
  out.slot_count = slots_for(p.depth);
  out.slot_stride = round_up(sizeof(slot_header) + p.max_message_size, cache_line);
  out.slots_offset = sizeof(topic_header);
  const std::uint64_t ring = out.slot_stride * out.slot_count;  // <= 2^31 * 2^30: no overflow
  out.total_size = out.slots_offset + ring;
  if (p.key_capacity != 0) {
    // Buckets at most half full, so that a probe ends soon at an empty one.
    out.bucket_count = std::bit_ceil(std::max<std::uint32_t>(2 * p.key_capacity, 2));
    out.buckets_offset = out.total_size;
    out.entries_offset =
        round_up(out.buckets_offset + std::uint64_t{out.bucket_count} * sizeof(key_bucket), cache_line);
    out.values_offset = out.entries_offset + std::uint64_t{p.key_capacity} * sizeof(key_entry);
    // <= 2^23 * 2^31 beside the ring: no overflow.
    out.total_size = out.values_offset + 2 * std::uint64_t{p.key_capacity} * out.slot_stride;
  }
  out.subscribers_offset = sizeof(control_header);
  out.control_size = out.subscribers_offset + std::uint64_t{p.max_subscribers} * sizeof(subscriber_entry);
  if (out.total_size > std::numeric_limits<std::size_t>::max() / 2 || out.total_size > (1ULL << 40))
    return fail(errc::invalid_argument, why,
                "topic '" + p.name + "': max_message_size x depth needs " + std::to_string(out.total_size) +
                    " bytes, more than shmbus allows (1 TiB)" + (p.key_capacity != 0 ? " with its keys' values" : ""));
  return {};
}

topic_decl encode(const topic_params& p) noexcept {
  topic_decl d{};
  set_fixed_string(d.name, p.name);
  d.max_message_size = p.max_message_size;
  d.depth = p.depth;
  d.type_size = p.type_size;
  d.max_subscribers = p.max_subscribers;
  d.key_capacity = p.key_capacity;
  return d;
}

topic_params decode(const topic_decl& d) {
  return {
      std::string(fixed_string(d.name)), d.max_message_size, d.depth, d.type_size, d.max_subscribers, d.key_capacity};
}

void init_topic_header(void* base, const topic_params& p, const topic_geometry& g) {
  auto* h = new (base) topic_header{};
  h->preamble = preamble_of<topic_header>(topic_magic, g.total_size);
  h->slot_count = g.slot_count;
  h->slot_stride = g.slot_stride;
  h->decl = encode(p);
}

std::error_code validate_topic(std::span<const std::byte> mapping, std::string_view expected_name, std::string* why) {
  if (mapping.size() < sizeof(topic_header))
    return fail(errc::corrupt_segment, why,
                "segment is " + std::to_string(mapping.size()) + " bytes, smaller than a topic header");
  topic_header h;  // a copy: the checks below must not race a concurrent writer
  std::memcpy(static_cast<void*>(&h), mapping.data(), sizeof h);
  if (auto ec = check_preamble("topic segment", h.preamble, topic_magic, sizeof(topic_header), why)) return ec;
  const topic_params p = decode(h.decl);
  topic_geometry g{};
  std::string geometry_why;
  if (compute_geometry(p, g, &geometry_why))
    return fail(errc::corrupt_segment, why, "corrupt topic header: " + geometry_why);
  if (g.slot_count != h.slot_count || g.slot_stride != h.slot_stride || g.total_size != h.preamble.total_size)
    return fail(errc::corrupt_segment, why, "corrupt topic header: inconsistent geometry");
  // Windows rounds mappings up to a page, so the mapping may be larger; never smaller.
  if (h.preamble.total_size > mapping.size())
    return fail(errc::corrupt_segment, why,
                "header claims " + std::to_string(h.preamble.total_size) + " bytes but the mapping has " +
                    std::to_string(mapping.size()));
  if (!expected_name.empty() && p.name != expected_name)
    return fail(errc::corrupt_segment, why,
                "segment belongs to topic '" + p.name + "', expected '" + std::string(expected_name) + "'");
  return {};
}

void init_control_header(void* base, const topic_params& p, const topic_geometry& g) {
  auto* h = new (base) control_header{};
  h->preamble = preamble_of<control_header>(control_magic, g.control_size);
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
  if (auto ec = check_preamble("registry", h.preamble, registry_magic, sizeof(registry_header), why)) return ec;
  if (h.entry_size != sizeof(topic_entry))
    return fail(errc::abi_mismatch, why,
                "registry entries are " + std::to_string(h.entry_size) + " bytes, expected " +
                    std::to_string(sizeof(topic_entry)));
  if (h.topic_count > max_topics_limit)
    return fail(errc::corrupt_segment, why, "registry claims " + std::to_string(h.topic_count) + " topics");
  const std::uint64_t need = sizeof(registry_header) + std::uint64_t{h.topic_count} * sizeof(topic_entry);
  if (h.preamble.total_size != need || need > mapping.size())
    return fail(errc::corrupt_segment, why, "registry size fields disagree with its mapping");
  return {};
}

}  // namespace shmbus::detail
