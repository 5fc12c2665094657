#include "shmbus/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/detail/topic_segment.hpp"

namespace shmbus {
namespace {

using detail::registry;
using detail::topic_segment;

// OS codes that have a shmbus meaning become shmbus codes; the native code
// and the call stay in the message.
std::error_code translate(std::error_code ec, std::string& what) {
  if (ec.category() != std::system_category()) return ec;
  const int native = ec.value();
  if (native == EACCES || native == EPERM) {
    what += ": " + ec.message() + " (errno " + std::to_string(native) + ")";
    return make_error_code(errc::permission_denied);
  }
  return ec;
}

// For a generic action the code's own text completes the sentence; OS codes
// get theirs from throw_error.
[[noreturn]] void fail(std::error_code ec, const std::string& action) {
  throw_error(ec, ec.category() == error_category() ? action + ": " + ec.message() : action);
}

std::string bus_label(std::string_view bus) { return "bus '" + std::string(bus) + "'"; }

// Every publish and read path throws through here, so a closed topic reads
// the same wherever it is met.
[[noreturn]] void fail_on(const topic_info& topic, std::error_code ec, const std::string& action) {
  if (ec == errc::topic_closed)
    throw_error(ec, "topic '" + topic.name + "': the broker stopped or was restarted; reopen the bus");
  fail(ec, action + " topic '" + topic.name + "'");
}

}  // namespace

// ---- bus -------------------------------------------------------------------

bus::bus(std::string_view name) {
  std::error_code ec;
  std::string what;
  open(name, ec, what);
  if (ec) throw_error(ec, what);
}

bus::bus(std::string_view name, std::error_code& ec) noexcept {
  try {
    std::string what;
    open(name, ec, what);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void bus::open(std::string_view name, std::error_code& ec, std::string& what) {
  name_ = name.empty() ? default_bus_name() : std::string(name);
  if ((ec = validate_bus_name(name_, &what))) return;
  auto r = std::make_unique<registry>(registry::open(name_, ec, what));
  if (ec == std::errc::no_such_file_or_directory) {
    ec = make_error_code(errc::no_broker);
    what = "no broker is running on bus '" + name_ + "'";
    return;
  }
  if (ec) {
    ec = translate(ec, what);
    return;
  }
  if (!r->broker_alive()) {
    ec = make_error_code(errc::no_broker);
    what = "no broker is running on bus '" + name_ + "' (its broker, pid " + std::to_string(r->broker().pid) + ", " +
           (r->state() == detail::segment_state::ready ? "is gone" : "is not ready") + ")";
    return;
  }
  topics_.assign(r->topics().begin(), r->topics().end());
  broker_pid_ = r->broker().pid;
  broker_start_time_ = r->broker().start_time;
  instance_ = r->instance();
}

bus::bus(bus&&) noexcept = default;
bus& bus::operator=(bus&&) noexcept = default;
bus::~bus() = default;

std::vector<topic_info> bus::topics() const { return topics_; }

bool bus::broker_alive() const noexcept {
  try {
    std::error_code ec;
    std::string what;
    const registry r = registry::open(name_, ec, what);
    // The same broker instance as when we opened, still ready and running.
    return !ec && r.instance() == instance_ && r.broker_alive();
  } catch (...) {
    return false;
  }
}

std::uint64_t bus::broker_pid() const noexcept { return broker_pid_; }

std::vector<topic_stats> bus::stats() const {
  std::vector<topic_stats> out;
  for (const auto& info : topics_) {
    topic_stats st;
    st.info = info;
    std::error_code ec;
    std::string what;
    auto seg = topic_segment::open(name_, instance_, st.info.name, detail::topic_role::observe, ec, what);
    if (ec) throw_error(translate(ec, what), what);
    const auto& h = seg.header();
    st.published = seg.newest();
    st.bytes_published = h.bytes_published.load(std::memory_order_relaxed);
    st.mutex_recoveries = h.mutex_recoveries.load(std::memory_order_relaxed);
    st.torn_discarded = h.torn_discarded.load(std::memory_order_relaxed);
    st.last_publish_ns = h.last_publish_ns.load(std::memory_order_relaxed);
    for (const detail::subscriber_entry& e : seg.subscribers()) {
      if (detail::sub_phase(e.state.load(std::memory_order_acquire)) != detail::sub_live) continue;
      const platform::process_identity who{e.pid.load(std::memory_order_relaxed),
                                           e.start_time.load(std::memory_order_relaxed)};
      if (!platform::is_alive(who)) continue;
      st.subscribers.push_back({who.pid, e.read_seq.load(std::memory_order_relaxed),
                                e.received.load(std::memory_order_relaxed), e.missed.load(std::memory_order_relaxed),
                                e.waiting.load(std::memory_order_relaxed) != 0});
    }
    st.live_subscribers = static_cast<unsigned>(st.subscribers.size());
    out.push_back(std::move(st));
  }
  return out;
}

std::unique_ptr<topic_segment> bus::open_topic(std::string_view topic, std::size_t type_size, bool publish,
                                               topic_info& info, std::error_code& ec, std::string& what) const {
  what = bus_label(name_) + ", topic '" + std::string(topic) + "'";
  if ((ec = validate_topic_name(topic, &what))) return nullptr;
  const auto entry = std::find_if(topics_.begin(), topics_.end(), [&](const topic_info& t) { return t.name == topic; });
  if (entry == topics_.end()) {
    ec = make_error_code(errc::unknown_topic);
    std::string known;
    for (const auto& t : topics_) known += (known.empty() ? "" : ", ") + t.name;
    what = bus_label(name_) + " has no topic '" + std::string(topic) +
           "' (topics: " + (known.empty() ? "none" : known) + ")";
    return nullptr;
  }
  info = *entry;
  if (type_size != 0) {
    const bool declared = info.type_size != 0;
    if ((declared && type_size != info.type_size) || type_size > info.max_message_size) {
      ec = make_error_code(errc::type_size_mismatch);
      what = "topic '" + info.name + "' " +
             (declared ? "declares a " + std::to_string(info.type_size) + "-byte type"
                       : "holds at most " + std::to_string(info.max_message_size) + " bytes") +
             ", the caller's type is " + std::to_string(type_size) + " bytes";
      return nullptr;
    }
  }
  auto seg = std::make_unique<topic_segment>(topic_segment::open(
      name_, instance_, topic, publish ? detail::topic_role::publish : detail::topic_role::subscribe, ec, what));
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) {
      ec = make_error_code(errc::topic_closed);
      what = "topic '" + info.name + "' is listed but its segment is gone (broker stopping?)";
    } else {
      ec = translate(ec, what);
    }
    return nullptr;
  }
  if (seg->params() != *entry) {
    ec = make_error_code(errc::corrupt_segment);
    what = "topic '" + info.name + "': segment parameters differ from the bus registry";
    return nullptr;
  }
  if (!seg->ready() || !broker_alive()) {
    // Closed, or (after a broker restart) a segment whose new broker has not
    // finished it: its mutex may not even be initialised yet.
    ec = make_error_code(errc::topic_closed);
    what = "topic '" + info.name + "' is not open: its broker stopped or was restarted; reopen the bus";
    return nullptr;
  }
  return seg;
}

publisher bus::open_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec,
                              std::string& what) const {
  topic_info info;
  auto seg = open_topic(topic, type_size, true, info, ec, what);
  if (ec) return publisher(nullptr, {});
  return publisher(std::move(seg), std::move(info));
}

