#include "shmbus/platform/shared_memory.hpp"

#include <utility>

#include "os_error.hpp"
#include "shmbus/error.hpp"

// A Windows file mapping lives while any handle or view of it exists, so
// there is nothing to remove by name: remove() reports "not there" and
// list() is empty. The broker keeps its handles for the bus's life.

namespace shmbus::platform {
namespace {

using win32::context;
using win32::last_error;

DWORD view_access(access mode) noexcept {
  return mode == access::read_write ? FILE_MAP_READ | FILE_MAP_WRITE : FILE_MAP_READ;
}

}  // namespace

std::string shared_memory_region::create_impl(std::string_view name, std::size_t size, permissions perms,
                                              std::error_code& ec) {
  ec.clear();
  const std::string native = win32::native_name(name);
  std::string what;
  win32::security sec(perms, ec, what);
  if (ec) return what + " for '" + native + "'";
  const auto size64 = static_cast<std::uint64_t>(size);
  win32::handle_guard h(::CreateFileMappingW(INVALID_HANDLE_VALUE, sec.attributes(), PAGE_READWRITE,
                                             static_cast<DWORD>(size64 >> 32), static_cast<DWORD>(size64),
                                             win32::wide(native).c_str()));
  if (h.h == nullptr) {
    ec = last_error();
    return context("CreateFileMappingW", native);
  }
  // CreateFileMapping opens an existing mapping and says so only here.
  if (::GetLastError() == ERROR_ALREADY_EXISTS) {
    ec = last_error(ERROR_ALREADY_EXISTS);
    return context("CreateFileMappingW", native);
  }
  data_ = ::MapViewOfFile(h.h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, size);
  if (data_ == nullptr) {
    ec = last_error();
    return context("MapViewOfFile", native);
  }
  native_handle_ = h.release();
  size_ = size;
  mode_ = access::read_write;
  name_ = std::string(name);
  return {};
}

// A section's size is fixed at creation: a named one is sealed already.
shared_memory_region shared_memory_region::create_sealed(std::string_view name, std::size_t size,
                                                         const permissions& perms, std::error_code& ec,
                                                         std::string& what) noexcept {
  try {
    shared_memory_region r;
    what = r.create_impl(name, size, perms, ec);
    if (ec) return {};
    return r;
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return {};
  }
}

std::string shared_memory_region::open_impl(std::string_view name, access mode, std::error_code& ec) {
  ec.clear();
  const std::string native = win32::native_name(name);
  win32::handle_guard h(::OpenFileMappingW(view_access(mode), FALSE, win32::wide(native).c_str()));
  if (h.h == nullptr) {
    ec = last_error();
    return context("OpenFileMappingW", native);
  }
  void* view = ::MapViewOfFile(h.h, view_access(mode), 0, 0, 0);
  if (view == nullptr) {
    ec = last_error();
    return context("MapViewOfFile", native);
  }
  // The mapping's size is not queryable through the handle in the documented
  // API; the view's region size is the mapping's size rounded up to a page,
  // an upper bound the segment header's own sizes are checked against.
  MEMORY_BASIC_INFORMATION info{};
  if (::VirtualQuery(view, &info, sizeof info) == 0) {
    ec = last_error();
    ::UnmapViewOfFile(view);
    return context("VirtualQuery", native);
  }
  if (info.RegionSize == 0) {
    ec = make_error_code(errc::corrupt_segment);
    ::UnmapViewOfFile(view);
    return "'" + native + "' is empty";
  }
  data_ = view;
  native_handle_ = h.release();
  size_ = info.RegionSize;
  mode_ = mode;
  name_ = std::string(name);
  return {};
}

void shared_memory_region::reset() noexcept {
  if (data_ != nullptr) ::UnmapViewOfFile(data_);
  if (native_handle_ != nullptr) ::CloseHandle(native_handle_);
  data_ = nullptr;
  native_handle_ = nullptr;
  size_ = 0;
}

bool shared_memory_region::remove(std::string_view, std::error_code& ec) noexcept {
  ec.clear();
  return false;
}

bool shared_memory_region::remove(std::string_view) { return false; }

bool shared_memory_region::names_outlive_handles() noexcept { return false; }

std::vector<std::string> shared_memory_region::list(std::string_view) { return {}; }

}  // namespace shmbus::platform
