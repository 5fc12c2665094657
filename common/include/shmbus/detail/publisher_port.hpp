#pragma once
/// \file
/// The publisher's share of the topic protocol: the publish right (the topic
/// mutex, taken per publish, or the exclusive right, taken once), publishing
/// by copy or by loan, and recovering from a publisher that died holding
/// the right. docs/design.md ("Publishing", "The exclusive publish right",
/// "A publisher dies") argues why it is correct; tests/model/seqlock.pml and
/// tests/model/exclusive.pml check it.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "shmbus/detail/key_table.hpp"
#include "shmbus/detail/topic_segment.hpp"

namespace shmbus::detail {

/// What the recovery inside a publish found, for the caller to log.
struct recovery_report {
  bool recovered = false;            ///< this call recovered from a dead publisher
  std::uint64_t recoveries = 0;      ///< recoveries on this topic so far (filled only when `recovered`)
  std::uint64_t torn_discarded = 0;  ///< half-written messages discarded so far (likewise)
};

class publisher_port {
 public:
  publisher_port() = default;
  explicit publisher_port(topic_segment seg) noexcept : seg_(std::move(seg)) {}
  publisher_port(publisher_port&& other) noexcept;
  publisher_port& operator=(publisher_port&& other) noexcept;
  publisher_port(const publisher_port&) = delete;
  publisher_port& operator=(const publisher_port&) = delete;
  /// Abandons an open loan and gives the exclusive right back.
  ~publisher_port();

  /// Opens topic `declared` (as the registry declares it) of broker `instance` on `bus` for publishing.
  static publisher_port open(std::string_view bus, std::uint64_t instance, const topic_params& declared,
                             std::error_code& ec, std::string& what);

  [[nodiscard]] const topic_segment& segment() const noexcept { return seg_; }

  /// Takes the topic's exclusive publish right for the life of this port
  /// (or until release_exclusive): publishes then take no lock. A holder
  /// that is alive keeps it: errc::exclusive_publisher, at once or, with
  /// `wait`, once `wait` has passed; a dead holder is recovered from (and
  /// `report` says so). Also topic_closed.
  bool acquire_exclusive(std::optional<std::chrono::nanoseconds> wait, std::error_code& ec,
                         recovery_report* report = nullptr) noexcept;
  /// Gives the exclusive right back (abandoning an open loan). Idempotent.
  void release_exclusive() noexcept;
  [[nodiscard]] bool exclusive() const noexcept { return token_ != 0; }
  /// The pid recorded by the exclusive right's holder (whoever it is; 0 = never held), for messages.
  [[nodiscard]] std::uint64_t exclusive_holder_pid() const noexcept;

  /// Publishes one message. Returns the new sequence, or 0 with `ec` set:
  /// message_too_large, type_size_mismatch (the topic declares a type size
  /// and the payload is another size), topic_closed, exclusive_publisher
  /// (another publisher holds the exclusive right), invalid_argument (a
  /// loan is open).
  std::uint64_t publish(std::span<const std::byte> payload, std::error_code& ec,
                        recovery_report* report = nullptr) noexcept;
  /// Publishes one message of a keyed topic under `key`: the message joins
  /// the ring and becomes the key's latest value, a key not seen before
  /// being added. Errors as publish(), and invalid_key (the key is empty or
  /// longer than max_key_size, or the topic is not keyed), key_table_full
  /// (a new key, and the table holds key_capacity keys).
  std::uint64_t publish(std::string_view key, std::span<const std::byte> payload, std::error_code& ec,
                        recovery_report* report = nullptr) noexcept;

  /// The first half of a publish: `size` bytes of the next slot to write in
  /// place, or nullptr with `ec` set (as publish; type_size_mismatch when
  /// the topic declares a smaller type). A shared publisher holds the topic
  /// mutex until commit or abandon.
  std::byte* loan(std::size_t size, std::error_code& ec, recovery_report* report = nullptr) noexcept;
  /// Publishes the loan's first `size` bytes; returns the sequence, or 0
  /// with `ec` set and the loan still open: invalid_argument (no loan, or
  /// `size` beyond it), type_size_mismatch.
  std::uint64_t commit(std::size_t size, std::error_code& ec) noexcept;
  /// Drops the open loan, if any: nothing is published and the next publish
  /// takes the same sequence.
  void abandon() noexcept;
  [[nodiscard]] bool loan_open() const noexcept { return loan_ != nullptr; }
  [[nodiscard]] std::size_t loan_size() const noexcept { return loan_size_; }

  /// Publishers that died holding the publish right, recovered so far.
  [[nodiscard]] std::uint64_t mutex_recoveries() const noexcept;

 private:
  // The size rules of a message of `size` bytes.
  bool check_size(std::size_t size, std::error_code& ec) const noexcept;
  // A keyed publish's key: the caller's bytes and hash; begin_write finds
  // (or adds) its index.
  struct key_arg {
    std::string_view key;
    std::uint64_t hash;
    std::uint32_t index;
  };
  // Takes the publish right for one message (the mutex, unless exclusive),
  // resolves `key` (keyed topics; nullptr for plain ones) and marks the
  // next slot as being written: returns its sequence, or 0 with `ec` set
  // and the right not held.
  // `slot` is returned too, so that the slot's address (a division by the
  // slot count) is computed once per message.
  std::uint64_t begin_write(slot_header*& slot, std::error_code& ec, recovery_report* report, key_arg* key) noexcept;
  // Under the right: the key's index, added if new; false with key_table_full.
  bool resolve_key(key_arg& key, std::error_code& ec) noexcept;
  // Announces message `seq` (its slot complete: write_end) and gives the per-message right back.
  std::uint64_t announce(std::uint64_t seq, std::size_t size, std::int64_t now) noexcept;
  // False (and the right forgotten) in a forked child: the right is its parent's.
  bool right_is_ours() noexcept;
  // Locks the mutex, repairing after a dead owner; false with `ec` set.
  bool lock(std::error_code& ec, bool& recovered) noexcept;
  void unlock_unless_exclusive() noexcept;
  // Under the mutex: false (exclusive_publisher) while a live process holds
  // the exclusive right; takes it back from a dead one.
  bool clear_dead_holder(std::error_code& ec, bool& recovered) noexcept;
  void recover_after_owner_death() noexcept;
  // Recovery, keyed topics: whether the complete ring slot of message `seq`
  // has its key's value complete too (plain topics: true).
  [[nodiscard]] bool value_complete(const slot_header& slot, std::uint64_t seq) const noexcept;
  // Recovery, keyed topics: indexes a key whose adder died before its bucket.
  void repair_key_index() noexcept;
  void copy_payload(std::byte* dst, std::span<const std::byte> payload) noexcept;
  void fill_report(recovery_report* report, bool recovered) const noexcept;

  topic_segment seg_;
  std::uint64_t token_ = 0;        // our exclusive right, 0 = not held
  std::uint64_t incarnation_ = 0;  // platform::process_incarnation() when taken: a forked child has another
  std::uint64_t loan_seq_ = 0;     // the open loan's sequence, 0 = none
  slot_header* loan_slot_ = nullptr;
  std::byte* loan_ = nullptr;
  std::size_t loan_size_ = 0;
};

}  // namespace shmbus::detail
