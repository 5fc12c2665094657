#include "shmbus/platform/named_event.hpp"

#include <algorithm>
#include <atomic>
#include <new>
#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// Windows manual-reset events, used in turn by generation (see
// docs/design.md, "Windows: no lost wake-up on manual-reset events").
//
//   shared state: generation g, sleepers[k], signaled[k]  (k = 0..K-1)
//   kernel objects: event[k] (manual reset), a mutex `gate`
//
// set() (publishers, serialised by the topic mutex):
//   g += 1; if sleepers[g%K]: SetEvent(event[g%K])
//   if signaled[(g+1)%K]: under gate, ResetEvent(event[(g+1)%K])
// wait(t): sleepers[(t+1)%K] += 1, then repeatedly: take gate; if g != t,
//   done; else SignalObjectAndWait(gate, event[(t+1)%K]).
//
// A waiter checks g under the gate and releases the gate and starts waiting
// in one call, so the only reset that can touch its event (set(t+K)'s, under
// the gate) comes after it is already waiting, and after set(t+1) — which
// saw it in sleepers, since it registered before checking g — signalled it.
// Nobody but set() resets, and it resets only the event of the generation
// after next, so no waiter's reset swallows another's wake-up.

namespace shmbus::platform {
namespace {

using win32::context;
using win32::last_error;

constexpr unsigned K = named_event::generations;

struct event_state {
  std::atomic<std::uint32_t> generation;
  std::atomic<std::uint32_t> sleepers[K];
  // Which events are signalled. Written only by set()/wake_all(), which the
  // topic mutex serialises; it spares the ResetEvent call when nobody slept.
  std::atomic<std::uint32_t> signaled[K];
};
static_assert(sizeof(event_state) <= named_event::storage_size);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

event_state& state(void* storage) noexcept { return *static_cast<event_state*>(storage); }

// Last-resort bound on one sleep: a wake-up the protocol somehow missed is
// found this late at worst, and counted.
constexpr DWORD safety_slice_ms = 200;

std::atomic<std::uint64_t> g_safety_net_wakeups{0};
std::atomic<std::uint64_t> g_wake_calls{0};  // SetEvent calls, for wake_calls()

std::string kernel_name(std::string_view name, unsigned k) {
  return win32::native_name(std::string(name) + "." + std::to_string(k));
}
std::string gate_name(std::string_view name) { return win32::native_name(std::string(name) + ".gate"); }

}  // namespace

std::uint64_t named_event::safety_net_wakeups() noexcept { return g_safety_net_wakeups.load(); }

std::uint64_t named_event::wake_calls() noexcept { return g_wake_calls.load(std::memory_order_relaxed); }

named_event::named_event(create_only_t, std::string_view name, void* storage, const permissions& perms) {
  std::error_code ec;
  *this = named_event(create_only, name, storage, perms, ec);
  if (ec) throw_error(ec, context("CreateEventW", win32::native_name(name)));
}

named_event::named_event(create_only_t, std::string_view name, void* storage, const permissions& perms,
                         std::error_code& ec) noexcept {
  ec.clear();
  try {
    name_ = std::string(name);
    std::string what;
    win32::security sec(perms, ec, what);
    if (ec) return;
    new (storage) event_state{};
    auto created = [&](HANDLE h) {
      if (h == nullptr) {
        ec = last_error();
        return false;
      }
      if (::GetLastError() == ERROR_ALREADY_EXISTS) {
        ::CloseHandle(h);
        ec = last_error(ERROR_ALREADY_EXISTS);
        return false;
      }
      return true;
    };
    for (unsigned k = 0; k < K; ++k) {
      HANDLE h = ::CreateEventW(sec.attributes(), TRUE, FALSE, win32::wide(kernel_name(name, k)).c_str());
      if (!created(h)) {
        close_handles();
        return;
      }
      native_handles_[k] = h;
    }
    HANDLE gate = ::CreateMutexW(sec.attributes(), FALSE, win32::wide(gate_name(name)).c_str());
    if (!created(gate)) {
      close_handles();
      return;
    }
    gate_ = gate;
    storage_ = storage;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    close_handles();
  }
}

named_event::named_event(open_only_t, std::string_view name, void* storage) {
  std::error_code ec;
  *this = named_event(open_only, name, storage, ec);
  if (ec) throw_error(ec, context("OpenEventW", win32::native_name(name)));
}

named_event::named_event(open_only_t, std::string_view name, void* storage, std::error_code& ec) noexcept {
  ec.clear();
  try {
    name_ = std::string(name);
    for (unsigned k = 0; k < K; ++k) {
      native_handles_[k] =
          ::OpenEventW(SYNCHRONIZE | EVENT_MODIFY_STATE, FALSE, win32::wide(kernel_name(name, k)).c_str());
      if (native_handles_[k] == nullptr) {
        ec = last_error();
        close_handles();
        return;
      }
    }
    gate_ = ::OpenMutexW(SYNCHRONIZE | MUTEX_MODIFY_STATE, FALSE, win32::wide(gate_name(name)).c_str());
    if (gate_ == nullptr) {
      ec = last_error();
      close_handles();
      return;
    }
    storage_ = storage;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    close_handles();
  }
}

named_event::named_event(named_event&& other) noexcept
    : storage_(std::exchange(other.storage_, nullptr)),
      gate_(std::exchange(other.gate_, nullptr)),
      name_(std::move(other.name_)) {
  for (unsigned k = 0; k < K; ++k) native_handles_[k] = std::exchange(other.native_handles_[k], nullptr);
}

named_event& named_event::operator=(named_event&& other) noexcept {
  if (this != &other) {
    close_handles();
    storage_ = std::exchange(other.storage_, nullptr);
    gate_ = std::exchange(other.gate_, nullptr);
    for (unsigned k = 0; k < K; ++k) native_handles_[k] = std::exchange(other.native_handles_[k], nullptr);
    name_ = std::move(other.name_);
  }
  return *this;
}

named_event::~named_event() { close_handles(); }

void named_event::close_handles() noexcept {
  for (auto& h : native_handles_) {
    if (h != nullptr) ::CloseHandle(h);
    h = nullptr;
  }
  if (gate_ != nullptr) ::CloseHandle(gate_);
  gate_ = nullptr;
  storage_ = nullptr;
}

named_event::token named_event::prepare_wait() const noexcept {
  return state(storage_).generation.load(std::memory_order_seq_cst);
}

bool named_event::wait(token t, std::optional<clock::time_point> deadline) {
  event_state& st = state(storage_);
  const unsigned k = (t + 1) % K;
  HANDLE event = native_handles_[k];
  // Registered before the generation is checked: a set() that the check
  // misses sees us here and signals our event.
  st.sleepers[k].fetch_add(1, std::memory_order_seq_cst);
  struct unregister {
    std::atomic<std::uint32_t>& n;
    ~unregister() { n.fetch_sub(1, std::memory_order_seq_cst); }
  } guard{st.sleepers[k]};

  bool stale_signal = false;
  for (;;) {
    // The gate protects no data, so an owner that died holding it
    // (WAIT_ABANDONED) is harmless.
    const DWORD g = ::WaitForSingleObject(gate_, INFINITE);
    if (g != WAIT_OBJECT_0 && g != WAIT_ABANDONED)
      throw std::system_error(last_error(), context("WaitForSingleObject", gate_name(name_)));
    if (stale_signal) {
      // Our event still carries an old signal (a publisher has not re-armed
      // it yet, is stalled, or died before doing so). Reset it ourselves,
      // under the gate, *then* look at the generation: set(t+1) bumps the
      // generation before it signals, so if the generation has not moved
      // now, its SetEvent is still to come and this reset cannot swallow it.
      ::ResetEvent(event);
      stale_signal = false;
    }
    if (st.generation.load(std::memory_order_seq_cst) != t) {
      ::ReleaseMutex(gate_);
      return true;
    }
    DWORD slice = safety_slice_ms;
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now()).count();
      if (left <= 0) {
        ::ReleaseMutex(gate_);
        return false;
      }
      slice = static_cast<DWORD>(std::min<long long>(left, slice));
    }
    if (before_sleep_hook != nullptr) before_sleep_hook();
    const DWORD r = ::SignalObjectAndWait(gate_, event, slice, FALSE);
    const bool moved = st.generation.load(std::memory_order_seq_cst) != t;
    if (r == WAIT_OBJECT_0) {
      if (moved) return true;
      stale_signal = true;  // reset under the gate on the next turn: no spinning
      continue;
    }
    if (r == WAIT_TIMEOUT) {
      if (moved) {
        // A set came while we slept and did not wake us: only the safety
        // net found it. (An upper bound: a set caught between its
        // generation bump and its SetEvent as the slice ran out counts too.)
        g_safety_net_wakeups.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
      continue;  // the loop re-checks the deadline
    }
    // SignalObjectAndWait failed; make sure the gate is not left held.
    const std::error_code ec = last_error();
    ::ReleaseMutex(gate_);
    throw std::system_error(ec, context("SignalObjectAndWait", kernel_name(name_, k)));
  }
}

