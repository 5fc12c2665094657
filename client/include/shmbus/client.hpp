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
/// Every call that can fail has three forms: a throwing one
/// (`shmbus::error`, a `std::system_error` whose `what()` names the bus,
/// topic or OS call), one taking `std::error_code&` (the code only, for hot
/// loops) and one taking `shmbus::error_info&` (the code and the sentence the
/// throwing form would say). Codes are `shmbus::errc` values or native OS
/// codes. Default-constructed (and moved-from) publishers and subscribers are
/// empty: their calls fail with errc::invalid_argument.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
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
struct recovery_report;
class subscriber_port;

// The throwing form of every call: its error_info form, then this.
inline void throw_if(const error_info& err) {
  if (err) throw error(err);
}
}  // namespace detail

/// A message copied out of shared memory; reusing one avoids allocation.
class message {
 public:
  [[nodiscard]] const message_info& info() const noexcept { return info_; }
  [[nodiscard]] std::uint64_t sequence() const noexcept { return info_.sequence; }
  [[nodiscard]] std::int64_t timestamp_ns() const noexcept { return info_.timestamp_ns; }
  [[nodiscard]] std::uint64_t missed() const noexcept { return info_.missed; }
  [[nodiscard]] std::size_t size() const noexcept { return info_.size; }
  /// Keyed topics: the message's key (valid while its subscriber lives).
  [[nodiscard]] std::string_view key() const noexcept { return info_.key; }
  /// Keyed topics: a key's latest value from a snapshot, not a stream update.
  [[nodiscard]] bool from_snapshot() const noexcept { return info_.snapshot; }
  [[nodiscard]] std::span<const std::byte> payload() const noexcept { return {buffer_.data(), info_.size}; }
  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(buffer_.data()), info_.size};
  }
  /// The payload as a T; throws `errc::type_size_mismatch` unless the
  /// message is exactly sizeof(T) bytes (never a partial T).
  template <class T>
  [[nodiscard]] T as() const {
    error_info err;
    auto value = as<T>(err);
    detail::throw_if(err);
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
  /// The same, keeping the sentence.
  template <class T>
  [[nodiscard]] std::optional<T> as(error_info& err) const noexcept {
    err.clear();
    auto value = as<T>(err.code);
    if (!value) size_error(err, sizeof(T));
    return value;
  }

 private:
  friend class subscriber;
  void size_error(error_info& err, std::size_t type_size) const noexcept;
  message_info info_;
  std::vector<std::byte> buffer_;
};

/// How a publisher is opened (bus::make_publisher).
struct publisher_options {
  /// The caller's message type size, checked against the topic's declared
  /// one; 0: any size (`.type_size = sizeof(T)` for a typed publisher).
  std::size_t type_size = 0;
  /// Take the topic's exclusive publish right when opening and keep it for
  /// the publisher's life, so a publish takes no lock (a feed handler, the
  /// one writer of its topics). While it is held, other publishers of the
  /// topic, shared or exclusive, are refused with errc::exclusive_publisher.
  /// A holder that dies (crash, SIGKILL) is recovered from by the next
  /// publisher, as a publisher that dies holding the mutex is.
  bool exclusive = false;
  /// With `exclusive`: how long to wait for a live holder to give the right
  /// back or die before refusing; nullopt: refuse at once.
  std::optional<std::chrono::nanoseconds> wait_for_right;
};

/// Publishes to one topic. Move-only; many publishers may share a topic
/// (the topic's mutex serialises them), or one may hold it exclusively
/// (publisher_options::exclusive). Publishing by copy (`publish`) or in
/// place (`loan`, then `commit`).
class publisher {
 public:
  /// An empty publisher: is_open() is false and every publish fails with
  /// invalid_argument. Assign one from bus::make_publisher.
  publisher() noexcept;
  publisher(publisher&&) noexcept;
  publisher& operator=(publisher&&) noexcept;
  ~publisher();

  /// False when empty (default-constructed or moved-from).
  [[nodiscard]] bool is_open() const noexcept { return port_ != nullptr; }
  explicit operator bool() const noexcept { return is_open(); }

