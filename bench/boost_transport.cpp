// Boost.Interprocess condition-variable slot (built only when Boost's
// interprocess headers are found): what a careful user builds from Boost
// alone. One struct in a shared_memory_object: an interprocess_mutex, an
// interprocess_condition, a sequence number, a size and a payload buffer of
// the run's message size. The publisher locks, copies, bumps the sequence,
// unlocks and calls notify_all; a subscriber locks, waits on the condition
// until the sequence moves, copies out and unlocks.
//
// It is a latest-value slot: a message not yet taken would be overwritten
// by the next, so the session asks the harness for credit (needs_credit),
// which keeps the probes lossless. It runs latency, fan-out and idle; not
// throughput (one slot is no lossless ring) nor conflated throughput.
// Busy-poll and spin-then-block poll the sequence (an atomic in the slot)
// without the lock and take the lock only to copy.
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <cstring>
#include <new>

#include "harness.hpp"
#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"

namespace shmbus::bench {
namespace {

namespace bip = boost::interprocess;
using lock_t = bip::scoped_lock<bip::interprocess_mutex>;

struct slot {
  bip::interprocess_mutex mutex;
  bip::interprocess_condition changed;
  std::atomic<std::uint64_t> seq{0};  // written under the mutex; polled without it
  std::uint64_t size = 0;
  std::uint64_t capacity = 0;
  // the payload buffer (capacity bytes) follows
  std::byte* payload() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

std::size_t bytes_for(const run_spec& spec) { return sizeof(slot) + std::max(spec.size, min_payload); }
std::string shm_name(const run_spec& spec) { return spec.name + ".boost"; }

// The parent's segment: created for the run, removed on every way out.
class segment {
 public:
  explicit segment(const run_spec& spec) : name_(shm_name(spec)) {
    bip::shared_memory_object::remove(name_.c_str());
    bip::shared_memory_object shm(bip::create_only, name_.c_str(), bip::read_write);
    try {
      shm.truncate(static_cast<bip::offset_t>(bytes_for(spec)));
      region_ = bip::mapped_region(shm, bip::read_write);
      auto* s = new (region_.get_address()) slot{};
      s->capacity = std::max(spec.size, min_payload);
    } catch (...) {
      bip::shared_memory_object::remove(name_.c_str());
      throw;
    }
  }
  segment(const segment&) = delete;
  segment& operator=(const segment&) = delete;
  ~segment() {
    // The slot's mutex and condition are process-shared pthread objects with
    // nothing to free; the name goes, the mapping goes with region_.
    bip::shared_memory_object::remove(name_.c_str());
  }
  [[nodiscard]] slot& get() const noexcept { return *static_cast<slot*>(region_.get_address()); }
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  std::string name_;
  bip::mapped_region region_;
};

class boost_sender final : public sender {
 public:
  explicit boost_sender(slot& s) : s_(s) {}
  void send(std::span<const std::byte> msg) override {
    if (msg.size() > s_.capacity) fail("message larger than the Boost slot");
    {
      lock_t lock(s_.mutex);
      std::memcpy(s_.payload(), msg.data(), msg.size());
      s_.size = msg.size();
      s_.seq.store(s_.seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    s_.changed.notify_all();
  }

 private:
  slot& s_;
};

class boost_receiver final : public receiver {
 public:
  boost_receiver(const std::string& name, const wait_strategy& how)
      : region_(bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write), bip::read_write),
        s_(*static_cast<slot*>(region_.get_address())),
        how_(how) {}

  std::optional<delivery> receive(std::span<std::byte> dst, std::optional<nanoseconds> timeout) override {
    const std::int64_t start = platform::monotonic_ns();
    const std::int64_t until = timeout ? start + timeout->count() : INT64_MAX;
    if (how_.mode != wait_mode::block) {
      const std::int64_t spin_end = how_.mode == wait_mode::busy_poll ? INT64_MAX : start + how_.spin.count();
      for (unsigned polls = 0; s_.seq.load(std::memory_order_acquire) == seen_; ++polls) {
        detail::cpu_relax();
        if (polls % 32 == 31) {
          const std::int64_t now = platform::monotonic_ns();
          if (now >= until) return std::nullopt;
          if (now >= spin_end) break;
        }
      }
    }
    lock_t lock(s_.mutex);
    while (s_.seq.load(std::memory_order_relaxed) == seen_) {
      if (!timeout) {
        s_.changed.wait(lock);
        continue;
      }
      const std::int64_t left = until - platform::monotonic_ns();
      if (left <= 0) return std::nullopt;
      // Boost 1.74's timed_wait takes an absolute UTC ptime.
      const auto abs =
          boost::posix_time::microsec_clock::universal_time() + boost::posix_time::microseconds((left + 999) / 1000);
      if (!s_.changed.timed_wait(lock, abs) && s_.seq.load(std::memory_order_relaxed) == seen_ &&
          platform::monotonic_ns() >= until)
        return std::nullopt;
    }
    const std::size_t n = s_.size;
    if (n > dst.size()) fail("Boost slot message larger than the buffer");
    std::memcpy(dst.data(), s_.payload(), n);
    seen_ = s_.seq.load(std::memory_order_relaxed);
    return delivery{n};
  }

 private:
  bip::mapped_region region_;
  slot& s_;
  wait_strategy how_;
  std::uint64_t seen_ = 0;
};

class boost_session final : public session {
 public:
  explicit boost_session(const run_spec& spec) : seg_(spec) {}
  [[nodiscard]] std::string child_arg() const override { return seg_.name(); }
  std::unique_ptr<sender> open_sender() override { return std::make_unique<boost_sender>(seg_.get()); }
  // One slot: the next message may go only once every subscriber took the last.
  [[nodiscard]] bool needs_credit() const override { return true; }

 private:
  segment seg_;
};

class boost_transport final : public transport {
 public:
  [[nodiscard]] std::string name() const override { return "boost-interprocess"; }
  [[nodiscard]] bool supports(const run_spec& spec) const override {
    return !spec.conflate && spec.kind != run_kind::throughput;
  }
  std::unique_ptr<session> prepare(const run_spec& spec) override { return std::make_unique<boost_session>(spec); }
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& name) override {
    return std::make_unique<boost_receiver>(name, spec.wait);
  }
};

const transport_registrar reg(std::make_unique<boost_transport>());

}  // namespace
}  // namespace shmbus::bench
