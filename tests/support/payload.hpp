#pragma once
// Self-checking payloads: a subscriber can tell a torn or partially written
// message from a whole one without knowing what was sent.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace shmbus::test {

inline std::uint64_t fnv1a(std::span<const std::byte> data) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::byte b : data) h = (h ^ static_cast<std::uint8_t>(b)) * 1099511628211ULL;
  return h;
}

/// Fills `out` (>= 16 bytes) with bytes derived from `id`, then a checksum.
inline void make_payload(std::uint64_t id, std::span<std::byte> out) {
  std::uint64_t x = id * 0x9E3779B97F4A7C15ULL + 1;
  std::memcpy(out.data(), &id, 8);
  for (std::size_t i = 8; i + 8 < out.size(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    out[i] = static_cast<std::byte>(x);
  }
  const std::uint64_t sum = fnv1a(out.first(out.size() - 8));
  std::memcpy(out.data() + out.size() - 8, &sum, 8);
}

inline bool payload_ok(std::span<const std::byte> in) {
  if (in.size() < 16) return false;
  std::uint64_t sum = 0;
  std::memcpy(&sum, in.data() + in.size() - 8, 8);
  return sum == fnv1a(in.first(in.size() - 8));
}

inline std::uint64_t payload_id(std::span<const std::byte> in) {
  std::uint64_t id = 0;
  std::memcpy(&id, in.data(), 8);
  return id;
}

}  // namespace shmbus::test