  /// Copies `payload` into the topic and wakes subscribers. Returns the
  /// message's sequence. Errors: message_too_large; type_size_mismatch when
  /// the topic declares a type size and `payload` is any other size (nothing
  /// is published; the topic itself enforces it, whichever way it is
  /// written to); topic_closed.
  std::uint64_t publish(std::span<const std::byte> payload);
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec) noexcept;
  std::uint64_t publish(std::span<const std::byte> payload, error_info& err) noexcept;
  std::uint64_t publish(std::string_view text) { return publish(std::as_bytes(std::span(text))); }
  std::uint64_t publish(std::string_view text, std::error_code& ec) noexcept {
    return publish(std::as_bytes(std::span(text)), ec);
  }
  std::uint64_t publish(std::string_view text, error_info& err) noexcept {
    return publish(std::as_bytes(std::span(text)), err);
  }

  /// Keyed topics: publishes `payload` under `key` (1-63 bytes): the message
  /// joins the topic's stream and becomes the key's latest value; a key not
  /// seen before is added. Errors as publish(payload), and invalid_key (an
  /// empty or longer key; a plain topic), key_table_full (a new key and the
  /// topic holds its key capacity already; nothing is published). On a
  /// keyed topic the unkeyed forms fail with invalid_key.
  std::uint64_t publish(std::string_view key, std::span<const std::byte> payload);
  std::uint64_t publish(std::string_view key, std::span<const std::byte> payload, std::error_code& ec) noexcept;
  std::uint64_t publish(std::string_view key, std::span<const std::byte> payload, error_info& err) noexcept;
  std::uint64_t publish(std::string_view key, std::string_view text) {
    return publish(key, std::as_bytes(std::span(text)));
  }
  std::uint64_t publish(std::string_view key, std::string_view text, std::error_code& ec) noexcept {
    return publish(key, std::as_bytes(std::span(text)), ec);
  }
  std::uint64_t publish(std::string_view key, std::string_view text, error_info& err) noexcept {
    return publish(key, std::as_bytes(std::span(text)), err);
  }
  /// Keyed topics: a trivially copyable value under `key`.
  template <class T>
  std::uint64_t publish_value(std::string_view key, const T& value) {
    return publish(key, bytes_of(value));
  }
  template <class T>
  std::uint64_t publish_value(std::string_view key, const T& value, std::error_code& ec) noexcept {
    return publish(key, bytes_of(value), ec);
  }
  template <class T>
  std::uint64_t publish_value(std::string_view key, const T& value, error_info& err) noexcept {
    return publish(key, bytes_of(value), err);
  }
  /// Publishes a trivially copyable value. If the topic declares a type size,
  /// sizeof(T) must be it (type_size_mismatch otherwise, as for publish()).
  template <class T>
  std::uint64_t publish_value(const T& value) {
    return publish(bytes_of(value));
  }
  template <class T>
  std::uint64_t publish_value(const T& value, std::error_code& ec) noexcept {
    return publish(bytes_of(value), ec);
  }
  template <class T>
  std::uint64_t publish_value(const T& value, error_info& err) noexcept {
    return publish(bytes_of(value), err);
  }

  /// Zero-copy publish: `size` bytes of the topic's next slot, to be
  /// written in place and published by commit() (or dropped by abandon()),
  /// so a large message is written once, where subscribers read it. Until
  /// then readers see nothing of it, and a publisher dying with a loan open
  /// is recovered from like one dying in the middle of a copy. A shared
  /// publisher holds the topic mutex while the loan is open: commit or
  /// abandon soon, and on the thread that took the loan. One loan at a time
  /// (invalid_argument otherwise); publish() fails while one is open. The
  /// span's contents are undefined (an old message). Errors as publish()
  /// (type_size_mismatch: `size` is below the topic's declared type size).
  std::span<std::byte> loan(std::size_t size);
  std::span<std::byte> loan(std::size_t size, std::error_code& ec) noexcept;
  std::span<std::byte> loan(std::size_t size, error_info& err) noexcept;
  /// The typed loan: a value-initialised T constructed in place in the slot.
  template <class T>
  T& loan() {
    error_info err;
    T* value = loan<T>(err);
    detail::throw_if(err);
    return *value;
  }
  template <class T>
  T* loan(std::error_code& ec) noexcept {
    return construct<T>(loan(sizeof(T), ec));
  }
  template <class T>
  T* loan(error_info& err) noexcept {
    return construct<T>(loan(sizeof(T), err));
  }
  /// Publishes the open loan, all of it or its first `size` bytes; returns
  /// the sequence. The timestamp is taken here. Errors: invalid_argument (no
  /// loan open, or `size` beyond it), type_size_mismatch (the loan stays
  /// open), topic_closed.
  std::uint64_t commit();
  std::uint64_t commit(std::error_code& ec) noexcept;
  std::uint64_t commit(error_info& err) noexcept;
  std::uint64_t commit(std::size_t size);
  std::uint64_t commit(std::size_t size, std::error_code& ec) noexcept;
  std::uint64_t commit(std::size_t size, error_info& err) noexcept;
  /// Drops the open loan (if any) without publishing; the destructor does too.
  void abandon() noexcept;
  [[nodiscard]] bool loan_open() const noexcept;

  /// True when this publisher holds its topic's exclusive publish right.
  [[nodiscard]] bool exclusive() const noexcept;
  [[nodiscard]] const topic_info& topic() const noexcept { return info_; }
  /// Recoveries this topic has gone through (publishers that died holding
  /// the mutex or the exclusive right).
  [[nodiscard]] std::uint64_t mutex_recoveries() const noexcept;

 private:
  friend class bus;
  publisher(std::unique_ptr<detail::publisher_port> port, topic_info info);
  template <class T>
  static T* construct(std::span<std::byte> slot) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    // Slots start on a cache line (layout.hpp).
    static_assert(alignof(T) <= 64, "a loaned T must not need more than cache-line alignment");
    return slot.empty() ? nullptr : ::new (static_cast<void*>(slot.data())) T{};
  }
  template <class T>
  static std::span<const std::byte> bytes_of(const T& value) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    return std::as_bytes(std::span<const T, 1>(&value, 1));
  }
  // The sentence for a failed `action` ("publish", "loan", "commit") of
  // `size` bytes, under `key` (keyed publishes).
  void publish_error(error_info& err, const char* action, std::size_t size,
                     std::optional<std::string_view> key = std::nullopt) const noexcept;
  void acquire_exclusive(std::optional<std::chrono::nanoseconds> wait, error_info& err) noexcept;
  void log_recovery(const detail::recovery_report& recovery) const noexcept;
  std::unique_ptr<detail::publisher_port> port_;
  topic_info info_;
};

