#include "shmbus/platform/named_event.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// One auto-reset kernel event per waiter (see docs/design.md, "Windows: one
// auto-reset event per waiter"; tests/model/windows_wait.pml checks it).
//
//   shared: generation g; per waiter i a word a[i] (in its subscriber entry);
//           hint bits h (bit i % hint_bits: "waiter i may be announced")
//   kernel: event[i], auto-reset, created by the broker
//
// wait(t, i):  loop { a[i] = 1; h |= bit(i); if g != t: a[i] = 0, return;
//                     WaitForSingleObject(event[i], slice) }
// set():       g += 1; for each hint word that is not 0: exchange it with 0,
//              and for each waiter j of its bits: if exchange(a[j], 0):
//              SetEvent(event[j])
//
// Dekker on seq_cst operations: the waiter writes a[i] and h, then reads g;
// set() writes g, then reads h and a[j]. If the waiter read the old g, set()
// (or an earlier set() that cleared h first) reads a[i] == 1 and signals
// event[i]. An auto-reset event keeps that signal until its waiter waits, so
// a waiter that has not yet started to sleep returns as soon as it does:
// there is no window between "check" and "sleep" to lose a set in, and only
// the waiter consumes (resets) its own event. A signal that reaches a waiter
// which has already left is consumed by its next wait, which returns once,
// re-checks and sleeps again. No waker ever waits on anything.

namespace shmbus::platform {
namespace {

using win32::context;
using win32::last_error;

// Waiter i's hint bit is i % hint_bits: with more waiters than bits, a set
// scans every waiter sharing a set bit (memory reads; it signals only those
// whose word says they sleep).
constexpr unsigned hint_words = 7;
constexpr std::uint32_t hint_bits = hint_words * 64;

struct event_state {
  std::atomic<std::uint32_t> generation;
  std::uint32_t reserved;
  std::atomic<std::uint64_t> hint[hint_words];
};
static_assert(sizeof(event_state) <= named_event::storage_size);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free);

event_state& state(void* storage) noexcept { return *static_cast<event_state*>(storage); }

// Bound on one sleep. No wake-up depends on it: it bounds what a hostile
// process stealing another waiter's signal can cost that waiter, and lets
// the caller re-check its condition whatever shared memory says.
constexpr DWORD safety_slice_ms = 200;

std::atomic<std::uint64_t> g_safety_net_wakeups{0};
std::atomic<std::uint64_t> g_wake_calls{0};  // SetEvent calls, for wake_calls()

std::string kernel_name(std::string_view name, std::uint32_t waiter) {
  return win32::native_name(std::string(name) + ".w" + std::to_string(waiter));
}

}  // namespace

std::uint64_t named_event::safety_net_wakeups() noexcept { return g_safety_net_wakeups.load(); }

std::uint64_t named_event::wake_calls() noexcept { return g_wake_calls.load(std::memory_order_relaxed); }

namespace {

std::atomic<std::uint32_t>& word(const named_event::waiter_words& w, std::uint32_t i) noexcept {
  return *reinterpret_cast<std::atomic<std::uint32_t>*>(reinterpret_cast<std::byte*>(w.first) + i * w.stride);
}

}  // namespace

// This process's view of the event: where the waiters announce themselves,
// and its handles to their kernel events.
struct named_event::native {
  waiter_words waiters;
  // A waker's (and the creator's) handle to every waiter's event.
  std::vector<HANDLE> handles;
  // A waiter's own event, opened with SYNCHRONIZE on its first wait.
  HANDLE own = nullptr;
  std::uint32_t own_index = 0;

  explicit native(waiter_words w) noexcept : waiters(w) {}
  native(const native&) = delete;
  native& operator=(const native&) = delete;
  ~native() {
    for (HANDLE h : handles) ::CloseHandle(h);
    if (own != nullptr) ::CloseHandle(own);
  }

  // Every waiter's kernel event from `make` (create or open one by name,
  // or return null with `ec` set), all of them or none.
  template <class Make>
  std::error_code make_all(std::string_view name, Make make) {
    handles.reserve(waiters.count);
    for (std::uint32_t i = 0; i < waiters.count; ++i) {
      std::error_code ec;
      HANDLE h = make(win32::wide(kernel_name(name, i)), ec);
      if (h == nullptr) {
        for (HANDLE made : handles) ::CloseHandle(made);
        handles.clear();
        return ec;
      }
      handles.push_back(h);
    }
    return {};
  }

