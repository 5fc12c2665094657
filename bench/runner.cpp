#include "runner.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <thread>

#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "support/child_process.hpp"
#include "sys.hpp"

namespace shmbus::bench {

// ---- registry, spec encoding -----------------------------------------------

std::vector<std::unique_ptr<transport>>& transports() {
  static std::vector<std::unique_ptr<transport>> all;
  return all;
}

transport* find_transport(std::string_view name) {
  for (auto& t : transports())
    if (t->name() == name) return t.get();
  return nullptr;
}

std::string wait_name(const wait_strategy& w) {
  switch (w.mode) {
    case wait_mode::block: return "block";
    case wait_mode::busy_poll: return "busy-poll";
    case wait_mode::spin_then_block: return "spin" + std::to_string(w.spin.count() / 1000) + "us-block";
  }
  return "?";
}

const char* kind_name(run_kind k) {
  switch (k) {
    case run_kind::latency: return "latency";
    case run_kind::throughput: return "throughput";
    case run_kind::idle: return "idle";
    case run_kind::pingpong: return "pingpong";
  }
  return "?";
}

// How many arguments run_spec::encode makes; the subscriber's own follow.
constexpr std::size_t spec_fields = 13;

std::vector<std::string> run_spec::encode() const {
  return {transport,
          std::to_string(static_cast<int>(kind)),
          std::to_string(static_cast<int>(wait.mode)),
          std::to_string(wait.spin.count()),
          std::to_string(size),
          std::to_string(subscribers),
          conflate ? "1" : "0",
          std::to_string(depth),
          std::to_string(messages),
          std::to_string(duration_ns),
          std::to_string(gap_ns),
          name,
          touch ? "1" : "0"};
}

run_spec run_spec::reply() const {
  run_spec r = *this;
  r.name = name + "-r";
  r.subscribers = 1;
  return r;
}

run_spec run_spec::decode(const std::vector<std::string>& a) {
  if (a.size() < spec_fields) fail("bench-subscriber: too few arguments");
  run_spec s;
  s.transport = a[0];
  s.kind = static_cast<run_kind>(std::stoi(a[1]));
  s.wait.mode = static_cast<wait_mode>(std::stoi(a[2]));
  s.wait.spin = nanoseconds(std::stoll(a[3]));
  s.size = std::stoul(a[4]);
  s.subscribers = static_cast<unsigned>(std::stoul(a[5]));
  s.conflate = a[6] == "1";
  s.depth = static_cast<std::uint32_t>(std::stoul(a[7]));
  s.messages = std::stoull(a[8]);
  s.duration_ns = std::stoll(a[9]);
  s.gap_ns = std::stoll(a[10]);
  s.name = a[11];
  s.touch = a[12] == "1";
  return s;
}

void spin_until(std::int64_t deadline_ns) {
  while (platform::monotonic_ns() < deadline_ns) {
    detail::cpu_relax();
    std::this_thread::yield();
  }
}

namespace {

constexpr std::int64_t second = 1'000'000'000;

// The pinning plan: publisher on the first CPU, subscribers round-robin on
// the others; with one CPU, nobody is pinned.
int subscriber_cpu(unsigned index, bool pin) {
  const unsigned n = sys::cpu_count();
  if (!pin || n < 2) return -1;
  return static_cast<int>(1 + index % (n - 1));
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest sample with at least p of all at or below it.
  auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

// Percentiles, extremes and mean of `sorted` (not empty) into `r`.
void fill_percentiles(const std::vector<std::int64_t>& sorted, subscriber_report& r) {
  if (sorted.empty()) return;
  r.samples = sorted.size();
  r.p50 = percentile(sorted, 0.50);
  r.p90 = percentile(sorted, 0.90);
  r.p99 = percentile(sorted, 0.99);
  r.p999 = percentile(sorted, 0.999);
  r.max = sorted.back();
  r.min = sorted.front();
  long double sum = 0;
  for (auto v : sorted) sum += static_cast<long double>(v);
  r.mean = static_cast<std::int64_t>(sum / static_cast<long double>(sorted.size()));
}

std::string format_report(const subscriber_report& r) {
  std::ostringstream o;
  o << "result received=" << r.received << " missed=" << r.missed << " bytes=" << r.bytes
    << " first_stamp=" << r.first_stamp << " last_ns=" << r.last_ns << " cpu_ns=" << r.cpu_ns
    << " wall_ns=" << r.wall_ns << " samples=" << r.samples << " p50=" << r.p50 << " p90=" << r.p90 << " p99=" << r.p99
    << " p999=" << r.p999 << " max=" << r.max << " min=" << r.min << " mean=" << r.mean
    << " idle_cpu_ns=" << r.idle_cpu_ns << " idle_wall_ns=" << r.idle_wall_ns << " pinned=" << r.pinned;
  return o.str();
}

subscriber_report parse_report(const std::string& line) {
  subscriber_report r;
  std::istringstream in(line);
  std::string tok;
  while (in >> tok) {
    const auto eq = tok.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    auto i64 = [&] { return std::stoll(v); };
    auto u64 = [&] { return std::stoull(v); };
    if (k == "received")
      r.received = u64();
    else if (k == "missed")
      r.missed = u64();
    else if (k == "bytes")
      r.bytes = u64();
    else if (k == "first_stamp")
      r.first_stamp = i64();
    else if (k == "last_ns")
      r.last_ns = i64();
    else if (k == "cpu_ns")
      r.cpu_ns = i64();
    else if (k == "wall_ns")
      r.wall_ns = i64();
    else if (k == "samples")
      r.samples = u64();
    else if (k == "p50")
      r.p50 = i64();
    else if (k == "p90")
      r.p90 = i64();
    else if (k == "p99")
      r.p99 = i64();
    else if (k == "p999")
      r.p999 = i64();
    else if (k == "max")
      r.max = i64();
    else if (k == "min")
      r.min = i64();
    else if (k == "mean")
      r.mean = i64();
    else if (k == "idle_cpu_ns")
      r.idle_cpu_ns = i64();
    else if (k == "idle_wall_ns")
      r.idle_wall_ns = i64();
    else if (k == "pinned")
      r.pinned = v;
  }
  return r;
}

control_block& control_of(platform::shared_memory_region& region) {
  return *static_cast<control_block*>(region.data());
}

// Pins the publisher thread for the measurement only: threads a transport
// starts while setting up (ZeroMQ's I/O thread) keep every CPU, so they do
// not fight a spinning publisher for one core.
class publisher_pin {
 public:
  explicit publisher_pin(bool pin) {
    if (!pin) {
      status_ = "not pinned (--no-pin)";
    } else if (sys::cpu_count() < 2) {
      status_ = "not pinned (1 CPU)";
    } else {
      const std::string why = sys::pin_thread(0);
      status_ = why.empty() ? "cpu0" : "not pinned (" + why + ")";
      pinned_ = why.empty();
    }
  }
  publisher_pin(const publisher_pin&) = delete;
  publisher_pin& operator=(const publisher_pin&) = delete;
  ~publisher_pin() {
    if (pinned_) sys::unpin_thread();
  }
  [[nodiscard]] const std::string& status() const noexcept { return status_; }

 private:
  std::string status_;
  bool pinned_ = false;
};

}  // namespace

// ---- the publisher (parent) --------------------------------------------------

namespace {

// The control segment the subscribers report through, removed again when
// the run ends (and any stale one of the same name first).
class control_segment {
 public:
  explicit control_segment(std::string name)
      : name_(std::move(name)), region_(create_fresh(name_)), block_(*new (region_.data()) control_block{}) {}
  control_segment(const control_segment&) = delete;
  control_segment& operator=(const control_segment&) = delete;
  ~control_segment() {
    std::error_code ignored;
    platform::shared_memory_region::remove(name_, ignored);
  }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] control_block& block() noexcept { return block_; }

