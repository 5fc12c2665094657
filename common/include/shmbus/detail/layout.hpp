#pragma once
/// \file
/// The bytes shmbus puts in shared memory: the bus registry and the topic
/// segment. Every struct is standard layout with fixed-width fields and
/// always-lock-free atomics, so processes built by different compilers agree
/// on it. Anything read from a mapping is checked by the `validate_*`
/// functions before a single other field is trusted.
///
/// Topic data:     [topic_header][slot x slot_count]
///                 keyed topics also: [key bucket x bucket_count][key_entry x key_capacity]
///                                    [value slot x 2 x key_capacity]
/// Topic control:  [control_header][subscriber_entry x max_subscribers]
/// Registry:       [registry_header][topic_entry x topic_count]
///
/// A topic is two segments so that subscribers can map its data read-only:
/// what a subscriber must write (its entry, the event's sleeper state) lives
/// in the control segment; the messages, the mutex and the counters, which
/// only publishers and the broker write, live in the data segment.
///
/// `alignas(64)` puts fields written by different parties on different cache
/// lines (the x86/ARM line size), so a subscriber polling `write_seq` does not
/// keep losing its line to statistics the publisher bumps, and two
/// subscribers' entries never share a line.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include "shmbus/platform/named_event.hpp"
#include "shmbus/platform/named_mutex.hpp"
#include "shmbus/topic_params.hpp"