subscriber bus::open_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec,
                                std::string& what) const {
  topic_info info;
  auto seg = open_topic(topic, type_size, false, info, ec, what);
  if (ec) return subscriber(nullptr, {}, -1);
  std::uint64_t registered = 0;
  const int entry = seg->register_subscriber(registered, ec);
  if (ec) {
    what = "topic '" + info.name + "': all " + std::to_string(info.max_subscribers) +
           " subscriber slots are in use by live processes";
    return subscriber(nullptr, {}, -1);
  }
  return subscriber(std::move(seg), std::move(info), entry, registered);
}

publisher bus::make_publisher(std::string_view topic, std::size_t type_size) {
  std::error_code ec;
  std::string what;
  publisher p = open_publisher(topic, type_size, ec, what);
  if (ec) throw_error(ec, what);
  return p;
}

publisher bus::make_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept {
  try {
    std::string what;
    return open_publisher(topic, type_size, ec, what);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return publisher(nullptr, {});
  }
}

subscriber bus::make_subscriber(std::string_view topic, std::size_t type_size) {
  std::error_code ec;
  std::string what;
  subscriber s = open_subscriber(topic, type_size, ec, what);
  if (ec) throw_error(ec, what);
  return s;
}

subscriber bus::make_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept {
  try {
    std::string what;
    return open_subscriber(topic, type_size, ec, what);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return subscriber(nullptr, {}, -1);
  }
}