void named_event::set() noexcept {
  event_state& st = state(storage_);
  const std::uint32_t g = st.generation.fetch_add(1, std::memory_order_seq_cst) + 1;
  const unsigned k = g % K;
  if (st.sleepers[k].load(std::memory_order_seq_cst) != 0) {
    st.signaled[k].store(1, std::memory_order_relaxed);
    g_wake_calls.fetch_add(1, std::memory_order_relaxed);
    ::SetEvent(native_handles_[k]);
  }
  // Re-arm the event that waiters of generation g will sleep on.
  const unsigned next = (g + 1) % K;
  if (st.signaled[next].load(std::memory_order_relaxed) == 0) return;
  if (st.sleepers[next].load(std::memory_order_seq_cst) == 0) {
    // Nobody registered on it before our increment above, and whoever
    // registers from now on checks the generation after that increment: a
    // waiter of an older generation sees it moved and leaves; a waiter of
    // generation g sleeps on the event reset or returns once, spuriously,
    // from the old signal. So no gate is needed (two system calls saved).
    ::ResetEvent(native_handles_[next]);
    st.signaled[next].store(0, std::memory_order_relaxed);
    return;
  }
  rearm(next);
}

// Under the gate: a waiter that saw the current generation is then already
// asleep on the event, satisfied by the set that signalled it. If a waiter is
// stopped holding the gate, reset anyway after a while: the safety net then
// bounds the damage instead of stalling the publisher (20 ms, under the topic
// mutex, is the most a stopped subscriber can cost one publish).
void named_event::rearm(unsigned k) noexcept {
  const DWORD w = ::WaitForSingleObject(gate_, 20);
  ::ResetEvent(native_handles_[k]);
  state(storage_).signaled[k].store(0, std::memory_order_relaxed);
  if (w == WAIT_OBJECT_0 || w == WAIT_ABANDONED) ::ReleaseMutex(gate_);
}

bool named_event::has_sleepers() const noexcept {
  const event_state& st = state(storage_);
  for (const auto& n : st.sleepers)
    if (n.load(std::memory_order_seq_cst) != 0) return true;
  return false;
}

void named_event::set_without_waking_for_test() noexcept {
  state(storage_).generation.fetch_add(1, std::memory_order_seq_cst);
}

void named_event::wake_all() noexcept {
  // For recovery and close: a publisher killed inside set() may have moved
  // the generation without signalling, or signalled without re-arming.
  // Signal every event: each sleeper, whatever its generation, wakes and
  // re-checks; one that finds nothing new resets its event under the gate
  // and sleeps again (see wait()), so nobody spins on the signals left here.
  event_state& st = state(storage_);
  for (unsigned k = 0; k < K; ++k) {
    st.signaled[k].store(1, std::memory_order_relaxed);
    g_wake_calls.fetch_add(1, std::memory_order_relaxed);
    ::SetEvent(native_handles_[k]);
  }
}

}  // namespace shmbus::platform
