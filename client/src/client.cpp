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
// get theirs from shmbus::error.
std::string about(std::error_code ec, const std::string& action) {
  return ec.category() == error_category() ? action + ": " + ec.message() : action;
}

std::string bus_label(std::string_view bus) { return "bus '" + std::string(bus) + "'"; }

// Every publish and read path describes its failures through here, so a
// closed topic reads the same wherever it is met.
std::string on_topic(const topic_info& topic, std::error_code ec, const std::string& action) {
  if (ec == errc::topic_closed)
    return "topic '" + topic.name + "': the broker stopped or was restarted; reopen the bus";
  return about(ec, action + " topic '" + topic.name + "'");
}

// A key as an error sentence quotes it: keys are any bytes, and a control
// byte must not break the one line the sentence is.
std::string printable_key(std::string_view key) {
  std::string out;
  for (const char c : key) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f || c == '\\' || c == '\'') {
      out += fmt::format("\\x{:02x}", b);
    } else {
      out += c;
    }
  }
  return out;
}

std::string empty_object(std::string_view kind) {
  return std::string(kind) + " is empty (default-constructed or moved-from)";
}

// The calls of an empty publisher or subscriber fail, and say so (the
// sentence is empty_object's).
template <class Port>
bool open_or_report(const std::unique_ptr<Port>& port, std::error_code& ec) noexcept {
  if (!port) ec = make_error_code(errc::invalid_argument);
  return port != nullptr;
}

void out_of_memory(error_info& err) noexcept {
  err.code = std::make_error_code(std::errc::not_enough_memory);
  err.what.clear();
}

// The one place an error_info gets its sentence: `context()` is what the
// throwing form would throw with, so `what` is that exception's what().
template <class Context>
void fill(error_info& err, Context&& context) noexcept {
  try {
    err.what = error(err.code, context()).what();
  } catch (const std::bad_alloc&) {
    out_of_memory(err);
  }
}

// The error_info form of a core that reports a code and its sentence
// (`core(ec, what)`); R{} when it ran out of memory.
template <class R, class Core>
R with_context(error_info& err, Core&& core) noexcept {
  err.clear();
  try {
    std::string what;
    R result = core(err.code, what);
    if (err) fill(err, [&] { return what; });
    return result;
  } catch (const std::bad_alloc&) {
    out_of_memory(err);
    return R{};
  }
}

// The std::error_code& form of any call, through its error_info form.
template <class Call>
auto code_only(std::error_code& ec, Call&& call) noexcept {
  error_info err;
  auto result = call(err);
  ec = err.code;
  return result;
}

// The throwing form of a publish or read, which runs per message: its
// error_code form, and the sentence (`describe(err)`) only once it failed.
template <class Call, class Describe>
auto or_throw_fast(Call&& call, Describe&& describe) {
  std::error_code ec;
  auto result = call(ec);
  if (ec) [[unlikely]] {
    error_info err;
    err.code = ec;
    describe(err);
    detail::throw_if(err);
  }
  return result;
}

// The throwing form of any other call, through its error_info form.
template <class Call>
auto or_throw(Call&& call) {
  error_info err;
  auto result = call(err);
  detail::throw_if(err);
  return result;
}

}  // namespace

// ---- bus -------------------------------------------------------------------

bus::bus(std::string_view name) {
  error_info err;
  open(name, err);
  detail::throw_if(err);
}

bus::bus(std::string_view name, std::error_code& ec) noexcept {
  error_info err;
  open(name, err);
  ec = err.code;
}

bus::bus(std::string_view name, error_info& err) noexcept { open(name, err); }

void bus::open(std::string_view name, error_info& err) noexcept {
  with_context<bool>(err, [&](std::error_code& ec, std::string& what) {
    open(name, ec, what);
    return true;
  });
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
  return or_throw([&](error_info& err) { return stats(err); });
}

std::vector<topic_stats> bus::stats(std::error_code& ec) const noexcept {
  return code_only(ec, [&](error_info& err) { return stats(err); });
}

