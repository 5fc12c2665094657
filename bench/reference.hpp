#pragma once
// The reference: the least code that can move a message from one process to
// another the way shmbus does — seqlock slots in shared memory, readers
// polling a sequence word, a futex woken only when a sleeper says so — with
// nothing else: one publisher (no mutex), no crash recovery, no statistics,
// no broker, no validation. It is what the design costs on this machine, the
// limit shmbus is measured against; the difference is what shmbus pays for
// its guarantees.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "harness.hpp"
#include "shmbus/platform/named_mutex.hpp"

namespace shmbus::bench::reference {

/// A ring of `depth` messages (depth 1: latest value), `slot_count =
/// max(depth + 1, 3)` slots like a shmbus topic, in caller-provided shared
/// memory.
class ring {
 public:
  /// Bytes a ring needs.
  static std::size_t bytes_for(std::size_t max_size, std::uint32_t depth) noexcept;
  /// Lays a ring out in zeroed `base` (`bytes_for` bytes).
  static void init(void* base, std::size_t max_size, std::uint32_t depth) noexcept;
  /// Storage for a platform::named_mutex in the ring's header.
  static void* mutex_storage(void* base) noexcept;
  /// Attaches to an initialised ring.
  explicit ring(void* base) noexcept;

  /// Publishes one message. One publisher at a time (no lock).
  void publish(std::span<const std::byte> payload) noexcept;
  /// The same with two of the costs shmbus pays on every publish: a clock
  /// read for the message's timestamp, and a robust process-shared mutex
  /// held around the write (see the "reference+ts+lock" transport).
  void publish_stamped_locked(std::span<const std::byte> payload, platform::named_mutex& mutex);

  /// Newest published sequence (0 = none).
  [[nodiscard]] std::uint64_t newest() const noexcept;

  /// Copies message `next` (or the oldest retained one, counting the skip
  /// in `missed`) into `dst` and advances `next`; nullopt when none is new.
  std::optional<std::size_t> try_read(std::uint64_t& next, std::span<std::byte> dst, std::uint64_t& missed) const;

  /// Waits the way `how` says until a message at or after `next` exists;
  /// false when `timeout` passed.
  bool wait(std::uint64_t next, const wait_strategy& how, std::optional<nanoseconds> timeout);

 private:
  struct header;
  struct slot;
  [[nodiscard]] slot* slot_of(std::uint64_t seq) const noexcept;
  bool poll(std::uint64_t next, std::optional<std::int64_t> until_ns) const noexcept;
  bool block(std::uint64_t next, std::optional<std::int64_t> until_ns);
  void write(std::span<const std::byte> payload, std::int64_t stamp) noexcept;

  header* header_ = nullptr;
  std::byte* slots_ = nullptr;
  std::uint64_t slot_count_ = 0, slot_stride_ = 0, depth_ = 0, max_size_ = 0;
  std::uint64_t seq_ = 0;  // publisher: last sequence published
};

}  // namespace shmbus::bench::reference
