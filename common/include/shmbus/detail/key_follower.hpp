#pragma once
/// \file
/// A subscriber's view of a keyed topic: which keys it follows, a private
/// validated copy of each key's name, the snapshot it joined with (or
/// resynchronised to) and what it knows of each key's updates, so that the
/// stream after a snapshot applies no update twice and a filtered stream
/// counts exactly the updates of its keys it lost. Owned by
/// subscriber_port; docs/design.md ("Keyed topics") argues why it is exact.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "shmbus/detail/key_table.hpp"
#include "shmbus/detail/seqlock.hpp"
#include "shmbus/types.hpp"

namespace shmbus::detail {

class key_follower {
 public:
  /// Inactive: a plain topic.
  key_follower() = default;
  /// Follows `filter`'s keys of the table (every key when empty).
  key_follower(const key_table_view& keys, const ring_view& ring, std::span<const std::string> filter);

  [[nodiscard]] bool active() const noexcept { return keys_.keyed(); }
  [[nodiscard]] bool filtered() const noexcept { return !filter_.empty(); }

  /// The stream's decision on a message (its slot not yet validated): skip
  /// a key not followed or an update the snapshot holds; take otherwise.
  /// Sets the corruption flag (and asks to stop) for a key index the table
  /// does not hold.
  visit_action decide(const message_info& meta, const slot_keys& keys) noexcept;
  /// True when the last decide() met a key index the table does not hold.
  [[nodiscard]] bool corrupt() const noexcept { return corrupt_; }
  /// Describes a stream message decide() took: names its key in `info`
  /// and, when filtered, replaces `info.missed` (losses of any key) by the
  /// updates of this key lost since the last one delivered. Changes
  /// nothing: commit() does, once the message is delivered.
  void describe(message_info& info, const slot_keys& keys) noexcept;
  /// The message last described was delivered (or consumed uncopied).
  void commit() noexcept;

  /// Copies every followed key's announced value and returns the cursor
  /// the stream resumes at (the newest sequence before the copy, + 1); the
  /// values are delivered first (next_snapshot), and stream messages they
  /// already hold are skipped. `skipped` receives, for a resynchronisation
  /// from `cursor`, the updates that will never be delivered, one by one or
  /// as a key's latest value (nor were reported missed). 0 with `ec` set on
  /// failure (nothing changed).
  std::uint64_t take_snapshot(std::uint64_t cursor, std::uint64_t pending_missed, std::uint64_t& skipped,
                              std::error_code& ec) noexcept;
  [[nodiscard]] bool snapshot_pending() const noexcept { return pos_ < snapshot_.size(); }
  /// The next snapshot value into `dst` (consumed when `ok`).
  read_status next_snapshot(std::span<std::byte> dst, message_info& info) noexcept;
  /// Consumes the next snapshot value uncopied (a typed read's mismatch).
  void skip_snapshot() noexcept { advance(); }
  /// Calls `f(info, payload)` on the next snapshot value, then consumes it
  /// (unless `f` throws).
  template <class F>
  void peek_snapshot(F&& f) {
    const snapshot_value& v = snapshot_[pos_];
    f(static_cast<const message_info&>(v.info), std::span<const std::byte>(bytes_.get() + v.offset, v.info.size));
    advance();
  }

  /// A filtered stream from `cursor` on: each followed key's update count as
  /// of message cursor-1, so that its first delivered update can tell what
  /// was lost before it. With `movable`, the cursor may be moved to a later
  /// point where the counts can be read exactly (no publish in between);
  /// returns the cursor to use.
  std::uint64_t set_baselines(std::uint64_t cursor, bool movable) noexcept;
  /// Follows `filter` from now on (every key when empty); keys newly
  /// followed get their baselines at `cursor`.
  void set_filter(std::span<const std::string> filter, std::uint64_t cursor) noexcept;

  /// Key `key`'s announced value into `dst`: ok, empty (no such key or no
  /// value yet), buffer_too_small.
  read_status get(std::string_view key, std::span<std::byte> dst, message_info& info, std::error_code& ec) noexcept;
  /// Every key with an announced value, in the order they were added.
  std::vector<key_stats> list(std::error_code& ec);

 private:
  // The private copy of key `index`'s name, copied and validated the first
  // time it is needed; false when the table does not hold that index.
  bool resolve(std::uint32_t index) noexcept;
  [[nodiscard]] bool follows(std::string_view name) const noexcept {
    return filter_.empty() || filter_.count(std::string(name)) != 0;
  }
  // The announced update count of key `index` as of message `at`, or
  // nullopt when both retained values are newer than that.
  std::optional<std::uint64_t> key_seq_at(std::uint32_t index, std::uint64_t at) noexcept;

  // Consumes a snapshot value; the copy is freed after the last one.
  void advance() noexcept;
  // take_snapshot's halves: the copy of every followed key's value (the
  // resume point, 0 with `ec` set), then what it changes in our state.
  std::uint64_t copy_values(std::error_code& ec) noexcept;
  void commit_snapshot(std::uint64_t cursor, std::uint64_t pending_missed, std::uint64_t& skipped) noexcept;

  struct snapshot_value {
    message_info info;
    std::uint32_t index;
    std::size_t offset;  // in bytes_
  };
  static constexpr std::uint64_t unknown = ~std::uint64_t{0};

  key_table_view keys_;
  ring_view ring_;
  std::unordered_set<std::string> filter_;   // empty: every key
  std::deque<std::string> names_;            // by index; a deque, so views into it stay valid
  std::vector<std::uint8_t> follow_;         // by index
  std::vector<std::uint64_t> last_key_seq_;  // by index (filtered): updates accounted for, `unknown` at first
  std::vector<std::uint64_t> snapshot_seq_;  // by index: the snapshot's value's sequence, 0 = none
  std::uint64_t dedup_until_ = 0;            // the largest snapshot_seq_: later messages are never in it
  std::vector<snapshot_value> snapshot_;
  std::unique_ptr<std::byte[]> bytes_;  // the values, back to back
  std::size_t pos_ = 0;
  std::uint64_t resume_ = 0;  // the snapshot's resume point
  bool corrupt_ = false;
  slot_keys described_;  // the last describe()'s message
};

}  // namespace shmbus::detail
