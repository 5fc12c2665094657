#pragma once
/// \file
/// The shmbus client API: open a bus, then publish to or subscribe to its
/// topics.
///
/// \code
///   shmbus::bus bus;                                   // $SHMBUS_BUS or "default"
///   auto pub = bus.make_publisher("prices");
///   pub.publish("hello");
///
///   auto sub = bus.make_subscriber("prices");
///   shmbus::message m;
///   if (sub.wait(m, std::chrono::seconds(1)))
///     std::cout << m.sequence() << ": " << m.text() << '\n';
/// \endcode
///
/// Every call that can fail has a throwing overload (`std::system_error`,
/// with a message naming the bus, topic or OS call) and an overload taking
/// `std::error_code&`. Codes are `shmbus::errc` values or native OS codes.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "shmbus/error.hpp"
#include "shmbus/names.hpp"
#include "shmbus/topic_params.hpp"
#include "shmbus/types.hpp"

namespace shmbus {

namespace detail {
class publisher_port;
class subscriber_port;
}  // namespace detail

/// A message copied out of shared memory; reusing one avoids allocation.
class message {
 public:
  [[nodiscard]] const message_info& info() const noexcept { return info_; }
  [[nodiscard]] std::uint64_t sequence() const noexcept { return info_.sequence; }
  [[nodiscard]] std::int64_t timestamp_ns() const noexcept { return info_.timestamp_ns; }
  [[nodiscard]] std::uint64_t missed() const noexcept { return info_.missed; }
  [[nodiscard]] std::size_t size() const noexcept { return info_.size; }
  [[nodiscard]] std::span<const std::byte> payload() const noexcept { return {buffer_.data(), info_.size}; }
  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(buffer_.data()), info_.size};
  }
  /// The payload as a T; throws `errc::type_size_mismatch` unless the
  /// message is exactly sizeof(T) bytes (never a partial T).
  template <class T>
  [[nodiscard]] T as() const {
    std::error_code ec;
    auto value = as<T>(ec);
    if (!value)
      throw_error(ec, "message #" + std::to_string(info_.sequence) + " of " + std::to_string(info_.size) +
                          " bytes read as a " + std::to_string(sizeof(T)) + "-byte type");
    return *value;
  }
  /// The same without throwing: nullopt with type_size_mismatch.
  template <class T>
  [[nodiscard]] std::optional<T> as(std::error_code& ec) const noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    ec.clear();
    if (info_.size != sizeof(T)) {
      ec = make_error_code(errc::type_size_mismatch);
      return std::nullopt;
    }
    T value;
    std::memcpy(&value, buffer_.data(), sizeof(T));
    return value;
  }

 private:
  friend class subscriber;
  message_info info_;
  std::vector<std::byte> buffer_;
};

/// Publishes to one topic. Move-only; many publishers may share a topic
/// (the topic's mutex serialises them).
class publisher {
 public:
  publisher(publisher&&) noexcept;
  publisher& operator=(publisher&&) noexcept;
  ~publisher();

  /// Copies `payload` into the topic and wakes subscribers. Returns the
  /// message's sequence. Errors: message_too_large; type_size_mismatch when
  /// the topic declares a type size and `payload` is any other size (nothing
  /// is published; the topic itself enforces it, whichever way it is
  /// written to); topic_closed.
  std::uint64_t publish(std::span<const std::byte> payload);
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec) noexcept;
  std::uint64_t publish(std::string_view text) { return publish(std::as_bytes(std::span(text))); }
  std::uint64_t publish(std::string_view text, std::error_code& ec) noexcept {
    return publish(std::as_bytes(std::span(text)), ec);
  }

  /// Publishes a trivially copyable value. If the topic declares a type size,
  /// sizeof(T) must be it (type_size_mismatch otherwise, as for publish()).
  template <class T>
  std::uint64_t publish_value(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    return publish(std::as_bytes(std::span<const T, 1>(&value, 1)));
  }

  [[nodiscard]] const topic_info& topic() const noexcept { return info_; }
  /// Mutex recoveries this topic has gone through (publishers that died holding it).
  [[nodiscard]] std::uint64_t mutex_recoveries() const noexcept;

 private:
  friend class bus;
  publisher(std::unique_ptr<detail::publisher_port> port, topic_info info);
  std::unique_ptr<detail::publisher_port> port_;
  topic_info info_;
};

