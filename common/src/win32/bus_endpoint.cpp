#include "shmbus/platform/bus_endpoint.hpp"

#include <new>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// The claim is a named event that only the broker creates and holds (the
// default DACL keeps other users from opening it): creating it fails with
// ERROR_ALREADY_EXISTS while its owner lives, and the name dies with the
// owner's last handle, which the kernel closes however the process ends.
// Sections never change size, so sealed regions are opened by name.

namespace shmbus::platform {

using win32::context;
using win32::last_error;

struct bus_endpoint::impl {
  HANDLE claim = nullptr;
  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    if (claim != nullptr) ::CloseHandle(claim);
  }
};

void bus_endpoint::impl_deleter::operator()(impl* p) const noexcept { delete p; }

bus_endpoint::bus_endpoint(create_only_t, std::string_view name, std::error_code& ec, std::string& what) noexcept {
  ec.clear();
  try {
    const std::string native = win32::native_name(std::string(name) + ".claim");
    std::unique_ptr<impl, impl_deleter> m(new impl);
    m->claim = ::CreateEventW(nullptr, TRUE, FALSE, win32::wide(native).c_str());
    if (m->claim == nullptr) {
      ec = last_error();
      what = context("CreateEventW", native);
      return;
    }
    if (::GetLastError() == ERROR_ALREADY_EXISTS) {
      ec = make_error_code(errc::broker_running);
      what = context("CreateEventW", native) + ": a live broker already owns this bus";
      return;
    }
    impl_ = std::move(m);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
}

void bus_endpoint::offer(std::string_view, const shared_memory_region&, const permissions&, std::error_code& ec,
                         std::string&) noexcept {
  ec.clear();
}

void bus_endpoint::serve(std::error_code& ec, std::string&) noexcept { ec.clear(); }

shared_memory_region bus_endpoint::obtain(std::string_view, std::string_view object, access mode, std::error_code& ec,
                                          std::string& what) noexcept {
  shared_memory_region r(open_only, object, mode, ec);
  if (ec) what = context("OpenFileMappingW", win32::native_name(object));
  return r;
}

}  // namespace shmbus::platform
