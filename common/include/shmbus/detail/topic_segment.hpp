#pragma once
/// \file
/// One topic's shared objects (mapping, mutex, event) and the publish / read
/// protocols on them. The broker creates topic segments; publishers and
/// subscribers open them. docs/design.md argues why the protocols are correct.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/layout.hpp"
#include "shmbus/detail/owner_watch.hpp"
#include "shmbus/error.hpp"
#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/named_mutex.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"

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
/// Test-only: called by a reader right after it loaded `write_seq` (the
/// argument), before it looks at the slot, so a test can make that load
/// stale by publishing, killing and recovering meanwhile. Null in production.
inline void (*read_hook)(std::uint64_t write_seq) = nullptr;
/// Test-only: called at the end of mutex recovery, before the recovering
/// publisher writes anything, so a test can stop it exactly there (as a
/// publisher killed right after recovering would be). Null in production.
inline void (*recovery_hook)() = nullptr;

/// What a process opens a topic for; decides how each segment is mapped.
enum class topic_role {
  observe,    ///< data and control read-only (ls, stats)
  subscribe,  ///< data read-only, control read-write: a subscriber cannot touch messages
  publish,    ///< both read-write
};

/// The control segment's object name beside a topic's data segment.
inline std::string control_object_name(const std::string& data_object) { return data_object + "#control"; }

class topic_segment {
 public:
  topic_segment() = default;

  /// Creates the segment, mutex and event (state stays `initializing` until
  /// `mark_ready`). On failure returns an empty segment, sets `ec` and `what`.
  static topic_segment create(std::string_view bus, std::uint64_t instance, const topic_params& params,
                              platform::permissions perms, std::error_code& ec, std::string& what);
  /// Opens and validates an existing segment. The control segment comes from
  /// the broker's endpoint (see platform::bus_endpoint), the data by name.
  static topic_segment open(std::string_view bus, std::uint64_t instance, std::string_view topic, topic_role role,
                            std::error_code& ec, std::string& what);

  /// Marks a dead broker's topic closed, reaching only its data segment
  /// (the control segment went with its broker's endpoint): its clients
  /// notice at their next check, a blocked one within a wait slice.
  static void close_orphan(std::string_view bus, std::uint64_t instance, std::string_view topic) noexcept;

  [[nodiscard]] bool is_open() const noexcept { return header_ != nullptr; }
  /// The control segment, for the broker to offer at its endpoint.
  [[nodiscard]] const platform::shared_memory_region& control_region() const noexcept { return control_region_; }
  /// The header, for its atomics (state, counters). Geometry fields must be
  /// taken from the validated copy below, never re-read from here: another
  /// process could have changed them since validation.
  [[nodiscard]] topic_header& header() const noexcept { return *header_; }
  [[nodiscard]] const topic_params& params() const noexcept { return params_; }
  [[nodiscard]] std::string_view name() const noexcept { return params_.name; }
  [[nodiscard]] std::span<subscriber_entry> subscribers() const noexcept;
  [[nodiscard]] bool ready() const noexcept;
  [[nodiscard]] bool closed() const noexcept;
  /// Closed, or (for a segment opened by a client) its broker has been
  /// replaced: another broker instance owns the bus now (see owner_watch).
  /// A load or two: no system call, so every read path may ask.
  [[nodiscard]] bool gone() const noexcept { return closed() || (watch_ != nullptr && watch_->superseded()); }
  /// The longest a blocked wait sleeps before it looks at `gone()` again: a
  /// dead broker's successor marks its topics closed but cannot wake their
  /// sleepers (their control segments went with the dead broker).
  static constexpr std::int64_t wait_slice_ns = 1'000'000'000;
  void mark_ready() noexcept;
  /// Marks the segment closed and wakes every waiter so they notice.
  void close() noexcept;

