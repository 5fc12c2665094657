// libFuzzer target: random bytes as a mapped segment (topic data, topic
// control, or registry). Validation must never
// crash, and whatever it accepts must keep every access a client then makes
// (slots, payloads, subscriber table, a keyed topic's key index, values,
// snapshot and keyed stream) inside the mapping. The buffer is
// exactly `size` bytes on the heap, so ASan reports any read past it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shmbus/detail/key_follower.hpp"
#include "shmbus/detail/layout.hpp"

using namespace shmbus;
using namespace shmbus::detail;

namespace {

volatile std::uint64_t g_sink;

// A keyed topic's key table, through the reader code every subscriber
// runs on it (the mapping is private here, so nothing changes under it):
// the index, every value, a snapshot, the listing, lookups.
void walk_keys(std::span<const std::byte> m, const topic_params& p, const topic_geometry& g) {
  auto* base = const_cast<std::byte*>(m.data());
  const ring_view ring = ring_of(base, p, g);
  const key_table_view keys = key_table_of(base, p, g);
  std::error_code ec;
  for (std::uint32_t i = 0; i < keys.count() && i < 64; ++i) {
    char bytes[max_key_size];
    std::size_t size = 0;
    if (keys.key_of(i, bytes, size)) g_sink = g_sink + keys.find(std::string_view(bytes, size)).value_or(0);
  }
  key_follower all(keys, ring, {});
  std::uint64_t skipped = 0;
  if (all.take_snapshot(1, 0, skipped, ec) != 0) {
    std::vector<std::byte> dst(p.max_message_size);
    message_info info;
    while (all.snapshot_pending()) {
      if (all.next_snapshot(dst, info) != read_status::ok) all.skip_snapshot();
      g_sink = g_sink + info.size;
    }
  }
  for (const key_stats& k : all.list(ec)) {
    std::vector<std::byte> dst(p.max_message_size);
    message_info info;
    g_sink = g_sink + static_cast<std::uint64_t>(all.get(k.key, dst, info, ec));
  }
  // The stream through the keyed read: every key's name resolved, filter applied.
  const std::string only[] = {"A"};
  key_follower some(keys, ring, only);
  std::uint64_t next = 1;
  message_info meta;
  std::vector<std::byte> dst(p.max_message_size);
  for (int i = 0; i < 16; ++i) {
    slot_keys got;
    const auto status = seqlock_read(
        ring, next, meta,
        [&](const message_info& mi, const slot_keys& k, std::span<const std::byte> payload) {
          const visit_action a = some.decide(mi, k);
          if (a != visit_action::take) return a;
          got = k;
          if (payload.size() > dst.size()) return visit_action::too_small;
          std::memcpy(dst.data(), payload.data(), payload.size());
          return visit_action::take;
        },
        ec);
    if (status != read_status::ok || some.corrupt()) break;
    some.describe(meta, got);
    some.commit();
  }
}

// What a client does once a segment validates: derive the geometry from the
// validated parameters (as topic_segment caches it) and touch everything.
void walk_topic(std::span<const std::byte> m) {
  topic_header h;
  std::memcpy(static_cast<void*>(&h), m.data(), sizeof h);
  const topic_params p = decode(h.decl);
  topic_geometry g{};
  if (compute_geometry(p, g, nullptr)) __builtin_trap();  // validation accepted it
  // Every slot: its header and, clamped as readers clamp, its payload.
  for (std::uint64_t s = 0; s < g.slot_count; ++s) {
    const std::byte* slot = m.data() + g.slots_offset + s * g.slot_stride;
    slot_header sh;
    std::memcpy(static_cast<void*>(&sh), slot, sizeof sh);
    const std::uint64_t size = std::min<std::uint64_t>(sh.size.load(), p.max_message_size);
    std::uint64_t sum = 0;
    for (std::uint64_t b = 0; b < size; ++b) sum += static_cast<std::uint8_t>(slot[sizeof(slot_header) + b]);
    g_sink = g_sink + sum;
  }
  if (p.keyed()) walk_keys(m, p, g);
}

// A control segment: validated against the parameters it claims (a client
// checks them against the topic's validated ones), then its table walked.
void try_control(std::span<const std::byte> m) {
  if (m.size() < sizeof(control_header)) return;
  control_header h;
  std::memcpy(static_cast<void*>(&h), m.data(), sizeof h);
  topic_params p;
  p.name = std::string(fixed_string(h.name));
  p.max_subscribers = h.max_subscribers;
  topic_geometry g{};
  if (compute_geometry(p, g, nullptr) || validate_control(m, p, nullptr)) return;
  const auto* subs = reinterpret_cast<const subscriber_entry*>(m.data() + g.subscribers_offset);
  for (std::uint32_t i = 0; i < p.max_subscribers; ++i) g_sink = g_sink + subs[i].read_seq.load();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Mappings are page-aligned; copy into an aligned buffer of exactly `size`.
  auto buf = std::unique_ptr<std::byte[], void (*)(std::byte*)>(
      static_cast<std::byte*>(::operator new[](size == 0 ? 1 : size, std::align_val_t{64})),
      [](std::byte* p) { ::operator delete[](p, std::align_val_t{64}); });
  if (size != 0) std::memcpy(buf.get(), data, size);
  const std::span<const std::byte> mapping(buf.get(), size);
  std::string why;
  if (!validate_topic(mapping, "", &why)) walk_topic(mapping);
  try_control(mapping);
  if (registry_header r; !validate_registry(mapping, r, &why)) {
    const auto* entries = reinterpret_cast<const topic_entry*>(mapping.data() + r.preamble.header_size);
    for (std::uint32_t i = 0; i < r.topic_count; ++i) g_sink = g_sink + fixed_string(entries[i].name).size();
  }
  return 0;
}
