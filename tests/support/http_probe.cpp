#include "http_probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace natsbus::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string http_reply::header(std::string_view name) const {
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    std::size_t end = head.find("\r\n", at + 2);
    std::string_view line(head.data() + at + 2, (end == std::string::npos ? head.size() : end) - at - 2);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && colon == name.size() &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b)); })) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
    at = end;
  }
  return {};
}

http_reply http_exchange(unsigned short port, std::string_view request, std::chrono::milliseconds limit,
                         bool half_close) {
  asio::io_context io;
  std::string raw;
  const std::string req(request);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
        tcp::socket s(io);
        const tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
        auto [cec] = co_await s.async_connect(ep, use_ec);
        if (cec) co_return;
        auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), use_ec);
        (void)wn;
        // A server may answer and close before taking everything: read what it sent either way.
        (void)wec;
        if (half_close) {
          boost::system::error_code ignored;
          s.shutdown(tcp::socket::shutdown_send, ignored);
        }
        char buf[16384];
        for (;;) {
          auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), use_ec);
          raw.append(buf, n);
          if (rec) break;
        }
      },
      asio::detached);
  io.run_for(limit);
  http_reply r;
  auto end = raw.find("\r\n\r\n");
  if (!raw.starts_with("HTTP/1.") || end == std::string::npos) return r;
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  r.status = std::atoi(raw.c_str() + 9);
  r.answered = r.status > 0;
  return r;
}

http_reply http_get(unsigned short port, std::string_view target, bool http10, std::chrono::milliseconds limit) {
  std::string req = "GET " + std::string(target) + (http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n") +
                    "Host: 127.0.0.1\r\nConnection: close\r\n\r\n";
  return http_exchange(port, req, limit);
}

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace natsbus::test