  /// Publishes one message under the mutex; recovers a mutex whose owner
  /// died. Returns the new sequence, or 0 with `ec` set: message_too_large,
  /// type_size_mismatch (the topic declares a type size and the payload is
  /// another size), topic_closed.
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec) noexcept;

  /// Reads the message at cursor `next` (advancing it), skipping to the
  /// oldest retained message when `next` has fallen out of the ring.
  /// `meta.missed` counts skipped messages whatever the status; the cursor
  /// and the count move together, so no skip is lost or counted twice.
  read_status read(std::uint64_t& next, std::span<std::byte> dst, read_meta& meta, std::error_code& ec) const noexcept;

  /// Zero-copy read: calls `f(meta, payload)` on the slot in place, then
  /// validates; when the slot was overwritten during `f`, retries with the
  /// next available message. Returns false when nothing is available. If `f`
  /// throws, the cursor is left unchanged.
  template <class F>
  bool read_in_place(std::uint64_t& next, std::uint64_t& missed, F&& f, std::error_code& ec) const;

  /// Newest published sequence (0 = none).
  [[nodiscard]] std::uint64_t newest() const noexcept;

  [[nodiscard]] platform::named_event& event() noexcept { return event_; }
  [[nodiscard]] const platform::named_mutex& mutex() const noexcept { return mutex_; }

  /// Registers a subscriber slot for this process; -1 with `ec` when full.
  /// `registered` receives the entry's state word as registered: the
  /// subscriber's proof of ownership for the calls below.
  int register_subscriber(std::uint64_t& registered, std::error_code& ec) noexcept;
  /// Frees entry `index` only if its state is still exactly `registered`:
  /// once reaped (its process looked dead, e.g. it daemonised) and taken by
  /// another subscriber, the entry is left alone.
  void unregister_subscriber(int index, std::uint64_t registered) noexcept;
  /// Entry `index` if its state is still exactly `registered`, else null (a
  /// reaper freed it; it may belong to someone else now).
  [[nodiscard]] subscriber_entry* owned_subscriber(int index, std::uint64_t registered) const noexcept;
  /// Frees entries of subscribers whose process is gone. Returns how many.
  unsigned reap_dead_subscribers() noexcept;
  /// Registered subscribers whose process is alive.
  [[nodiscard]] unsigned live_subscribers() const noexcept;

 private:
  struct located {
    slot_header* slot;      ///< nullptr: nothing newer than the cursor
    std::uint64_t seq;      ///< the message to read
    std::uint64_t skipped;  ///< messages skipped to reach it
  };
  // Where the message at `next` (or the oldest retained one) lies.
  [[nodiscard]] located locate(std::uint64_t next) const noexcept;
  [[nodiscard]] slot_header* slot(std::uint64_t seq) const noexcept;
  [[nodiscard]] const std::byte* payload_of(const slot_header* s) const noexcept {
    return reinterpret_cast<const std::byte*>(s + 1);
  }
  void recover_after_owner_death() noexcept;
  // Decides what to do when a slot's seq does not match: a lapped slot means
  // retry further ahead; a seq that can never match, or too many retries,
  // ends the attempt (`ec` set only for corruption).
  static bool may_retry(std::uint64_t slot_seq, std::uint64_t wanted, unsigned& attempts, std::error_code& ec) noexcept;
  bool attach(std::error_code& ec, std::string& what);
  // The event's per-waiter words: each subscriber entry's `sleeping`.
  [[nodiscard]] platform::named_event::waiter_words waiter_words() const noexcept;

  platform::shared_memory_region region_;          // data: header + ring
  platform::shared_memory_region control_region_;  // control: event state + subscriber table
  // Set by open() where the platform needs it.
  std::shared_ptr<const owner_watch> watch_;
  platform::named_mutex mutex_;
  platform::named_event event_;
  topic_header* header_ = nullptr;
  control_header* control_ = nullptr;
  // Validated geometry, copied at open: never re-read from shared memory.
  topic_params params_;
  topic_geometry geometry_{};
  subscriber_entry* subscribers_ = nullptr;
  std::byte* slots_ = nullptr;
};

// ---- inline: the zero-copy read ------------------------------------------

template <class F>
bool topic_segment::read_in_place(std::uint64_t& next, std::uint64_t& missed, F&& f, std::error_code& ec) const {
  ec.clear();
  std::uint64_t skipped = 0;
  for (unsigned attempts = 0;;) {
    const located at = locate(next + skipped);
    if (at.slot == nullptr) return false;
    skipped += at.skipped;
    const std::uint64_t v1 = at.slot->seq.load(std::memory_order_acquire);
    if (v1 != 2 * at.seq) {
      if (!may_retry(v1, at.seq, attempts, ec)) break;
      continue;
    }
    const std::uint64_t size = at.slot->size.load(std::memory_order_relaxed);
    const read_meta meta{at.seq, at.slot->timestamp_ns.load(std::memory_order_relaxed), static_cast<std::size_t>(size),
                         missed + skipped};
    if (size <= params_.max_message_size) f(meta, std::span<const std::byte>(payload_of(at.slot), size));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (at.slot->seq.load(std::memory_order_relaxed) != v1) {
      if (!may_retry(v1 + 1, at.seq, attempts, ec)) break;
      continue;
    }
    if (size > params_.max_message_size) {
      ec = make_error_code(errc::corrupt_segment);
      return false;
    }
    next = at.seq + 1;
    missed = 0;
    return true;
  }
  // Gave up: keep the skip, so it is reported with the next delivery.
  next += skipped;
  missed += skipped;
  return false;
}

}  // namespace shmbus::detail
