// Test helper: one HTTP exchange over a raw TCP connection to 127.0.0.1, on an io_context of its own, bounded in
// time. The caller writes the request bytes (so tests can send garbage); the reply is read until the server closes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace natsbus::test {

struct http_reply {
  bool answered = false;  // a status line came back
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  // A header's value (case-insensitive name), empty when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
};

// Sends `request` as is and reads until the server closes the connection (or `limit` passes). With half_close,
// the sending side is shut down after the request: the server sees its end at once.
http_reply http_exchange(unsigned short port, std::string_view request,
                         std::chrono::milliseconds limit = std::chrono::seconds(10), bool half_close = false);
// "GET <target> HTTP/1.1" with Connection: close (or HTTP/1.0, which servers answer without chunking).
http_reply http_get(unsigned short port, std::string_view target, bool http10 = false,
                    std::chrono::milliseconds limit = std::chrono::seconds(10));
// %-encodes a query parameter's value.
std::string url_encode(std::string_view s);

}  // namespace natsbus::test
