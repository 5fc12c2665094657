#pragma once
/// \file
/// A topic's subscriber table (in its control segment): claim and release of
/// an entry, reaping the entries of dead processes, the live ones, and what a
/// subscriber records in its own entry. docs/design.md ("Subscriber
/// registration") argues why it is correct; tests/model/registration.pml
/// checks it.

#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include "shmbus/detail/layout.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

/// One subscriber's registration: its entry and the entry's state word as
/// registered, the proof of ownership every later call presents.
struct registration {
  int index = -1;  ///< -1: none
  std::uint64_t state = 0;
};

class subscriber_table {
 public:
  subscriber_table() = default;
  explicit subscriber_table(std::span<subscriber_entry> entries) noexcept : entries_(entries) {}

  [[nodiscard]] std::span<subscriber_entry> entries() const noexcept { return entries_; }

  /// Claims a free entry for `me` (reaping dead subscribers' entries when
  /// all are taken); `caught_up_to` becomes its last read sequence. An empty
  /// registration with `ec` = too_many_subscribers when none is free.
  registration claim(const platform::process_identity& me, std::uint64_t caught_up_to, std::error_code& ec) noexcept;
  /// Frees the entry only if its state is still exactly `r.state`: once
  /// reaped (its process looked dead, e.g. it daemonised) and taken by
  /// another subscriber, the entry is left alone.
  void release(const registration& r) noexcept;
  /// Frees entries of subscribers whose process is gone. Returns how many.
  unsigned reap() noexcept;
  /// Registered subscribers whose process is alive, as they last reported.
  [[nodiscard]] std::vector<subscriber_stats> live() const;
  [[nodiscard]] unsigned live_count() const noexcept;

  /// Records a delivery in `r`'s entry. False (and `r` emptied) when the
  /// entry is no longer ours: a reaper freed it and it may be someone
  /// else's now, so we stop writing it. What remains is the window between
  /// this check and the stores; see docs/design.md.
  bool record(registration& r, std::uint64_t read_seq, std::uint64_t missed, std::uint64_t received) noexcept;

  /// Marks `r`'s entry as blocked in a wait for its lifetime (for `shmbus
  /// stat`).
  class waiting_guard {
   public:
    waiting_guard(const subscriber_table& t, registration& r) noexcept;
    waiting_guard(const waiting_guard&) = delete;
    waiting_guard& operator=(const waiting_guard&) = delete;
    ~waiting_guard();

   private:
    subscriber_entry* entry_;
  };

  /// The event's per-waiter words: each entry's `sleeping`.
  [[nodiscard]] platform::named_event::waiter_words waiter_words() const noexcept {
    return {&entries_[0].sleeping, sizeof(subscriber_entry), static_cast<std::uint32_t>(entries_.size())};
  }

 private:
  [[nodiscard]] subscriber_entry* owned(registration& r) const noexcept;

  std::span<subscriber_entry> entries_;
};

}  // namespace shmbus::detail
