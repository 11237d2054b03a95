// unio-serve: request paths, byte ranges, HTTP dates and content types.
#include "files.hpp"

#include <http_parser.h>

#include <array>
#include <charconv>
#include <cstring>
#include <utility>

namespace serve {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<std::string> request_path(std::string_view target) {
  http_parser_url u;
  http_parser_url_init(&u);
  if (target.empty() || http_parser_parse_url(target.data(), target.size(), 0, &u) != 0)
    return std::nullopt;
  if (!(u.field_set & (1 << UF_PATH))) return std::nullopt;
  auto raw = target.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  if (raw.empty() || raw[0] != '/') return std::nullopt;
  auto path = percent_decode(raw.substr(1));
  if (!path) return std::nullopt;
  if (path->empty()) *path = ".";
  return path;
}

std::string with_slash(std::string_view target) {
  http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(target.data(), target.size(), 0, &u) != 0) return "/";
  std::string out(target.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len));
  out += '/';
  if (u.field_set & (1 << UF_QUERY)) {
    out += '?';
    out += target.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
  }
  return out;
}

std::string index_path(std::string_view dir) {
  if (dir.empty() || dir == ".") return "index.html";
  std::string out(dir);
  out += dir.back() == '/' ? "index.html" : "/index.html";
  return out;
}

std::string_view content_type(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 24> types{{
      {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
      {"css", "text/css; charset=utf-8"}, {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
      {"txt", "text/plain; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
      {"xml", "application/xml"}, {"svg", "image/svg+xml"}, {"png", "image/png"},
      {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
      {"webp", "image/webp"}, {"ico", "image/x-icon"}, {"pdf", "application/pdf"},
      {"wasm", "application/wasm"}, {"mp4", "video/mp4"}, {"webm", "video/webm"},
      {"woff2", "font/woff2"}, {"zip", "application/zip"}, {"gz", "application/gzip"},
      {"tar", "application/x-tar"},
  }};
  auto slash = path.rfind('/');
  auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = name.rfind('.');
  if (dot != std::string_view::npos) {
    auto ext = name.substr(dot + 1);
    for (auto& [e, t] : types)
      if (e.size() == ext.size() && strncasecmp(e.data(), ext.data(), e.size()) == 0) return t;
  }
  return "application/octet-stream";
}

byte_range parse_range(std::string_view v, std::uint64_t size) {
  constexpr std::string_view unit = "bytes=";
  if (v.substr(0, unit.size()) != unit) return {};
  v.remove_prefix(unit.size());
  auto dash = v.find('-');
  if (dash == std::string_view::npos || v.find(',') != std::string_view::npos) return {};
  auto a = v.substr(0, dash), b = v.substr(dash + 1);
  std::uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last n bytes
    if (!parse_u64(b, last)) return {};
    if (last == 0 || size == 0) return {byte_range::unsatisfiable};
    return {byte_range::satisfiable, last >= size ? 0 : size - last, size - 1};
  }
  if (!parse_u64(a, first)) return {};
  if (b.empty()) last = UINT64_MAX;
  else if (!parse_u64(b, last) || last < first) return {};
  if (first >= size) return {byte_range::unsatisfiable};
  return {byte_range::satisfiable, first, last >= size ? size - 1 : last};
}

std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  std::string z(s);
  std::tm tm{};
  const char* end = strptime(z.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return timegm(&tm);
}

}  // namespace serve
