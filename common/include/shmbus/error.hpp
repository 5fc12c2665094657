#pragma once
/// \file
/// shmbus's error codes. Every failure is reported either by throwing
/// `std::system_error` (whose `what()` names the call and the object) or, with
/// the `std::error_code&` overloads, by setting the code and returning.
///
/// OS failures keep their native code (`errno` / `GetLastError()`) in
/// `std::system_category()`; failures of shmbus's own rules use
/// `shmbus::error_category()`.

#include <string>
#include <string_view>
#include <system_error>

namespace shmbus {

/// shmbus's own error conditions.
enum class errc {
  ok = 0,
  no_broker,             ///< no live broker owns the bus
  broker_running,        ///< a live broker already owns the bus
  unknown_topic,         ///< the bus has no topic of that name
  message_too_large,     ///< the message exceeds the topic's max_message_size
  buffer_too_small,      ///< the caller's buffer cannot hold the message
  type_size_mismatch,    ///< sizeof(T) differs from the topic's declared type size
  abi_mismatch,          ///< the segment was made by an incompatible shmbus
  corrupt_segment,       ///< the shared memory does not hold a valid shmbus segment
  permission_denied,     ///< the OS refused access to a shmbus object
  invalid_name,          ///< a bus or topic name breaks the naming rules
  invalid_argument,      ///< a parameter is out of range
  topic_closed,          ///< the broker that made this topic stopped or was replaced
  too_many_subscribers,  ///< every subscriber slot of the topic is in use
  config_error,          ///< a configuration file or flag could not be parsed
  not_found,             ///< a name given to shmbus (such as a permissions group) names nothing
  exclusive_publisher,   ///< another live publisher holds the topic's exclusive publish right
  key_table_full,        ///< a keyed topic already holds as many keys as it was created for
  invalid_key,  ///< a key is empty, longer than 63 bytes, or given for a plain topic (or missing for a keyed one)
};

/// The category of `shmbus::errc` codes; its name is "shmbus".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

namespace detail {
/// `ec.clear()` only when it holds an error: clear() re-fetches
/// std::system_category() out of line, a call the publish and read paths,
/// which clear their codes on every call, need not pay when already clear.
inline void clear_error(std::error_code& ec) noexcept {
  if (ec) ec.clear();
}
}  // namespace detail

/// A failure with its context, for the non-throwing overloads that keep it:
/// `code` is what the `std::error_code&` overload reports, `what` the
/// sentence the throwing overload's `what()` would say (naming the bus, topic
/// or OS call). Empty (false) after a call that succeeded.
struct error_info {
  std::error_code code;
  std::string what;
  explicit operator bool() const noexcept { return static_cast<bool>(code); }
  void clear() noexcept {
    detail::clear_error(code);
    what.clear();
  }
};

/// What shmbus throws: a `std::system_error` whose `what()` is one readable
/// line. For shmbus codes the context is the whole sentence ("no broker is
/// running on bus 'x'"); for OS codes it names the call and object and the
/// OS's text and native code follow ("shm_open('/shmbus.x.registry'):
/// Permission denied [native error 13]").
class error : public std::system_error {
 public:
  error(std::error_code ec, const std::string& context);
  /// The error `info` describes: `what()` is `info.what`, word for word.
  explicit error(const error_info& info) : std::system_error(info.code, info.what), text_(info.what) {}
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};

/// Throws `shmbus::error(ec, context)`.
[[noreturn]] void throw_error(std::error_code ec, const std::string& context);

/// An OS code that has a shmbus meaning as that shmbus code: access refused
/// (whatever the OS's native code) becomes `errc::permission_denied`, and the
/// OS's text and native code are appended to `what`, which would otherwise
/// lose them. Any other code is returned unchanged.
std::error_code translate_os_error(std::error_code ec, std::string& what);

}  // namespace shmbus

template <>
struct std::is_error_code_enum<shmbus::errc> : std::true_type {};
