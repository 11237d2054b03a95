// unio-serve: HTTP/1.1 request parsing (glue over http_parser) and response heads.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace serve {

inline constexpr std::size_t max_target_bytes = 8 * 1024;   // longer request targets: 414
inline constexpr std::size_t max_header_bytes = 16 * 1024;  // larger header sections: 431

struct request {
  http_method method = HTTP_GET;
  std::string target;              // as sent, e.g. "/a%20b?x"
  std::string range;               // Range header value, empty when absent
  std::string if_modified_since;   // If-Modified-Since value, empty when absent
  unsigned short major = 1, minor = 1;
  bool keep_alive = true;
  bool upgrade = false;            // CONNECT or Upgrade: the connection cannot continue as HTTP
  // A body follows the head (Content-Length > 0 or chunked). The parser stops after the head and
  // never reads the body: this server takes none, so it answers at once (405 or 413) and closes.
  bool has_body = false;
};

// Incremental request parser. Feed it received bytes; it stops after each complete request so
// that pipelined requests are answered one at a time, in order, with bounded memory.
class request_parser {
 public:
  enum class state { need_more, complete, error };

  request_parser();
  request_parser(const request_parser&) = delete;
  request_parser& operator=(const request_parser&) = delete;

  // Parses from data; returns how many bytes were consumed. Afterwards state() says whether a
  // request is complete (take it with current(), then call next(); a request with has_body is
  // complete once its head is: its body is not parsed and the connection cannot go on), the
  // parser needs more bytes (all were consumed), or the input is bad (error_status(): 400, 414,
  // 431, or 505 for an HTTP major version other than 1). Besides http_parser's own checks, the
  // head is refused with 400 for whitespace in a field name (before the colon), a missing Host
  // on HTTP/1.1, a repeated Host, and a repeated Transfer-Encoding or one whose last coding is
  // not chunked.
  std::size_t feed(const char* data, std::size_t len);
  // The peer closed its side; a request in progress becomes an error.
  void eof();
  state status() const noexcept { return state_; }
  const request& current() const noexcept { return req_; }
  int error_status() const noexcept { return error_status_; }
  // Starts on the next request after a complete one.
  void next();
  // True while part of a request has been received.
  bool mid_request() const noexcept { return started_; }

 private:
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, std::size_t len);
  static int on_header_field(http_parser* p, const char* at, std::size_t len);
  static int on_header_value(http_parser* p, const char* at, std::size_t len);
  static int on_headers_complete(http_parser* p);
  static int on_message_complete(http_parser* p);
  static request_parser& self(http_parser* p) { return *static_cast<request_parser*>(p->data); }
  bool count_header_bytes(std::size_t n);
  bool fail(int status);
  int head_error(const http_parser* p) const;

  http_parser parser_{};
  http_parser_settings settings_{};
  request req_;
  state state_ = state::need_more;
  int error_status_ = 0;
  bool started_ = false;
  std::string field_;          // the current header name (lower-cased), while it arrives
  std::string* value_ = nullptr;  // where the current header's value goes, if it matters
  bool in_value_ = false;
  std::size_t header_bytes_ = 0;
  unsigned hosts_ = 0;             // Host fields seen in this head
  unsigned transfer_encodings_ = 0;
  std::string transfer_encoding_;  // the value of the (single) Transfer-Encoding field
};

std::string_view status_text(int status);

// Appends a response head (status line, Date, Server, Connection and the given extra header
// lines, which end in "\r\n" each, then the blank line) to out.
void append_head(std::string& out, int status, bool keep_alive, std::string_view extra);

// A complete small response: head and a text/plain body "STATUS TEXT\n" (no body for HEAD).
// `extra` header lines are added (e.g. "Allow: GET, HEAD\r\n").
void append_error(std::string& out, int status, bool keep_alive, bool head_only,
                  std::string_view extra = {});

}  // namespace serve
