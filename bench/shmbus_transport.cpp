// shmbus itself, through its public client API: an in-process broker with
// one topic, a publisher in the parent, a subscriber per child process.
#include "harness.hpp"

#include "shmbus/broker.hpp"
#include "shmbus/client.hpp"

namespace shmbus::bench {
namespace {

class shmbus_sender final : public sender {
 public:
  explicit shmbus_sender(publisher pub) : pub_(std::move(pub)) {}
  void send(std::span<const std::byte> msg) override { pub_.publish(msg); }

 private:
  publisher pub_;
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
  explicit shmbus_session(const run_spec& spec) {
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
    return std::make_unique<shmbus_sender>(b.make_publisher("data"));
  }
  [[nodiscard]] bool needs_credit() const override { return credit_; }

 private:
  std::unique_ptr<broker> broker_;
  bool credit_ = false;
};

class shmbus_transport final : public transport {
 public:
  [[nodiscard]] std::string name() const override { return "shmbus"; }
  [[nodiscard]] bool supports(const run_spec&) const override { return true; }
  std::unique_ptr<session> prepare(const run_spec& spec) override { return std::make_unique<shmbus_session>(spec); }
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& arg) override {
    return std::make_unique<shmbus_receiver>(bus(arg), spec.wait);
  }
};

const transport_registrar reg(std::make_unique<shmbus_transport>());

}  // namespace
}  // namespace shmbus::bench
