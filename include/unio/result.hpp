// result<T>: a value or a std::error_code.
//
// Error convention (stated once for the whole library): every failure is a std::error_code in
// std::generic_category() carrying the errno value the kernel or libc reported, for example
// std::errc::no_such_file_or_directory for ENOENT. The one exception: name look-ups
// (loop::async_resolve) report getaddrinfo's EAI_* codes in unio::resolve_category() (net.hpp).
// unio never throws on I/O failure; it throws only from constructors that cannot produce a
// usable object (loop with an unavailable backend), from result<T>::value() when the caller asks
// for a value that is not there, and from co_await lp.async_work(fn) when fn itself threw.
#pragma once

#include <cerrno>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace unio {

// Builds the error_code for an errno value.
inline std::error_code errno_code(int e) noexcept { return {e, std::generic_category()}; }

template <class T>
class [[nodiscard]] result {
 public:
  result(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit by design
  result(std::error_code ec) : v_(std::in_place_index<1>, ec) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // REQUIRES: has_value(); otherwise throws std::system_error with the error.
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }

  // The error, or an empty error_code on success.
  std::error_code error() const noexcept { return has_value() ? std::error_code{} : std::get<1>(v_); }
  T value_or(T other) const { return has_value() ? std::get<0>(v_) : other; }

 private:
  void check() const {
    if (!has_value()) throw std::system_error(std::get<1>(v_));
  }
  std::variant<T, std::error_code> v_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(std::error_code ec) : ec_(ec) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return !ec_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (ec_) throw std::system_error(ec_);
  }
  std::error_code error() const noexcept { return ec_; }

 private:
  std::error_code ec_;
};

}  // namespace unio
