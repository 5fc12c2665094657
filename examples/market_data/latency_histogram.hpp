#pragma once
// A fixed-size latency histogram for the market-data strategy: 16 buckets
// per power of two (each within 6.25% of its values), so percentiles of an
// arbitrarily long run cost 7.5 KiB, not one sample per message.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace md_demo {

class latency_histogram {
 public:
  /// Records one latency; negative values (clock skew) count as 0.
  void add(std::int64_t ns) noexcept {
    const auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    ++buckets_[index(v)];
    ++count_;
    max_ = std::max(max_, v);
  }
  void merge(const latency_histogram& o) noexcept {
    for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    max_ = std::max(max_, o.max_);
  }
  void clear() noexcept { *this = latency_histogram{}; }

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] double max_us() const noexcept { return static_cast<double>(max_) / 1e3; }

  /// The latency below which a fraction `p` (0..1) of the samples lie, in
  /// microseconds: the upper edge of the bucket holding that sample (never
  /// above the largest sample). 0 without samples.
  [[nodiscard]] double percentile_us(double p) const noexcept {
    if (count_ == 0) return 0;
    const auto rank =
        std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return static_cast<double>(std::min(upper_edge(i), max_)) / 1e3;
    }
    return max_us();
  }

 private:
  static constexpr unsigned sub_bits = 4;
  static constexpr std::uint64_t subs = 1u << sub_bits;
  // Values below 16 get a bucket each; above, 16 buckets per power of two up
  // to 2^63: 60 groups of 16.
  static constexpr std::size_t bucket_count = 60 * subs;

  static std::size_t index(std::uint64_t v) noexcept {
    if (v < subs) return static_cast<std::size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - sub_bits;
    return static_cast<std::size_t>((shift + 1) * subs + ((v >> shift) & (subs - 1)));
  }
  static std::uint64_t upper_edge(std::size_t i) noexcept {
    if (i < subs) return i;
    const std::size_t shift = i / subs - 1;
    return ((subs + i % subs) << shift) + ((std::uint64_t{1} << shift) - 1);
  }

  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace md_demo
