// unio-serve: HTTP/1.1 request parsing (glue over http_parser) and response heads.
#include "http.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <ctime>

#include "files.hpp"

namespace serve {
namespace {

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// A Transfer-Encoding value is a comma-separated list of codings (tokens; parameters are not
// accepted here) whose last, and only the last, is "chunked" in a request.
bool chunked_last(std::string_view v) {
  for (;;) {
    auto comma = v.find(',');
    auto coding = trim_ows(v.substr(0, comma));
    if (coding.empty() || !std::all_of(coding.begin(), coding.end(), is_tchar)) return false;
    bool chunked = coding.size() == 7 && strncasecmp(coding.data(), "chunked", 7) == 0;
    if (comma == std::string_view::npos) return chunked;
    if (chunked) return false;
    v.remove_prefix(comma + 1);
  }
}

}  // namespace

request_parser::request_parser() {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = on_message_begin;
  settings_.on_url = on_url;
  settings_.on_header_field = on_header_field;
  settings_.on_header_value = on_header_value;
  settings_.on_headers_complete = on_headers_complete;
  settings_.on_message_complete = on_message_complete;
}

std::size_t request_parser::feed(const char* data, std::size_t len) {
  if (state_ != state::need_more) return 0;
  std::size_t n = http_parser_execute(&parser_, &settings_, data, len);
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (state_ == state::complete) return n;       // paused after a complete request
  if (state_ == state::error) return n;          // a size limit (error_status_ set)
  if (err != HPE_OK) {
    state_ = state::error;
    error_status_ = err == HPE_HEADER_OVERFLOW ? 431 : 400;
  }
  return n;
}

void request_parser::eof() {
  if (state_ != state::need_more || !started_) return;
  state_ = state::error;
  error_status_ = 400;
}

void request_parser::next() {
  state_ = state::need_more;
  req_ = request{};
  started_ = false;
  http_parser_pause(&parser_, 0);
}

int request_parser::on_message_begin(http_parser* p) {
  auto& s = self(p);
  s.started_ = true;
  s.field_.clear();
  s.value_ = nullptr;
  s.in_value_ = false;
  s.header_bytes_ = 0;
  s.hosts_ = 0;
  s.transfer_encodings_ = 0;
  s.transfer_encoding_.clear();
  return 0;
}

int request_parser::on_url(http_parser* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (s.req_.target.size() + len > max_target_bytes) {
    s.state_ = state::error;
    s.error_status_ = 414;
    return 1;
  }
  s.req_.target.append(at, len);
  return 0;
}

bool request_parser::count_header_bytes(std::size_t n) {
  header_bytes_ += n;
  return header_bytes_ <= max_header_bytes || fail(431);
}

bool request_parser::fail(int status) {
  state_ = state::error;
  error_status_ = status;
  return false;
}

int request_parser::on_header_field(http_parser* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (!s.count_header_bytes(len)) return 1;
  // http_parser (built non-strict) takes spaces into a field name, and would even honour
  // "Transfer-Encoding : chunked"; RFC 9112 section 5.1 requires a 400.
  for (std::size_t i = 0; i < len; ++i)
    if (at[i] == ' ' || at[i] == '\t') return s.fail(400), 1;
  if (s.in_value_) {  // a new header begins
    s.field_.clear();
    s.in_value_ = false;
  }
  for (std::size_t i = 0; i < len; ++i)
    s.field_.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(at[i]))));
  return 0;
}

int request_parser::on_header_value(http_parser* p, const char* at, std::size_t len) {
  auto& s = self(p);
  if (!s.count_header_bytes(len)) return 1;
  if (!s.in_value_) {
    s.in_value_ = true;
    s.hosts_ += s.field_ == "host";
    s.transfer_encodings_ += s.field_ == "transfer-encoding";
    s.value_ = s.field_ == "range"               ? &s.req_.range
               : s.field_ == "if-modified-since" ? &s.req_.if_modified_since
               : s.field_ == "transfer-encoding" ? &s.transfer_encoding_
                                                 : nullptr;
    if (s.value_) s.value_->clear();  // a repeated header: the last one wins
  }
  if (s.value_) s.value_->append(at, len);
  return 0;
}

int request_parser::on_headers_complete(http_parser* p) {
  auto& s = self(p);
  if (int e = s.head_error(p); e != 0) return s.fail(e), -1;
  s.req_.method = static_cast<http_method>(p->method);
  s.req_.major = p->http_major;
  s.req_.minor = p->http_minor;
  bool length = p->content_length > 0 && p->content_length != ULLONG_MAX;
  if ((p->flags & F_CHUNKED) != 0 || length) {
    // The body is never read: the request is answered now and the connection closed.
    s.req_.has_body = true;
    s.req_.keep_alive = false;
    s.state_ = state::complete;
    http_parser_pause(p, 1);
  }
  return 0;
}

// The checks of RFC 9112 that http_parser leaves to its user (0: none failed).
int request_parser::head_error(const http_parser* p) const {
  if (p->http_major != 1) return 505;
  if (hosts_ > 1 || (hosts_ == 0 && p->http_minor >= 1)) return 400;
  if (transfer_encodings_ > 1) return 400;
  if (transfer_encodings_ == 1 && !chunked_last(transfer_encoding_)) return 400;
  return 0;
}

int request_parser::on_message_complete(http_parser* p) {
  auto& s = self(p);
  s.req_.keep_alive = http_should_keep_alive(p) != 0;
  s.req_.upgrade = p->upgrade != 0;
  s.state_ = state::complete;
  http_parser_pause(p, 1);
  return 0;
}

std::string_view status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {
// The Date header value, formatted at most once per second per thread.
const std::string& date_now() {
  thread_local std::time_t last = 0;
  thread_local std::string value;
  std::time_t now = std::time(nullptr);
  if (now != last) {
    last = now;
    value = http_date(now);
  }
  return value;
}
}  // namespace

void append_head(std::string& out, int status, bool keep_alive, std::string_view extra) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += status_text(status);
  out += "\r\nServer: unio-serve\r\nDate: ";
  out += date_now();
  out += keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n";
  out += extra;
  out += "\r\n";
}

void append_error(std::string& out, int status, bool keep_alive, bool head_only,
                  std::string_view extra) {
  std::string body = std::to_string(status);
  body += ' ';
  body += status_text(status);
  body += '\n';
  std::string hdr = "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  hdr += std::to_string(body.size());
  hdr += "\r\n";
  hdr += extra;
  append_head(out, status, keep_alive, hdr);
  if (!head_only) out += body;
}

}  // namespace serve
