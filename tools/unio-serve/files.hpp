// unio-serve: request paths, byte ranges, HTTP dates and content types (pure functions, no I/O).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace serve {

// The path of a request target ("/a%20b/c?x=1" -> "a b/c"), relative to the served root: the
// query and fragment are dropped, %XX sequences are decoded and the single leading '/' is
// removed ("/" -> "."). nullopt when the target is malformed (not origin- or absolute-form, a bad
// %-escape, or a decoded NUL byte). Nothing else is filtered here: "..", absolute paths and
// symlinks are refused by the kernel at open time (RESOLVE_BENEATH), on every backend.
std::optional<std::string> request_path(std::string_view target);

// The index file of a directory path as request_path() returns it ("." -> "index.html",
// "a" and "a/" -> "a/index.html").
std::string index_path(std::string_view dir);

// Where a directory named without its trailing slash is redirected: the target's path (as sent,
// still percent-encoded) with a '/' appended, then its query if any ("/a%20b?x" -> "/a%20b/?x";
// an absolute-form target gives its path only). The target must have passed request_path().
std::string with_slash(std::string_view target);

// "text/html; charset=utf-8" for "x.html"; application/octet-stream when unknown.
std::string_view content_type(std::string_view path);

// A single byte range resolved against a file size.
struct byte_range {
  enum kind_t { none, satisfiable, unsatisfiable } kind = none;
  std::uint64_t first = 0, last = 0;  // inclusive, when satisfiable
};
// Parses a Range header value ("bytes=a-b", "bytes=a-", "bytes=-n"). Missing, malformed or
// multi-range values give `none` (the whole file is served, as RFC 9110 allows).
byte_range parse_range(std::string_view value, std::uint64_t size);

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(std::time_t t);
// Parses an IMF-fixdate; nullopt when it is not one.
std::optional<std::time_t> parse_http_date(std::string_view s);

}  // namespace serve
