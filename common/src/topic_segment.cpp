#include "shmbus/detail/topic_segment.hpp"

#include <cstring>

#include "shmbus/error.hpp"
#include "shmbus/names.hpp"

namespace shmbus::detail {

topic_segment topic_segment::create(std::string_view bus, const topic_params& params,
                                    platform::permissions perms, std::error_code& ec,
                                    std::string& what) {
  topic_geometry g{};
  if ((ec = compute_geometry(params, g, &what))) return {};
  const std::string object = topic_object_name(bus, params.name);
  topic_segment t;
  t.region_ = platform::shared_memory_region(create_only, object, g.total_size, perms, ec);
  if (ec) {
    what = "create topic segment '" + object + "'";
    return {};
  }
  init_topic_header(t.region_.data(), params, g);
  t.header_ = &header_of(t.region_.data());
  t.slots_ = static_cast<std::byte*>(t.region_.data()) + g.slots_offset;
  t.header_->broker_pid = platform::current_process().pid;
  t.mutex_ = platform::named_mutex(create_only, object + ".mutex", t.header_->mutex_storage, ec);
  if (!ec) t.event_ = platform::named_event(create_only, object + ".event", t.header_->event_storage, ec);
  if (ec) {
    what = "create mutex/event of topic '" + params.name + "'";
    platform::shared_memory_region::remove(object, ec);
    return {};
  }
  return t;
}

topic_segment topic_segment::open(std::string_view bus, std::string_view topic, access mode,
                                  std::error_code& ec, std::string& what) {
  const std::string object = topic_object_name(bus, topic);
  topic_segment t;
  t.region_ = platform::shared_memory_region(open_only, object, mode, ec);
  if (ec) {
    what = "open topic segment '" + object + "'";
    return {};
  }
  if ((ec = validate_topic(t.region_.bytes(), topic, &what))) {
    what = "topic '" + std::string(topic) + "': " + what;
    return {};
  }
  t.header_ = &header_of(t.region_.data());
  t.slots_ = static_cast<std::byte*>(t.region_.data()) + t.header_->header_size +
             std::uint64_t{t.header_->max_subscribers} * sizeof(subscriber_entry);
  t.mutex_ = platform::named_mutex(open_only, object + ".mutex", t.header_->mutex_storage, ec);
  if (!ec) t.event_ = platform::named_event(open_only, object + ".event", t.header_->event_storage, ec);
  if (ec) {
    what = "open mutex/event of topic '" + std::string(topic) + "'";
    return {};
  }
  return t;
}

std::span<subscriber_entry> topic_segment::subscribers() const noexcept {
  return {subscribers_of(header_, *header_), header_->max_subscribers};
}

bool topic_segment::closed() const noexcept {
  return header_->state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(segment_state::closed);
}

void topic_segment::mark_ready() noexcept {
  header_->state.store(static_cast<std::uint32_t>(segment_state::ready), std::memory_order_release);
}

void topic_segment::close() noexcept {
  header_->state.store(static_cast<std::uint32_t>(segment_state::closed), std::memory_order_seq_cst);
  event_.set();
}

slot_header* topic_segment::slot(std::uint64_t seq) const noexcept {
  return reinterpret_cast<slot_header*>(slots_ + (seq % header_->slot_count) * header_->slot_stride);
}

std::uint64_t topic_segment::newest() const noexcept {
  return header_->write_seq.load(std::memory_order_seq_cst);
}

std::uint64_t topic_segment::publish(std::span<const std::byte> payload, std::error_code& ec) noexcept {
  ec.clear();
  if (payload.size() > header_->max_message_size) {
    ec = make_error_code(errc::message_too_large);
    return 0;
  }
  if (closed()) {
    ec = make_error_code(errc::topic_closed);
    return 0;
  }
  if (mutex_.lock(ec) == platform::named_mutex::lock_result::owner_died) recover_after_owner_death();
  if (ec) return 0;

  const std::uint64_t seq = header_->write_seq.load(std::memory_order_relaxed) + 1;
  slot_header* s = slot(seq);
  // Seqlock write: odd marker first, and the release fence keeps the payload
  // stores from becoming visible before it.
  s->seq.store(2 * seq - 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  auto* dst = reinterpret_cast<std::byte*>(s + 1);
  const std::size_t half = payload.size() / 2;
  if (half != 0) std::memcpy(dst, payload.data(), half);
  if (publish_hook != nullptr) publish_hook();
  if (payload.size() != half) std::memcpy(dst + half, payload.data() + half, payload.size() - half);
  s->size = payload.size();
  const std::int64_t now = platform::monotonic_ns();
  s->timestamp_ns = now;
  s->seq.store(2 * seq, std::memory_order_release);
  header_->write_seq.store(seq, std::memory_order_seq_cst);
  header_->bytes_published.store(header_->bytes_published.load(std::memory_order_relaxed) + payload.size(),
                                 std::memory_order_relaxed);
  header_->last_publish_ns.store(now, std::memory_order_relaxed);
  // Under the mutex, so a publisher killed after unlocking can never leave
  // the message published but its waiters asleep.
  event_.set();
  mutex_.unlock();
  return seq;
}

void topic_segment::recover_after_owner_death() noexcept {
  // We own the mutex. The dead owner got somewhere in publish(): a slot for
  // write_seq+1 that is complete is announced (nothing lost); one that is
  // half-written is discarded; write_seq itself is always a whole message.
  const std::uint64_t seq = header_->write_seq.load(std::memory_order_relaxed) + 1;
  slot_header* s = slot(seq);
  const std::uint64_t v = s->seq.load(std::memory_order_relaxed);
  if (v == 2 * seq) {
    header_->write_seq.store(seq, std::memory_order_seq_cst);
  } else if (v == 2 * seq - 1) {
    s->seq.store(0, std::memory_order_release);
    header_->torn_discarded.fetch_add(1, std::memory_order_relaxed);
  }
  header_->mutex_recoveries.fetch_add(1, std::memory_order_relaxed);
  event_.set();  // the dead owner may have died before waking anyone
  mutex_.consistent();
}

slot_header* topic_segment::locate(std::uint64_t& next, std::uint64_t& missed) const noexcept {
  const std::uint64_t w = header_->write_seq.load(std::memory_order_seq_cst);
  if (next > w) return nullptr;
  // Exactly `depth` messages are guaranteed retained: w-depth+1 .. w.
  const std::uint64_t depth = header_->depth;
  const std::uint64_t oldest = w >= depth ? w - depth + 1 : 1;
  if (next < oldest) {
    missed += oldest - next;
    next = oldest;
  }
  return slot(next);
}

bool topic_segment::overrun_is_plausible(std::uint64_t slot_seq, std::uint64_t next,
                                         std::uint64_t wanted, unsigned& stalls,
                                         std::error_code& ec) noexcept {
  // A complete slot always holds 2*seq; anything below 2*next for a message
  // at or before write_seq was never written by a publisher.
  const bool lapped = slot_seq > 2 * next;
  stalls = next == wanted ? stalls + 1 : 0;
  if (lapped && stalls < 1'000'000) return true;
  ec = make_error_code(errc::corrupt_segment);
  return false;
}

read_status topic_segment::read(std::uint64_t& next, std::span<std::byte> dst, read_meta& meta,
                                std::error_code& ec) const noexcept {
  ec.clear();
  std::uint64_t missed = 0;
  for (unsigned stalls = 0;;) {
    const std::uint64_t wanted = next;
    slot_header* s = locate(next, missed);
    if (s == nullptr) {
      // Skipped messages are reported with the next delivered one; keep the
      // cursor where locate put it so nothing is counted twice.
      return read_status::empty;
    }
    const std::uint64_t v1 = s->seq.load(std::memory_order_acquire);
    if (v1 != 2 * next) {
      if (!overrun_is_plausible(v1, next, wanted, stalls, ec)) return read_status::empty;
      continue;
    }
    const std::uint64_t size = s->size;
    const std::int64_t ts = s->timestamp_ns;
    const bool fits = size <= dst.size() && size <= header_->max_message_size;
    if (fits) std::memcpy(dst.data(), s + 1, size);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (s->seq.load(std::memory_order_relaxed) != v1) continue;  // lapped while copying
    if (size > header_->max_message_size) {
      ec = make_error_code(errc::corrupt_segment);
      return read_status::empty;
    }
    meta = {next, ts, static_cast<std::size_t>(size), missed};
    if (!fits) return read_status::buffer_too_small;  // stays unread for a bigger buffer
    ++next;
    return read_status::ok;
  }
}

int topic_segment::register_subscriber(std::error_code& ec) noexcept {
  ec.clear();
  const platform::process_identity me = platform::current_process();
  for (int attempt = 0; attempt < 2; ++attempt) {
    int index = 0;
    for (subscriber_entry& e : subscribers()) {
      std::uint32_t expected = 0;
      if (e.state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        e.pid.store(me.pid, std::memory_order_relaxed);
        e.start_time.store(me.start_time, std::memory_order_relaxed);
        e.read_seq.store(0, std::memory_order_relaxed);
        e.missed.store(0, std::memory_order_relaxed);
        e.received.store(0, std::memory_order_relaxed);
        e.waiting.store(0, std::memory_order_relaxed);
        e.state.store(2, std::memory_order_release);
        return index;
      }
      ++index;
    }
    if (reap_dead_subscribers() == 0) break;
  }
  ec = make_error_code(errc::too_many_subscribers);
  return -1;
}

void topic_segment::unregister_subscriber(int index) noexcept {
  if (index < 0 || !is_open()) return;
  subscribers()[static_cast<std::size_t>(index)].state.store(0, std::memory_order_release);
}

unsigned topic_segment::reap_dead_subscribers() noexcept {
  unsigned reaped = 0;
  for (subscriber_entry& e : subscribers()) {
    if (e.state.load(std::memory_order_acquire) != 2) continue;
    const platform::process_identity who{e.pid.load(std::memory_order_relaxed),
                                         e.start_time.load(std::memory_order_relaxed)};
    if (platform::is_alive(who)) continue;
    std::uint32_t expected = 2;
    // Only one reaper frees an entry, and only if nobody re-claimed it.
    if (e.state.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) ++reaped;
  }
  return reaped;
}

unsigned topic_segment::live_subscribers() const noexcept {
  unsigned live = 0;
  for (const subscriber_entry& e : subscribers()) {
    if (e.state.load(std::memory_order_acquire) != 2) continue;
    if (platform::is_alive({e.pid.load(std::memory_order_relaxed),
                            e.start_time.load(std::memory_order_relaxed)}))
      ++live;
  }
  return live;
}

}  // namespace shmbus::detail
