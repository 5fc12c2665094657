#include "shmbus/clock.hpp"

#include "shmbus/platform/process.hpp"

namespace shmbus {

// Out of line so that the public header does not bring in the platform
// layer, which is not installed.
std::int64_t monotonic_ns() noexcept { return platform::monotonic_ns(); }

}  // namespace shmbus
