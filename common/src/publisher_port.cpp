#include "shmbus/detail/publisher_port.hpp"

#include <cstring>

#include "shmbus/error.hpp"

namespace shmbus::detail {

publisher_port publisher_port::open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                    std::error_code& ec, std::string& what) {
  return publisher_port(topic_segment::open_declared(bus, instance, declared, topic_role::publish, ec, what));
}

std::uint64_t publisher_port::mutex_recoveries() const noexcept {
  return seg_.is_open() ? seg_.header().mutex_recoveries.load(std::memory_order_relaxed) : 0;
}

void publisher_port::copy_payload(std::byte* dst, std::span<const std::byte> payload) noexcept {
  if (publish_hook == nullptr) {
    std::memcpy(dst, payload.data(), payload.size());
    return;
  }
  // The test stops half-way through the copy.
  const std::size_t half = payload.size() / 2;
  if (half != 0) std::memcpy(dst, payload.data(), half);
  publish_hook();
  if (payload.size() != half) std::memcpy(dst + half, payload.data() + half, payload.size() - half);
}

std::uint64_t publisher_port::publish(std::span<const std::byte> payload, std::error_code& ec,
                                      recovery_report* report) noexcept {
  ec.clear();
  const topic_params& p = seg_.params();
  if (payload.size() > p.max_message_size) {
    ec = make_error_code(errc::message_too_large);
    return 0;
  }
  // Here, not in the client API: whoever can publish at all goes through
  // this check, and the declared size comes from the validated copy.
  if (p.type_size != 0 && payload.size() != p.type_size) {
    ec = make_error_code(errc::type_size_mismatch);
    return 0;
  }
  // The message's timestamp: when publish() was called (a vDSO clock read).
  const std::int64_t now = platform::monotonic_ns();
  // Loads only: no system call before the copy (see owner_watch).
  if (seg_.gone()) {
    ec = make_error_code(errc::topic_closed);
    return 0;
  }
  const bool recovered = seg_.mutex().lock(ec) == platform::named_mutex::lock_result::owner_died;
  if (recovered) recover_after_owner_death();
  if (ec) return 0;

  topic_header& h = seg_.header();
  // From the publishers' own line, not from write_seq (see publish_seq).
  const std::uint64_t seq = h.publish_seq.load(std::memory_order_relaxed) + 1;
  slot_header& s = seg_.ring().slot(seq);
  write_begin(s, seq);
  copy_payload(ring_view::payload(s), payload);
  write_end(s, seq, payload.size(), now);
  h.write_seq.store(seq, std::memory_order_seq_cst);
  h.publish_seq.store(seq, std::memory_order_relaxed);
  h.bytes_published.store(h.bytes_published.load(std::memory_order_relaxed) + payload.size(),
                          std::memory_order_relaxed);
  h.last_publish_ns.store(now, std::memory_order_relaxed);
  // Under the mutex, so a publisher killed after unlocking can never leave
  // the message published but its waiters asleep.
  seg_.event().set();
  seg_.mutex().unlock();
  if (report != nullptr)
    *report = {recovered, h.mutex_recoveries.load(std::memory_order_relaxed),
               h.torn_discarded.load(std::memory_order_relaxed)};
  return seq;
}

void publisher_port::recover_after_owner_death() noexcept {
  // We own the mutex. The dead owner got somewhere in publish(): a slot for
  // write_seq+1 that is complete is announced (nothing lost); one that is
  // half-written is discarded; write_seq itself is always a whole message.
  topic_header& h = seg_.header();
  const std::uint64_t seq = h.write_seq.load(std::memory_order_relaxed) + 1;
  const std::uint64_t v = seg_.ring().slot(seq).seq.load(std::memory_order_relaxed);
  if (v == 2 * seq) {
    h.write_seq.store(seq, std::memory_order_seq_cst);
  } else if (v == 2 * seq - 1) {
    // Discarded by leaving the odd marker: no reader delivers an odd slot,
    // and the next publish reuses `seq` and stores the same marker, so a
    // slot's word never decreases. Zeroing it (as before) made a reader
    // whose write_seq was one publish stale, and which targets this slot,
    // see a value below its target and report corruption (issue 9 item 4;
    // tests/model/seqlock.pml -DBUG_ZERO_SLOT).
    h.torn_discarded.fetch_add(1, std::memory_order_relaxed);
  }
  // The dead owner may have stored write_seq but not its copy.
  h.publish_seq.store(h.write_seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
  h.mutex_recoveries.fetch_add(1, std::memory_order_relaxed);
  // The dead owner may have died before waking anyone, or inside set() after
  // clearing the sleepers bit but before the wake: wake unconditionally.
  seg_.event().set();
  seg_.event().wake_all();
  seg_.mutex().consistent();
  if (recovery_hook != nullptr) recovery_hook();
}

}  // namespace shmbus::detail
