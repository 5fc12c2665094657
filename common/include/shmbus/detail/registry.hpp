#pragma once
/// \file
/// The bus registry: one small segment per bus listing its topics, the
/// broker's identity and a heartbeat. Clients read it (mapped read-only) to
/// discover topics and to tell a live broker from a dead one.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "shmbus/detail/layout.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"

namespace shmbus::detail {

/// Test-only: called by `registry::open` right after the registry validated,
/// so a test can play a writer that changes it at the worst moment. Null in
/// production.
inline void (*registry_open_hook)() = nullptr;

/// Who owns a bus now, as its clients of broker instance `instance` see it.
enum class ownership {
  ours,   ///< that instance: ready, and its process runs
  other,  ///< another broker instance has claimed the bus and is ready
  none,   ///< no registry, a broken one, or one not (or no longer) ready
};

class registry {
 public:
  registry() = default;

  /// Creates the registry for `topics` (state `initializing`).
  static registry create(std::string_view bus, std::uint64_t instance, std::span<const topic_params> topics,
                         platform::permissions perms, std::error_code& ec, std::string& what);
  /// Opens and validates the registry of a bus; mapped read-only.
  static registry open(std::string_view bus, std::error_code& ec, std::string& what);

  [[nodiscard]] bool is_open() const noexcept { return region_.is_open(); }
  /// The topics, decoded from a private copy of the entries (unvalidated:
  /// a topic's segment is validated when it is opened).
  [[nodiscard]] std::span<const topic_params> topics() const noexcept { return topics_; }
  [[nodiscard]] const topic_params* find(std::string_view topic) const noexcept;
  [[nodiscard]] segment_state state() const noexcept;
  [[nodiscard]] platform::process_identity broker() const noexcept;
  [[nodiscard]] std::uint64_t instance() const noexcept { return instance_; }
  /// Ready, and its broker process still exists.
  [[nodiscard]] bool broker_alive() const noexcept;
  /// The one "is our broker still the owner" check: opens the registry of
  /// `bus` (system calls: never on a publish or read path).
  static ownership owner(std::string_view bus, std::uint64_t instance) noexcept;

  // Broker side.
  void mark_ready() noexcept;
  void mark_closed() noexcept;
  void beat() noexcept;

 private:
  // The live header, for its atomics (state, heartbeat) only.
  [[nodiscard]] const registry_header& live() const noexcept { return registry_of(region_.data()); }
  [[nodiscard]] registry_header& live() noexcept { return registry_of(region_.data()); }

  platform::shared_memory_region region_;
  // Copied once, validated, then used: another process may rewrite the
  // mapping at any moment (a count flipped after validation once made
  // clients read past the mapping). Only `state` and the heartbeat, which
  // change, are read live.
  void keep(const registry_header& validated) noexcept;
  std::uint64_t instance_ = 0;
  platform::process_identity broker_{};
  std::vector<topic_params> topics_;
};

}  // namespace shmbus::detail