 private:
  static platform::shared_memory_region create_fresh(const std::string& name) {
    std::error_code ignored;
    platform::shared_memory_region::remove(name, ignored);
    return platform::shared_memory_region(create_only, name, sizeof(control_block));
  }
  std::string name_;
  platform::shared_memory_region region_;
  control_block& block_;
};

// Starts one subscriber process per spec.subscribers and waits until each
// has opened its receiver.
// `connected` gets each one's "connected" line.
std::vector<test::child_process> start_subscribers(const run_spec& spec, const std::string& ctl_name,
                                                   const session& sess, bool pin,
                                                   std::vector<std::string>* connected = nullptr) {
  std::vector<test::child_process> kids;
  for (unsigned i = 0; i < spec.subscribers; ++i) {
    std::vector<std::string> args = spec.encode();
    for (const auto& extra : {std::to_string(i), ctl_name, sess.child_arg(), std::to_string(subscriber_cpu(i, pin))})
      args.push_back(extra);
    kids.push_back(test::child_process::self("bench-subscriber", args));
  }
  for (auto& k : kids) {
    std::string line = k.expect_line("connected", std::chrono::seconds(30));
    if (connected != nullptr) connected->push_back(std::move(line));
  }
  return kids;
}

// Reads every subscriber's report, then reaps each, failing on a bad exit.
void collect_reports(std::vector<test::child_process>& kids, run_result& res) {
  for (auto& k : kids) {
    const std::string line = k.expect_line("result", std::chrono::seconds(60));
    res.subs.push_back(parse_report(line));
  }
  for (auto& k : kids) {
    const int rc = k.wait(std::chrono::seconds(30));
    if (rc != 0) fail("subscriber exited with " + std::to_string(rc));
  }
}

// The publishing side of one run: sends numbered, stamped messages, waits
// for credit on lossless rings, and drives the run's kind.
class publisher_loop {
 public:
  publisher_loop(const run_spec& spec, control_block& cb, std::unique_ptr<sender> tx, bool credit)
      : spec_(spec),
        cb_(cb),
        tx_(std::move(tx)),
        credit_(credit),
        size_(std::max(spec.size, min_payload)),
        payload_(size_, std::byte{0x5a}) {}

