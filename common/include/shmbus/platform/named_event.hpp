#pragma once
/// \file
/// An inter-process event with manual-reset semantics and no lost wake-up.
///
/// A waiter first takes a `token` (the event's current generation), re-checks
/// its own condition, then waits on the token. `set()` releases every waiter
/// whose token is older than the set, including one that has taken its token
/// but not yet gone to sleep; the event needs no reset, so one waiter's reset
/// can never swallow another's wake-up.
///
/// POSIX: a futex word in caller-provided shared storage (generation << 1 |
/// sleepers bit); `set()` skips the wake system call when nobody sleeps.
/// Windows: `generations` named manual-reset events used in turn by
/// generation, plus a generation counter and per-event sleeper counts in the
/// shared storage; only `set()` (the publisher, under the topic mutex) resets
/// an event, and only the one that the generation after next will use. See
/// docs/design.md for why no waiter is left asleep.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/open_mode.hpp"
#include "shmbus/platform/permissions.hpp"

namespace shmbus::platform {

class named_event {
 public:
  /// Bytes of shared storage the event needs.
  static constexpr std::size_t storage_size = 64;

  using token = std::uint32_t;
  using clock = std::chrono::steady_clock;

  named_event() noexcept = default;
  named_event(create_only_t, std::string_view name, void* storage, const permissions& perms = {});
  named_event(create_only_t, std::string_view name, void* storage, const permissions& perms,
              std::error_code& ec) noexcept;
  named_event(open_only_t, std::string_view name, void* storage);
  named_event(open_only_t, std::string_view name, void* storage, std::error_code& ec) noexcept;

  named_event(named_event&& other) noexcept;
  named_event& operator=(named_event&& other) noexcept;
  named_event(const named_event&) = delete;
  named_event& operator=(const named_event&) = delete;
  ~named_event();

  /// The generation to wait on; take it *before* checking the condition.
  [[nodiscard]] token prepare_wait() const noexcept;

  /// Sleeps until a `set()` later than `t`, or until `deadline`. Returns true
  /// when set, false on timeout. Spurious returns are possible only as `true`
  /// after a set; callers re-check their condition either way.
  bool wait(token t, std::optional<clock::time_point> deadline);

  /// Releases every current waiter. Costs no system call when none sleeps.
  void set() noexcept;

  /// Wakes every sleeper unconditionally (a system call). For recovery: a
  /// waker killed inside set() may have recorded the set but not woken.
  void wake_all() noexcept;

  /// Whether some waiter is registered as asleep (or about to sleep).
  [[nodiscard]] bool has_sleepers() const noexcept;

  /// Test-only: does what a publisher killed inside set() leaves behind —
  /// the generation moved on, nobody woken.
  void set_without_waking_for_test() noexcept;

  /// Test-only (Windows): called inside wait() after the waiter's last look
  /// at the generation and before it sleeps, so a test can stop a waiter in
  /// exactly the window a lost wake-up needs. Null in production.
  static inline void (*before_sleep_hook)() = nullptr;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// Windows: kernel events per named event, used in turn by generation.
  static constexpr unsigned generations = 4;

  /// Times, in this process, that a waiter found a set it had not been woken
  /// for when its bounded sleep slice ran out (Windows' last-resort re-check).
  /// The protocol makes this 0; tests and benchmarks report it. Always 0 on
  /// POSIX, which needs no safety net.
  static std::uint64_t safety_net_wakeups() noexcept;

  /// Wake system calls (`FUTEX_WAKE`; Windows: `SetEvent`) this process has
  /// made through any event. Tests use it to check that a publish with
  /// nobody asleep makes none; benchmarks report it.
  static std::uint64_t wake_calls() noexcept;

 private:
  void close_handles() noexcept;
  void rearm(unsigned k) noexcept;  // Windows: reset event k under the gate

  void* storage_ = nullptr;
  // Windows: one event HANDLE per generation slot and the gate mutex;
  // unused on POSIX.
  void* native_handles_[generations] = {};
  void* gate_ = nullptr;
  std::string name_;
};

}  // namespace shmbus::platform