std::vector<topic_stats> bus::stats(error_info& err) const noexcept {
  return with_context<std::vector<topic_stats>>(err, [&](std::error_code& ec, std::string& what) {
    std::vector<topic_stats> out;
    for (const auto& info : topics_) {
      const auto port = detail::observer_port::open(name_, instance_, info, ec, what);
      if (ec) {
        ec = translate_os_error(ec, what);
        return std::vector<topic_stats>{};
      }
      out.push_back(port.snapshot());
    }
    return out;
  });
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

// The one way a publisher or subscriber opens: the registry's declaration,
// then the port, then the check that the broker is still the one we opened.
template <class Port, class Endpoint>
Endpoint bus::open_endpoint(std::string_view topic, std::size_t type_size, error_info& err) const noexcept {
  return with_context<Endpoint>(err, [&](std::error_code& ec, std::string& what) {
    const topic_info* info = find_topic(topic, type_size, ec, what);
    if (info == nullptr) return Endpoint{};
    auto port = std::make_unique<Port>(Port::open(name_, instance_, *info, ec, what));
    if (!opened(*info, ec, what)) return Endpoint{};
    return Endpoint(std::move(port), *info);
  });
}

publisher bus::make_publisher(std::string_view topic, std::size_t type_size, error_info& err) noexcept {
  publisher_options opts;
  opts.type_size = type_size;
  return make_publisher(topic, opts, err);
}
publisher bus::make_publisher(std::string_view topic, const publisher_options& opts, error_info& err) noexcept {
  publisher pub = open_endpoint<publisher_port, publisher>(topic, opts.type_size, err);
  if (err || !opts.exclusive) return pub;
  pub.acquire_exclusive(opts.wait_for_right, err);
  return err ? publisher{} : std::move(pub);
}
publisher bus::make_publisher(std::string_view topic, const publisher_options& opts, std::error_code& ec) noexcept {
  return code_only(ec, [&](error_info& err) { return make_publisher(topic, opts, err); });
}
publisher bus::make_publisher(std::string_view topic, const publisher_options& opts) {
  return or_throw([&](error_info& err) { return make_publisher(topic, opts, err); });
}
publisher bus::make_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept {
  return code_only(ec, [&](error_info& err) { return make_publisher(topic, type_size, err); });
}
publisher bus::make_publisher(std::string_view topic, std::size_t type_size) {
  return or_throw([&](error_info& err) { return make_publisher(topic, type_size, err); });
}

subscriber bus::make_subscriber(std::string_view topic, std::size_t type_size, error_info& err) noexcept {
  return open_endpoint<subscriber_port, subscriber>(topic, type_size, err);
}
subscriber bus::make_subscriber(std::string_view topic, const subscriber_options& opts, error_info& err) noexcept {
  subscriber sub = open_endpoint<subscriber_port, subscriber>(topic, opts.type_size, err);
  if (err || (opts.keys.empty() && !opts.snapshot)) return sub;
  sub.port_->follow(opts.keys, opts.snapshot, err.code);
  if (!err) return sub;
  fill(err, [&] {
    const topic_info& info = sub.topic();
    if (err.code == errc::invalid_key && !info.keyed())
      return "topic '" + info.name + "' is not keyed: it takes no keys and has no snapshot";
    if (err.code == errc::invalid_key) return "topic '" + info.name + "': keys are 1-63 bytes";
    return on_topic(info, err.code, opts.snapshot ? "take the snapshot of" : "follow the keys of");
  });
  return subscriber{};
}
subscriber bus::make_subscriber(std::string_view topic, const subscriber_options& opts, std::error_code& ec) noexcept {
  return code_only(ec, [&](error_info& err) { return make_subscriber(topic, opts, err); });
}
subscriber bus::make_subscriber(std::string_view topic, const subscriber_options& opts) {
  return or_throw([&](error_info& err) { return make_subscriber(topic, opts, err); });
}
subscriber bus::make_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept {
  return code_only(ec, [&](error_info& err) { return make_subscriber(topic, type_size, err); });
}
subscriber bus::make_subscriber(std::string_view topic, std::size_t type_size) {
  return or_throw([&](error_info& err) { return make_subscriber(topic, type_size, err); });
}

// ---- message ---------------------------------------------------------------

void message::size_error(error_info& err, std::size_t type_size) const noexcept {
  fill(err, [&] {
    return "message #" + std::to_string(info_.sequence) + " of " + std::to_string(info_.size) + " bytes read as a " +
           std::to_string(type_size) + "-byte type";
  });
}

// ---- publisher -------------------------------------------------------------

publisher::publisher() noexcept = default;
publisher::publisher(std::unique_ptr<publisher_port> port, topic_info info)
    : port_(std::move(port)), info_(std::move(info)) {}
publisher::publisher(publisher&&) noexcept = default;
publisher& publisher::operator=(publisher&&) noexcept = default;
publisher::~publisher() = default;

void publisher::log_recovery(const detail::recovery_report& recovery) const noexcept {
  if (!recovery.recovered) return;
  try {
    spdlog::warn(
        "shmbus: topic '{}': a publisher died holding the publish right; recovered "
        "(recoveries so far: {}, half-written messages discarded: {})",
        info_.name, recovery.recoveries, recovery.torn_discarded);
  } catch (...) {
  }
}

void publisher::acquire_exclusive(std::optional<std::chrono::nanoseconds> wait, error_info& err) noexcept {
  detail::recovery_report recovery;
  port_->acquire_exclusive(wait, err.code, &recovery);
  log_recovery(recovery);
  if (!err) return;
  fill(err, [&] {
    if (err.code != errc::exclusive_publisher) return on_topic(info_, err.code, "take the exclusive right of");
    std::string waited;
    if (wait) waited = fmt::format(" (waited {:.3f} s)", std::chrono::duration<double>(*wait).count());
    return "topic '" + info_.name + "': publisher pid " + std::to_string(port_->exclusive_holder_pid()) +
           " holds the exclusive publish right" + waited;
  });
}

std::uint64_t publisher::publish(std::span<const std::byte> payload, std::error_code& ec) noexcept {
  if (!open_or_report(port_, ec)) return 0;
  detail::recovery_report recovery;
  const std::uint64_t seq = port_->publish(payload, ec, &recovery);
  log_recovery(recovery);
  return seq;
}

std::uint64_t publisher::publish(std::span<const std::byte> payload, error_info& err) noexcept {
  err.clear();
  const std::uint64_t seq = publish(payload, err.code);
  if (err) publish_error(err, "publish", payload.size());
  return seq;
}

std::uint64_t publisher::publish(std::span<const std::byte> payload) {
  return or_throw_fast([&](std::error_code& ec) { return publish(payload, ec); },
                       [&](error_info& err) { publish_error(err, "publish", payload.size()); });
}

std::uint64_t publisher::publish(std::string_view key, std::span<const std::byte> payload,
                                 std::error_code& ec) noexcept {
  if (!open_or_report(port_, ec)) return 0;
  detail::recovery_report recovery;
  const std::uint64_t seq = port_->publish(key, payload, ec, &recovery);
  if (recovery.recovered) log_recovery(recovery);
  return seq;
}

std::uint64_t publisher::publish(std::string_view key, std::span<const std::byte> payload, error_info& err) noexcept {
  err.clear();
  const std::uint64_t seq = publish(key, payload, err.code);
  if (err) publish_error(err, "publish", payload.size(), key);
  return seq;
}

std::uint64_t publisher::publish(std::string_view key, std::span<const std::byte> payload) {
  return or_throw_fast([&](std::error_code& ec) { return publish(key, payload, ec); },
                       [&](error_info& err) { publish_error(err, "publish", payload.size(), key); });
}

std::span<std::byte> publisher::loan(std::size_t size, std::error_code& ec) noexcept {
  if (!open_or_report(port_, ec)) return {};
  detail::recovery_report recovery;
  std::byte* slot = port_->loan(size, ec, &recovery);
  log_recovery(recovery);
  return slot == nullptr ? std::span<std::byte>{} : std::span<std::byte>(slot, size);
}

std::span<std::byte> publisher::loan(std::size_t size, error_info& err) noexcept {
  err.clear();
  const auto slot = loan(size, err.code);
  if (err) publish_error(err, "loan", size);
  return slot;
}

std::span<std::byte> publisher::loan(std::size_t size) {
  return or_throw_fast([&](std::error_code& ec) { return loan(size, ec); },
                       [&](error_info& err) { publish_error(err, "loan", size); });
}

std::uint64_t publisher::commit(std::size_t size, std::error_code& ec) noexcept {
  if (!open_or_report(port_, ec)) return 0;
  return port_->commit(size, ec);
}

std::uint64_t publisher::commit(std::size_t size, error_info& err) noexcept {
  err.clear();
  const std::uint64_t seq = commit(size, err.code);
  if (err) publish_error(err, "commit", size);
  return seq;
}

std::uint64_t publisher::commit(std::size_t size) {
  return or_throw_fast([&](std::error_code& ec) { return commit(size, ec); },
                       [&](error_info& err) { publish_error(err, "commit", size); });
}

std::uint64_t publisher::commit(std::error_code& ec) noexcept { return commit(port_ ? port_->loan_size() : 0, ec); }
std::uint64_t publisher::commit(error_info& err) noexcept { return commit(port_ ? port_->loan_size() : 0, err); }
std::uint64_t publisher::commit() { return commit(port_ ? port_->loan_size() : 0); }

void publisher::abandon() noexcept {
  if (port_) port_->abandon();
}

bool publisher::loan_open() const noexcept { return port_ && port_->loan_open(); }
bool publisher::exclusive() const noexcept { return port_ && port_->exclusive(); }

void publisher::publish_error(error_info& err, const char* action, std::size_t size,
                              std::optional<std::string_view> key) const noexcept {
  fill(err, [&] {
    if (!port_) return empty_object("publisher");
    const std::string topic = "topic '" + info_.name + "': ";
    if (err.code == errc::invalid_key) {
      if (!info_.keyed()) return "topic '" + info_.name + "' is not keyed: publish without a key";
      if (!key) return "topic '" + info_.name + "' is keyed: every message needs a key (loans are for plain topics)";
      return topic + "key of " + std::to_string(key->size()) + " bytes: keys are 1-63 bytes; nothing was published";
    }
    if (err.code == errc::key_table_full)
      return topic + "its key table is full (" + std::to_string(info_.key_capacity) + " keys): key '" +
             printable_key(key.value_or("")) + "' was not added and nothing was published";
    if (err.code == errc::message_too_large)
      return topic + "message of " + std::to_string(size) + " bytes exceeds max_message_size " +
             std::to_string(info_.max_message_size);
    if (err.code == errc::type_size_mismatch)
      return "topic '" + info_.name + "' declares a " + std::to_string(info_.type_size) +
             "-byte type, the message is " + std::to_string(size) + " bytes; nothing was published";
    if (err.code == errc::exclusive_publisher)
      return topic + "publisher pid " + std::to_string(port_->exclusive_holder_pid()) +
             (exclusive() ? " took over this publisher's exclusive publish right"
                          : " holds the exclusive publish right; nothing was published");
    if (err.code == errc::invalid_argument) {
      if (std::string_view(action) == "commit")
        return port_->loan_open() ? topic + "commit of " + std::to_string(size) + " bytes exceeds the loan of " +
                                        std::to_string(port_->loan_size()) + " bytes"
                                  : topic + "commit without an open loan";
      return topic + "a loan is open: commit or abandon it first";
    }
    return on_topic(info_, err.code, std::string(action) + " to");
  });
}

std::uint64_t publisher::mutex_recoveries() const noexcept { return port_ ? port_->mutex_recoveries() : 0; }

// ---- subscriber ------------------------------------------------------------

subscriber::subscriber() noexcept = default;
subscriber::subscriber(std::unique_ptr<subscriber_port> port, topic_info info)
    : port_(std::move(port)), info_(std::move(info)) {}
subscriber::subscriber(subscriber&&) noexcept = default;
subscriber& subscriber::operator=(subscriber&&) noexcept = default;
subscriber::~subscriber() = default;

std::uint64_t subscriber::missed_total() const noexcept { return port_ ? port_->missed_total() : 0; }
std::uint64_t subscriber::received_total() const noexcept { return port_ ? port_->received_total() : 0; }

void subscriber::fail(error_info& err, const char* action) const noexcept {
  fill(err, [&] {
    if (!port_) return empty_object("subscriber");
    // Keys, snapshots and resyncs asked of a plain topic.
    if (err.code == errc::invalid_key && !info_.keyed())
      return "topic '" + info_.name + "' is not keyed: it has no keys";
    return on_topic(info_, err.code, action);
  });
}

void subscriber::read_error(error_info& err, const message_info& info, std::size_t type_size) const noexcept {
  if (err.code != errc::type_size_mismatch || !port_) return fail(err, "read from");
  fill(err, [&] {
    return "topic '" + info_.name + "': message #" + std::to_string(info.sequence) + " is " +
           std::to_string(info.size) + " bytes, not the caller's " + std::to_string(type_size) +
           "-byte type; it was skipped";
  });
}

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer, std::error_code& ec) noexcept {
  if (!open_or_report(port_, ec)) return std::nullopt;
  message_info info;
  const auto status = port_->read(buffer, info, ec);
  if (ec || status == detail::read_status::empty) return std::nullopt;
  if (status == detail::read_status::buffer_too_small) {
    ec = make_error_code(errc::buffer_too_small);
    return std::nullopt;
  }
  return info;
}

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer, error_info& err) noexcept {
  err.clear();
  auto got = try_read(buffer, err.code);
  if (err) buffer_read_error(err, buffer.size());
  return got;
}

