// Internal: the byte stream under a connection. One class with a runtime kind (Boost.Redis's redis_stream, Boost.MySQL's
// variant_stream are the model), not a stream template parameter: the session holds a transport and never a socket,
// and the secure kinds (TLS, WebSocket, secure WebSocket) are added here without touching the session.
#pragma once

#include <natsbus/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace natsbus::detail {

namespace asio = boost::asio;

enum class transport_kind { tcp };

class transport {
 public:
  explicit transport(asio::any_io_executor ex) : socket_(std::move(ex)) {}
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  [[nodiscard]] transport_kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool is_open() const noexcept { return socket_.is_open(); }

  // Resolves the address, connects, and runs whatever handshake the kind needs, all before `deadline`
  // (connect_timeout when it runs out). A fresh stream each time: nothing of an earlier session is reused.
  asio::awaitable<error_code> connect(std::string host, std::uint16_t port,
                                      std::chrono::steady_clock::time_point deadline);

  // Reads what has arrived (at least one byte).
  template <class Token>
  auto async_read_some(asio::mutable_buffer b, Token&& token) {
    return socket_.async_read_some(b, std::forward<Token>(token));
  }

  // Writes the whole buffer sequence (a gathered write).
  template <class Buffers, class Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    return asio::async_write(socket_, buffers, std::forward<Token>(token));
  }

  // Whether try_write can take bytes synchronously (a raw non-blocking socket can; a TLS or WebSocket stream, whose
  // records or frames must be written whole, cannot).
  [[nodiscard]] bool can_try_write() const noexcept { return kind_ == transport_kind::tcp; }

  // Writes what the kernel takes now, without waiting: "would block" is 0 bytes and no error.
  std::size_t try_write(asio::const_buffer b, error_code& ec) {
    std::size_t n = socket_.write_some(b, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {}, n = 0;
    return n;
  }

  // Ends the stream at once; pending operations complete with operation_aborted.
  void close() noexcept;

 private:
  transport_kind kind_ = transport_kind::tcp;
  asio::ip::tcp::socket socket_;
};

}  // namespace natsbus::detail
