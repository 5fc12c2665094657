#include "shmbus/detail/publisher_port.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <utility>

#include "shmbus/error.hpp"

namespace shmbus::detail {
namespace {

// A token no other right in any process will carry: this process's
// identity and a per-process counter, never 0.
std::uint64_t new_token(const platform::process_identity& me) noexcept {
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) + 1;
  const std::uint64_t t =
      (me.pid << 32) ^ (me.start_time << 16) ^ n ^ static_cast<std::uint64_t>(platform::monotonic_ns());
  return t == 0 ? 1 : t;
}

// How often a publisher waiting for the exclusive right looks again: its
// holder can give it back or die at any time, and neither wakes anyone.
constexpr std::chrono::milliseconds first_poll{1}, max_poll{20};

}  // namespace

publisher_port::publisher_port(publisher_port&& other) noexcept
    : seg_(std::move(other.seg_)),
      token_(std::exchange(other.token_, 0)),
      incarnation_(other.incarnation_),
      loan_seq_(std::exchange(other.loan_seq_, 0)),
      loan_slot_(std::exchange(other.loan_slot_, nullptr)),
      loan_(std::exchange(other.loan_, nullptr)),
      loan_size_(std::exchange(other.loan_size_, 0)) {}

publisher_port& publisher_port::operator=(publisher_port&& other) noexcept {
  if (this != &other) {
    release_exclusive();
    abandon();
    seg_ = std::move(other.seg_);
    token_ = std::exchange(other.token_, 0);
    incarnation_ = other.incarnation_;
    loan_seq_ = std::exchange(other.loan_seq_, 0);
    loan_slot_ = std::exchange(other.loan_slot_, nullptr);
    loan_ = std::exchange(other.loan_, nullptr);
    loan_size_ = std::exchange(other.loan_size_, 0);
  }
  return *this;
}

publisher_port::~publisher_port() {
  abandon();
  release_exclusive();
}

publisher_port publisher_port::open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                    std::error_code& ec, std::string& what) {
  return publisher_port(topic_segment::open_declared(bus, instance, declared, topic_role::publish, ec, what));
}

std::uint64_t publisher_port::mutex_recoveries() const noexcept {
  return seg_.is_open() ? seg_.header().mutex_recoveries.load(std::memory_order_relaxed) : 0;
}

std::uint64_t publisher_port::exclusive_holder_pid() const noexcept {
  return seg_.is_open() ? seg_.header().exclusive_pid.load(std::memory_order_relaxed) : 0;
}

// ---- the publish right -----------------------------------------------------

bool publisher_port::lock(std::error_code& ec, bool& recovered) noexcept {
  if (seg_.mutex().lock(ec) != platform::named_mutex::lock_result::owner_died) return !ec;
  // A dead owner with a live exclusive holder was only looking at the
  // right (a publisher under the mutex writes a slot only while nobody
  // holds it), so the publishers' state is whole; otherwise it may have
  // died anywhere in a publish.
  if (seg_.header().exclusive_token.load(std::memory_order_relaxed) == 0) recover_after_owner_death();
  seg_.header().mutex_recoveries.fetch_add(1, std::memory_order_relaxed);
  seg_.mutex().consistent();
  recovered = true;
  if (recovery_hook != nullptr) recovery_hook();
  return !ec;
}

bool publisher_port::right_is_ours() noexcept {
  if (platform::process_incarnation() == incarnation_) return true;
  // A forked child: the record names the parent, which still holds the
  // right and may be publishing. Forget it; never publish or release it.
  token_ = 0;
  loan_ = nullptr;
  loan_slot_ = nullptr;
  loan_seq_ = 0;
  loan_size_ = 0;
  return false;
}

void publisher_port::unlock_unless_exclusive() noexcept {
  if (token_ == 0) seg_.mutex().unlock();
}