// ---- publisher -------------------------------------------------------------

publisher::publisher(std::unique_ptr<topic_segment> seg, topic_info info)
    : seg_(std::move(seg)), info_(std::move(info)) {}
publisher::publisher(publisher&&) noexcept = default;
publisher& publisher::operator=(publisher&&) noexcept = default;
publisher::~publisher() = default;

std::uint64_t publisher::publish(std::span<const std::byte> payload, std::error_code& ec) noexcept {
  if (!seg_) {
    ec = make_error_code(errc::invalid_argument);
    return 0;
  }
  const std::uint64_t recoveries = seg_->header().mutex_recoveries.load(std::memory_order_relaxed);
  const std::uint64_t seq = seg_->publish(payload, ec);
  if (seg_->header().mutex_recoveries.load(std::memory_order_relaxed) != recoveries) {
    try {
      spdlog::warn(
          "shmbus: topic '{}': a publisher died holding the topic mutex; recovered "
          "(recoveries so far: {}, half-written messages discarded: {})",
          info_.name, seg_->header().mutex_recoveries.load(), seg_->header().torn_discarded.load());
    } catch (...) {
    }
  }
  return seq;
}

std::uint64_t publisher::publish(std::span<const std::byte> payload) {
  std::error_code ec;
  const std::uint64_t seq = publish(payload, ec);
  if (!ec) return seq;
  if (ec == errc::message_too_large)
    throw_error(ec, "topic '" + info_.name + "': message of " + std::to_string(payload.size()) +
                        " bytes exceeds max_message_size " + std::to_string(info_.max_message_size));
  if (ec == errc::type_size_mismatch)
    throw_error(ec, "topic '" + info_.name + "' declares a " + std::to_string(info_.type_size) +
                        "-byte type, the message is " + std::to_string(payload.size()) +
                        " bytes; nothing was published");
  fail_on(info_, ec, "publish to");
}

std::uint64_t publisher::mutex_recoveries() const noexcept {
  return seg_ ? seg_->header().mutex_recoveries.load(std::memory_order_relaxed) : 0;
}

// ---- subscriber ------------------------------------------------------------

subscriber::subscriber(std::unique_ptr<topic_segment> seg, topic_info info, int entry, std::uint64_t entry_state)
    : seg_(std::move(seg)), info_(std::move(info)), entry_(entry), entry_state_(entry_state) {
  if (!seg_) return;
  next_ = seg_->newest() + 1;
  // Caught up so far: without this, `shmbus stat` would count every message
  // published before we subscribed as our lag.
  if (entry_ >= 0)
    seg_->subscribers()[static_cast<std::size_t>(entry_)].read_seq.store(next_ - 1, std::memory_order_relaxed);
}

subscriber::subscriber(subscriber&& o) noexcept
    : seg_(std::move(o.seg_)),
      info_(std::move(o.info_)),
      entry_(std::exchange(o.entry_, -1)),
      entry_state_(o.entry_state_),
      next_(o.next_),
      pending_missed_(o.pending_missed_),
      missed_total_(o.missed_total_),
      received_total_(o.received_total_),
      strategy_(o.strategy_) {}

