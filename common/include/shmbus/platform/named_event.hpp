#pragma once
/// \file
/// An inter-process event with no lost wake-up.
///
/// A waiter first takes a `token` (the event's current generation), re-checks
/// its own condition, then waits on the token. `set()` releases every waiter
/// whose token is older than the set, including one that has taken its token
/// but not yet gone to sleep.
///
/// POSIX: a futex word in caller-provided shared storage (generation << 1 |
/// sleepers bit); `set()` skips the wake system call when nobody sleeps. The
/// waiter words below are unused.
/// Windows: one auto-reset kernel event per waiter (per subscriber entry),
/// which keeps a signal that arrives before its waiter sleeps. A waiter
/// announces itself in its waiter word before it looks at the generation;
/// `set()` bumps the generation, then signals every announced waiter. Nobody
/// resets an event but its own waiter (by waking), and no waker ever waits
/// on anything. See docs/design.md, "Windows: one auto-reset event per
/// waiter".

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
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

  /// The waiters' words in shared memory: word i (waiter i's) lies `stride`
  /// bytes after word i-1, `count` of them. Windows: waiter i announces there
  /// that it is about to sleep, and wakers clear it when they signal it.
  /// Ignored on POSIX.
  struct waiter_words {
    std::atomic<std::uint32_t>* first = nullptr;
    std::size_t stride = sizeof(std::atomic<std::uint32_t>);
    std::uint32_t count = 0;
  };

  /// What an opener does with the event. Windows: a `waker` opens every
  /// waiter's kernel event (to signal it); a `waiter` opens only its own, with
  /// SYNCHRONIZE, on its first wait. The creator is both.
  enum class role { waiter, waker };

  named_event() noexcept = default;
  named_event(create_only_t, std::string_view name, void* storage, waiter_words waiters, const permissions& perms = {});
  named_event(create_only_t, std::string_view name, void* storage, waiter_words waiters, const permissions& perms,
              std::error_code& ec) noexcept;
  named_event(open_only_t, std::string_view name, void* storage, waiter_words waiters, role r);
  named_event(open_only_t, std::string_view name, void* storage, waiter_words waiters, role r,
              std::error_code& ec) noexcept;

  named_event(named_event&&) noexcept = default;
  named_event& operator=(named_event&&) noexcept = default;
  named_event(const named_event&) = delete;
  named_event& operator=(const named_event&) = delete;
  /// Closes this process's handles (Windows); the state in the storage stays.
  ~named_event() = default;

  /// The generation to wait on; take it *before* checking the condition.
  [[nodiscard]] token prepare_wait() const noexcept;

  /// Sleeps until a `set()` later than `t`, or until `deadline`. `waiter` is
  /// the caller's own index in the waiter words (its subscriber entry); one
  /// thread at a time per index. Returns true when set, false on timeout.
  /// Spurious returns are possible only as `true` (POSIX: only after a set;
  /// Windows: also once per bounded sleep slice, so that a caller re-checks
  /// its condition at least that often); callers re-check either way.
  bool wait(token t, std::uint32_t waiter, std::optional<clock::time_point> deadline);

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

  /// Times, in this process, that a waiter found a set it had not been woken
  /// for when its bounded sleep slice ran out (Windows' last-resort re-check,
  /// which only a hostile process stealing signals can make necessary). The
  /// protocol makes this 0; tests and benchmarks report it. Always 0 on
  /// POSIX, which needs no safety net.
  static std::uint64_t safety_net_wakeups() noexcept;

  /// Wake system calls (`FUTEX_WAKE`; Windows: `SetEvent`) this process has
  /// made through any event. Tests use it to check that a publish with
  /// nobody asleep makes none; benchmarks report it.
  static std::uint64_t wake_calls() noexcept;

 private:
  // What one OS keeps per process besides the storage (Windows: the waiter
  // words and the kernel event handles; POSIX: nothing), defined with its
  // deleter in common/src/<os>/named_event.cpp.
  struct native;
  struct native_deleter {
    void operator()(native* p) const noexcept;
  };

  void* storage_ = nullptr;
  std::string name_;
  std::unique_ptr<native, native_deleter> native_;
};

}  // namespace shmbus::platform
