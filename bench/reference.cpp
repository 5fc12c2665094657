#include "reference.hpp"

#include <algorithm>
#include <cstring>
#include <new>

#include "shmbus/detail/cpu_relax.hpp"
#include "shmbus/platform/process.hpp"
#include "shmbus/platform/shared_memory.hpp"
#include "sys.hpp"

namespace shmbus::bench::reference {

// Lines written by different parties are kept apart, as in a shmbus topic:
// readers poll write_seq; they write the event word only to sleep.
struct ring::header {
  alignas(64) std::atomic<std::uint64_t> write_seq;
  alignas(64) std::atomic<std::uint32_t> event;  // generation << 1 | sleepers bit (the futex word)
  alignas(64) unsigned char mutex[platform::named_mutex::storage_size];  // "+lock" variant only
  alignas(64) std::uint64_t max_size;
  std::uint64_t depth;
  std::uint64_t slot_count;
  std::uint64_t slot_stride;
};

struct ring::slot {
  alignas(64) std::atomic<std::uint64_t> seq;  // 2s: holds message s; odd: being written
  std::atomic<std::uint64_t> size;
  std::atomic<std::int64_t> stamp;  // "+ts" variant only
};

namespace {

constexpr std::uint32_t sleepers_bit = 1;
constexpr std::uint64_t line = 64;

std::uint64_t round_up(std::uint64_t n) { return (n + line - 1) / line * line; }

}  // namespace

std::size_t ring::bytes_for(std::size_t max_size, std::uint32_t depth) noexcept {
  const std::uint64_t slots = std::max<std::uint64_t>(depth + 1ULL, 3);
  return static_cast<std::size_t>(sizeof(header) + slots * (sizeof(slot) + round_up(max_size)));
}

void ring::init(void* base, std::size_t max_size, std::uint32_t depth) noexcept {
  auto* h = new (base) header{};
  h->max_size = max_size;
  h->depth = depth;
  h->slot_count = std::max<std::uint64_t>(depth + 1ULL, 3);
  h->slot_stride = sizeof(slot) + round_up(max_size);
  auto* slots = static_cast<std::byte*>(base) + sizeof(header);
  for (std::uint64_t i = 0; i < h->slot_count; ++i) new (slots + i * h->slot_stride) slot{};
}

ring::ring(void* base) noexcept
    : header_(static_cast<header*>(base)),
      slots_(static_cast<std::byte*>(base) + sizeof(header)),
      slot_count_(header_->slot_count),
      slot_stride_(header_->slot_stride),
      depth_(header_->depth),
      max_size_(header_->max_size),
      seq_(header_->write_seq.load()) {}

std::uint64_t ring::newest() const noexcept { return header_->write_seq.load(std::memory_order_seq_cst); }

ring::slot* ring::slot_of(std::uint64_t seq) const noexcept {
  return reinterpret_cast<slot*>(slots_ + (seq % slot_count_) * slot_stride_);
}

void* ring::mutex_storage(void* base) noexcept { return static_cast<header*>(base)->mutex; }

void ring::publish(std::span<const std::byte> payload) noexcept { write(payload, 0); }

void ring::publish_stamped_locked(std::span<const std::byte> payload, platform::named_mutex& mutex) {
  const std::int64_t now = platform::monotonic_ns();
  mutex.lock();  // a dead owner is not recovered: the reference has one publisher
  write(payload, now);
  mutex.unlock();
}

void ring::write(std::span<const std::byte> payload, std::int64_t stamp) noexcept {
  const std::uint64_t s = ++seq_;
  slot* sl = slot_of(s);
  sl->seq.store(2 * s - 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(reinterpret_cast<std::byte*>(sl + 1), payload.data(), payload.size());
  sl->size.store(payload.size(), std::memory_order_relaxed);
  if (stamp != 0) sl->stamp.store(stamp, std::memory_order_relaxed);
  sl->seq.store(2 * s, std::memory_order_release);
  // Store then load, both seq_cst, against the waiter's set-bit-then-check:
  // either we see its bit or it sees our message.
  header_->write_seq.store(s, std::memory_order_seq_cst);
  if ((header_->event.load(std::memory_order_seq_cst) & sleepers_bit) == 0) return;
  std::uint32_t cur = header_->event.load(std::memory_order_relaxed);
  while (!header_->event.compare_exchange_weak(cur, (cur & ~sleepers_bit) + 2, std::memory_order_seq_cst)) {
  }
  sys::futex_wake_all(header_->event);
}

std::optional<std::size_t> ring::try_read(std::uint64_t& next, std::span<std::byte> dst, std::uint64_t& missed) const {
  // Lapped 1000 times in a row: give up for now, like a shmbus read.
  for (int attempts = 0; attempts < 1000; ++attempts) {
    const std::uint64_t w = header_->write_seq.load(std::memory_order_seq_cst);
    if (next > w) return std::nullopt;
    const std::uint64_t oldest = w >= depth_ ? w - depth_ + 1 : 1;
    if (next < oldest) {
      missed += oldest - next;
      next = oldest;
    }
    const slot* sl = slot_of(next);
    const std::uint64_t v1 = sl->seq.load(std::memory_order_acquire);
    if (v1 != 2 * next) continue;
    const std::uint64_t size = sl->size.load(std::memory_order_relaxed);
    if (size > dst.size() || size > max_size_) fail("reference: message larger than the buffer");
    std::memcpy(dst.data(), reinterpret_cast<const std::byte*>(sl + 1), size);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (sl->seq.load(std::memory_order_relaxed) != v1) continue;
    ++next;
    return static_cast<std::size_t>(size);
  }
  return std::nullopt;
}

bool ring::poll(std::uint64_t next, std::optional<std::int64_t> until_ns) const noexcept {
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (header_->write_seq.load(std::memory_order_seq_cst) >= next) return true;
      detail::cpu_relax();
    }
    if (until_ns && platform::monotonic_ns() >= *until_ns) return newest() >= next;
  }
}

