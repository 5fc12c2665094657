#include "shmbus/error.hpp"

namespace shmbus {
namespace {

class shmbus_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "shmbus"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok: return "success";
      case errc::no_broker: return "no broker is running on the bus";
      case errc::broker_running: return "a live broker already owns the bus";
      case errc::unknown_topic: return "unknown topic";
      case errc::message_too_large: return "message larger than the topic's max_message_size";
      case errc::buffer_too_small: return "buffer too small for the message";
      case errc::type_size_mismatch: return "type size does not match the topic's declared type size";
      case errc::abi_mismatch: return "segment made by an incompatible shmbus version (ABI mismatch)";
      case errc::corrupt_segment: return "shared memory does not hold a valid shmbus segment";
      case errc::permission_denied: return "permission denied";
      case errc::invalid_name: return "invalid name";
      case errc::invalid_argument: return "invalid argument";
      case errc::topic_closed: return "topic closed: its broker stopped or was restarted";
      case errc::too_many_subscribers: return "too many subscribers on the topic";
      case errc::config_error: return "configuration error";
      case errc::not_found: return "no such name";
      case errc::exclusive_publisher: return "another publisher holds the topic's exclusive publish right";
      case errc::key_table_full: return "the keyed topic's key table is full";
      case errc::invalid_key: return "invalid key (keys are 1-63 bytes, and only keyed topics take them)";
    }
    return "unknown shmbus error " + std::to_string(value);
  }
  // So that `ec == std::errc::permission_denied` holds whether the OS said
  // it (EACCES, ERROR_ACCESS_DENIED) or shmbus did: callers test one
  // portable condition. Codes with no portable counterpart keep their own.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::permission_denied: return std::errc::permission_denied;
      case errc::invalid_argument: return std::errc::invalid_argument;
      case errc::message_too_large: return std::errc::message_size;
      case errc::not_found: return std::errc::no_such_file_or_directory;
      case errc::exclusive_publisher: return std::errc::device_or_resource_busy;
      case errc::key_table_full: return std::errc::no_buffer_space;
      case errc::invalid_key: return std::errc::invalid_argument;
      default: return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const shmbus_category category;
  return category;
}

namespace {
std::string describe(std::error_code ec, const std::string& context) {
  if (ec.category() == error_category()) return context.empty() ? ec.message() : context;
  std::string text = context.empty() ? std::string() : context + ": ";
  text += ec.message();
  // Any OS's own category (system, win32) carries a native code worth
  // quoting; generic codes are portable conditions, not native values.
  if (ec.category() != std::generic_category()) text += " [native error " + std::to_string(ec.value()) + "]";
  return text;
}
}  // namespace

error::error(std::error_code ec, const std::string& context)
    : std::system_error(ec, context), text_(describe(ec, context)) {}

void throw_error(std::error_code ec, const std::string& context) { throw error(ec, context); }

std::error_code translate_os_error(std::error_code ec, std::string& what) {
  if (ec.category() == error_category()) return ec;
  // By condition, not by errno value: the same test holds for EACCES/EPERM
  // and for Windows' ERROR_ACCESS_DENIED/ERROR_PRIVILEGE_NOT_HELD.
  if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
    what += ": " + ec.message() + " [native error " + std::to_string(ec.value()) + "]";
    return make_error_code(errc::permission_denied);
  }
  return ec;
}

}  // namespace shmbus