  // `stamp`: the time to put in the message; 0 = read the clock now.
  std::int64_t send(std::uint32_t kind, std::int64_t stamp = 0) {
    ++seq_;
    if (credit_ && seq_ > min_consumed_ + spec_.depth) wait_for_credit();
    const msg_header h{stamp != 0 ? stamp : platform::monotonic_ns(), seq_, kind, static_cast<std::uint32_t>(size_)};
    std::memcpy(payload_.data(), &h, sizeof h);
    tx_->send(payload_);
    return h.stamp_ns;
  }

  // Probe until every subscriber has a message: connections and ZeroMQ
  // subscriptions are then established.
  void probe_until_ready() {
    const auto ready = [](auto& s) { return s.ready.load(std::memory_order_acquire) != 0; };
    const std::int64_t deadline = platform::monotonic_ns() + 30 * second;
    while (!all(ready)) {
      if (platform::monotonic_ns() > deadline) fail("subscribers not ready after 30 s");
      send(msg_probe);
      const std::int64_t until = platform::monotonic_ns() + 2'000'000;
      while (platform::monotonic_ns() < until && !all(ready)) std::this_thread::yield();
    }
  }

  // The measurement window of spec.kind, from `start`.
  void drive(std::int64_t start, run_result& res) {
    switch (spec_.kind) {
      case run_kind::latency: return latency(start, res);
      case run_kind::throughput: return throughput(start, res);
      case run_kind::idle: return idle(start);
      case run_kind::pingpong: fail("ping-pong runs in measure_pingpong");
    }
  }

 private:
  // The ring is full: wait until the slowest subscriber frees a slot, so
  // that nothing is overwritten unread.
  void wait_for_credit() {
    const std::int64_t deadline = platform::monotonic_ns() + 30 * second;
    for (unsigned polls = 0;; ++polls) {
      refresh_min();
      if (seq_ <= min_consumed_ + spec_.depth) break;
      detail::cpu_relax();
      if (polls % 1024 == 1023 && platform::monotonic_ns() > deadline) fail("no credit for 30 s");
    }
  }