bool publisher_port::clear_dead_holder(std::error_code& ec, bool& recovered) noexcept {
  topic_header& h = seg_.header();
  if (h.exclusive_token.load(std::memory_order_relaxed) == 0) return true;
  const platform::process_identity holder{h.exclusive_pid.load(std::memory_order_relaxed),
                                          h.exclusive_start_time.load(std::memory_order_relaxed)};
  if (platform::is_alive(holder)) {
    ec = make_error_code(errc::exclusive_publisher);
    return false;
  }
  // It died holding the right, perhaps in the middle of a publish or with
  // a loan open: the same repair as for a dead mutex owner.
  recover_after_owner_death();
  h.mutex_recoveries.fetch_add(1, std::memory_order_relaxed);
  h.exclusive_token.store(0, std::memory_order_relaxed);
  recovered = true;
  if (recovery_hook != nullptr) recovery_hook();
  return true;
}

bool publisher_port::acquire_exclusive(std::optional<std::chrono::nanoseconds> wait, std::error_code& ec,
                                       recovery_report* report) noexcept {
  clear_error(ec);
  if (token_ != 0) return true;
  const auto deadline = std::chrono::steady_clock::now() + wait.value_or(std::chrono::nanoseconds{0});
  std::chrono::nanoseconds poll = first_poll;
  bool recovered = false;
  for (;;) {
    if (seg_.gone()) {
      ec = make_error_code(errc::topic_closed);
      return false;
    }
    if (!lock(ec, recovered)) return false;
    if (clear_dead_holder(ec, recovered)) {
      topic_header& h = seg_.header();
      const platform::process_identity me = platform::current_process();
      token_ = new_token(me);
      incarnation_ = platform::process_incarnation();
      h.exclusive_pid.store(me.pid, std::memory_order_relaxed);
      h.exclusive_start_time.store(me.start_time, std::memory_order_relaxed);
      h.exclusive_token.store(token_, std::memory_order_relaxed);
      seg_.mutex().unlock();
      fill_report(report, recovered);
      return true;
    }
    seg_.mutex().unlock();
    const auto now = std::chrono::steady_clock::now();
    if (!wait || now >= deadline) return false;
    // Polling, off the publish path: nothing signals a right given back.
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(poll, deadline - now));
    poll = std::min<std::chrono::nanoseconds>(poll * 2, max_poll);
    clear_error(ec);
  }
}

void publisher_port::release_exclusive() noexcept {
  if (token_ == 0 || !right_is_ours()) return;
  abandon();
  std::error_code ec;
  bool recovered = false;
  if (lock(ec, recovered)) {
    topic_header& h = seg_.header();
    // Ours unless it was taken from us (a liveness check fooled, such as by
    // another PID namespace): then it is not ours to clear.
    if (h.exclusive_token.load(std::memory_order_relaxed) == token_)
      h.exclusive_token.store(0, std::memory_order_relaxed);
    seg_.mutex().unlock();
  }
  token_ = 0;
}

// ---- publishing ------------------------------------------------------------

bool publisher_port::check_size(std::size_t size, std::error_code& ec) const noexcept {
  const topic_params& p = seg_.params();
  if (size > p.max_message_size) {
    ec = make_error_code(errc::message_too_large);
    return false;
  }
  // Here, not in the client API: whoever can publish at all goes through
  // this check, and the declared size comes from the validated copy.
  if (p.type_size != 0 && size != p.type_size) {
    ec = make_error_code(errc::type_size_mismatch);
    return false;
  }
  return true;
}

std::uint64_t publisher_port::begin_write(slot_header*& slot, std::error_code& ec, recovery_report* report,
                                          key_arg* key) noexcept {
  if (loan_ != nullptr) {
    ec = make_error_code(errc::invalid_argument);
    return 0;
  }
  // Plain topics take no key; a keyed topic's messages need one.
  if ((key != nullptr) != seg_.keys().keyed()) {
    ec = make_error_code(errc::invalid_key);
    return 0;
  }
  // Loads only: no system call before the copy (see owner_watch).
  if (seg_.gone()) {
    ec = make_error_code(errc::topic_closed);
    return 0;
  }
  topic_header& h = seg_.header();
  bool recovered = false;
  if (token_ != 0) {
    // Ours for our life; a token that changed means a liveness check
    // elsewhere took it: stop writing rather than write beside the taker.
    // A forked child's copy of the right is not the child's to use.
    if (!right_is_ours() || h.exclusive_token.load(std::memory_order_relaxed) != token_) {
      ec = make_error_code(errc::exclusive_publisher);
      return 0;
    }
  } else {
    if (!lock(ec, recovered)) return 0;
    if (!clear_dead_holder(ec, recovered)) {
      seg_.mutex().unlock();
      return 0;
    }
  }
  fill_report(report, recovered);
  if (key != nullptr && !resolve_key(*key, ec)) {
    unlock_unless_exclusive();
    return 0;
  }
  // From the publishers' own line, not from write_seq (see publish_seq).
  const std::uint64_t seq = h.publish_seq.load(std::memory_order_relaxed) + 1;
  slot = &seg_.ring().slot(seq);
  write_begin(*slot, seq, key != nullptr ? key->index : 0);
  return seq;
}