std::optional<message_info> subscriber::try_read(std::span<std::byte> buffer) {
  return or_throw_fast([&](std::error_code& ec) { return try_read(buffer, ec); },
                       [&](error_info& err) { buffer_read_error(err, buffer.size()); });
}

void subscriber::buffer_read_error(error_info& err, std::size_t buffer_size) const noexcept {
  if (err.code != errc::buffer_too_small) return fail(err, "read from");
  fill(err, [&] {
    return "topic '" + info_.name + "': a " + std::to_string(buffer_size) + "-byte buffer cannot hold the next message";
  });
}

bool subscriber::read_exact(std::span<std::byte> scratch, message_info* info, std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
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

bool subscriber::wait_exact(std::span<std::byte> scratch, std::optional<duration> timeout, message_info* info,
                            std::error_code& ec) noexcept {
  return wait_loop(timeout, strategy_, ec, [&](std::error_code& e) { return read_exact(scratch, info, e); });
}

bool subscriber::fit(message& m, std::error_code& ec) const noexcept {
  try {
    if (m.buffer_.size() < info_.max_message_size) m.buffer_.resize(info_.max_message_size);
    return true;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return false;
  }
}

bool subscriber::try_read(message& m, std::error_code& ec) noexcept {
  if (!fit(m, ec)) return false;
  auto got = try_read(std::span<std::byte>(m.buffer_), ec);
  if (!got) return false;
  m.info_ = *got;
  return true;
}

bool subscriber::try_read(message& m, error_info& err) noexcept {
  return reporting(err, "read from", [&](std::error_code& ec) { return try_read(m, ec); });
}

bool subscriber::try_read(message& m) {
  return or_throw_fast([&](std::error_code& ec) { return try_read(m, ec); },
                       [&](error_info& err) { fail(err, "read from"); });
}

bool subscriber::wait_available(std::optional<duration> timeout, const wait_strategy& how,
                                std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  return port_->wait(timeout, how, ec);
}

bool subscriber::wait_available(std::optional<duration> timeout, const wait_strategy& how, error_info& err) noexcept {
  return reporting(err, "wait on", [&](std::error_code& ec) { return wait_available(timeout, how, ec); });
}

bool subscriber::wait_available(std::optional<duration> timeout, const wait_strategy& how) {
  return or_throw_fast([&](std::error_code& ec) { return wait_available(timeout, how, ec); },
                       [&](error_info& err) { fail(err, "wait on"); });
}

bool subscriber::wait_available(std::optional<duration> timeout, std::error_code& ec) noexcept {
  return wait_available(timeout, strategy_, ec);
}

bool subscriber::wait_available(std::optional<duration> timeout, error_info& err) noexcept {
  return wait_available(timeout, strategy_, err);
}

bool subscriber::wait_available(std::optional<duration> timeout) { return wait_available(timeout, strategy_); }

template <class Read>
bool subscriber::wait_loop(std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec,
                           Read&& read) noexcept {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (;;) {
    if (read(ec) || ec) return !ec;
    std::optional<duration> left;
    if (timeout) {
      left = *timeout - (clock::now() - start);
      if (left->count() < 0) left = duration::zero();
    }
    if (!wait_available(left, how, ec)) return false;
  }
}

bool subscriber::wait(message& m, std::optional<duration> timeout, const wait_strategy& how,
                      std::error_code& ec) noexcept {
  return wait_loop(timeout, how, ec, [&](std::error_code& e) { return try_read(m, e); });
}

bool subscriber::wait(message& m, std::optional<duration> timeout, const wait_strategy& how, error_info& err) noexcept {
  return reporting(err, "wait on", [&](std::error_code& ec) { return wait(m, timeout, how, ec); });
}

bool subscriber::wait(message& m, std::optional<duration> timeout, const wait_strategy& how) {
  return or_throw_fast([&](std::error_code& ec) { return wait(m, timeout, how, ec); },
                       [&](error_info& err) { fail(err, "wait on"); });
}

bool subscriber::wait(message& m, std::optional<duration> timeout, std::error_code& ec) noexcept {
  return wait(m, timeout, strategy_, ec);
}

bool subscriber::wait(message& m, std::optional<duration> timeout, error_info& err) noexcept {
  return wait(m, timeout, strategy_, err);
}

bool subscriber::wait(message& m, std::optional<duration> timeout) { return wait(m, timeout, strategy_); }

bool subscriber::latest(message& m, std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  if (!fit(m, ec)) return false;
  return port_->latest(std::span<std::byte>(m.buffer_), m.info_, ec);
}

bool subscriber::latest(message& m, error_info& err) noexcept {
  return reporting(err, "read from", [&](std::error_code& ec) { return latest(m, ec); });
}

bool subscriber::latest(message& m) {
  return or_throw([&](error_info& err) { return latest(m, err); });
}

bool subscriber::get(std::string_view key, message& m, std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  if (!fit(m, ec)) return false;
  const auto status = port_->get(key, std::span<std::byte>(m.buffer_), m.info_, ec);
  return !ec && status == detail::read_status::ok;
}

bool subscriber::get(std::string_view key, message& m, error_info& err) noexcept {
  err.clear();
  const bool ok = get(key, m, err.code);
  if (err) get_error(err, key);
  return ok;
}

bool subscriber::get(std::string_view key, message& m) {
  error_info err;
  const bool ok = get(key, m, err);
  detail::throw_if(err);
  return ok;
}

bool subscriber::get_exact(std::string_view key, std::span<std::byte> scratch, std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  message_info info;
  const auto status = port_->get(key, scratch, info, ec);
  if (ec || status == detail::read_status::empty) return false;
  if (status == detail::read_status::buffer_too_small || info.size != scratch.size()) {
    ec = make_error_code(errc::type_size_mismatch);
    return false;
  }
  return true;
}

void subscriber::get_error(error_info& err, std::string_view key) const noexcept {
  fill(err, [&] {
    if (!port_) return empty_object("subscriber");
    if (err.code == errc::invalid_key)
      return info_.keyed()
                 ? "topic '" + info_.name + "': key of " + std::to_string(key.size()) + " bytes: keys are 1-63 bytes"
                 : "topic '" + info_.name + "' is not keyed: it has no values by key";
    if (err.code == errc::type_size_mismatch)
      return "topic '" + info_.name + "': the value of key '" + printable_key(key) +
             "' is not the size of the caller's type";
    return on_topic(info_, err.code, "look up key '" + printable_key(key) + "' in");
  });
}

std::vector<key_stats> subscriber::keys(std::error_code& ec) {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return {};
  return port_->keys(ec);
}

std::vector<key_stats> subscriber::keys(error_info& err) {
  return reporting(err, "list the keys of", [&](std::error_code& ec) { return keys(ec); });
}

std::vector<key_stats> subscriber::keys() {
  return or_throw([&](error_info& err) { return keys(err); });
}

bool subscriber::set_keys(const std::vector<std::string>& keys, std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  return port_->set_keys(keys, ec);
}

bool subscriber::set_keys(const std::vector<std::string>& keys, error_info& err) noexcept {
  return reporting(err, "follow keys of", [&](std::error_code& ec) { return set_keys(keys, ec); });
}

void subscriber::set_keys(const std::vector<std::string>& keys) {
  or_throw([&](error_info& err) { return set_keys(keys, err); });
}

std::optional<std::uint64_t> subscriber::resync(std::error_code& ec) noexcept {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return std::nullopt;
  return port_->resync(ec);
}

std::optional<std::uint64_t> subscriber::resync(error_info& err) noexcept {
  return reporting(err, "resynchronise with", [&](std::error_code& ec) { return resync(ec); });
}

std::uint64_t subscriber::resync() {
  return *or_throw([&](error_info& err) { return resync(err); });
}

bool subscriber::read_view_impl(void* ctx, void (*call)(void*, const message_info&, std::span<const std::byte>),
                                std::error_code& ec) {
  detail::clear_error(ec);
  if (!open_or_report(port_, ec)) return false;
  return port_->read_in_place(
      [&](const message_info& info, std::span<const std::byte> payload) { call(ctx, info, payload); }, ec);
}

}  // namespace shmbus