  void refresh_min() {
    std::uint64_t m = UINT64_MAX;
    for (unsigned i = 0; i < spec_.subscribers; ++i)
      m = std::min(m, cb_.subs[i].consumed.load(std::memory_order_acquire));
    min_consumed_ = m;
  }

  template <class Pred>
  bool all(Pred pred) {
    for (unsigned i = 0; i < spec_.subscribers; ++i)
      if (!pred(cb_.subs[i])) return false;
    return true;
  }

  void latency(std::int64_t start, run_result& res) {
    const std::int64_t budget_end = start + spec_.duration_ns;
    for (std::uint64_t i = 0; i < spec_.messages; ++i) {
      // The gap lets a blocking subscriber fall asleep again.
      spin_until(platform::monotonic_ns() + spec_.gap_ns);
      send(msg_data);
      ++res.published;
      await_taken();
      if (platform::monotonic_ns() > budget_end) break;
    }
  }

  // Waits until every subscriber has taken the last message sent.
  void await_taken() {
    const std::int64_t deadline = platform::monotonic_ns() + 20 * second;
    for (unsigned polls = 0; !all([&](auto& s) { return s.consumed.load(std::memory_order_acquire) >= seq_; });
         ++polls) {
      // Yielding lets a thread sharing this core (ZeroMQ's) run; the
      // acknowledgement's own latency is not measured.
      std::this_thread::yield();
      if (polls % 256 == 255 && platform::monotonic_ns() > deadline)
        fail("message " + std::to_string(seq_) + " not taken after 20 s");
    }
  }

  void throughput(std::int64_t start, run_result& res) {
    // The clock costs tens of ns, as much as a small message: read it once
    // per batch. Only the first stamp is used (the start of the window);
    // the rest are approximate.
    const std::int64_t end = start + spec_.duration_ns;
    for (std::int64_t now = send(msg_data);;) {
      ++res.published;
      for (int k = 1; k < 64; ++k, ++res.published) send(msg_data, now);
      now = platform::monotonic_ns();
      if (now >= end) break;
      send(msg_data, now);
    }
  }

  void idle(std::int64_t start) {
    const std::int64_t deadline = start + spec_.duration_ns + 30 * second;
    while (!all([](auto& s) { return s.idle_done.load(std::memory_order_acquire) != 0; })) {
      if (platform::monotonic_ns() > deadline) fail("idle subscribers did not finish");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the parent idles too
    }
  }

  const run_spec& spec_;
  control_block& cb_;
  std::unique_ptr<sender> tx_;
  const bool credit_;
  const std::size_t size_;
  std::vector<std::byte> payload_;
  std::uint64_t seq_ = 0;
  std::uint64_t min_consumed_ = 0;
};

// ---- ping-pong ---------------------------------------------------------------

// Touched payloads: every byte after the header is the sequence's low byte,
// written by the sender and summed by the receiver, who checks the sum.
void fill_payload(std::span<std::byte> msg, std::uint64_t seq) {
  std::memset(msg.data() + sizeof(msg_header), static_cast<int>(seq & 0xff), msg.size() - sizeof(msg_header));
}

void check_payload(std::span<const std::byte> msg, std::uint64_t seq, const char* who) {
  std::uint64_t sum = 0;
  for (const std::byte b : msg.subspan(sizeof(msg_header))) sum += static_cast<std::uint8_t>(b);
  if (sum != (seq & 0xff) * (msg.size() - sizeof(msg_header)))
    fail(std::string(who) + ": payload of message " + std::to_string(seq) + " is not what was sent");
}

msg_header header_of(std::span<const std::byte> msg) {
  msg_header h{};
  std::memcpy(&h, msg.data(), sizeof h);
  return h;
}

// The publisher's side of a ping-pong run: sends a ping, waits for the
// subscriber's pong of the same sequence, and times the round trip.
class pinger {
 public:
  pinger(const run_spec& spec, std::unique_ptr<sender> tx, std::unique_ptr<receiver> rx)
      : spec_(spec),
        tx_(std::move(tx)),
        rx_(std::move(rx)),
        ping_(std::max(spec.size, min_payload), std::byte{0x5a}),
        pong_(ping_.size()) {}