/// How a subscriber is opened (bus::make_subscriber).
struct subscriber_options {
  /// The caller's message type size, checked against the topic's declared
  /// one; 0: any size.
  std::size_t type_size = 0;
  /// Keyed topics: follow only these keys (every key when empty, the
  /// default). Messages of other keys are skipped uncopied, and `missed`
  /// counts the lost updates of the followed keys only, per key.
  std::vector<std::string> keys;
  /// Keyed topics: join with a snapshot. The first reads deliver every
  /// followed key's latest value (message::from_snapshot()), then the stream
  /// continues from exactly the point those values reflect: no update is
  /// lost between them and none is delivered twice.
  bool snapshot = false;
};

/// Reads one topic. Starts after the newest message at the time it opened
/// (`latest()` fetches that one). Move-only; not thread-safe (one reader
/// thread per subscriber; open several subscribers for several threads).
class subscriber {
 public:
  using duration = std::chrono::nanoseconds;

  /// An empty subscriber: is_open() is false and every read fails with
  /// invalid_argument. Assign one from bus::make_subscriber.
  subscriber() noexcept;
  subscriber(subscriber&&) noexcept;
  subscriber& operator=(subscriber&&) noexcept;
  ~subscriber();

  /// False when empty (default-constructed or moved-from).
  [[nodiscard]] bool is_open() const noexcept { return port_ != nullptr; }
  explicit operator bool() const noexcept { return is_open(); }

  /// Copies the next message into `m` if there is one. Never blocks.
  bool try_read(message& m);
  bool try_read(message& m, std::error_code& ec) noexcept;
  bool try_read(message& m, error_info& err) noexcept;

  /// Blocks until a message arrives (copied into `m`) or `timeout` passes
  /// (returns false). No timeout: waits for ever. Throws topic_closed when
  /// the broker stops. Waits the way `strategy()` says.
  bool wait(message& m, std::optional<duration> timeout = std::nullopt);
  bool wait(message& m, std::optional<duration> timeout, std::error_code& ec) noexcept;
  bool wait(message& m, std::optional<duration> timeout, error_info& err) noexcept;
  /// The same, waiting the way `how` says (this call only).
  bool wait(message& m, std::optional<duration> timeout, const wait_strategy& how);
  bool wait(message& m, std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec) noexcept;
  bool wait(message& m, std::optional<duration> timeout, const wait_strategy& how, error_info& err) noexcept;

  /// Jumps to the newest message (counting what it skips as missed) and
  /// copies it into `m`; false if nothing was ever published.
  bool latest(message& m);
  bool latest(message& m, std::error_code& ec) noexcept;
  bool latest(message& m, error_info& err) noexcept;

