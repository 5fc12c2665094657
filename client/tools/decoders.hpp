#pragma once
// Display decoders for `shmbus sub --format TYPE`: each knows one registered
// payload struct and turns a message into one line of `Field=value` pairs.
// Adding a type is adding an entry to decoders() in decoders.cpp.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace shmbus::cli {

struct decoder {
  std::string_view name;         ///< what --format takes
  std::string_view description;  ///< one line for --help
  std::size_t size;              ///< sizeof the struct; messages of other sizes are not decoded
  /// Appends the decoded message (exactly `size` bytes) to `out`, one line without '\n'.
  void (*format)(std::span<const std::byte> payload, std::string& out);
};

/// Every registered decoder.
std::span<const decoder> decoders() noexcept;
/// The decoder called `name`, or nullptr.
const decoder* find_decoder(std::string_view name) noexcept;

/// Appends `bytes` as text, escaping backslash, control bytes and DEL, so
/// one message stays on one line.
void append_escaped(std::string& out, std::string_view bytes);

}  // namespace shmbus::cli
