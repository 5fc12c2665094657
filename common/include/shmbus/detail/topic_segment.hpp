#pragma once
/// \file
/// One topic's shared objects (data and control mappings, mutex, event),
/// created by the broker and opened by clients, with the validated private
/// copy of its parameters. The bytes are passive: the protocols on them live
/// in the role ports (publisher_port, subscriber_port, observer_port,
/// broker_port), each over one topic_segment.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/key_table.hpp"
#include "shmbus/detail/layout.hpp"
#include "shmbus/detail/owner_watch.hpp"
#include "shmbus/detail/seqlock.hpp"
#include "shmbus/detail/subscriber_table.hpp"
#include "shmbus/error.hpp"
#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/named_mutex.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::detail {

/// Test-only: called inside the publish critical section with a half-written
/// slot, so a test can kill the publisher exactly there. Null in production.
inline void (*publish_hook)() = nullptr;
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

  /// Opens as `open` does, then checks that the segment declares what the
  /// bus registry does (`declared`: corrupt_segment otherwise) and that its
  /// broker has made it ready (topic_closed otherwise). What the ports use.
  static topic_segment open_declared(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                     topic_role role, std::error_code& ec, std::string& what);

  /// Marks a dead broker's topic closed, reaching only its data segment
  /// (the control segment went with its broker's endpoint): its clients
  /// notice at their next check, a blocked one within a wait slice.
  static void close_orphan(std::string_view bus, std::uint64_t instance, std::string_view topic) noexcept;

  [[nodiscard]] bool is_open() const noexcept { return header_ != nullptr; }
  /// The control segment, for the broker to offer at its endpoint.
  [[nodiscard]] const platform::shared_memory_region& control_region() const noexcept { return control_region_; }
  /// The header, for the ports' atomics (state, counters) and for tests that
  /// inspect or damage it. Geometry fields must be taken from `params()` and
  /// `ring()`, never re-read from here: another process could have changed
  /// them since validation.
  [[nodiscard]] topic_header& header() noexcept { return *header_; }
  [[nodiscard]] const topic_header& header() const noexcept { return *header_; }
  [[nodiscard]] const topic_params& params() const noexcept { return params_; }
  [[nodiscard]] std::string_view name() const noexcept { return params_.name; }
  [[nodiscard]] std::span<subscriber_entry> subscribers() const noexcept { return table_.entries(); }
  [[nodiscard]] const subscriber_table& table() const noexcept { return table_; }
  [[nodiscard]] subscriber_table& table() noexcept { return table_; }
  [[nodiscard]] const ring_view& ring() const noexcept { return ring_; }
  /// The key table (keyed topics; `keyed()` is false otherwise).
  [[nodiscard]] const key_table_view& keys() const noexcept { return keys_; }
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

  /// Newest published sequence (0 = none).
  [[nodiscard]] std::uint64_t newest() const noexcept { return ring_.newest(); }

  [[nodiscard]] platform::named_event& event() noexcept { return event_; }
  [[nodiscard]] platform::named_mutex& mutex() noexcept { return mutex_; }
  [[nodiscard]] const platform::named_mutex& mutex() const noexcept { return mutex_; }

 private:
  bool attach(std::error_code& ec, std::string& what);

  platform::shared_memory_region region_;          // data: header + ring
  platform::shared_memory_region control_region_;  // control: event state + subscriber table
  // Set by open() where the platform needs it.
  std::shared_ptr<const owner_watch> watch_;
  platform::named_mutex mutex_;
  platform::named_event event_;
  topic_header* header_ = nullptr;
  control_header* control_ = nullptr;
  // Validated parameters, copied at open, and what follows from them: never
  // re-read from shared memory.
  topic_params params_;
  ring_view ring_;
  key_table_view keys_;
  subscriber_table table_;
};

}  // namespace shmbus::detail
