#pragma once
/// \file
/// One topic's shared objects (mapping, mutex, event) and the publish / read
/// protocols on them. The broker creates topic segments; publishers and
/// subscribers open them. docs/design.md argues why the protocols are correct.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/layout.hpp"
#include "shmbus/error.hpp"
#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/named_mutex.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "shmbus/platform/process.hpp"

namespace shmbus::detail {

/// What a read delivers besides the payload.
struct read_meta {
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::size_t size = 0;
  std::uint64_t missed = 0;
};

enum class read_status { ok, empty, buffer_too_small };

/// Test-only: called inside the publish critical section with a half-written
/// slot, so a test can kill the publisher exactly there. Null in production.
inline void (*publish_hook)() = nullptr;

class topic_segment {
 public:
  topic_segment() = default;

  /// Creates the segment, mutex and event (state stays `initializing` until
  /// `mark_ready`). On failure returns an empty segment, sets `ec` and `what`.
  static topic_segment create(std::string_view bus, const topic_params& params,
                              platform::permissions perms, std::error_code& ec, std::string& what);
  /// Opens and validates an existing segment.
  static topic_segment open(std::string_view bus, std::string_view topic, access mode,
                            std::error_code& ec, std::string& what);

  [[nodiscard]] bool is_open() const noexcept { return header_ != nullptr; }
  [[nodiscard]] topic_header& header() const noexcept { return *header_; }
  [[nodiscard]] std::string_view name() const noexcept { return fixed_string(header_->name); }
  [[nodiscard]] std::span<subscriber_entry> subscribers() const noexcept;
  [[nodiscard]] bool closed() const noexcept;
  void mark_ready() noexcept;
  /// Marks the segment closed and wakes every waiter so they notice.
  void close() noexcept;

  /// Publishes one message under the mutex; recovers a mutex whose owner
  /// died. Returns the new sequence, or 0 with `ec` set.
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec) noexcept;

  /// Reads the message at cursor `next` (advancing it), skipping to the
  /// oldest retained message when `next` has fallen out of the ring.
  read_status read(std::uint64_t& next, std::span<std::byte> dst, read_meta& meta,
                   std::error_code& ec) const noexcept;

  /// Zero-copy read: calls `f(meta, payload)` on the slot in place, then
  /// validates; when the slot was overwritten during `f`, retries with the
  /// next available message. Returns false when nothing is available.
  template <class F>
  bool read_in_place(std::uint64_t& next, F&& f, std::error_code& ec) const;

  /// Newest published sequence (0 = none).
  [[nodiscard]] std::uint64_t newest() const noexcept;

  [[nodiscard]] platform::named_event& event() noexcept { return event_; }

  /// Registers a subscriber slot for this process; -1 with `ec` when full.
  int register_subscriber(std::error_code& ec) noexcept;
  void unregister_subscriber(int index) noexcept;
  /// Frees entries of subscribers whose process is gone. Returns how many.
  unsigned reap_dead_subscribers() noexcept;
  /// Registered subscribers whose process is alive.
  [[nodiscard]] unsigned live_subscribers() const noexcept;

 private:
  // Positions `next` on a retained message and returns its slot, or nullptr
  // when nothing is newer than `next`.
  slot_header* locate(std::uint64_t& next, std::uint64_t& missed) const noexcept;
  [[nodiscard]] slot_header* slot(std::uint64_t seq) const noexcept;
  void recover_after_owner_death() noexcept;
  // A slot whose seq does not match is normally a writer that lapped us; a
  // seq that can never match, or no progress, means a corrupt segment.
  static bool overrun_is_plausible(std::uint64_t slot_seq, std::uint64_t next,
                                   std::uint64_t wanted, unsigned& stalls,
                                   std::error_code& ec) noexcept;

  platform::shared_memory_region region_;
  platform::named_mutex mutex_;
  platform::named_event event_;
  topic_header* header_ = nullptr;
  std::byte* slots_ = nullptr;
};

// ---- inline: the zero-copy read ------------------------------------------

template <class F>
bool topic_segment::read_in_place(std::uint64_t& next, F&& f, std::error_code& ec) const {
  ec.clear();
  std::uint64_t missed = 0;
  for (unsigned stalls = 0;;) {
    const std::uint64_t wanted = next;
    slot_header* s = locate(next, missed);
    if (s == nullptr) return false;
    const std::uint64_t v1 = s->seq.load(std::memory_order_acquire);
    if (v1 != 2 * next) {
      if (!overrun_is_plausible(v1, next, wanted, stalls, ec)) return false;
      continue;  // overwritten since locate: skip ahead
    }
    const std::uint64_t size = s->size;
    const read_meta meta{next, s->timestamp_ns, static_cast<std::size_t>(size), missed};
    if (size <= header_->max_message_size) {
      f(meta, std::span<const std::byte>(reinterpret_cast<const std::byte*>(s + 1), size));
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != v1) continue;
    if (size > header_->max_message_size) {
      ec = make_error_code(errc::corrupt_segment);
      return false;
    }
    ++next;
    return true;
  }
}

}  // namespace shmbus::detail