  // Probes until one comes back: both channels are then connected. Pongs of
  // earlier probes that arrive later are skipped by their sequence.
  void probe_until_answered() {
    const std::int64_t deadline = platform::monotonic_ns() + 30 * second;
    for (;;) {
      send(msg_probe);
      if (await_pong(std::chrono::milliseconds(2))) return;
      if (platform::monotonic_ns() > deadline) fail("no pong after 30 s of probes");
    }
  }

  // The measurement: spec.messages round trips (or until the budget ends).
  void measure(std::int64_t start, run_result& res) {
    const std::int64_t budget_end = start + spec_.duration_ns;
    half_rtt_.reserve(spec_.messages);
    for (std::uint64_t i = 0; i < spec_.messages; ++i) {
      spin_until(platform::monotonic_ns() + spec_.gap_ns);  // lets a blocking subscriber fall asleep
      const std::int64_t t0 = platform::monotonic_ns();
      send(msg_data);
      if (!await_pong(std::chrono::seconds(20))) fail("no pong for message " + std::to_string(seq_) + " after 20 s");
      if (spec_.touch) check_payload(pong_, seq_, "pong");
      const std::int64_t t1 = platform::monotonic_ns();
      half_rtt_.push_back((t1 - t0) / 2);
      ++res.published;
      if (t1 > budget_end) break;
    }
  }

  void send_end() { send(msg_end); }

  // The round-trip figures replace the subscriber's one-way ones.
  void report_into(subscriber_report& r) {
    std::sort(half_rtt_.begin(), half_rtt_.end());
    fill_percentiles(half_rtt_, r);
  }

 private:
  void send(std::uint32_t kind) {
    ++seq_;
    if (spec_.touch && kind == msg_data) fill_payload(ping_, seq_);
    const msg_header h{platform::monotonic_ns(), seq_, kind, static_cast<std::uint32_t>(ping_.size())};
    std::memcpy(ping_.data(), &h, sizeof h);
    tx_->send(ping_);
  }

  bool await_pong(nanoseconds timeout) {
    const std::int64_t until = platform::monotonic_ns() + timeout.count();
    for (;;) {
      const std::int64_t left = until - platform::monotonic_ns();
      if (left <= 0) return false;
      auto got = rx_->receive(pong_, nanoseconds(left));
      if (!got) return false;
      if (got->size < sizeof(msg_header)) fail("short pong");
      if (header_of(pong_).seq == seq_) return true;
    }
  }