subscriber& subscriber::operator=(subscriber&& o) noexcept {
  if (this != &o) {
    if (seg_) seg_->unregister_subscriber(entry_, entry_state_);
    seg_ = std::move(o.seg_);
    info_ = std::move(o.info_);
    entry_ = std::exchange(o.entry_, -1);
    entry_state_ = o.entry_state_;
    next_ = o.next_;
    pending_missed_ = o.pending_missed_;
    missed_total_ = o.missed_total_;
    received_total_ = o.received_total_;
    strategy_ = o.strategy_;
  }
  return *this;
}

subscriber::~subscriber() {
  if (seg_) seg_->unregister_subscriber(entry_, entry_state_);
}

detail::subscriber_entry* subscriber::own_entry() noexcept {
  if (entry_ < 0) return nullptr;
  detail::subscriber_entry* e = seg_->owned_subscriber(entry_, entry_state_);
  // Reaped (our registered process looked dead: we daemonised): the entry may
  // be someone else's now, so stop writing it. What remains is the window
  // between this check and the caller's stores; see docs/design.md.
  if (e == nullptr) entry_ = -1;
  return e;
}

void subscriber::account(const message_info& info) noexcept {
  missed_total_ += info.missed;
  ++received_total_;
  detail::subscriber_entry* e = own_entry();
  if (e == nullptr) return;
  e->read_seq.store(info.sequence, std::memory_order_relaxed);
  e->missed.store(missed_total_, std::memory_order_relaxed);
  e->received.store(received_total_, std::memory_order_relaxed);
}

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer, std::error_code& ec) noexcept {
  if (!seg_) {
    ec = make_error_code(errc::invalid_argument);
    return std::nullopt;
  }
  detail::read_meta meta;
  const auto status = read_next(buffer, meta, ec);
  if (ec || status == detail::read_status::empty) return std::nullopt;
  if (status == detail::read_status::buffer_too_small) {
    ec = make_error_code(errc::buffer_too_small);
    return std::nullopt;
  }
  message_info info{meta.sequence, meta.timestamp_ns, meta.size, std::exchange(pending_missed_, 0)};
  account(info);
  return info;
}

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer) {
  std::error_code ec;
  auto got = try_read(buffer, ec);
  if (ec == errc::buffer_too_small)
    throw_error(ec, "topic '" + info_.name + "': a " + std::to_string(buffer.size()) +
                        "-byte buffer cannot hold the next message");
  if (ec) fail_on(info_, ec, "read from");
  return got;
}

detail::read_status subscriber::read_next(std::span<std::byte> dst, detail::read_meta& meta,
                                          std::error_code& ec) noexcept {
  const auto status = seg_->read(next_, dst, meta, ec);
  // Skips found on an attempt that could not deliver are reported with the
  // message that is finally delivered.
  pending_missed_ += meta.missed;
  // What was published before a close is read first; then the reader is
  // told, so a strategy spinning over try_read does not spin for ever.
  if (!ec && status == detail::read_status::empty && seg_->gone()) ec = make_error_code(errc::topic_closed);
  return status;
}