/// Reads one topic. Starts after the newest message at the time it opened
/// (`latest()` fetches that one). Move-only; not thread-safe (one reader
/// thread per subscriber; open several subscribers for several threads).
class subscriber {
 public:
  using duration = std::chrono::nanoseconds;

  subscriber(subscriber&&) noexcept;
  subscriber& operator=(subscriber&&) noexcept;
  ~subscriber();

  /// Copies the next message into `m` if there is one. Never blocks.
  bool try_read(message& m);
  bool try_read(message& m, std::error_code& ec) noexcept;

  /// Blocks until a message arrives (copied into `m`) or `timeout` passes
  /// (returns false). No timeout: waits for ever. Throws topic_closed when
  /// the broker stops. Waits the way `strategy()` says.
  bool wait(message& m, std::optional<duration> timeout = std::nullopt);
  bool wait(message& m, std::optional<duration> timeout, std::error_code& ec) noexcept;
  /// The same, waiting the way `how` says (this call only).
  bool wait(message& m, std::optional<duration> timeout, const wait_strategy& how);
  bool wait(message& m, std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec) noexcept;

  /// Jumps to the newest message (counting what it skips as missed) and
  /// copies it into `m`; false if nothing was ever published.
  bool latest(message& m);

  /// Copies the next message into `buffer`. Errors: buffer_too_small (the
  /// message stays unread, so nothing is lost).
  std::optional<message_info> try_read(std::span<std::byte> buffer);
  std::optional<message_info> try_read(std::span<std::byte> buffer, std::error_code& ec) noexcept;

  /// Typed read: copies the next message into `out` if there is one and it
  /// is exactly sizeof(T) bytes; never blocks. A message of any other size
  /// (a topic without a declared type, or bytes a hostile process wrote into
  /// the ring) yields type_size_mismatch and leaves `out` untouched: the
  /// message is consumed, counted in received_total() (it was delivered, as
  /// an error) and `*info` describes it (sequence, size, missed), so the
  /// next read continues with the message after it. `out` is only written
  /// from a validated whole copy (sizeof(T) bytes of stack are used for it).
  template <class T>
  bool try_read(T& out, message_info* info, std::error_code& ec) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    alignas(T) std::byte copy[sizeof(T)];
    if (!read_exact(copy, info, ec)) return false;
    std::memcpy(&out, copy, sizeof(T));
    return true;
  }
  /// The same, throwing `shmbus::error` (type_size_mismatch naming the topic,
  /// the message and both sizes; `*info` is filled first).
  template <class T>
  bool try_read(T& out, message_info* info = nullptr) {
    std::error_code ec;
    message_info got;
    const bool ok = try_read(out, &got, ec);
    if (info != nullptr && (ok || ec == errc::type_size_mismatch)) *info = got;
    if (ec) throw_read_error(ec, got, sizeof(T));
    return ok;
  }

  /// Zero-copy read: calls `f(const message_info&, std::span<const std::byte>)`
  /// on the message where it lies in shared memory, then checks that the
  /// publisher did not overwrite it meanwhile. If it did, `f` is called again
  /// on the next available message; only the last call saw a valid message,
  /// so `f` should only copy or compute, never act. Returns false when no
  /// message is available.
  template <class F>
  bool read_view(F&& f);

  /// Waits (up to `timeout`) until a message is available, without reading
  /// it, the way `strategy()` says. Returns false only on timeout; throws
  /// topic_closed once the broker stops (every mode notices), so a loop that
  /// waits again after `false` can never spin on a closed topic.
  [[nodiscard]] bool wait_available(std::optional<duration> timeout);
  [[nodiscard]] bool wait_available(std::optional<duration> timeout, const wait_strategy& how);
  /// The same without exceptions: false on timeout *or* with `ec` set
  /// (topic_closed once the broker stops). Check `ec` before waiting again.
  bool wait_available(std::optional<duration> timeout, std::error_code& ec) noexcept;
  /// The same, waiting the way `how` says (this call only). Busy-poll makes
  /// no system call while it spins: it reads the clock (user space) and the
  /// topic's closed flag; only after a whole second without a message does it
  /// also look for a replaced broker, as a blocked wait does once a second.
  bool wait_available(std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec) noexcept;

  /// How `wait` and `wait_available` wait when not told (default: block).
  void set_wait_strategy(const wait_strategy& how) noexcept { strategy_ = how; }
  [[nodiscard]] const wait_strategy& strategy() const noexcept { return strategy_; }

  [[nodiscard]] const topic_info& topic() const noexcept { return info_; }
  /// Total messages this subscriber was told it missed.
  [[nodiscard]] std::uint64_t missed_total() const noexcept;
  [[nodiscard]] std::uint64_t received_total() const noexcept;

 private:
  friend class bus;
  subscriber(std::unique_ptr<detail::subscriber_port> port, topic_info info);
  // The typed reads: the next message into `scratch` if it is exactly
  // scratch.size() bytes, else type_size_mismatch with the message consumed.
  bool read_exact(std::span<std::byte> scratch, message_info* info, std::error_code& ec) noexcept;
  [[noreturn]] void throw_read_error(const std::error_code& ec, const message_info& info, std::size_t type_size) const;
  bool read_view_impl(void* ctx, void (*call)(void*, const message_info&, std::span<const std::byte>));

  std::unique_ptr<detail::subscriber_port> port_;
  topic_info info_;
  wait_strategy strategy_;
};

