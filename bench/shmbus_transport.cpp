// shmbus itself, through its public client API: an in-process broker with
// one topic, a publisher in the parent, a subscriber per child process.
// Three transports, one per way to publish: "shmbus" (the default: the
// topic mutex per publish, by copy), "shmbus-exclusive" (the exclusive
// publish right, by copy) and "shmbus-loan" (the exclusive right, by loan).
#include "harness.hpp"

#include <cstring>

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"

namespace shmbus::bench {
namespace {

enum class publish_style { shared, exclusive, loan };

class shmbus_sender final : public sender {
 public:
  // `whole`: a loan carries the harness's whole message (ping-pong, whose
  // answer checks every byte), else its header and payload bytes of its own.
  shmbus_sender(publisher pub, publish_style style, bool whole)
      : pub_(std::move(pub)), loan_(style == publish_style::loan), whole_(whole) {}
  void send(std::span<const std::byte> msg) override {
    if (!loan_) {
      pub_.publish(msg);
      return;
    }
    std::span<std::byte> slot = pub_.loan(msg.size());
    if (whole_) {
      std::memcpy(slot.data(), msg.data(), msg.size());
    } else {
      // Written in place, as a producer writes its message into the loan
      // instead of into a buffer it then publishes: the harness's header
      // (stamp, sequence) and every payload byte after it (stores only).
      // The other transports copy a buffer the harness built before the
      // clock started; what a loan saves is the copy's loads, and a buffer.
      std::memcpy(slot.data(), msg.data(), sizeof(msg_header));
      std::memset(slot.data() + sizeof(msg_header), static_cast<int>(fill_++), slot.size() - sizeof(msg_header));
    }
    pub_.commit();
  }

 private:
  publisher pub_;
  bool loan_;
  bool whole_;
  unsigned char fill_ = 0;
};

class shmbus_receiver final : public receiver {
 public:
  shmbus_receiver(bus b, const wait_strategy& how) : bus_(std::move(b)), sub_(bus_.make_subscriber("data")) {
    sub_.set_wait_strategy(how);
  }
  // As the README shows: drain with try_read, wait when empty.
  std::optional<delivery> receive(std::span<std::byte> buf, std::optional<nanoseconds> timeout) override {
    std::error_code ec;
    for (;;) {
      if (auto got = sub_.try_read(buf, ec)) return delivery{got->size};
      if (ec) fail("shmbus read: " + ec.message());
      if (!sub_.wait_available(timeout, ec)) {
        if (ec) fail("shmbus wait: " + ec.message());
        return std::nullopt;
      }
    }
  }

 private:
  bus bus_;
  subscriber sub_;
};

class shmbus_session final : public session {
 public:
  shmbus_session(const run_spec& spec, publish_style style)
      : style_(style), whole_message_(spec.kind == run_kind::pingpong) {
    broker_options o;
    o.bus = spec.name;
    topic_config t;
    t.name = "data";
    t.max_message_size = spec.size;
    // Latency: a latest-value topic (what a market-data feed uses); throughput:
    // the ring the run asks for, or latest value when it measures conflation.
    t.depth = spec.kind == run_kind::throughput && !spec.conflate ? spec.depth : 1;
    o.topics = {t};
    broker_ = std::make_unique<broker>(o);
    credit_ = spec.kind == run_kind::throughput && !spec.conflate;
  }
  [[nodiscard]] std::string child_arg() const override { return broker_->bus(); }
  std::unique_ptr<sender> open_sender() override {
    bus b(broker_->bus());
    publisher_options opts;
    opts.exclusive = style_ != publish_style::shared;
    return std::make_unique<shmbus_sender>(b.make_publisher("data", opts), style_, whole_message_);
  }
  [[nodiscard]] bool needs_credit() const override { return credit_; }

 private:
  publish_style style_;
  bool whole_message_;
  std::unique_ptr<broker> broker_;
  bool credit_ = false;
};

class shmbus_transport final : public transport {
 public:
  shmbus_transport(std::string name, publish_style style) : name_(std::move(name)), style_(style) {}
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] bool supports(const run_spec&) const override { return true; }
  std::unique_ptr<session> prepare(const run_spec& spec) override {
    return std::make_unique<shmbus_session>(spec, style_);
  }
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& arg) override {
    return std::make_unique<shmbus_receiver>(bus(arg), spec.wait);
  }

 private:
  std::string name_;
  publish_style style_;
};

const transport_registrar reg(std::make_unique<shmbus_transport>("shmbus", publish_style::shared));
const transport_registrar reg_exclusive(std::make_unique<shmbus_transport>("shmbus-exclusive",
                                                                           publish_style::exclusive));
const transport_registrar reg_loan(std::make_unique<shmbus_transport>("shmbus-loan", publish_style::loan));

}  // namespace
}  // namespace shmbus::bench