namespace shmbus::detail {

inline constexpr std::size_t cache_line = 64;
// 2: a topic is a data and a control segment; publishers take the next
// sequence from `publish_seq` (their own line), not from `write_seq`.
// 3: the Windows event is one auto-reset event per subscriber entry.
// 4: the topic header holds its parameters as a topic_decl, as the registry does.
// 5: topic_decl loses type_tag (nothing set or checked it), 96 -> 88 bytes.
// 6: the publisher line holds the exclusive publish right's owner record.
// 7: keyed topics: topic_decl.key_capacity, the key line, the key region;
//    slot_header's size is 32 bits beside the key index, and carries key_seq.
inline constexpr std::uint32_t abi_version = 7;
inline constexpr std::uint64_t topic_magic = 0x3150544255424D53ULL;     // "SMBUBTP1"
inline constexpr std::uint64_t registry_magic = 0x3147524255424D53ULL;  // "SMBUBRG1"
inline constexpr std::uint64_t control_magic = 0x3154434255424D53ULL;   // "SMBUBCT1"

inline constexpr std::uint64_t max_message_size_limit = 1ULL << 30;  // 1 GiB
inline constexpr std::uint32_t max_depth_limit = 1U << 20;
inline constexpr std::uint32_t max_subscribers_limit = 4096;
inline constexpr std::uint32_t max_topics_limit = 4096;
/// Keys a keyed topic may hold (its key capacity); a key is 1..max_key_size bytes.
inline constexpr std::uint32_t max_keys_limit = 1U << 22;
inline constexpr std::size_t max_key_size = 63;

using a_u32 = std::atomic<std::uint32_t>;
using a_u64 = std::atomic<std::uint64_t>;
using a_i64 = std::atomic<std::int64_t>;
static_assert(a_u32::is_always_lock_free && a_u64::is_always_lock_free && a_i64::is_always_lock_free,
              "shared-memory atomics must be lock-free: a lock would live in one process only");

/// What every segment header starts with: which segment it is (magic), in
/// which layout (ABI version, header size) and how many bytes it spans.
/// Written once by the broker; checked on a private copy before anything
/// else in the header is looked at.
struct segment_preamble {
  std::uint64_t magic;
  std::uint32_t abi_version;
  std::uint32_t header_size;  ///< sizeof the segment's header struct
  std::uint64_t total_size;   ///< bytes of the whole segment
};

/// Segment life: the broker writes `ready` last; `closed` tells clients the
/// broker stopped or a new broker replaced this segment.
enum class segment_state : std::uint32_t { initializing = 0, ready = 1, closed = 2 };

/// A topic's parameters (shmbus::topic_params) as shared memory holds them:
/// in the registry, one per topic, and in each topic header. Written once by
/// the broker; read only through `decode`, and trusted only once
/// compute_geometry has accepted the decoded copy.
struct topic_decl {
  char name[64];  ///< NUL-terminated
  std::uint64_t max_message_size;
  std::uint32_t depth;
  std::uint32_t type_size;
  std::uint32_t max_subscribers;
  std::uint32_t key_capacity;  ///< 0: a plain topic; N: a keyed topic of up to N keys
};

struct topic_header {
  // Lines 0-2: immutable after creation (the broker writes them before
  // `ready`), validated on open.
  segment_preamble preamble;  ///< total_size: bytes of the whole data segment
  std::uint64_t slot_stride;  ///< bytes per slot, header included
  std::uint32_t slot_count;   ///< slots in the ring (>= depth + 1, >= 3)
  std::uint32_t reserved1;
  alignas(cache_line) topic_decl decl;
  // Line 2: lifecycle, written by the broker.
  alignas(cache_line) a_u32 state;
  std::uint32_t reserved0;
  std::uint64_t broker_pid;
  // Own line: the mutex (publishers only).
  alignas(cache_line) unsigned char mutex_storage[platform::named_mutex::storage_size];
  // Own line: what subscribers poll. Written once per publish.
  alignas(cache_line) a_u64 write_seq;  ///< sequence of the newest complete message, 0 = none
  // Own line: publisher-side state and statistics, written by whoever holds
  // the publish right (the mutex, or the exclusive right); subscribers never
  // read it. Single-writer stores, never read-modify-writes, on the publish path.
  alignas(cache_line) a_u64 bytes_published;
  a_u64 mutex_recoveries;  ///< publishers that died holding the mutex or the exclusive right
  a_u64 torn_discarded;    ///< half-written slots discarded by recovery
  a_i64 last_publish_ns;
  /// The publishers' copy of `write_seq`: the next publish takes the
  /// sequence after it. Subscribers polling `write_seq` pull that line away
  /// from the publisher's core, so reading it first would cost a cache-line
  /// transfer before the slot could even be chosen; this line stays with
  /// the publisher. Recovery resets it from `write_seq`.
  a_u64 publish_seq;
  /// The exclusive publish right (publisher_port::acquire_exclusive): the
  /// holder's token, 0 while nobody holds it, and the holder's identity for
  /// the liveness check. Written under the mutex only; the holder reads its
  /// token on every publish, from this line it writes anyway.
  a_u64 exclusive_token;
  a_u64 exclusive_pid;
  a_u64 exclusive_start_time;
  // Own line (keyed topics): the key table's fill, written by the holder of
  // the publish right when it adds a key, read by readers resolving one.
  alignas(cache_line) a_u32 key_count;  ///< entries of the key table in use; release-stored after the entry
  std::uint32_t reserved2;
};

/// Header of a topic's control segment, which every client maps read-write.
struct control_header {
  segment_preamble preamble;      ///< total_size: bytes of the control segment
  std::uint32_t max_subscribers;  ///< entries that follow the header
  std::uint32_t reserved0;
  alignas(cache_line) char name[64];  ///< topic name, NUL-terminated
  // Own line: the event's state (futex word on POSIX; Windows: generation
  // and hint bits); waiters and publishers write it.
  alignas(cache_line) unsigned char event_storage[platform::named_event::storage_size];
};

/// One registered subscriber. `state` = generation << 2 | phase, phase 0
/// free, 1 claimed (being filled), 2 live; every change bumps the generation
/// so that a reaper's compare-exchange cannot free an entry that was freed
/// and re-claimed since it looked (ABA).
struct alignas(cache_line) subscriber_entry {
  a_u64 state;
  a_u32 waiting;  ///< 1 while blocked in wait()
  /// Windows event: 1 while this subscriber is about to sleep or asleep
  /// (set by it, cleared by it or by the publisher that signals it). POSIX: 0.
  a_u32 sleeping;
  a_u64 pid;
  a_u64 start_time;
  a_u64 read_seq;  ///< last sequence consumed, for lag reporting
  a_u64 missed;    ///< messages reported missed so far
  a_u64 received;
};

/// Per-slot header; the payload follows it. `seq` is a seqlock word:
/// 2s-1 while message s is being written (or after recovery discarded a
/// torn message s: the next publish reuses s), 2s once it is complete, 0
/// never written. It never decreases, except that recovery may turn an
/// unannounced complete 2s back into 2s-1 (keyed topics, design.md).
/// The same header starts each half of a key's value pair.
struct alignas(cache_line) slot_header {
  a_u64 seq;
  // Atomics (relaxed) although the seqlock validates them: a plain field
  // could legally be loaded twice, checked once and used unchecked.
  a_u32 size;  ///< payload bytes (max_message_size_limit fits)
  a_u32 key;   ///< keyed topics: the key's index in the key table; 0 otherwise
  a_i64 timestamp_ns;
  a_u64 key_seq;  ///< keyed topics: 1, 2, 3 ... per key (its updates so far); 0 otherwise
};

/// One key of a keyed topic's key table: written once, by the holder of the
/// publish right, before `key_count` covers it; immutable afterwards.
struct key_entry {
  std::uint8_t size;  ///< 1..max_key_size
  char bytes[max_key_size];
};

/// A bucket of the key index (open addressing, linear probing): 0 empty,
/// else (hash >> 32) << 32 | (key index + 1). Stored once, with release,
/// after the entry it names; never changed afterwards.
using key_bucket = a_u64;

inline constexpr std::uint64_t sub_free = 0, sub_claimed = 1, sub_live = 2;
inline constexpr std::uint64_t sub_phase(std::uint64_t state) noexcept { return state & 3; }
inline constexpr std::uint64_t sub_next(std::uint64_t state, std::uint64_t phase) noexcept {
  return ((state >> 2) + 1) << 2 | phase;
}

struct registry_header {
  segment_preamble preamble;  ///< magic written last, once the rest is filled
  std::uint32_t entry_size;   ///< sizeof(topic_entry)
  std::uint32_t topic_count;
  alignas(cache_line) char bus[64];
  alignas(cache_line) a_u32 state;
  std::uint32_t reserved0;
  std::uint64_t broker_pid;
  std::uint64_t broker_start_time;
  std::int64_t started_ns;
  std::uint64_t instance;  ///< random per broker start; part of topic object names
  alignas(cache_line) a_i64 heartbeat_ns;
};

/// A registry entry: one topic's declaration.
using topic_entry = topic_decl;

static_assert(std::is_standard_layout_v<segment_preamble>);
static_assert(std::is_standard_layout_v<topic_header>);
static_assert(std::is_standard_layout_v<control_header>);
static_assert(sizeof(control_header) % cache_line == 0);
static_assert(std::is_standard_layout_v<subscriber_entry>);
static_assert(std::is_standard_layout_v<slot_header>);
static_assert(std::is_standard_layout_v<registry_header>);
static_assert(std::is_standard_layout_v<topic_decl>);
static_assert(sizeof(topic_header) % cache_line == 0);
static_assert(offsetof(topic_header, exclusive_start_time) + sizeof(a_u64) - offsetof(topic_header, bytes_published) <=
                  cache_line,
              "the publishers' state is one cache line");
static_assert(sizeof(subscriber_entry) == cache_line);
static_assert(sizeof(slot_header) == cache_line);
static_assert(std::is_standard_layout_v<key_entry> && sizeof(key_entry) == 64);
static_assert(max_message_size_limit <= UINT32_MAX, "slot_header::size is 32 bits");
static_assert(sizeof(topic_decl) == 88);
static_assert(alignof(topic_header) == cache_line);

using shmbus::topic_params;

/// The derived geometry of a topic segment.
struct topic_geometry {
  std::uint32_t slot_count;
  std::uint64_t slot_stride;
  std::uint64_t slots_offset;        ///< in the data segment
  std::uint64_t total_size;          ///< of the data segment
  std::uint64_t subscribers_offset;  ///< in the control segment
  std::uint64_t control_size;        ///< of the control segment
  // Keyed topics (0 otherwise): the key region of the data segment.
  std::uint32_t bucket_count;    ///< a power of two >= 2 x key_capacity
  std::uint64_t buckets_offset;  ///< key_bucket x bucket_count
  std::uint64_t entries_offset;  ///< key_entry x key_capacity
  std::uint64_t values_offset;   ///< slot x 2 x key_capacity, each slot_stride bytes
};

/// Checks the parameters (ranges, name, overflow) and computes the layout.
/// Returns `errc::invalid_argument`/`invalid_name` with `why` filled.
std::error_code compute_geometry(const topic_params& p, topic_geometry& out, std::string* why);

/// The one conversion between topic_params and their shared-memory form.
/// `decode` reads a private copy (never a live mapping) and does not
/// validate: feed its result to compute_geometry before trusting it.
topic_decl encode(const topic_params& p) noexcept;
topic_params decode(const topic_decl& d);

/// The preamble of a header of type H in this build.
template <class H>
constexpr segment_preamble preamble_of(std::uint64_t magic, std::uint64_t total_size) noexcept {
  return {magic, abi_version, static_cast<std::uint32_t>(sizeof(H)), total_size};
}

/// Writes a fresh header into zeroed memory (state stays `initializing`).
void init_topic_header(void* base, const topic_params& p, const topic_geometry& g);
/// Writes a fresh control header into zeroed memory.
void init_control_header(void* base, const topic_params& p, const topic_geometry& g);

/// Checks a mapped topic segment: size, magic, ABI, header size, geometry,
/// name. `expected_name` may be empty to skip the name check.
std::error_code validate_topic(std::span<const std::byte> mapping, std::string_view expected_name, std::string* why);

/// Checks a mapped control segment against the topic's validated
/// parameters: its size only. Its header (magic, ABI, sizes, name) is
/// written once by the broker, but any subscriber can overwrite it, so it
/// cannot be trusted to refuse anyone.
std::error_code validate_control(std::span<const std::byte> mapping, const topic_params& p, std::string* why);

/// Checks a mapped registry: size, magic, ABI, header and entry sizes, count.
/// `copy` receives the header that was checked: use it, never the mapping.
std::error_code validate_registry(std::span<const std::byte> mapping, registry_header& copy, std::string* why);

/// Reads a NUL-terminated name from a fixed field without running past it.
std::string_view fixed_string(const char (&field)[64]) noexcept;
void set_fixed_string(char (&field)[64], std::string_view value) noexcept;

inline topic_header& header_of(void* base) noexcept { return *static_cast<topic_header*>(base); }
inline registry_header& registry_of(void* base) noexcept { return *static_cast<registry_header*>(base); }
inline topic_entry* topic_entries_of(void* base) noexcept {
  return reinterpret_cast<topic_entry*>(static_cast<std::byte*>(base) + sizeof(registry_header));
}

}  // namespace shmbus::detail