template <class F>
bool subscriber::read_view(F&& f) {
  auto call = [](void* ctx, const message_info& i, std::span<const std::byte> p) {
    (*static_cast<std::remove_reference_t<F>*>(ctx))(i, p);
  };
  return read_view_impl(&f, call);
}

/// A connection to one bus: reads its registry, checks that its broker is
/// alive, and opens topics.
class bus {
 public:
  /// Opens the bus `name` (default: $SHMBUS_BUS, else "default"). Errors:
  /// invalid_name, no_broker, permission_denied, abi_mismatch, corrupt_segment.
  explicit bus(std::string_view name = {});
  bus(std::string_view name, std::error_code& ec) noexcept;
  bus(bus&&) noexcept;
  bus& operator=(bus&&) noexcept;
  ~bus();

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::vector<topic_info> topics() const;
  /// False once the broker has stopped or died.
  [[nodiscard]] bool broker_alive() const noexcept;
  [[nodiscard]] std::uint64_t broker_pid() const noexcept;
  /// Figures of every topic (opens each segment read-only).
  [[nodiscard]] std::vector<topic_stats> stats() const;

  /// `type_size` 0 = raw bytes. Errors: unknown_topic, type_size_mismatch,
  /// permission_denied, corrupt_segment, abi_mismatch, topic_closed.
  publisher make_publisher(std::string_view topic, std::size_t type_size = 0);
  publisher make_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept;
  subscriber make_subscriber(std::string_view topic, std::size_t type_size = 0);
  subscriber make_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept;

  template <class T>
  publisher make_publisher(std::string_view topic) {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    return make_publisher(topic, sizeof(T));
  }
  template <class T>
  subscriber make_subscriber(std::string_view topic) {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    return make_subscriber(topic, sizeof(T));
  }

 private:
  void open(std::string_view name, std::error_code& ec, std::string& what);
  publisher open_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec, std::string& what) const;
  subscriber open_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec,
                             std::string& what) const;
  // The registry's declaration of `topic`, checked against the caller's type.
  const topic_info* find_topic(std::string_view topic, std::size_t type_size, std::error_code& ec,
                               std::string& what) const;
  // The API's errors for a port that failed to open (or opened on a bus
  // whose broker went away meanwhile). False when it did not open.
  bool opened(const topic_info& info, std::error_code& ec, std::string& what) const;
  // What the registry said when the bus was opened. The registry itself is
  // not kept mapped: on Windows that would keep a dead broker's registry
  // alive and in the way of its successor.
  std::string name_;
  std::vector<topic_info> topics_;
  std::uint64_t broker_pid_ = 0;
  std::uint64_t broker_start_time_ = 0;
  std::uint64_t instance_ = 0;
};

}  // namespace shmbus