bool publisher_port::resolve_key(key_arg& key, std::error_code& ec) noexcept {
  const key_table_view& kt = seg_.keys();
  auto index = kt.find(key.key, key.hash);
  if (!index) index = kt.insert(key.key, key.hash);
  if (!index) {
    ec = make_error_code(errc::key_table_full);
    return false;
  }
  key.index = *index;
  return true;
}

std::uint64_t publisher_port::announce(std::uint64_t seq, std::size_t size, std::int64_t now) noexcept {
  topic_header& h = seg_.header();
  h.write_seq.store(seq, std::memory_order_seq_cst);
  h.publish_seq.store(seq, std::memory_order_relaxed);
  h.bytes_published.store(h.bytes_published.load(std::memory_order_relaxed) + size, std::memory_order_relaxed);
  h.last_publish_ns.store(now, std::memory_order_relaxed);
  // Before giving the right back, so a publisher killed after unlocking can
  // never leave the message published but its waiters asleep.
  seg_.event().set();
  unlock_unless_exclusive();
  return seq;
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
  clear_error(ec);
  if (!check_size(payload.size(), ec)) return 0;
  // The message's timestamp: when publish() was called (a vDSO clock read).
  const std::int64_t now = platform::monotonic_ns();
  slot_header* slot = nullptr;
  const std::uint64_t seq = begin_write(slot, ec, report, nullptr);
  if (seq == 0) return 0;
  copy_payload(ring_view::payload(*slot), payload);
  write_end(*slot, seq, payload.size(), now);
  return announce(seq, payload.size(), now);
}

std::uint64_t publisher_port::publish(std::string_view key, std::span<const std::byte> payload, std::error_code& ec,
                                      recovery_report* report) noexcept {
  clear_error(ec);
  if (!valid_key(key)) {
    ec = make_error_code(errc::invalid_key);
    return 0;
  }
  if (!check_size(payload.size(), ec)) return 0;
  const std::int64_t now = platform::monotonic_ns();
  key_arg k{key, key_hash(key), 0};  // hashed before the right is taken
  slot_header* slot = nullptr;
  const std::uint64_t seq = begin_write(slot, ec, report, &k);
  if (seq == 0) return 0;
  // The ring's copy first, then the key's value, then the announcement: a
  // value is only ever complete beside a complete ring slot, which is what
  // recovery looks at (recover_after_owner_death).
  copy_payload(ring_view::payload(*slot), payload);
  std::uint64_t prev_key_seq = 0;
  slot_header& value = value_target(seg_.keys(), k.index, prev_key_seq);
  write_end(*slot, seq, payload.size(), now, prev_key_seq + 1);
  write_begin(value, seq, k.index);
  copy_payload(ring_view::payload(value), payload);
  write_end(value, seq, payload.size(), now, prev_key_seq + 1);
  return announce(seq, payload.size(), now);
}

std::byte* publisher_port::loan(std::size_t size, std::error_code& ec, recovery_report* report) noexcept {
  clear_error(ec);
  const topic_params& p = seg_.params();
  if (size > p.max_message_size) {
    ec = make_error_code(errc::message_too_large);
    return nullptr;
  }
  if (p.type_size != 0 && size < p.type_size) {
    ec = make_error_code(errc::type_size_mismatch);
    return nullptr;
  }
  slot_header* slot = nullptr;
  const std::uint64_t seq = begin_write(slot, ec, report, nullptr);
  if (seq == 0) return nullptr;
  loan_seq_ = seq;
  loan_slot_ = slot;
  loan_size_ = size;
  loan_ = ring_view::payload(*slot);
  return loan_;
}