bool ring::block(std::uint64_t next, std::optional<std::int64_t> until_ns) {
  for (;;) {
    if (newest() >= next) return true;
    std::uint32_t cur = header_->event.load(std::memory_order_seq_cst);
    if ((cur & sleepers_bit) == 0 &&
        !header_->event.compare_exchange_strong(cur, cur | sleepers_bit, std::memory_order_seq_cst))
      continue;
    // The bit is set: a publish from now on wakes us, and one before is seen here.
    if (newest() >= next) return true;
    std::optional<nanoseconds> left;
    if (until_ns) {
      const std::int64_t now = platform::monotonic_ns();
      if (now >= *until_ns) return false;
      left = nanoseconds(*until_ns - now);
    }
    sys::futex_wait(header_->event, cur | sleepers_bit, left);
  }
}

bool ring::wait(std::uint64_t next, const wait_strategy& how, std::optional<nanoseconds> timeout) {
  const std::int64_t now = platform::monotonic_ns();
  std::optional<std::int64_t> until;
  if (timeout) until = now + timeout->count();
  if (how.mode == wait_mode::block) return block(next, until);
  std::optional<std::int64_t> spin_until_ns = until;
  if (how.mode == wait_mode::spin_then_block && (!until || now + how.spin.count() < *until))
    spin_until_ns = now + how.spin.count();
  if (poll(next, spin_until_ns)) return true;
  if (how.mode == wait_mode::busy_poll || spin_until_ns == until) return false;
  return block(next, until);
}

// ---- the reference as a benchmark transport -----------------------------

namespace {

std::uint32_t depth_of(const run_spec& spec) {
  return spec.kind == run_kind::throughput && !spec.conflate ? spec.depth : 1;
}

class ref_sender final : public sender {
 public:
  ref_sender(void* base, platform::named_mutex* mutex) : ring_(base), mutex_(mutex) {}
  void send(std::span<const std::byte> msg) override {
    if (mutex_ != nullptr)
      ring_.publish_stamped_locked(msg, *mutex_);
    else
      ring_.publish(msg);
  }

 private:
  ring ring_;
  platform::named_mutex* mutex_;
};

class ref_receiver final : public receiver {
 public:
  ref_receiver(platform::shared_memory_region region, const wait_strategy& how)
      : region_(std::move(region)), ring_(region_.data()), how_(how), next_(ring_.newest() + 1) {}
  std::optional<delivery> receive(std::span<std::byte> buf, std::optional<nanoseconds> timeout) override {
    for (;;) {
      if (auto n = ring_.try_read(next_, buf, missed_)) return delivery{*n};
      if (!ring_.wait(next_, how_, timeout)) return std::nullopt;
    }
  }

 private:
  platform::shared_memory_region region_;
  ring ring_;
  wait_strategy how_;
  std::uint64_t next_;
  std::uint64_t missed_ = 0;
};

class ref_session final : public session {
 public:
  ref_session(const run_spec& spec, bool locked) : name_(spec.name + ".ref") {
    const std::size_t bytes = ring::bytes_for(spec.size, depth_of(spec));
    std::error_code ignored;
    platform::shared_memory_region::remove(name_, ignored);  // a leftover of a killed run
    region_ = platform::shared_memory_region(create_only, name_, bytes);
    ring::init(region_.data(), spec.size, depth_of(spec));
    if (locked) {
      mutex_ =
          std::make_unique<platform::named_mutex>(create_only, name_ + "#mutex", ring::mutex_storage(region_.data()));
    }
    credit_ = spec.kind == run_kind::throughput && !spec.conflate;
  }
  ~ref_session() override {
    std::error_code ignored;
    platform::shared_memory_region::remove(name_, ignored);
  }
  [[nodiscard]] std::string child_arg() const override { return name_; }
  std::unique_ptr<sender> open_sender() override { return std::make_unique<ref_sender>(region_.data(), mutex_.get()); }
  [[nodiscard]] bool needs_credit() const override { return credit_; }

 private:
  std::string name_;
  platform::shared_memory_region region_;
  std::unique_ptr<platform::named_mutex> mutex_;
  bool credit_ = false;
};

// "reference": the design's limit. "reference+ts+lock": the same plus a
// timestamp and a robust mutex per publish, the two largest fixed costs
// shmbus adds; the gap left between it and shmbus is everything else.
class ref_transport final : public transport {
 public:
  explicit ref_transport(bool locked) : locked_(locked) {}
  [[nodiscard]] std::string name() const override { return locked_ ? "reference+ts+lock" : "reference"; }
  [[nodiscard]] bool supports(const run_spec& spec) const override {
    return spec.wait.mode == wait_mode::busy_poll || sys::has_futex();
  }
  [[nodiscard]] std::string unsupported_reason(const run_spec&) const override {
    return "no cross-process futex on this platform: the reference busy-polls only";
  }
  std::unique_ptr<session> prepare(const run_spec& spec) override {
    return std::make_unique<ref_session>(spec, locked_);
  }
  std::unique_ptr<receiver> open_receiver(const run_spec& spec, unsigned, const std::string& arg) override {
    return std::make_unique<ref_receiver>(platform::shared_memory_region(open_only, arg, access::read_write),
                                          spec.wait);
  }

 private:
  bool locked_;
};

const transport_registrar reg(std::make_unique<ref_transport>(false));
const transport_registrar reg_locked(std::make_unique<ref_transport>(true));

}  // namespace

}  // namespace shmbus::bench::reference
