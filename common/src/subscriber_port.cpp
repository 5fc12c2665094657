#include "shmbus/detail/subscriber_port.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/error.hpp"

namespace shmbus::detail {
namespace {

// Copies `payload` into `dst` if it fits.
visit_action copy_to(std::span<std::byte> dst, std::span<const std::byte> payload) noexcept {
  if (payload.size() > dst.size()) return visit_action::too_small;
  if (!payload.empty()) std::memcpy(dst.data(), payload.data(), payload.size());
  return visit_action::take;
}

// The visitor of a copying read of a plain message (latest()).
auto copy_into(std::span<std::byte> dst) noexcept {
  return [dst](const message_info&, const slot_keys&, std::span<const std::byte> payload) noexcept {
    return copy_to(dst, payload);
  };
}

}  // namespace

subscriber_port::subscriber_port(topic_segment seg, std::error_code& ec) noexcept : seg_(std::move(seg)) {
  next_ = seg_.newest() + 1;
  // Keyed topics: every key, no snapshot, until follow() says otherwise.
  if (seg_.keys().keyed()) keys_ = key_follower(seg_.keys(), seg_.ring(), {});
  reg_ = seg_.table().claim(platform::current_process(), next_ - 1, ec);
  if (ec) seg_ = topic_segment();
}

subscriber_port subscriber_port::open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                      std::error_code& ec, std::string& what) {
  topic_segment seg = topic_segment::open_declared(bus, instance, declared, topic_role::subscribe, ec, what);
  if (ec) return {};
  subscriber_port port(std::move(seg), ec);
  if (ec)
    what = "topic '" + declared.name + "': all " + std::to_string(declared.max_subscribers) +
           " subscriber slots are in use by live processes";
  return port;
}

subscriber_port::subscriber_port(subscriber_port&& o) noexcept
    : seg_(std::move(o.seg_)),
      reg_(std::exchange(o.reg_, {})),
      next_(o.next_),
      pending_missed_(o.pending_missed_),
      missed_total_(o.missed_total_),
      received_total_(o.received_total_),
      keys_(std::move(o.keys_)) {}

subscriber_port& subscriber_port::operator=(subscriber_port&& o) noexcept {
  if (this != &o) {
    release();
    seg_ = std::move(o.seg_);
    reg_ = std::exchange(o.reg_, {});
    next_ = o.next_;
    pending_missed_ = o.pending_missed_;
    missed_total_ = o.missed_total_;
    received_total_ = o.received_total_;
    keys_ = std::move(o.keys_);
  }
  return *this;
}

subscriber_port::~subscriber_port() { release(); }

void subscriber_port::release() noexcept {
  if (reg_.index >= 0) seg_.table().release(reg_);
  reg_ = {};
}

void subscriber_port::account(const message_info& info) noexcept {
  missed_total_ += info.missed;
  ++received_total_;
  seg_.table().record(reg_, info.sequence, missed_total_, received_total_);
}

