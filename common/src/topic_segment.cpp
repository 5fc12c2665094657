#include "shmbus/detail/topic_segment.hpp"

#include <cstring>

#include "shmbus/detail/registry.hpp"
#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/platform/bus_endpoint.hpp"

namespace shmbus::detail {

bool topic_segment::attach(std::error_code& ec, std::string& what) {
  auto* base = static_cast<std::byte*>(region_.data());
  header_ = &header_of(base);
  params_ = decode(header_->decl);
  // Recomputed from the copied parameters, so the geometry we use is one that
  // validation proved fits the mapping, whatever the header says later.
  topic_geometry geometry{};
  if ((ec = compute_geometry(params_, geometry, &what))) return false;
  if (geometry.total_size > region_.size()) {
    ec = make_error_code(errc::corrupt_segment);
    what = "segment smaller than its geometry";
    return false;
  }
  if ((ec = validate_control(control_region_.bytes(), params_, &what))) return false;
  control_ = static_cast<control_header*>(control_region_.data());
  auto* entries = reinterpret_cast<subscriber_entry*>(static_cast<std::byte*>(control_region_.data()) +
                                                      geometry.subscribers_offset);
  table_ = subscriber_table({entries, params_.max_subscribers});
  ring_ = ring_of(base, params_, geometry);
  keys_ = key_table_of(base, params_, geometry);
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
    t.event_ = platform::named_event(create_only, object + "#event", t.control_->event_storage, t.table_.waiter_words(),
                                     perms, ec);
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
        open_only, object + "#event", t.control_->event_storage, t.table_.waiter_words(),
        role == topic_role::publish ? platform::named_event::role::waker : platform::named_event::role::waiter, ec);
  if (ec) {
    what = "open mutex/event of topic '" + std::string(topic) + "'";
    return {};
  }
  t.watch_ = owner_watch::of(bus, instance);
  return t;
}

topic_segment topic_segment::open_declared(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                                           topic_role role, std::error_code& ec, std::string& what) {
  topic_segment t = open(bus, instance, declared.name, role, ec, what);
  if (ec) return {};
  if (t.params() != declared) {
    ec = make_error_code(errc::corrupt_segment);
    what = "topic '" + declared.name + "': segment parameters differ from the bus registry";
    return {};
  }
  if (!t.ready()) {
    // Closed, or (after a broker restart) a segment whose new broker has not
    // finished it: its mutex may not even be initialised yet.
    ec = make_error_code(errc::topic_closed);
    what = "topic '" + declared.name + "' is not open: its broker stopped or was restarted; reopen the bus";
    return {};
  }
  return t;
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

}  // namespace shmbus::detail