  const run_spec& spec_;
  std::unique_ptr<sender> tx_;
  std::unique_ptr<receiver> rx_;
  std::vector<std::byte> ping_, pong_;
  std::uint64_t seq_ = 0;
  std::vector<std::int64_t> half_rtt_;
};

// "connected reply=ARG": the subscriber's answer channel.
std::string reply_arg(const std::string& connected_line) {
  const auto at = connected_line.find("reply=");
  if (at == std::string::npos) fail("ping-pong subscriber did not name its answer channel");
  return connected_line.substr(at + 6);
}

// A ping-pong run: one subscriber, which answers on a channel of its own
// that this process receives from.
void measure_pingpong(transport& t, const run_spec& spec, const runner_options& opt, run_result& res) {
  if (spec.subscribers != 1) fail("ping-pong takes one subscriber");
  control_segment ctl(spec.name + ".ctl");
  auto sess = t.prepare(spec);
  std::vector<std::string> connected;
  auto kids = start_subscribers(spec, ctl.name(), *sess, opt.pin, &connected);
  auto rx = t.open_receiver(spec.reply(), 0, reply_arg(connected.at(0)));
  ctl.block().subs[0].reply_open.store(1, std::memory_order_release);
  pinger ping(spec, sess->open_sender(), std::move(rx));
  ping.probe_until_answered();

  publisher_pin pin(opt.pin);
  res.publisher_pinned = pin.status();
  const std::int64_t start = platform::monotonic_ns();
  ping.measure(start, res);
  res.publish_ns = platform::monotonic_ns() - start;
  ping.send_end();
  collect_reports(kids, res);
  ping.report_into(res.subs.at(0));
}

// One run, throwing on any failure: control segment, subscribers, probes,
// the pinned measurement window, the end marker, the reports.
void measure(transport& t, const run_spec& spec, const runner_options& opt, run_result& res) {
  if (spec.kind == run_kind::pingpong) return measure_pingpong(t, spec, opt, res);
  control_segment ctl(spec.name + ".ctl");
  auto sess = t.prepare(spec);
  auto kids = start_subscribers(spec, ctl.name(), *sess, opt.pin);
  publisher_loop pub(spec, ctl.block(), sess->open_sender(), sess->needs_credit());
  pub.probe_until_ready();

  publisher_pin pin(opt.pin);
  res.publisher_pinned = pin.status();
  const std::uint64_t wakes_before = platform::named_event::wake_calls();
  const std::int64_t start = platform::monotonic_ns();
  pub.drive(start, res);
  res.publish_ns = platform::monotonic_ns() - start;
  res.wake_calls = platform::named_event::wake_calls() - wakes_before;
  pub.send(msg_end);
  collect_reports(kids, res);
}

}  // namespace

run_result run_once(const run_spec& spec, const runner_options& opt) {
  run_result res;
  res.spec = spec;
  transport* t = find_transport(spec.transport);
  if (t == nullptr) {
    res.error = "unknown transport " + spec.transport;
    return res;
  }
  try {
    measure(*t, spec, opt, res);
  } catch (const std::exception& e) {
    res.error = e.what();
  }
  return res;
}

// ---- the subscriber (child) --------------------------------------------------

namespace {

// The subscriber's side of a ping-pong run: sets up the answer channel,
// waits until the publisher opened its end, then answers every ping with a
// pong of the same sequence and size until the end marker.
int pong_main(const run_spec& spec, transport& t, receiver& rx, control_block::subscriber_state& me,
              subscriber_report& r) {
  auto reply = t.prepare_reply(spec.reply());
  test::signal_parent("connected reply=" + reply->child_arg());
  const std::int64_t deadline = platform::monotonic_ns() + 30 * second;
  while (me.reply_open.load(std::memory_order_acquire) == 0) {
    if (platform::monotonic_ns() > deadline) fail("ping-pong: the publisher did not open the answer channel");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto tx = reply->open_sender();

  std::vector<std::byte> ping(std::max(spec.size, min_payload)), pong(ping.size(), std::byte{0x5a});
  std::int64_t cpu0 = 0, wall0 = 0;
  for (;;) {
    auto got = rx.receive(ping, std::nullopt);
    if (!got || got->size < sizeof(msg_header)) fail("short ping");
    const msg_header h = header_of(ping);
    if (h.kind == msg_end) break;
    if (h.kind == msg_data) {
      if (spec.touch) check_payload(ping, h.seq, "ping");
      if (r.received++ == 0) {
        cpu0 = sys::process_cpu_ns();
        wall0 = platform::monotonic_ns();
      }
      r.bytes += h.size;
      if (spec.touch) fill_payload(pong, h.seq);
    }
    std::memcpy(pong.data(), &h, sizeof h);
    tx->send(pong);
  }
  if (r.received > 0) {
    r.cpu_ns = sys::process_cpu_ns() - cpu0;
    r.wall_ns = platform::monotonic_ns() - wall0;
  }
  test::signal_parent(format_report(r));
  return 0;
}

}  // namespace

int subscriber_main(const std::vector<std::string>& args) {
  sys::die_with_parent();
  const run_spec spec = run_spec::decode(args);
  if (args.size() < spec_fields + 4) fail("bench-subscriber: missing index, control, argument or CPU");
  const auto index = static_cast<unsigned>(std::stoul(args[spec_fields]));
  platform::shared_memory_region ctl(open_only, args[spec_fields + 1], access::read_write);
  auto& me = control_of(ctl).subs[index];
  transport* t = find_transport(spec.transport);
  if (t == nullptr) fail("unknown transport " + spec.transport);
  auto rx = t->open_receiver(spec, index, args[spec_fields + 2]);

  // Pinned after opening, for the same reason as the publisher.
  subscriber_report r;
  const int cpu = std::stoi(args[spec_fields + 3]);
  if (cpu >= 0) {
    const std::string why = sys::pin_thread(static_cast<unsigned>(cpu));
    r.pinned = why.empty() ? "cpu" + std::to_string(cpu) : "no";
  } else {
    r.pinned = "no";
  }
  if (spec.kind == run_kind::pingpong) return pong_main(spec, *t, *rx, me, r);
  test::signal_parent("connected");

  const std::size_t size = std::max(spec.size, min_payload);
  std::vector<std::byte> buf(size);
  std::vector<std::int64_t> lat;
  if (spec.kind == run_kind::latency) lat.reserve(spec.messages + 1);
  std::uint64_t last_seq = 0;
  std::int64_t cpu0 = 0, wall0 = 0;
  msg_header h{};
  auto take = [&](std::optional<nanoseconds> timeout) {
    auto got = rx->receive(buf, timeout);
    if (!got) return false;
    if (got->size < sizeof h) fail("short message");
    std::memcpy(&h, buf.data(), sizeof h);
    return true;
  };

  if (spec.kind == run_kind::idle) {
    // First message (a probe): connected. Drain further probes, then wait
    // with nothing published, in 100 ms timeouts as a real loop would.
    take(std::nullopt);
    me.consumed.store(h.seq, std::memory_order_release);
    me.ready.store(1, std::memory_order_release);
    while (take(std::chrono::milliseconds(20))) me.consumed.store(h.seq, std::memory_order_release);
    const std::int64_t c0 = sys::process_cpu_ns(), w0 = platform::monotonic_ns();
    while (platform::monotonic_ns() - w0 < spec.duration_ns) {
      if (take(std::chrono::milliseconds(100))) fail("a message arrived during the idle run");
    }
    r.idle_cpu_ns = sys::process_cpu_ns() - c0;
    r.idle_wall_ns = platform::monotonic_ns() - w0;
    me.idle_done.store(1, std::memory_order_release);
  }

  // Throughput reads the clock at the first message and at the end marker
  // only (right after the last message): per message it would cost as much
  // as a small message's transfer.
  const bool timed = spec.kind == run_kind::latency;
  for (;;) {
    take(std::nullopt);
    const std::int64_t now = timed || r.received == 0 || h.kind == msg_end ? platform::monotonic_ns() : 0;
    if (h.kind == msg_probe) {
      me.ready.store(1, std::memory_order_release);
    } else if (h.kind == msg_data) {
      if (r.received == 0) {
        r.first_stamp = h.stamp_ns;
        cpu0 = sys::process_cpu_ns();
        wall0 = now;
      } else if (h.seq > last_seq + 1) {
        r.missed += h.seq - last_seq - 1;
      }
      if (timed) {
        lat.push_back(now - h.stamp_ns);
        r.last_ns = now;
      }
      ++r.received;
      r.bytes += h.size;
    } else if (h.kind == msg_end) {
      if (!timed && r.received > 0) r.last_ns = now;
      break;
    }
    last_seq = h.seq;
    me.consumed.store(h.seq, std::memory_order_release);
  }
  if (r.received > 0) {
    r.cpu_ns = sys::process_cpu_ns() - cpu0;
    r.wall_ns = platform::monotonic_ns() - wall0;
  }
  if (!lat.empty()) {
    std::sort(lat.begin(), lat.end());
    fill_percentiles(lat, r);
  }
  test::signal_parent(format_report(r));
  return 0;
}

}  // namespace shmbus::bench