  // Makes `e` this process's view of the event in `storage`, with every
  // waiter's kernel event from `make` when `all_events` (a waker, the
  // creator), else none yet (a waiter opens its own when it first waits).
  template <class Make>
  static std::error_code attach(named_event& e, std::string_view name, void* storage, waiter_words waiters,
                                bool all_events, Make make) noexcept {
    try {
      e.name_ = std::string(name);
      std::unique_ptr<native, native_deleter> n(new native(waiters));
      if (all_events) {
        if (std::error_code ec = n->make_all(name, make)) return ec;
      }
      e.native_ = std::move(n);
      e.storage_ = storage;
      return {};
    } catch (const std::bad_alloc&) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
  }

  HANDLE own_handle(const std::string& name, std::uint32_t waiter);
  void wake_announced(event_state& st) noexcept;
};

void named_event::native_deleter::operator()(native* p) const noexcept { delete p; }

named_event::named_event(create_only_t, std::string_view name, void* storage, waiter_words waiters,
                         const permissions& perms) {
  std::error_code ec;
  *this = named_event(create_only, name, storage, waiters, perms, ec);
  if (ec) throw_error(ec, context("CreateEventW", kernel_name(name, 0)));
}

named_event::named_event(create_only_t, std::string_view name, void* storage, waiter_words waiters,
                         const permissions& perms, std::error_code& ec) noexcept {
  ec.clear();
  try {
    std::string what;
    // A subscribe-only group may wait on these events, never set or reset them.
    win32::security sec(perms, ec, what, win32::group_use::wait);
    if (ec) return;
    new (storage) event_state{};
    ec = native::attach(*this, name, storage, waiters, true, [&](const std::wstring& kernel, std::error_code& e) {
      // Auto-reset: a signal stays until its waiter's wait consumes it.
      HANDLE h = ::CreateEventW(sec.attributes(), FALSE, FALSE, kernel.c_str());
      if (h == nullptr || ::GetLastError() == ERROR_ALREADY_EXISTS) {
        e = h == nullptr ? last_error() : last_error(ERROR_ALREADY_EXISTS);
        if (h != nullptr) ::CloseHandle(h);
        return HANDLE{nullptr};
      }
      return h;
    });
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

named_event::named_event(open_only_t, std::string_view name, void* storage, waiter_words waiters, role r) {
  std::error_code ec;
  *this = named_event(open_only, name, storage, waiters, r, ec);
  if (ec) throw_error(ec, context("OpenEventW", kernel_name(name, 0)));
}

named_event::named_event(open_only_t, std::string_view name, void* storage, waiter_words waiters, role r,
                         std::error_code& ec) noexcept {
  ec = native::attach(*this, name, storage, waiters, r == role::waker,
                      [](const std::wstring& kernel, std::error_code& e) {
                        // SYNCHRONIZE too, so that a waker can also wait (tests do).
                        HANDLE h = ::OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, kernel.c_str());
                        if (h == nullptr) e = last_error();
                        return h;
                      });
}

named_event::token named_event::prepare_wait() const noexcept {
  return state(storage_).generation.load(std::memory_order_seq_cst);
}

// A waker (or the creator) has every handle already; a waiter opens its own
// once, with SYNCHRONIZE only: it needs to wait, never to set or reset.
HANDLE named_event::native::own_handle(const std::string& name, std::uint32_t waiter) {
  if (waiter < handles.size()) return handles[waiter];
  if (own != nullptr && own_index == waiter) return own;
  HANDLE h = ::OpenEventW(SYNCHRONIZE, FALSE, win32::wide(kernel_name(name, waiter)).c_str());
  if (h == nullptr) throw std::system_error(last_error(), context("OpenEventW", kernel_name(name, waiter)));
  if (own != nullptr) ::CloseHandle(own);
  own = h;
  own_index = waiter;
  return h;
}

bool named_event::wait(token t, std::uint32_t waiter, std::optional<clock::time_point> deadline) {
  if (waiter >= native_->waiters.count)
    throw std::system_error(make_error_code(errc::invalid_argument),
                            "wait on '" + name_ + "': waiter " + std::to_string(waiter) + " out of range");
  event_state& st = state(storage_);
  HANDLE event = native_->own_handle(name_, waiter);
  std::atomic<std::uint32_t>& announced = word(native_->waiters, waiter);
  // However we leave, we no longer sleep: a later set() need not signal us.
  struct leave {
    std::atomic<std::uint32_t>& a;
    ~leave() { a.store(0, std::memory_order_seq_cst); }
  } guard{announced};
  for (;;) {
    // Announce, then look: a set() whose generation bump we miss sees us.
    // Re-announced on every turn, since the set that woke us cleared it.
    announced.store(1, std::memory_order_seq_cst);
    st.hint[(waiter % hint_bits) / 64].fetch_or(std::uint64_t{1} << (waiter % 64), std::memory_order_seq_cst);
    if (st.generation.load(std::memory_order_seq_cst) != t) return true;
    DWORD slice = safety_slice_ms;
    bool last_slice = false;  // the deadline ends this sleep, not the safety slice
    if (deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock::now()).count();
      if (left <= 0) return false;
      last_slice = left <= safety_slice_ms;
      slice = static_cast<DWORD>(std::min<long long>(left, slice));
    }
    if (before_sleep_hook != nullptr) before_sleep_hook();
    const DWORD r = ::WaitForSingleObject(event, slice);
    if (r == WAIT_OBJECT_0) continue;  // signalled (perhaps an old signal): re-check
    if (r != WAIT_TIMEOUT)
      throw std::system_error(last_error(), context("WaitForSingleObject", kernel_name(name_, waiter)));
    if (st.generation.load(std::memory_order_seq_cst) != t) {
      // A set came as the slice ran out. Its signal is normally on its way
      // (set() bumps the generation first, then signals): give it one more
      // slice. Only if it never comes (a process consumed our signal) did
      // the safety net find the set.
      if (::WaitForSingleObject(event, safety_slice_ms) != WAIT_OBJECT_0)
        g_safety_net_wakeups.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    // Nothing moved. At the deadline, the loop reports the timeout; at the
    // end of a safety slice, the caller re-checks its own condition, so
    // shared memory that a hostile process rewrites (the generation, the
    // announcements) cannot hide a message from it for longer than a slice.
    if (!last_slice) return true;
  }
}

// Signals every waiter announced before our generation bump. A hint word
// that is 0 costs one load: a publish with nobody asleep makes no call.
void named_event::native::wake_announced(event_state& st) noexcept {
  // Without every waiter's handle (not a waker) we could clear an
  // announcement and not signal it: leave them all to a waker.
  if (handles.size() < waiters.count) return;
  for (unsigned w = 0; w < hint_words; ++w) {
    if (st.hint[w].load(std::memory_order_seq_cst) == 0) continue;
    std::uint64_t bits = st.hint[w].exchange(0, std::memory_order_seq_cst);
    while (bits != 0) {
      const unsigned b = static_cast<unsigned>(std::countr_zero(bits));
      bits &= bits - 1;
      for (std::uint32_t j = w * 64 + b; j < waiters.count; j += hint_bits) {
        std::atomic<std::uint32_t>& a = word(waiters, j);
        if (a.load(std::memory_order_seq_cst) == 0 || a.exchange(0, std::memory_order_seq_cst) == 0) continue;
        g_wake_calls.fetch_add(1, std::memory_order_relaxed);
        ::SetEvent(handles[j]);
      }
    }
  }
}

void named_event::set() noexcept {
  state(storage_).generation.fetch_add(1, std::memory_order_seq_cst);
  native_->wake_announced(state(storage_));
}

bool named_event::has_sleepers() const noexcept {
  for (std::uint32_t i = 0; i < native_->waiters.count; ++i)
    if (word(native_->waiters, i).load(std::memory_order_seq_cst) != 0) return true;
  return false;
}

void named_event::set_without_waking_for_test() noexcept {
  // What a waker killed inside set() after its exchanges, before its
  // SetEvent calls, leaves: generation moved, announcements cleared.
  event_state& st = state(storage_);
  st.generation.fetch_add(1, std::memory_order_seq_cst);
  for (auto& h : st.hint) h.store(0, std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < native_->waiters.count; ++i)
    word(native_->waiters, i).store(0, std::memory_order_seq_cst);
}

void named_event::wake_all() noexcept {
  // For recovery and close: a waker killed inside set() may have cleared
  // announcements without signalling. Signal every waiter's event: each
  // sleeper wakes and re-checks; a waiter that was not asleep consumes the
  // signal with one spurious return from its next wait.
  for (HANDLE h : native_->handles) {
    g_wake_calls.fetch_add(1, std::memory_order_relaxed);
    ::SetEvent(h);
  }
}

}  // namespace shmbus::platform
