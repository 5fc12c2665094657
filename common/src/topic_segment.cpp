#include "shmbus/detail/topic_segment.hpp"

#include <gsl/assert>

#include <cstring>

#include "shmbus/detail/registry.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/bus_endpoint.hpp"

namespace shmbus::detail {
namespace {

// A reader lapped this many times in a row by the publisher gives up for
// now (try_read reports nothing) rather than spin without bound.
constexpr unsigned max_read_attempts = 1000;

}  // namespace

bool topic_segment::attach(std::error_code& ec, std::string& what) {
  auto* base = static_cast<std::byte*>(region_.data());
  header_ = &header_of(base);
  params_ = decode(header_->decl);
  // Recomputed from the copied parameters, so the geometry we use is one that
  // validation proved fits the mapping, whatever the header says later.
  if ((ec = compute_geometry(params_, geometry_, &what))) return false;
  if (geometry_.total_size > region_.size()) {
    ec = make_error_code(errc::corrupt_segment);
    what = "segment smaller than its geometry";
    return false;
  }
  if ((ec = validate_control(control_region_.bytes(), params_, &what))) return false;
  control_ = static_cast<control_header*>(control_region_.data());
  subscribers_ = reinterpret_cast<subscriber_entry*>(static_cast<std::byte*>(control_region_.data()) +
                                                     geometry_.subscribers_offset);
  slots_ = base + geometry_.slots_offset;
  return true;
}

topic_segment topic_segment::create(std::string_view bus, std::uint64_t instance, const topic_params& params,
                                    platform::permissions perms, std::error_code& ec, std::string& what) {
  topic_geometry g{};
  if ((ec = compute_geometry(params, g, &what))) return {};
  const std::string object = topic_object_name(bus, instance, params.name);
  const std::string control = control_object_name(object);
  topic_segment t;
  // Subscribers write only the control segment, so whoever may only read
  // (the group, unless it may publish) gets no write bit on the data.
  platform::permissions data_perms = perms;
  data_perms.read_only_for_group = true;
  t.region_ = platform::shared_memory_region(create_only, object, g.total_size, data_perms, ec);
  if (ec) {
    what = "create topic segment '" + object + "'" +
           (ec == std::errc::no_space_on_device
                ? " of " + std::to_string(g.total_size) + " bytes (is /dev/shm too small? see docs/troubleshooting.md)"
                : "");
    return {};
  }
  // Every subscriber writes the control segment: sealed, so that none can
  // resize it under the others (platform::bus_endpoint says how).
  t.control_region_ = platform::shared_memory_region::create_sealed(control, g.control_size, perms, ec, what);
  auto undo = [&] {
    std::error_code ignored;
    platform::shared_memory_region::remove(object, ignored);
  };
  if (ec) {
    what = "create topic control segment '" + control + "': " + what;
    undo();
    return {};
  }
  init_topic_header(t.region_.data(), params, g);
  init_control_header(t.control_region_.data(), params, g);
  if (!t.attach(ec, what)) {
    undo();
    return {};
  }
  t.header_->broker_pid = platform::current_process().pid;
  t.mutex_ = platform::named_mutex(create_only, object + "#mutex", t.header_->mutex_storage, perms, ec);
  if (!ec)
    t.event_ =
        platform::named_event(create_only, object + "#event", t.control_->event_storage, t.waiter_words(), perms, ec);
  if (ec) {
    what = "create mutex/event of topic '" + params.name + "'";
    undo();
    return {};
  }
  return t;
}

topic_segment topic_segment::open(std::string_view bus, std::uint64_t instance, std::string_view topic, topic_role role,
                                  std::error_code& ec, std::string& what) {
  const std::string object = topic_object_name(bus, instance, topic);
  topic_segment t;
  const access data = role == topic_role::publish ? access::read_write : access::read_only;
  t.region_ = platform::shared_memory_region(open_only, object, data, ec);
  if (ec) {
    what = "open topic segment '" + object + "'";
    return {};
  }
  if ((ec = validate_topic(t.region_.bytes(), topic, &what))) {
    what = "topic '" + std::string(topic) + "': " + what;
    return {};
  }
  const std::string control = control_object_name(object);
  const access ctl = role == topic_role::observe ? access::read_only : access::read_write;
  t.control_region_ = platform::bus_endpoint::obtain(endpoint_name(bus), control, ctl, ec, what);
  if (ec) {
    what = "open topic control segment: " + what;
    return {};
  }
  if (!t.attach(ec, what)) {
    what = "topic '" + std::string(topic) + "': " + what;
    return {};
  }
  // Only publishers get the mutex: a handle to it lets its holder block
  // every publisher (Windows). Observers need no event either.
  if (role == topic_role::publish)
    t.mutex_ = platform::named_mutex(open_only, object + "#mutex", t.header_->mutex_storage, ec);
  if (!ec && role != topic_role::observe)
    t.event_ = platform::named_event(
        open_only, object + "#event", t.control_->event_storage, t.waiter_words(),
        role == topic_role::publish ? platform::named_event::role::waker : platform::named_event::role::waiter, ec);
  if (ec) {
    what = "open mutex/event of topic '" + std::string(topic) + "'";
    return {};
  }
  t.watch_ = owner_watch::of(bus, instance);
  return t;
}

platform::named_event::waiter_words topic_segment::waiter_words() const noexcept {
  return {&subscribers_[0].sleeping, sizeof(subscriber_entry), params_.max_subscribers};
}

void topic_segment::close_orphan(std::string_view bus, std::uint64_t instance, std::string_view topic) noexcept {
  try {
    std::error_code ec;
    std::string why;
    platform::shared_memory_region data(open_only, topic_object_name(bus, instance, topic), access::read_write, ec);
    if (ec || validate_topic(data.bytes(), topic, &why)) return;
    header_of(data.data()).state.store(static_cast<std::uint32_t>(segment_state::closed), std::memory_order_seq_cst);
  } catch (...) {
  }
}

std::span<subscriber_entry> topic_segment::subscribers() const noexcept {
  return {subscribers_, params_.max_subscribers};
}

bool topic_segment::ready() const noexcept {
  return header_->state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(segment_state::ready);
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
  event_.wake_all();  // also sleepers whose bit a killed publisher cleared
}

slot_header* topic_segment::slot(std::uint64_t seq) const noexcept {
  return reinterpret_cast<slot_header*>(slots_ + (seq % geometry_.slot_count) * geometry_.slot_stride);
}

std::uint64_t topic_segment::newest() const noexcept { return header_->write_seq.load(std::memory_order_seq_cst); }

std::uint64_t topic_segment::publish(std::span<const std::byte> payload, std::error_code& ec) noexcept {
  ec.clear();
  if (payload.size() > params_.max_message_size) {
    ec = make_error_code(errc::message_too_large);
    return 0;
  }
  // Here, not in the client API: whoever can publish at all goes through
  // this check, and the declared size comes from the validated copy.
  if (params_.type_size != 0 && payload.size() != params_.type_size) {
    ec = make_error_code(errc::type_size_mismatch);
    return 0;
  }
  // The message's timestamp: when publish() was called (a vDSO clock read).
  const std::int64_t now = platform::monotonic_ns();
  // Loads only: no system call before the copy (see owner_watch).
  if (gone()) {
    ec = make_error_code(errc::topic_closed);
    return 0;
  }
  if (mutex_.lock(ec) == platform::named_mutex::lock_result::owner_died) recover_after_owner_death();
  if (ec) return 0;

  // From the publishers' own line, not from write_seq (see publish_seq).
  const std::uint64_t seq = header_->publish_seq.load(std::memory_order_relaxed) + 1;
  slot_header* s = slot(seq);
  // Seqlock write: odd marker first, and the release fence keeps the payload
  // stores from becoming visible before it.
  s->seq.store(2 * seq - 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  auto* dst = reinterpret_cast<std::byte*>(s + 1);
  if (publish_hook == nullptr) {
    std::memcpy(dst, payload.data(), payload.size());
  } else {  // the test stops half-way through the copy
    const std::size_t half = payload.size() / 2;
    if (half != 0) std::memcpy(dst, payload.data(), half);
    publish_hook();
    if (payload.size() != half) std::memcpy(dst + half, payload.data() + half, payload.size() - half);
  }
  s->size.store(payload.size(), std::memory_order_relaxed);
  s->timestamp_ns.store(now, std::memory_order_relaxed);
  s->seq.store(2 * seq, std::memory_order_release);
  header_->write_seq.store(seq, std::memory_order_seq_cst);
  header_->publish_seq.store(seq, std::memory_order_relaxed);
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
    // Discarded by leaving the odd marker: no reader delivers an odd slot,
    // and the next publish reuses `seq` and stores the same marker, so a
    // slot's word never decreases. Zeroing it (as before) made a reader
    // whose write_seq was one publish stale, and which targets this slot,
    // see a value below its target and report corruption (issue 9 item 4;
    // tests/model/seqlock.pml -DBUG_ZERO_SLOT).
    header_->torn_discarded.fetch_add(1, std::memory_order_relaxed);
  }
  // The dead owner may have stored write_seq but not its copy.
  header_->publish_seq.store(header_->write_seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
  header_->mutex_recoveries.fetch_add(1, std::memory_order_relaxed);
  // The dead owner may have died before waking anyone, or inside set() after
  // clearing the sleepers bit but before the wake: wake unconditionally.
  event_.set();
  event_.wake_all();
  mutex_.consistent();
  if (recovery_hook != nullptr) recovery_hook();
}

topic_segment::located topic_segment::locate(std::uint64_t next) const noexcept {
  const std::uint64_t w = header_->write_seq.load(std::memory_order_seq_cst);
  if (read_hook != nullptr) read_hook(w);
  if (next > w) return {nullptr, next, 0};
  // Exactly `depth` messages are guaranteed retained: w-depth+1 .. w.
  const std::uint64_t depth = params_.depth;
  const std::uint64_t oldest = w >= depth ? w - depth + 1 : 1;
  const std::uint64_t seq = next < oldest ? oldest : next;
  return {slot(seq), seq, seq - next};
}

bool topic_segment::may_retry(std::uint64_t slot_seq, std::uint64_t wanted, unsigned& attempts,
                              std::error_code& ec) noexcept {
  // A complete slot holds 2*seq and a slot's word never decreases (recovery
  // leaves a torn slot's odd marker), so anything below 2*wanted for a
  // message at or before write_seq was never written by a publisher.
  if (slot_seq < 2 * wanted) {
    ec = make_error_code(errc::corrupt_segment);
    return false;
  }
  return ++attempts < max_read_attempts;
}

read_status topic_segment::read(std::uint64_t& next, std::span<std::byte> dst, read_meta& meta,
                                std::error_code& ec) const noexcept {
  ec.clear();
  std::uint64_t skipped = 0;
  for (unsigned attempts = 0;;) {
    const located at = locate(next + skipped);
    if (at.slot == nullptr) break;
    skipped += at.skipped;
    const std::uint64_t v1 = at.slot->seq.load(std::memory_order_acquire);
    if (v1 != 2 * at.seq) {
      if (!may_retry(v1, at.seq, attempts, ec)) break;
      continue;
    }
    const std::uint64_t size = at.slot->size.load(std::memory_order_relaxed);
    const std::int64_t ts = at.slot->timestamp_ns.load(std::memory_order_relaxed);
    const bool fits = size <= dst.size() && size <= params_.max_message_size;
    if (fits) std::memcpy(dst.data(), payload_of(at.slot), size);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (at.slot->seq.load(std::memory_order_relaxed) != v1) {  // lapped while copying
      if (!may_retry(v1 + 1, at.seq, attempts, ec)) break;
      continue;
    }
    if (size > params_.max_message_size) {
      ec = make_error_code(errc::corrupt_segment);
      break;
    }
    meta.sequence = at.seq;
    meta.timestamp_ns = ts;
    meta.size = static_cast<std::size_t>(size);
    meta.missed = skipped;
    // A message too big for the caller's buffer stays unread (cursor on it).
    next = at.seq + (fits ? 1 : 0);
    return fits ? read_status::ok : read_status::buffer_too_small;
  }
  // Nothing delivered: keep the skip, reported with the next delivery.
  next += skipped;
  meta.missed = skipped;
  return read_status::empty;
}

int topic_segment::register_subscriber(std::uint64_t& registered, std::error_code& ec) noexcept {
  ec.clear();
  const platform::process_identity me = platform::current_process();
  for (int attempt = 0; attempt < 2; ++attempt) {
    int index = 0;
    for (subscriber_entry& e : subscribers()) {
      std::uint64_t cur = e.state.load(std::memory_order_acquire);
      if (sub_phase(cur) == sub_free &&
          e.state.compare_exchange_strong(cur, sub_next(cur, sub_claimed), std::memory_order_acq_rel)) {
        e.pid.store(me.pid, std::memory_order_relaxed);
        e.start_time.store(me.start_time, std::memory_order_relaxed);
        e.read_seq.store(0, std::memory_order_relaxed);
        e.missed.store(0, std::memory_order_relaxed);
        e.received.store(0, std::memory_order_relaxed);
        e.waiting.store(0, std::memory_order_relaxed);
        registered = sub_next(sub_next(cur, sub_claimed), sub_live);
        e.state.store(registered, std::memory_order_release);
        return index;
      }
      ++index;
    }
    if (reap_dead_subscribers() == 0) break;
  }
  ec = make_error_code(errc::too_many_subscribers);
  return -1;
}

void topic_segment::unregister_subscriber(int index, std::uint64_t registered) noexcept {
  if (index < 0 || !is_open()) return;
  Expects(static_cast<std::uint32_t>(index) < params_.max_subscribers);
  // From exactly the word we registered with: the generation tells our
  // registration from a later one on the same entry, which the phase alone
  // cannot (issue 9 item 8; tests/model/registration.pml -DBUG_PHASE_ONLY).
  // If a reaper freed the entry meanwhile, it is no longer ours to free.
  std::uint64_t cur = registered;
  subscribers_[index].state.compare_exchange_strong(cur, sub_next(registered, sub_free), std::memory_order_acq_rel);
}

subscriber_entry* topic_segment::owned_subscriber(int index, std::uint64_t registered) const noexcept {
  if (index < 0 || !is_open()) return nullptr;
  Expects(static_cast<std::uint32_t>(index) < params_.max_subscribers);
  subscriber_entry& e = subscribers_[index];
  return e.state.load(std::memory_order_acquire) == registered ? &e : nullptr;
}

unsigned topic_segment::reap_dead_subscribers() noexcept {
  unsigned reaped = 0;
  for (subscriber_entry& e : subscribers()) {
    std::uint64_t cur = e.state.load(std::memory_order_acquire);
    // Only live entries: a claimed one may still hold its previous owner's
    // pid. (A process killed inside the few instructions between claim and
    // live leaks its entry; max_subscribers bounds the cost.)
    if (sub_phase(cur) != sub_live) continue;
    if (platform::is_alive({e.pid.load(std::memory_order_relaxed), e.start_time.load(std::memory_order_relaxed)}))
      continue;
    // The generation in `cur` makes this fail if the entry changed hands
    // while we looked.
    if (e.state.compare_exchange_strong(cur, sub_next(cur, sub_free), std::memory_order_acq_rel)) ++reaped;
  }
  return reaped;
}

unsigned topic_segment::live_subscribers() const noexcept {
  unsigned live = 0;
  for (const subscriber_entry& e : subscribers()) {
    if (sub_phase(e.state.load(std::memory_order_acquire)) != sub_live) continue;
    if (platform::is_alive({e.pid.load(std::memory_order_relaxed), e.start_time.load(std::memory_order_relaxed)}))
      ++live;
  }
  return live;
}

}  // namespace shmbus::detail