  /// Copies the next message into `buffer`. Errors: buffer_too_small (the
  /// message stays unread, so nothing is lost).
  std::optional<message_info> try_read(std::span<std::byte> buffer);
  std::optional<message_info> try_read(std::span<std::byte> buffer, std::error_code& ec) noexcept;
  std::optional<message_info> try_read(std::span<std::byte> buffer, error_info& err) noexcept;

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
    return read_into(out, [&](std::span<std::byte> copy) { return read_exact(copy, info, ec); });
  }
  /// The same, keeping the sentence (type_size_mismatch names the topic, the
  /// message and both sizes).
  template <class T>
  bool try_read(T& out, message_info* info, error_info& err) noexcept {
    return with_read_error(info, sizeof(T), err,
                           [&](message_info* got, std::error_code& ec) { return try_read(out, got, ec); });
  }
  /// The same, throwing `shmbus::error` (`*info` is filled first).
  template <class T>
  bool try_read(T& out, message_info* info = nullptr) {
    error_info err;
    const bool ok = try_read(out, info, err);
    detail::throw_if(err);
    return ok;
  }

  /// Typed blocking read: waits (as wait() does, the way `strategy()` says)
  /// until a message arrives or `timeout` passes (false), then reads it as
  /// try_read(T&, info) does, type_size_mismatch included.
  template <class T>
  bool wait(T& out, std::optional<duration> timeout, message_info* info, std::error_code& ec) noexcept {
    return read_into(out, [&](std::span<std::byte> copy) { return wait_exact(copy, timeout, info, ec); });
  }
  template <class T>
  bool wait(T& out, std::optional<duration> timeout, message_info* info, error_info& err) noexcept {
    return with_read_error(info, sizeof(T), err,
                           [&](message_info* got, std::error_code& ec) { return wait(out, timeout, got, ec); });
  }
  template <class T>
  bool wait(T& out, std::optional<duration> timeout, message_info* info = nullptr) {
    error_info err;
    const bool ok = wait(out, timeout, info, err);
    detail::throw_if(err);
    return ok;
  }

  /// Zero-copy read: calls `f(const message_info&, std::span<const std::byte>)`
  /// on the message where it lies in shared memory, then checks that the
  /// publisher did not overwrite it meanwhile. If it did, `f` is called again
  /// on the next available message; only the last call saw a valid message,
  /// so `f` should only copy or compute, never act. Returns false when no
  /// message is available. (Not noexcept in any form: `f` may throw.)
  template <class F>
  bool read_view(F&& f);
  template <class F>
  bool read_view(F&& f, std::error_code& ec);
  template <class F>
  bool read_view(F&& f, error_info& err);

  /// Waits (up to `timeout`) until a message is available, without reading
  /// it, the way `strategy()` says. Returns false only on timeout; throws
  /// topic_closed once the broker stops (every mode notices), so a loop that
  /// waits again after `false` can never spin on a closed topic.
  [[nodiscard]] bool wait_available(std::optional<duration> timeout);
  [[nodiscard]] bool wait_available(std::optional<duration> timeout, const wait_strategy& how);
  /// The same without exceptions: false on timeout *or* with `ec` set
  /// (topic_closed once the broker stops). Check `ec` before waiting again.
  bool wait_available(std::optional<duration> timeout, std::error_code& ec) noexcept;
  bool wait_available(std::optional<duration> timeout, error_info& err) noexcept;
  /// The same, waiting the way `how` says (this call only). Busy-poll makes
  /// no system call while it spins: it reads the clock (user space) and the
  /// topic's closed flag; only after a whole second without a message does it
  /// also look for a replaced broker, as a blocked wait does once a second.
  bool wait_available(std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec) noexcept;
  bool wait_available(std::optional<duration> timeout, const wait_strategy& how, error_info& err) noexcept;

  /// Keyed topics: copies `key`'s latest value into `m`; false when the
  /// topic has no such key (or no value of it yet). Does not move the
  /// stream. Errors: invalid_key (a bad key, or a plain topic).
  bool get(std::string_view key, message& m);
  bool get(std::string_view key, message& m, std::error_code& ec) noexcept;
  bool get(std::string_view key, message& m, error_info& err) noexcept;
  /// Keyed topics: the typed get: `out` is written only when the value is
  /// exactly sizeof(T) bytes (type_size_mismatch otherwise).
  template <class T>
  bool get(std::string_view key, T& out, std::error_code& ec) noexcept {
    return read_into(out, [&](std::span<std::byte> copy) { return get_exact(key, copy, ec); });
  }
  template <class T>
  bool get(std::string_view key, T& out) {
    error_info err;
    const bool ok = read_into(out, [&](std::span<std::byte> copy) { return get_exact(key, copy, err.code); });
    if (err) get_error(err, key);
    detail::throw_if(err);
    return ok;
  }
  /// Keyed topics: every key that has a value, in the order they were added,
  /// with its latest value's sequence, timestamp and size.
  [[nodiscard]] std::vector<key_stats> keys();
  [[nodiscard]] std::vector<key_stats> keys(std::error_code& ec);
  [[nodiscard]] std::vector<key_stats> keys(error_info& err);
  /// Keyed topics: follows `keys` from now on (every key when empty). A key
  /// newly followed is counted from the subscriber's place in the stream.
  void set_keys(const std::vector<std::string>& keys);
  bool set_keys(const std::vector<std::string>& keys, std::error_code& ec) noexcept;
  bool set_keys(const std::vector<std::string>& keys, error_info& err) noexcept;
  /// Keyed topics: after an overrun (a message reported `missed`), gets
  /// back in step: drops what is unread, delivers every followed key's
  /// latest value next (as a join with a snapshot does), then the stream
  /// after them. Returns the updates of followed keys it will never see,
  /// neither one by one nor as a latest value (nor already reported
  /// missed); counted in missed_total().
  std::uint64_t resync();
  std::optional<std::uint64_t> resync(std::error_code& ec) noexcept;
  std::optional<std::uint64_t> resync(error_info& err) noexcept;

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
  // read_exact, after waiting for a message as wait() does.
  bool wait_exact(std::span<std::byte> scratch, std::optional<duration> timeout, message_info* info,
                  std::error_code& ec) noexcept;
  // The one wait loop: `read(ec)` until it reads or fails, waiting for a
  // message in between, until `timeout`.
  template <class Read>
  bool wait_loop(std::optional<duration> timeout, const wait_strategy& how, std::error_code& ec, Read&& read) noexcept;
  // A typed read through a validated stack copy: `out` is written only when
  // `read(copy)` succeeded.
  template <class T, class Read>
  static bool read_into(T& out, Read&& read) noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    alignas(T) std::byte copy[sizeof(T)];
    if (!read(std::span<std::byte>(copy))) return false;
    std::memcpy(&out, copy, sizeof(T));
    return true;
  }
  // A typed read's error_info form around its ec form `read(info, ec)`:
  // `*info` describes the message read (also a mismatched one).
  template <class Read>
  bool with_read_error(message_info* info, std::size_t type_size, error_info& err, Read&& read) const noexcept {
    err.clear();
    message_info got;
    const bool ok = read(&got, err.code);
    if (info != nullptr && (ok || err.code == errc::type_size_mismatch)) *info = got;
    if (err) read_error(err, got, type_size);
    return ok;
  }
  // The typed get: `key`'s value into `scratch` if it is exactly that size.
  bool get_exact(std::string_view key, std::span<std::byte> scratch, std::error_code& ec) noexcept;
  // The sentence of a failed get of `key`.
  void get_error(error_info& err, std::string_view key) const noexcept;
  // Makes room for any message of the topic in `m`.
  bool fit(message& m, std::error_code& ec) const noexcept;
  // The error_info form of a read or wait around its ec form `call(ec)`.
  template <class Call>
  auto reporting(error_info& err, const char* action, Call&& call) const noexcept(noexcept(call(err.code))) {
    err.clear();
    auto result = call(err.code);
    if (err) fail(err, action);
    return result;
  }
  // The sentences of failed reads: of any read (`action`: "read from",
  // "wait on"), and of a typed read of `type_size` bytes.
  void fail(error_info& err, const char* action) const noexcept;
  // The sentence of a failed read into a caller's buffer of `buffer_size` bytes.
  void buffer_read_error(error_info& err, std::size_t buffer_size) const noexcept;
  void read_error(error_info& err, const message_info& info, std::size_t type_size) const noexcept;
  bool read_view_impl(void* ctx, void (*call)(void*, const message_info&, std::span<const std::byte>),
                      std::error_code& ec);

  std::unique_ptr<detail::subscriber_port> port_;
  topic_info info_;
  wait_strategy strategy_;
};