read_status subscriber_port::read(std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept {
  if (keys_.snapshot_pending()) {
    clear_error(ec);
    const read_status status = keys_.next_snapshot(dst, info);
    if (status == read_status::ok) account_snapshot();
    return status;
  }
  slot_keys keys;
  read_status status = seqlock_read(
      seg_.ring(), next_, info,
      [&](const message_info& meta, const slot_keys& k, std::span<const std::byte> payload) noexcept {
        const visit_action action = decide(meta, k);
        if (action != visit_action::take) return action;
        keys = k;
        return copy_to(dst, payload);
      },
      ec);
  finish_read(status, info, keys, ec);
  return status;
}

void subscriber_port::finish_read(read_status& status, message_info& info, const slot_keys& keys,
                                  std::error_code& ec) noexcept {
  const bool found = status != read_status::empty;
  if (found && keys_.active() && keys_.corrupt()) {
    ec = make_error_code(errc::corrupt_segment);
    status = read_status::empty;
    return;
  }
  if (keys_.filtered()) {
    // Losses of any key are not this subscriber's: its keys' own are
    // counted per key (describe).
    pending_missed_ = 0;
    info.missed = 0;
  } else {
    // Skips found on an attempt that could not deliver are reported with
    // the message that is finally delivered.
    pending_missed_ += info.missed;
    info.missed = pending_missed_;
  }
  if (found && keys_.active()) keys_.describe(info, keys);
  if (status == read_status::ok) {
    pending_missed_ = 0;
    if (keys_.active()) keys_.commit();
    account(info);
  }
  // What was published before a close is read first; then the reader is
  // told, so a strategy spinning over try_read does not spin for ever.
  if (!ec && status == read_status::empty && gone()) ec = make_error_code(errc::topic_closed);
}

void subscriber_port::account_snapshot() noexcept {
  ++received_total_;
  // Our place in the stream is the cursor, not the (older) value's sequence.
  seg_.table().record(reg_, next_ - 1, missed_total_, received_total_);
}

void subscriber_port::skip(const message_info& info) noexcept {
  if (info.snapshot) {
    keys_.skip_snapshot();
    account_snapshot();
    return;
  }
  next_ = info.sequence + 1;
  message_info counted = info;
  counted.missed = std::exchange(pending_missed_, 0);
  if (keys_.active()) keys_.commit();
  account(counted);
}

bool subscriber_port::keyed(std::error_code& ec) const noexcept {
  clear_error(ec);
  if (keys_.active()) return true;
  ec = make_error_code(errc::invalid_key);
  return false;
}

bool subscriber_port::follow(std::span<const std::string> keys, bool snapshot, std::error_code& ec) noexcept {
  clear_error(ec);
  if (!seg_.keys().keyed()) {
    if (keys.empty() && !snapshot) return true;
    ec = make_error_code(errc::invalid_key);
    return false;
  }
  for (const std::string& k : keys)
    if (!valid_key(k)) {
      ec = make_error_code(errc::invalid_key);
      return false;
    }
  try {
    keys_ = key_follower(seg_.keys(), seg_.ring(), keys);
  } catch (const std::bad_alloc&) {
    ec = make_error_code(std::errc::not_enough_memory);
    return false;
  }
  if (snapshot) {
    std::uint64_t skipped = 0;
    const std::uint64_t cursor = keys_.take_snapshot(next_, 0, skipped, ec);
    if (cursor == 0) return false;
    next_ = cursor;
  } else if (keys_.filtered()) {
    next_ = keys_.set_baselines(next_, true);
  }
  seg_.table().record(reg_, next_ - 1, missed_total_, received_total_);
  return true;
}

bool subscriber_port::set_keys(std::span<const std::string> keys, std::error_code& ec) noexcept {
  if (!keyed(ec)) return false;
  for (const std::string& k : keys)
    if (!valid_key(k)) {
      ec = make_error_code(errc::invalid_key);
      return false;
    }
  keys_.set_filter(keys, next_);
  return true;
}

std::optional<std::uint64_t> subscriber_port::resync(std::error_code& ec) noexcept {
  if (!keyed(ec)) return std::nullopt;
  std::uint64_t skipped = 0;
  const std::uint64_t cursor = keys_.take_snapshot(next_, pending_missed_, skipped, ec);
  if (cursor == 0) return std::nullopt;
  next_ = cursor;
  pending_missed_ = 0;
  missed_total_ += skipped;
  seg_.table().record(reg_, next_ - 1, missed_total_, received_total_);
  return skipped;
}

read_status subscriber_port::get(std::string_view key, std::span<std::byte> dst, message_info& info,
                                 std::error_code& ec) noexcept {
  if (!keyed(ec)) return read_status::empty;
  if (!valid_key(key)) {
    ec = make_error_code(errc::invalid_key);
    return read_status::empty;
  }
  return keys_.get(key, dst, info, ec);
}

std::vector<key_stats> subscriber_port::keys(std::error_code& ec) {
  if (!keyed(ec)) return {};
  return keys_.list(ec);
}

bool subscriber_port::latest(std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept {
  clear_error(ec);
  const std::uint64_t newest = seg_.newest();
  if (newest == 0) return false;
  if (next_ <= newest) {  // unread: skip to it and consume it
    pending_missed_ += newest - next_;
    next_ = newest;
    const read_status status = read(dst, info, ec);
    if (status == read_status::buffer_too_small) ec = make_error_code(errc::buffer_too_small);
    return status == read_status::ok;
  }
  // The newest was already consumed: copy it again, without counting it.
  std::uint64_t cursor = newest;
  const read_status status = seqlock_read(seg_.ring(), cursor, info, copy_into(dst), ec);
  if (status == read_status::buffer_too_small) ec = make_error_code(errc::buffer_too_small);
  if (ec || status != read_status::ok) return false;
  if (info.sequence >= next_) {  // overtaken meanwhile: a new message after all
    info.missed = std::exchange(pending_missed_, 0) + info.sequence - next_;
    next_ = info.sequence + 1;
    account(info);
    return true;
  }
  info.missed = 0;
  return true;
}

bool subscriber_port::wait(std::optional<clock::duration> timeout, const wait_strategy& how,
                           std::error_code& ec) noexcept {
  clear_error(ec);
  // Already there: no clock read, nothing else.
  if (available()) return true;
  const bool timed = timeout.has_value() || how.mode == wait_mode::spin_then_block;
  const auto now = timed ? clock::now() : clock::time_point{};
  std::optional<clock::time_point> deadline;
  // A timeout too large to add to now() means "for ever", not overflow.
  if (timeout && *timeout < clock::time_point::max() - now) deadline = now + *timeout;
  if (how.mode == wait_mode::block) return block_until(deadline, ec);

  std::optional<clock::time_point> spin_end = deadline;
  if (how.mode == wait_mode::spin_then_block && (!deadline || how.spin < *deadline - now))
    spin_end = now + std::max<clock::duration>(how.spin, clock::duration::zero());
  switch (poll_until(spin_end)) {
    case poll_result::available: return true;
    case poll_result::closed: ec = make_error_code(errc::topic_closed); return false;
    case poll_result::timed_out: break;
  }
  if (how.mode == wait_mode::busy_poll || (deadline && spin_end == deadline)) return false;
  return block_until(deadline, ec);
}

subscriber_port::poll_result subscriber_port::poll_until(std::optional<clock::time_point> until) noexcept {
  // Reading the clock costs tens of nanoseconds (user space, but not free):
  // look at it, and at whether the topic is gone, every few dozen polls only.
  constexpr unsigned polls_per_check = 32;
  for (;;) {
    for (unsigned i = 0; i < polls_per_check; ++i) {
      if (available()) return poll_result::available;
      cpu_relax();
    }
    if (gone()) return poll_result::closed;
    if (until && clock::now() >= *until) return available() ? poll_result::available : poll_result::timed_out;
  }
}

bool subscriber_port::block_until(std::optional<clock::time_point> deadline, std::error_code& ec) noexcept {
  auto& event = seg_.event();
  for (;;) {
    // Token before the check: a publish after the check bumps the token, so
    // the wait below returns at once instead of sleeping through it.
    const auto token = event.prepare_wait();
    if (available()) return true;
    if (gone()) {
      ec = make_error_code(errc::topic_closed);
      return false;
    }
    const subscriber_table::waiting_guard waiting(seg_.table(), reg_);
    // Sleep in slices so that a topic closed without a wake is noticed (gone()).
    const auto slice_end = clock::now() + std::chrono::nanoseconds(topic_segment::wait_slice_ns);
    const bool last_slice = deadline && *deadline <= slice_end;
    bool signaled = false;
    try {
      signaled = event.wait(token, static_cast<std::uint32_t>(reg_.index), last_slice ? *deadline : slice_end);
    } catch (const std::system_error& e) {
      ec = e.code();  // the OS refused to wait (e.g. futex forbidden): never spin
    } catch (...) {
      ec = make_error_code(std::errc::not_enough_memory);
    }
    if (ec) return false;
    if (!signaled && last_slice) return available();
  }
}

}  // namespace shmbus::detail