std::uint64_t publisher_port::commit(std::size_t size, std::error_code& ec) noexcept {
  clear_error(ec);
  if (loan_ == nullptr || size > loan_size_) {
    ec = make_error_code(errc::invalid_argument);
    return 0;
  }
  if (!check_size(size, ec)) return 0;
  // A loan's timestamp: when it was committed, i.e. published.
  const std::uint64_t seq = std::exchange(loan_seq_, 0);
  slot_header& slot = *std::exchange(loan_slot_, nullptr);
  loan_ = nullptr;
  loan_size_ = 0;
  const std::int64_t now = platform::monotonic_ns();
  write_end(slot, seq, size, now);
  return announce(seq, size, now);
}

void publisher_port::abandon() noexcept {
  if (loan_ == nullptr) return;
  // The slot keeps its odd marker, as a torn message recovery discards:
  // no reader delivers it, and the next publish reuses the sequence.
  loan_ = nullptr;
  loan_slot_ = nullptr;
  loan_seq_ = 0;
  loan_size_ = 0;
  unlock_unless_exclusive();
}

// ---- recovery --------------------------------------------------------------

void publisher_port::recover_after_owner_death() noexcept {
  // We hold the publish right. The dead holder got somewhere in a publish:
  // a slot for write_seq+1 that is complete is announced (nothing lost);
  // one that is half-written is discarded; write_seq itself is always a
  // whole message.
  topic_header& h = seg_.header();
  repair_key_index();
  const std::uint64_t seq = h.write_seq.load(std::memory_order_relaxed) + 1;
  slot_header& slot = seg_.ring().slot(seq);
  std::uint64_t v = slot.seq.load(std::memory_order_relaxed);
  if (v == 2 * seq && !value_complete(slot, seq)) {
    // A keyed message whose value was not completed: announcing it would
    // deliver an update the key's value never took. Discarded as torn.
    slot.seq.store(v = 2 * seq - 1, std::memory_order_relaxed);
  }
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
  // The dead holder may have stored write_seq but not its copy.
  h.publish_seq.store(h.write_seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
  // It may have died before waking anyone, or inside set() after clearing
  // the sleepers bit but before the wake: wake unconditionally.
  seg_.event().set();
  seg_.event().wake_all();
}

bool publisher_port::value_complete(const slot_header& slot, std::uint64_t seq) const noexcept {
  const key_table_view& kt = seg_.keys();
  if (!kt.keyed()) return true;
  // The key index was stored before the slot's odd marker (write_begin).
  const std::uint32_t index = slot.key.load(std::memory_order_relaxed);
  if (index >= kt.count()) return false;
  return kt.half(index, 0).seq.load(std::memory_order_relaxed) == 2 * seq ||
         kt.half(index, 1).seq.load(std::memory_order_relaxed) == 2 * seq;
}

void publisher_port::repair_key_index() noexcept {
  // A holder that died between a new key's count and its bucket (insert)
  // left the newest entry unfindable: index it. Only that one can be.
  const key_table_view& kt = seg_.keys();
  if (!kt.keyed()) return;
  const std::uint32_t n = kt.count();
  if (n == 0) return;
  char bytes[max_key_size];
  std::size_t size = 0;
  if (!kt.key_of(n - 1, bytes, size)) return;
  const std::string_view key(bytes, size);
  const std::uint64_t hash = key_hash(key);
  if (!kt.find(key, hash)) kt.index_entry(n - 1, hash);
}

void publisher_port::fill_report(recovery_report* report, bool recovered) const noexcept {
  if (report == nullptr) return;
  // The counters only matter with a recovery to report (per publish otherwise).
  report->recovered = recovered;
  if (!recovered) return;
  const topic_header& h = seg_.header();
  *report = {recovered, h.mutex_recoveries.load(std::memory_order_relaxed),
             h.torn_discarded.load(std::memory_order_relaxed)};
}

}  // namespace shmbus::detail