template <class F>
bool subscriber::read_view(F&& f, std::error_code& ec) {
  auto call = [](void* ctx, const message_info& i, std::span<const std::byte> p) {
    (*static_cast<std::remove_reference_t<F>*>(ctx))(i, p);
  };
  // `f` goes through a void* (and back to its own type, constness included)
  // so that the read itself stays out of line.
  return read_view_impl(const_cast<void*>(static_cast<const void*>(std::addressof(f))), call, ec);
}

template <class F>
bool subscriber::read_view(F&& f, error_info& err) {
  return reporting(err, "read from", [&](std::error_code& ec) { return read_view(std::forward<F>(f), ec); });
}

template <class F>
bool subscriber::read_view(F&& f) {
  error_info err;
  const bool got = read_view(std::forward<F>(f), err);
  detail::throw_if(err);
  return got;
}

/// A connection to one bus: reads its registry, checks that its broker is
/// alive, and opens topics.
class bus {
 public:
  /// Opens the bus `name` (default: $SHMBUS_BUS, else "default"). Errors:
  /// invalid_name, no_broker, permission_denied, abi_mismatch, corrupt_segment.
  explicit bus(std::string_view name = {});
  bus(std::string_view name, std::error_code& ec) noexcept;
  bus(std::string_view name, error_info& err) noexcept;
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
  [[nodiscard]] std::vector<topic_stats> stats(std::error_code& ec) const noexcept;
  [[nodiscard]] std::vector<topic_stats> stats(error_info& err) const noexcept;

