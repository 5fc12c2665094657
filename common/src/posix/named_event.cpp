#include "shmbus/platform/named_event.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <new>
#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// The futex word: generation << 1 | sleepers. Publishers (serialised by the
// topic mutex) bump the generation and clear the sleepers bit in one atomic
// exchange, so they learn in the same instruction whether anybody must be
// woken. A waiter sets the bit with a CAS on the same word before it sleeps,
// and FUTEX_WAIT re-checks the whole word in the kernel, so a set() between
// the waiter's check and its sleep makes the wait return at once. A waiter
// killed while asleep leaves the bit set; the next set() clears it, at the
// cost of one needless wake call.

namespace shmbus::platform {
namespace {

using word_t = std::atomic<std::uint32_t>;
static_assert(word_t::is_always_lock_free);
static_assert(sizeof(word_t) == sizeof(std::uint32_t), "futex needs a plain 32-bit word");

constexpr std::uint32_t sleepers_bit = 1;
// Lost compare-exchange races set() tolerates before it stops trying (only a
// hostile writer of the word loses that many in a row).
constexpr int max_set_attempts = 64;

word_t& word(void* storage) noexcept { return *static_cast<word_t*>(storage); }

// FUTEX_WAKE calls made by this process, for named_event::wake_calls().
std::atomic<std::uint64_t> g_wake_calls{0};

long futex(void* addr, int op, std::uint32_t val, const timespec* ts) noexcept {
  // Not FUTEX_PRIVATE: waiters and wakers live in different processes.
  return ::syscall(SYS_futex, addr, op, val, ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

void wake(void* addr) noexcept {
  g_wake_calls.fetch_add(1, std::memory_order_relaxed);
  futex(addr, FUTEX_WAKE, INT_MAX, nullptr);
}

timespec to_timespec(named_event::clock::time_point tp) noexcept {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
  if (ns <= 0) return {0, 0};
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

// The futex word is all the state, and it lives in the storage.
struct named_event::native {};
void named_event::native_deleter::operator()(native* p) const noexcept { delete p; }

named_event::named_event(create_only_t, std::string_view name, void* storage, waiter_words waiters,
                         const permissions& perms) {
  std::error_code ec;
  *this = named_event(create_only, name, storage, waiters, perms, ec);
  if (ec) throw_error(ec, posix::context("create futex event", name));
}

// The state lives in the segment, whose permissions already apply. The
// futex word needs no per-waiter state: `waiters` is unused here.
named_event::named_event(create_only_t, std::string_view name, void* storage, waiter_words /*waiters*/,
                         const permissions& /*perms*/, std::error_code& ec) noexcept {
  if ((ec = posix::copy_name(name_, name))) return;
  new (storage) word_t(0);
  storage_ = storage;
}

named_event::named_event(open_only_t, std::string_view name, void* storage, waiter_words /*waiters*/, role /*r*/)
    : storage_(storage), name_(name) {}

named_event::named_event(open_only_t, std::string_view name, void* storage, waiter_words /*waiters*/, role /*r*/,
                         std::error_code& ec) noexcept {
  if (!(ec = posix::copy_name(name_, name))) storage_ = storage;
}

std::uint64_t named_event::safety_net_wakeups() noexcept { return 0; }

std::uint64_t named_event::wake_calls() noexcept { return g_wake_calls.load(std::memory_order_relaxed); }

named_event::token named_event::prepare_wait() const noexcept {
  return word(storage_).load(std::memory_order_seq_cst) & ~sleepers_bit;
}

bool named_event::wait(token t, std::uint32_t /*waiter*/, std::optional<clock::time_point> deadline) {
  word_t& w = word(storage_);
  timespec abs{};
  if (deadline) abs = to_timespec(*deadline);
  for (;;) {
    std::uint32_t cur = w.load(std::memory_order_seq_cst);
    if ((cur & ~sleepers_bit) != t) return true;
    if ((cur & sleepers_bit) == 0 && !w.compare_exchange_weak(cur, cur | sleepers_bit, std::memory_order_seq_cst)) {
      continue;  // the word moved: re-check the generation
    }
    if (deadline && clock::now() >= *deadline) return false;
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so an
    // EINTR retry does not stretch the timeout.
    const long r = futex(&w, FUTEX_WAIT_BITSET, cur | sleepers_bit, deadline ? &abs : nullptr);
    if (r == -1 && errno == ETIMEDOUT) {
      return (w.load(std::memory_order_seq_cst) & ~sleepers_bit) != t;
    }
    if (r == -1 && errno != EAGAIN && errno != EINTR) {
      // ENOSYS/EPERM (seccomp) and the like: never spin on a broken futex.
      throw std::system_error(posix::errno_code(), posix::context("futex(FUTEX_WAIT)", name_));
    }
    // Woken, EAGAIN (word changed) or EINTR: loop and re-check.
  }
}

void named_event::set() noexcept {
  word_t& w = word(storage_);
  std::uint32_t cur = w.load(std::memory_order_relaxed);
  // Next generation, sleepers bit cleared, in one RMW so no sleeper is missed.
  // The word lives where every subscriber may write: one that keeps changing
  // it must not hold a publisher here. After a bounded number of lost races,
  // move the generation on without clearing the bit, and wake.
  for (int attempt = 0; attempt < max_set_attempts; ++attempt) {
    if (w.compare_exchange_weak(cur, (cur & ~sleepers_bit) + 2, std::memory_order_seq_cst)) {
      if ((cur & sleepers_bit) != 0) wake(&w);
      return;
    }
  }
  w.fetch_add(2, std::memory_order_seq_cst);
  wake(&w);
}

bool named_event::has_sleepers() const noexcept {
  return (word(storage_).load(std::memory_order_seq_cst) & sleepers_bit) != 0;
}

void named_event::set_without_waking_for_test() noexcept {
  word_t& w = word(storage_);
  std::uint32_t cur = w.load(std::memory_order_relaxed);
  while (!w.compare_exchange_weak(cur, (cur & ~sleepers_bit) + 2, std::memory_order_seq_cst)) {
  }
}

void named_event::wake_all() noexcept { wake(storage_); }

}  // namespace shmbus::platform
