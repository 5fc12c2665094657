#pragma once
// shmbus-bench's harness: what a run is, the messages and the control block
// every transport shares, and the interface each transport (shmbus, the
// reference, Unix socket, pipe, ZeroMQ, Boost.Interprocess) implements. Every transport is
// driven by the same publisher loop (runner.cpp) and the same subscriber
// loop in a child process, and timed by the same clock
// (platform::monotonic_ns), so their figures compare.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "shmbus/client.hpp"

namespace shmbus::bench {

using shmbus::wait_mode;
using shmbus::wait_strategy;
using nanoseconds = std::chrono::nanoseconds;

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

enum class run_kind {
  latency,     ///< one message at a time, each once every subscriber took the previous
  throughput,  ///< as fast as possible for a while
  idle,        ///< nothing published: what waiting costs the subscriber's CPU
  pingpong,    ///< one message at a time, answered by the subscriber on a second channel: round trip / 2
};

/// One measurement: a transport, a kind, a wait strategy, a size.
struct run_spec {
  std::string transport;
  run_kind kind = run_kind::latency;
  wait_strategy wait;
  std::size_t size = 512;
  unsigned subscribers = 1;
  bool conflate = false;         ///< throughput on a latest-value topic (shmbus only)
  std::uint32_t depth = 1;       ///< ring depth (throughput: lossless by credit)
  std::uint64_t messages = 0;    ///< latency: samples to take
  std::int64_t duration_ns = 0;  ///< throughput: how long to publish; idle: how long to wait;
                                 ///< latency: a budget after which the run stops early
  std::int64_t gap_ns = 0;       ///< latency: pause before each publish, so a blocking subscriber sleeps
  std::string name;              ///< unique prefix for this run's OS objects
  bool touch = false;            ///< ping-pong: both ends write and read every payload byte

  /// Ping-pong: the same run's answer channel (subscriber to publisher).
  [[nodiscard]] run_spec reply() const;

  /// As child-process arguments, and back.
  [[nodiscard]] std::vector<std::string> encode() const;
  static run_spec decode(const std::vector<std::string>& args);
};

[[nodiscard]] std::string wait_name(const wait_strategy& w);
[[nodiscard]] const char* kind_name(run_kind k);

/// Leads every message's payload: the harness's own stamp and sequence, so
/// every transport is timed the same way (from just before the publish call
/// to just after the subscriber's copy) and gaps are counted the same way.
struct msg_header {
  std::int64_t stamp_ns;  ///< platform::monotonic_ns() just before send()
  std::uint64_t seq;      ///< 1, 2, 3 ... over probes, data and the end marker
  std::uint32_t kind;     ///< msg_probe, msg_data or msg_end
  std::uint32_t size;     ///< whole payload bytes
};
inline constexpr std::uint32_t msg_probe = 1, msg_data = 2, msg_end = 3;
inline constexpr std::size_t min_payload = 64;
static_assert(sizeof(msg_header) <= min_payload);

inline constexpr unsigned max_subscribers = 16;

/// Shared between the publisher and its subscribers, outside the transport
/// under test: readiness, and each subscriber's progress (the latency
/// acknowledgement, and the credit that keeps a ring lossless). One cache
/// line per subscriber, so they never share one.
struct control_block {
  struct alignas(64) subscriber_state {
    std::atomic<std::uint64_t> ready;       ///< set once the first message came through
    std::atomic<std::uint64_t> consumed;    ///< sequence of the last message taken
    std::atomic<std::uint64_t> idle_done;   ///< idle runs: finished waiting
    std::atomic<std::uint64_t> reply_open;  ///< ping-pong: the publisher opened its end of the answer channel
  };
  subscriber_state subs[max_subscribers];
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// What a subscriber received.
struct delivery {
  std::size_t size = 0;  ///< payload bytes
};

/// The publisher's end, in the parent process.
class sender {
 public:
  virtual ~sender() = default;
  /// Sends one message to every subscriber (blocking only where the
  /// transport itself pushes back, like a full socket buffer).
  virtual void send(std::span<const std::byte> msg) = 0;
};

/// A subscriber's end, in a child process.
class receiver {
 public:
  virtual ~receiver() = default;
  /// Waits the run's way for the next message and copies it into `buf`.
  /// No timeout: wait as long as it takes (the parent bounds the run).
  /// Returns nullopt only when `timeout` passed.
  virtual std::optional<delivery> receive(std::span<std::byte> buf, std::optional<nanoseconds> timeout) = 0;
};

/// The parent's side of one run: creates the objects, then, once every
/// subscriber process has opened its end, opens the publisher's.
class session {
 public:
  virtual ~session() = default;
  /// Extra argument passed to each subscriber process (a path, a bus name).
  [[nodiscard]] virtual std::string child_arg() const { return {}; }
  /// Called once every subscriber reported "connected".
  virtual std::unique_ptr<sender> open_sender() = 0;
  /// True when the publisher must wait for credit (a ring that would
  /// otherwise overwrite unread messages).
  [[nodiscard]] virtual bool needs_credit() const { return false; }
};

class transport {
 public:
  virtual ~transport() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  /// Whether this transport can run `spec` (wait modes, conflation).
  [[nodiscard]] virtual bool supports(const run_spec& spec) const = 0;
  /// Parent: sets up the run.
  virtual std::unique_ptr<session> prepare(const run_spec& spec) = 0;
  /// Child: opens subscriber `index`'s end.
  virtual std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned index, const std::string& arg) = 0;
  /// Ping-pong, in the subscriber process: sets up the answer channel, whose
  /// receiver the publisher then opens with open_receiver (roles reversed).
  /// As prepare unless the transport has process-wide set-up to skip there.
  virtual std::unique_ptr<session> prepare_reply(const run_spec& reply) { return prepare(reply); }
  /// Why supports(spec) is false, for the report's "n/a" lines.
  [[nodiscard]] virtual std::string unsupported_reason(const run_spec&) const { return "not supported"; }
};

/// A transport with one session type that never conflates (a byte stream
/// or a queue: the socket, pipe and ZeroMQ baselines); it names itself and
/// opens its sessions, the rest is the transport's own.
template <class Session>
class lossless_transport : public transport {
 public:
  explicit lossless_transport(std::string name) : name_(std::move(name)) {}
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] bool supports(const run_spec& spec) const override { return !spec.conflate; }
  std::unique_ptr<session> prepare(const run_spec& spec) override { return std::make_unique<Session>(spec); }

 private:
  std::string name_;
};

/// Transports register themselves (the platform's baselines and the
/// optional ZeroMQ one are compiled in only where they exist).
std::vector<std::unique_ptr<transport>>& transports();
transport* find_transport(std::string_view name);
struct transport_registrar {
  explicit transport_registrar(std::unique_ptr<transport> t) { transports().push_back(std::move(t)); }
};

/// Spins until `deadline` (steady clock) with a CPU pause hint, yielding so
/// that another thread pinned to this core (ZeroMQ's I/O thread) can run.
void spin_until(std::int64_t deadline_ns);

}  // namespace shmbus::bench