  /// `type_size` 0 = raw bytes. Errors: unknown_topic, type_size_mismatch,
  /// permission_denied, corrupt_segment, abi_mismatch, topic_closed.
  publisher make_publisher(std::string_view topic, std::size_t type_size = 0);
  publisher make_publisher(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept;
  publisher make_publisher(std::string_view topic, std::size_t type_size, error_info& err) noexcept;
  /// Opens a publisher as `opts` says (exclusive, type size). Errors as the
  /// others, and exclusive_publisher (another live publisher holds the
  /// exclusive right; the sentence names its pid).
  publisher make_publisher(std::string_view topic, const publisher_options& opts);
  publisher make_publisher(std::string_view topic, const publisher_options& opts, std::error_code& ec) noexcept;
  publisher make_publisher(std::string_view topic, const publisher_options& opts, error_info& err) noexcept;
  subscriber make_subscriber(std::string_view topic, std::size_t type_size = 0);
  subscriber make_subscriber(std::string_view topic, std::size_t type_size, std::error_code& ec) noexcept;
  subscriber make_subscriber(std::string_view topic, std::size_t type_size, error_info& err) noexcept;
  /// Opens a subscriber as `opts` says (type size; keyed topics: the keys it
  /// follows, a snapshot first). Errors as the others, and invalid_key (keys
  /// or a snapshot asked of a plain topic, or a bad key).
  subscriber make_subscriber(std::string_view topic, const subscriber_options& opts);
  subscriber make_subscriber(std::string_view topic, const subscriber_options& opts, std::error_code& ec) noexcept;
  subscriber make_subscriber(std::string_view topic, const subscriber_options& opts, error_info& err) noexcept;

  /// The same for a trivially copyable T: type_size is sizeof(T).
  template <class T>
  publisher make_publisher(std::string_view topic) {
    return make_publisher(topic, type_size_of<T>());
  }
  template <class T>
  publisher make_publisher(std::string_view topic, std::error_code& ec) noexcept {
    return make_publisher(topic, type_size_of<T>(), ec);
  }
  template <class T>
  publisher make_publisher(std::string_view topic, error_info& err) noexcept {
    return make_publisher(topic, type_size_of<T>(), err);
  }
  template <class T>
  subscriber make_subscriber(std::string_view topic) {
    return make_subscriber(topic, type_size_of<T>());
  }
  template <class T>
  subscriber make_subscriber(std::string_view topic, std::error_code& ec) noexcept {
    return make_subscriber(topic, type_size_of<T>(), ec);
  }
  template <class T>
  subscriber make_subscriber(std::string_view topic, error_info& err) noexcept {
    return make_subscriber(topic, type_size_of<T>(), err);
  }

 private:
  template <class T>
  static constexpr std::size_t type_size_of() noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "shmbus messages carry trivially copyable types");
    return sizeof(T);
  }
  void open(std::string_view name, error_info& err) noexcept;
  void open(std::string_view name, std::error_code& ec, std::string& what);
  template <class Port, class Endpoint>
  Endpoint open_endpoint(std::string_view topic, std::size_t type_size, error_info& err) const noexcept;
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
