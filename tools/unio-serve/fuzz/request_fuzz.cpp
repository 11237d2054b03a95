// libFuzzer target for unio-serve's request path without sockets: arbitrary bytes go through the
// request parser exactly as connection::run feeds it (in pieces, pipelined requests answered one
// at a time), and each complete request through the pure routing steps of connection::respond
// and send_file: method check, request_path, index_path, content_type, parse_range against a
// file size taken from the input, parse_http_date, and the response heads. Invariants that the
// server relies on are checked; a violation aborts (a crash for libFuzzer).
//
// Input: byte 0 picks the feed piece size (1..64, or everything at once), bytes 1-8 the file
// size for ranges; the rest is the byte stream a client sends.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "files.hpp"
#include "http.hpp"

namespace {

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "request_fuzz: invariant violated: %s\n", what);
  std::abort();
}

// What connection::respond and send_file decide for one request, minus the I/O.
void route(const serve::request& rq, std::uint64_t size) {
  std::string out;
  bool keep = rq.keep_alive && !rq.upgrade;
  bool get_or_head = rq.method == HTTP_GET || rq.method == HTTP_HEAD;
  if (rq.has_body) {
    require(!rq.keep_alive, "a request with a body keeps the connection");
    serve::append_error(out, get_or_head ? 413 : 405, false, rq.method == HTTP_HEAD);
    return;
  }
  if (!get_or_head) {
    serve::append_error(out, 405, keep, rq.method == HTTP_HEAD, "Allow: GET, HEAD\r\n");
    return;
  }
  auto path = serve::request_path(rq.target);
  if (!path) {
    serve::append_error(out, 400, false, rq.method == HTTP_HEAD);
    return;
  }
  require(!path->empty(), "request_path gave an empty path");
  require(path->find('\0') == std::string::npos, "request_path let a NUL through");
  require(path->size() <= rq.target.size(), "decoding made the path longer");
  std::string index = serve::index_path(*path);
  require(index.size() >= 10 && index.compare(index.size() - 10, 10, "index.html") == 0, "index_path");
  auto location = serve::with_slash(rq.target);  // for a directory named without its slash
  require(location.size() >= 2 && location[0] == '/' &&
              location.find_first_of("\r\n") == std::string::npos, "with_slash");
  auto type = serve::content_type(index);
  require(!type.empty(), "content_type gave nothing");
  if (!rq.if_modified_since.empty()) {
    auto since = serve::parse_http_date(rq.if_modified_since);
    if (since) {
      auto text = serve::http_date(*since);
      auto again = serve::parse_http_date(text);
      // Dates the formatter can print (4-digit years) must read back as the same time.
      if (text.size() == 29) require(again && *again == *since, "http_date round trip");
    }
  }
  auto range = rq.range.empty() ? serve::byte_range{} : serve::parse_range(rq.range, size);
  if (range.kind == serve::byte_range::satisfiable) {
    require(range.first <= range.last, "range first > last");
    require(range.last < size, "range past the end of the file");
    std::string extra = "Content-Range: bytes " + std::to_string(range.first) + "-" +
                        std::to_string(range.last) + "/" + std::to_string(size) + "\r\n";
    serve::append_head(out, 206, keep, extra);
  } else if (range.kind == serve::byte_range::unsatisfiable) {
    serve::append_error(out, 416, keep, rq.method == HTTP_HEAD,
                        "Content-Range: bytes */" + std::to_string(size) + "\r\n");
  } else {
    serve::append_head(out, 200, keep, "Content-Type: " + std::string(type) + "\r\n");
  }
  // One header section, ended by the blank line (an error reply's body follows it).
  auto blank = out.find("\r\n\r\n");
  require(blank != std::string::npos && out.find("\r\n\r\n", blank + 1) == std::string::npos,
          "the head is not exactly one header section");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 9) return 0;
  std::size_t piece = data[0] == 0 ? SIZE_MAX : (data[0] % 64) + 1;
  std::uint64_t file_size;
  std::memcpy(&file_size, data + 1, sizeof file_size);
  file_size %= std::uint64_t{1} << 62;
  std::string_view in(reinterpret_cast<const char*>(data + 9), size - 9);

  serve::request_parser parser;
  std::size_t requests = 0;
  while (!in.empty()) {
    std::string_view chunk = in.substr(0, piece);  // one recv's worth
    in.remove_prefix(chunk.size());
    // connection::run: parse, answer a complete request, go on with the rest of the chunk.
    for (;;) {
      std::size_t n = parser.feed(chunk.data(), chunk.size());
      require(n <= chunk.size(), "feed consumed more than it was given");
      chunk.remove_prefix(n);
      auto st = parser.status();
      if (st == serve::request_parser::state::complete) {
        const auto& rq = parser.current();
        require(rq.target.size() <= serve::max_target_bytes, "target over the limit");
        route(rq, file_size);
        if (rq.has_body) return 0;  // the server replies and closes; the body is never parsed
        ++requests;
        require(requests <= size, "more requests than bytes");
        parser.next();
        continue;
      }
      if (st == serve::request_parser::state::error) {
        int e = parser.error_status();
        require(e == 400 || e == 414 || e == 431 || e == 505, "unexpected parser error status");
        std::string out;
        serve::append_error(out, e, false, false);
        return 0;  // the server replies and closes
      }
      require(chunk.empty(), "parser wants more but left bytes unconsumed");
      break;
    }
  }
  parser.eof();
  if (parser.status() == serve::request_parser::state::error)
    require(parser.error_status() == 400, "eof status");
  return 0;
}
