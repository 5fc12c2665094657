#include "shmbus/detail/subscriber_table.hpp"

#include <gsl/assert>

#include "shmbus/error.hpp"

namespace shmbus::detail {
namespace {

platform::process_identity owner_of(const subscriber_entry& e) noexcept {
  return {e.pid.load(std::memory_order_relaxed), e.start_time.load(std::memory_order_relaxed)};
}

bool is_live(const subscriber_entry& e) noexcept {
  return sub_phase(e.state.load(std::memory_order_acquire)) == sub_live;
}

}  // namespace

registration subscriber_table::claim(const platform::process_identity& me, std::uint64_t caught_up_to,
                                     std::error_code& ec) noexcept {
  ec.clear();
  for (int attempt = 0; attempt < 2; ++attempt) {
    int index = 0;
    for (subscriber_entry& e : entries_) {
      std::uint64_t cur = e.state.load(std::memory_order_acquire);
      if (sub_phase(cur) == sub_free &&
          e.state.compare_exchange_strong(cur, sub_next(cur, sub_claimed), std::memory_order_acq_rel)) {
        e.pid.store(me.pid, std::memory_order_relaxed);
        e.start_time.store(me.start_time, std::memory_order_relaxed);
        // Caught up so far: without this, `shmbus stat` would count every
        // message published before we subscribed as our lag.
        e.read_seq.store(caught_up_to, std::memory_order_relaxed);
        e.missed.store(0, std::memory_order_relaxed);
        e.received.store(0, std::memory_order_relaxed);
        e.waiting.store(0, std::memory_order_relaxed);
        const std::uint64_t live = sub_next(sub_next(cur, sub_claimed), sub_live);
        e.state.store(live, std::memory_order_release);
        return {index, live};
      }
      ++index;
    }
    if (reap() == 0) break;
  }
  ec = make_error_code(errc::too_many_subscribers);
  return {};
}

void subscriber_table::release(const registration& r) noexcept {
  if (r.index < 0) return;
  Expects(static_cast<std::size_t>(r.index) < entries_.size());
  // From exactly the word we registered with: the generation tells our
  // registration from a later one on the same entry, which the phase alone
  // cannot (issue 9 item 8; tests/model/registration.pml -DBUG_PHASE_ONLY).
  // If a reaper freed the entry meanwhile, it is no longer ours to free.
  std::uint64_t cur = r.state;
  entries_[static_cast<std::size_t>(r.index)].state.compare_exchange_strong(cur, sub_next(r.state, sub_free),
                                                                            std::memory_order_acq_rel);
}

unsigned subscriber_table::reap() noexcept {
  unsigned reaped = 0;
  for (subscriber_entry& e : entries_) {
    std::uint64_t cur = e.state.load(std::memory_order_acquire);
    // Only live entries: a claimed one may still hold its previous owner's
    // pid. (A process killed inside the few instructions between claim and
    // live leaks its entry; max_subscribers bounds the cost.)
    if (sub_phase(cur) != sub_live || platform::is_alive(owner_of(e))) continue;
    // The generation in `cur` makes this fail if the entry changed hands
    // while we looked.
    if (e.state.compare_exchange_strong(cur, sub_next(cur, sub_free), std::memory_order_acq_rel)) ++reaped;
  }
  return reaped;
}

std::vector<subscriber_stats> subscriber_table::live() const {
  std::vector<subscriber_stats> out;
  for (const subscriber_entry& e : entries_) {
    if (!is_live(e)) continue;
    const platform::process_identity who = owner_of(e);
    if (!platform::is_alive(who)) continue;
    out.push_back({who.pid, e.read_seq.load(std::memory_order_relaxed), e.received.load(std::memory_order_relaxed),
                   e.missed.load(std::memory_order_relaxed), e.waiting.load(std::memory_order_relaxed) != 0});
  }
  return out;
}

unsigned subscriber_table::live_count() const noexcept {
  unsigned n = 0;
  for (const subscriber_entry& e : entries_) n += is_live(e) && platform::is_alive(owner_of(e)) ? 1 : 0;
  return n;
}

subscriber_entry* subscriber_table::owned(registration& r) const noexcept {
  if (r.index < 0) return nullptr;
  Expects(static_cast<std::size_t>(r.index) < entries_.size());
  subscriber_entry& e = entries_[static_cast<std::size_t>(r.index)];
  if (e.state.load(std::memory_order_acquire) == r.state) return &e;
  r = {};  // reaped: stop writing it
  return nullptr;
}

bool subscriber_table::record(registration& r, std::uint64_t read_seq, std::uint64_t missed,
                              std::uint64_t received) noexcept {
  subscriber_entry* e = owned(r);
  if (e == nullptr) return false;
  e->read_seq.store(read_seq, std::memory_order_relaxed);
  e->missed.store(missed, std::memory_order_relaxed);
  e->received.store(received, std::memory_order_relaxed);
  return true;
}

subscriber_table::waiting_guard::waiting_guard(const subscriber_table& t, registration& r) noexcept
    : entry_(t.owned(r)) {
  if (entry_ != nullptr) entry_->waiting.store(1, std::memory_order_relaxed);
}

subscriber_table::waiting_guard::~waiting_guard() {
  if (entry_ != nullptr) entry_->waiting.store(0, std::memory_order_relaxed);
}

}  // namespace shmbus::detail
