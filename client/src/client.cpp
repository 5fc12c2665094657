#include "shmbus/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "shmbus/detail/observer_port.hpp"
#include "shmbus/detail/publisher_port.hpp"
#include "shmbus/detail/registry.hpp"
#include "shmbus/detail/subscriber_port.hpp"

namespace shmbus {
namespace {

using detail::publisher_port;
using detail::registry;
using detail::subscriber_port;

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
    ec = translate_os_error(ec, what);
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
  // The same broker instance as when we opened, still ready and running.
  return registry::owner(name_, instance_) == detail::ownership::ours;
}

std::uint64_t bus::broker_pid() const noexcept { return broker_pid_; }

std::vector<topic_stats> bus::stats() const {
  std::vector<topic_stats> out;
  for (const auto& info : topics_) {
    std::error_code ec;
    std::string what;
    const auto port = detail::observer_port::open(name_, instance_, info, ec, what);
    if (ec) throw_error(translate_os_error(ec, what), what);
    out.push_back(port.snapshot());
  }
  return out;
}

const topic_info* bus::find_topic(std::string_view topic, std::size_t type_size, std::error_code& ec,
                                  std::string& what) const {
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
  const topic_info& info = *entry;
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
  return &info;
}

bool bus::opened(const topic_info& info, std::error_code& ec, std::string& what) const {
  if (ec == std::errc::no_such_file_or_directory) {
    ec = make_error_code(errc::topic_closed);
    what = "topic '" + info.name + "' is listed but its segment is gone (broker stopping?)";
  } else if (ec) {
    ec = translate_os_error(ec, what);
  } else if (!broker_alive()) {
    ec = make_error_code(errc::topic_closed);
    what = "topic '" + info.name + "' is not open: its broker stopped or was restarted; reopen the bus";
  }
  return !ec;
}

publisher bus::open_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec,
                              std::string& what) const {
  const topic_info* info = find_topic(topic, type_size, ec, what);
  if (info == nullptr) return publisher(nullptr, {});
  auto port = std::make_unique<publisher_port>(publisher_port::open(name_, instance_, *info, ec, what));
  if (!opened(*info, ec, what)) return publisher(nullptr, {});
  return publisher(std::move(port), *info);
}

subscriber bus::open_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec,
                                std::string& what) const {
  const topic_info* info = find_topic(topic, type_size, ec, what);
  if (info == nullptr) return subscriber(nullptr, {});
  auto port = std::make_unique<subscriber_port>(subscriber_port::open(name_, instance_, *info, ec, what));
  if (!opened(*info, ec, what)) return subscriber(nullptr, {});
  return subscriber(std::move(port), *info);
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
    return subscriber(nullptr, {});
  }
}

// ---- publisher -------------------------------------------------------------

publisher::publisher(std::unique_ptr<publisher_port> port, topic_info info)
    : port_(std::move(port)), info_(std::move(info)) {}
publisher::publisher(publisher&&) noexcept = default;
publisher& publisher::operator=(publisher&&) noexcept = default;
publisher::~publisher() = default;

std::uint64_t publisher::publish(std::span<const std::byte> payload, std::error_code& ec) noexcept {
  if (!port_) {
    ec = make_error_code(errc::invalid_argument);
    return 0;
  }
  detail::recovery_report recovery;
  const std::uint64_t seq = port_->publish(payload, ec, &recovery);
  if (recovery.recovered) {
    try {
      spdlog::warn(
          "shmbus: topic '{}': a publisher died holding the topic mutex; recovered "
          "(recoveries so far: {}, half-written messages discarded: {})",
          info_.name, recovery.recoveries, recovery.torn_discarded);
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

std::uint64_t publisher::mutex_recoveries() const noexcept { return port_ ? port_->mutex_recoveries() : 0; }

// ---- subscriber ------------------------------------------------------------

subscriber::subscriber(std::unique_ptr<subscriber_port> port, topic_info info)
    : port_(std::move(port)), info_(std::move(info)) {}
subscriber::subscriber(subscriber&&) noexcept = default;
subscriber& subscriber::operator=(subscriber&&) noexcept = default;
subscriber::~subscriber() = default;

std::uint64_t subscriber::missed_total() const noexcept { return port_ ? port_->missed_total() : 0; }
std::uint64_t subscriber::received_total() const noexcept { return port_ ? port_->received_total() : 0; }

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer, std::error_code& ec) noexcept {
  if (!port_) {
    ec = make_error_code(errc::invalid_argument);
    return std::nullopt;
  }
  message_info info;
  const auto status = port_->read(buffer, info, ec);
  if (ec || status == detail::read_status::empty) return std::nullopt;
  if (status == detail::read_status::buffer_too_small) {
    ec = make_error_code(errc::buffer_too_small);
    return std::nullopt;
  }
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

bool subscriber::read_exact(std::span<std::byte> scratch, message_info* info, std::error_code& ec) noexcept {
  ec.clear();
  if (!port_) {
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  message_info got;
  const auto status = port_->read(scratch, got, ec);
  if (ec || status == detail::read_status::empty) return false;
  // A message larger than the type stays at the cursor after read(); a typed
  // read consumes it all the same, so that one bad message cannot block the
  // stream. (Its bytes were validated but not copied.)
  if (status == detail::read_status::buffer_too_small) port_->skip(got);
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
  if (!port_) {
    ec = make_error_code(errc::invalid_argument);
    return false;
  }
  return port_->wait(timeout, how, ec);
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
  if (!port_) fail(make_error_code(errc::invalid_argument), "latest() on an empty subscriber");
  if (m.buffer_.size() < info_.max_message_size) m.buffer_.resize(info_.max_message_size);
  std::error_code ec;
  const bool got = port_->latest(std::span<std::byte>(m.buffer_), m.info_, ec);
  if (ec) fail_on(info_, ec, "read from");
  return got;
}

bool subscriber::read_view_impl(void* ctx, void (*call)(void*, const message_info&, std::span<const std::byte>)) {
  if (!port_) fail(make_error_code(errc::invalid_argument), "read_view() on an empty subscriber");
  std::error_code ec;
  const bool got = port_->read_in_place(
      [&](const message_info& info, std::span<const std::byte> payload) { call(ctx, info, payload); }, ec);
  if (ec) fail_on(info_, ec, "read from");
  return got;
}

}  // namespace shmbus
