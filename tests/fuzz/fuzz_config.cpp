// libFuzzer target: random text as a broker configuration file and as a
// --topic spec. Either parses or fails with a shmbus error naming the line;
// never crashes, never throws anything else.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "shmbus/broker.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    shmbus::broker_options opts;
    shmbus::load_config_text(text, "fuzz.ini", opts);
  } catch (const std::system_error&) {
  }
  try {
    (void)shmbus::parse_topic_spec(text);
  } catch (const std::system_error&) {
  }
  return 0;
}