bool subscriber::read_exact(std::span<std::byte> scratch, message_info* info, std::error_code& ec) noexcept {
  ec.clear();
  if (!seg_) {
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  detail::read_meta meta;
  const auto status = read_next(scratch, meta, ec);
  if (ec || status == detail::read_status::empty) return false;
  // A message larger than the type stays at the cursor after read(); a typed
  // read consumes it all the same, so that one bad message cannot block the
  // stream. (Its bytes were validated but not copied.)
  if (status == detail::read_status::buffer_too_small) next_ = meta.sequence + 1;
  const message_info got{meta.sequence, meta.timestamp_ns, meta.size, std::exchange(pending_missed_, 0)};
  account(got);
  if (info != nullptr) *info = got;
  if (got.size != scratch.size()) {
    ec = make_error_code(errc::type_size_mismatch);
    return false;
  }
  return true;
}

void subscriber::throw_read_error(const std::error_code& ec, const message_info& info, std::size_t type_size) const {
  if (ec == errc::type_size_mismatch)
    throw_error(ec, "topic '" + info_.name + "': message #" + std::to_string(info.sequence) + " is " +
                        std::to_string(info.size) + " bytes, not the caller's " + std::to_string(type_size) +
                        "-byte type; it was skipped");
  fail_on(info_, ec, "read from");
}

bool subscriber::try_read(message& m, std::error_code& ec) noexcept {
  try {
    if (m.buffer_.size() < info_.max_message_size) m.buffer_.resize(info_.max_message_size);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return false;
  }
  auto got = try_read(std::span<std::byte>(m.buffer_), ec);
  if (!got) return false;
  m.info_ = *got;
  return true;
}

bool subscriber::try_read(message& m) {
  std::error_code ec;
  const bool got = try_read(m, ec);
  if (ec) fail_on(info_, ec, "read from");
  return got;
}

bool subscriber::wait_available(std::optional<duration> timeout, std::error_code& ec) noexcept {
  return wait_available(timeout, strategy_, ec);
}

bool subscriber::wait_available(std::optional<duration> timeout) { return wait_available(timeout, strategy_); }

bool subscriber::wait_available(std::optional<duration> timeout, const wait_strategy& how) {
  std::error_code ec;
  const bool available = wait_available(timeout, how, ec);
  if (ec) fail_on(info_, ec, "wait on");
  return available;
}

bool subscriber::wait_available(std::optional<duration> timeout, const wait_strategy& how,
                                std::error_code& ec) noexcept {
  ec.clear();
  if (!seg_) {
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  // Already there: no clock read, nothing else.
  if (seg_->newest() >= next_) return true;
  using clock = platform::named_event::clock;
  const bool timed = timeout.has_value() || how.mode == wait_mode::spin_then_block;
  const auto now = timed ? clock::now() : clock::time_point{};
  std::optional<clock::time_point> deadline;
  // A timeout too large to add to now() means "for ever", not overflow.
  if (timeout && *timeout < clock::time_point::max() - now) deadline = now + *timeout;
  if (how.mode == wait_mode::block) return block_until(deadline, ec);

  std::optional<clock::time_point> spin_end = deadline;
  if (how.mode == wait_mode::spin_then_block && (!deadline || how.spin < *deadline - now))
    spin_end = now + std::max(how.spin, duration::zero());
  switch (poll_until(spin_end)) {
    case poll_result::available: return true;
    case poll_result::closed: ec = make_error_code(errc::topic_closed); return false;
    case poll_result::timed_out: break;
  }
  if (how.mode == wait_mode::busy_poll || (deadline && spin_end == deadline)) return false;
  return block_until(deadline, ec);
}

subscriber::poll_result subscriber::poll_until(std::optional<std::chrono::steady_clock::time_point> until) noexcept {
  using clock = std::chrono::steady_clock;
  // Reading the clock costs tens of nanoseconds (user space, but not free):
  // look at it, and at whether the topic is gone, every few dozen polls only.
  constexpr unsigned polls_per_check = 32;
  for (;;) {
    for (unsigned i = 0; i < polls_per_check; ++i) {
      if (seg_->newest() >= next_) return poll_result::available;
      detail::cpu_relax();
    }
    if (seg_->gone()) return poll_result::closed;
    if (until && clock::now() >= *until)
      return seg_->newest() >= next_ ? poll_result::available : poll_result::timed_out;
  }
}

bool subscriber::block_until(std::optional<std::chrono::steady_clock::time_point> deadline,
                             std::error_code& ec) noexcept {
  using clock = platform::named_event::clock;
  auto& event = seg_->event();
  for (;;) {
    // Token before the check: a publish after the check bumps the token, so
    // the wait below returns at once instead of sleeping through it.
    const auto token = event.prepare_wait();
    if (seg_->newest() >= next_) return true;
    if (seg_->gone()) {
      ec = make_error_code(errc::topic_closed);
      return false;
    }
    detail::subscriber_entry* entry = own_entry();
    if (entry) entry->waiting.store(1, std::memory_order_relaxed);
    // Sleep in slices so that a topic closed without a wake is noticed (gone()).
    const auto slice_end = clock::now() + std::chrono::nanoseconds(detail::topic_segment::wait_slice_ns);
    const bool last_slice = deadline && *deadline <= slice_end;
    bool signaled = false;
    try {
      signaled = event.wait(token, static_cast<std::uint32_t>(entry_), last_slice ? *deadline : slice_end);
    } catch (const std::system_error& e) {
      ec = e.code();  // the OS refused to wait (e.g. futex forbidden): never spin
    } catch (...) {
      ec = make_error_code(std::errc::not_enough_memory);
    }
    if (entry) entry->waiting.store(0, std::memory_order_relaxed);
    if (ec) return false;
    if (!signaled && last_slice) return seg_->newest() >= next_;
  }
}

bool subscriber::wait(message& m, std::optional<duration> timeout, std::error_code& ec) noexcept {
  return wait(m, timeout, strategy_, ec);
}

bool subscriber::wait(message& m, std::optional<duration> timeout, const wait_strategy& how,
                      std::error_code& ec) noexcept {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (;;) {
    if (try_read(m, ec) || ec) return !ec;
    std::optional<duration> left;
    if (timeout) {
      left = *timeout - (clock::now() - start);
      if (left->count() < 0) left = duration::zero();
    }
    if (!wait_available(left, how, ec)) return false;
  }
}

bool subscriber::wait(message& m, std::optional<duration> timeout) { return wait(m, timeout, strategy_); }

bool subscriber::wait(message& m, std::optional<duration> timeout, const wait_strategy& how) {
  std::error_code ec;
  const bool got = wait(m, timeout, how, ec);
  if (ec) fail_on(info_, ec, "wait on");
  return got;
}

bool subscriber::latest(message& m) {
  if (!seg_) fail(make_error_code(errc::invalid_argument), "latest() on an empty subscriber");
  const std::uint64_t newest = seg_->newest();
  if (newest == 0) return false;
  if (next_ <= newest) {
    pending_missed_ += newest - next_;
    next_ = newest;
    return try_read(m);
  }
  // The newest was already consumed: copy it again, without counting it.
  if (m.buffer_.size() < info_.max_message_size) m.buffer_.resize(info_.max_message_size);
  std::uint64_t cursor = newest;
  detail::read_meta meta;
  std::error_code ec;
  const auto status = seg_->read(cursor, std::span<std::byte>(m.buffer_), meta, ec);
  if (ec) fail_on(info_, ec, "read from");
  if (status != detail::read_status::ok) return false;
  if (meta.sequence >= next_) {  // overtaken meanwhile: a new message after all
    m.info_ = {meta.sequence, meta.timestamp_ns, meta.size, std::exchange(pending_missed_, 0) + meta.sequence - next_};
    next_ = meta.sequence + 1;
    account(m.info_);
    return true;
  }
  m.info_ = {meta.sequence, meta.timestamp_ns, meta.size, 0};
  return true;
}

bool subscriber::read_view_impl(void* ctx, void (*call)(void*, const message_info&, std::span<const std::byte>)) {
  if (!seg_) fail(make_error_code(errc::invalid_argument), "read_view() on an empty subscriber");
  std::error_code ec;
  message_info delivered;
  const bool got = seg_->read_in_place(
      next_, pending_missed_,
      [&](const detail::read_meta& meta, std::span<const std::byte> payload) {
        delivered = {meta.sequence, meta.timestamp_ns, meta.size, meta.missed};
        call(ctx, delivered, payload);
      },
      ec);
  if (ec) fail_on(info_, ec, "read from");
  if (!got) {
    if (seg_->gone()) fail_on(info_, make_error_code(errc::topic_closed), "read from");
    return false;
  }
  account(delivered);
  return true;
}

}  // namespace shmbus
