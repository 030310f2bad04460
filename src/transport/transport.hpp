// Internal: the byte stream under a connection. One class with a runtime kind (Boost.Redis's redis_stream, Boost.MySQL's
// variant_stream are the model), not a stream template parameter: the session holds a transport and never a socket.
//
// Plain TCP is inline: its reads and writes are the socket's own operations with the caller's handler type. The
// secure kinds (TLS, WebSocket, WebSocket over TLS) live in transport.cpp behind one type-erased call each, so that
// OpenSSL's and Beast's templates are compiled in one translation unit and the TCP path pays nothing for them.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/options.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace natsbus::detail {

namespace asio = boost::asio;

enum class transport_kind { tcp, tls, websocket, secure_websocket };

// What to speak to one server; made by the session for each connect from the URL and the options.
struct transport_spec {
  std::string host;
  std::uint16_t port = 0;
  bool websocket = false;    // ws:// or wss://
  bool tls_first = false;    // TLS right after TCP: wss://, or handshake_first
  const tls_options* tls = nullptr;  // the options for any TLS (before or after INFO); never null when TLS is used
  std::string tls_name;      // the DNS name or IP address the certificate must carry
  const websocket_options* ws = nullptr;
  std::string ws_target = "/";
  std::chrono::milliseconds close_timeout{2000};  // for the WebSocket closing handshake
};

class transport {
 public:
  using read_handler = asio::any_completion_handler<void(error_code, std::size_t)>;

  explicit transport(asio::any_io_executor ex);
  ~transport();
  transport(const transport&) = delete;
  transport& operator=(const transport&) = delete;

  [[nodiscard]] transport_kind kind() const noexcept { return kind_; }
  [[nodiscard]] bool secure() const noexcept { return kind_ == transport_kind::tls || kind_ == transport_kind::secure_websocket; }
  [[nodiscard]] bool is_open() const noexcept;

  // Resolves, connects, and runs what comes before the server's INFO (TLS for wss:// or handshake_first, then the
  // WebSocket upgrade for ws:// and wss://), all before `deadline`. A fresh stream and a fresh TLS context each
  // time (certificate and key files are read again): nothing of an earlier session is reused.
  asio::awaitable<error_code> connect(const transport_spec& spec, std::chrono::steady_clock::time_point deadline);

  // The upgrade of a plain TCP stream to TLS after the server's INFO, before `deadline`
  // (tls_handshake_timeout when it passes).
  asio::awaitable<error_code> start_tls(const transport_spec& spec, std::chrono::steady_clock::time_point deadline);

  // A stream error as the caller should see it: TLS verification and alert failures, and WebSocket closes and
  // protocol errors, become natsbus codes; others pass through. detail() says more (never a secret).
  [[nodiscard]] error_code explain(error_code ec);
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

  // Reads what has arrived (at least one byte).
  template <class Token>
  auto async_read_some(asio::mutable_buffer b, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::mutable_buffer buf) {
          if (kind_ == transport_kind::tcp) socket_.async_read_some(buf, std::move(handler));
          else secure_read_some(buf, read_handler(std::move(handler)));
        },
        token, b);
  }

  // Writes the whole buffer (over WebSocket: as one binary message).
  template <class Token>
  auto async_write(asio::const_buffer b, Token&& token) {
    return asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, asio::const_buffer buf) {
          if (kind_ == transport_kind::tcp) asio::async_write(socket_, buf, std::move(handler));
          else secure_write(buf, read_handler(std::move(handler)));
        },
        token, b);
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
  struct secure_layer;  // transport.cpp: the TLS context and the TLS / WebSocket streams

  void secure_read_some(asio::mutable_buffer b, read_handler h);
  void secure_write(asio::const_buffer b, read_handler h);
  asio::awaitable<error_code> tls_handshake(const transport_spec& spec, std::chrono::steady_clock::time_point deadline);
  asio::awaitable<error_code> websocket_handshake(const transport_spec& spec,
                                                  std::chrono::steady_clock::time_point deadline);

  asio::any_io_executor ex_;
  transport_kind kind_ = transport_kind::tcp;
  asio::ip::tcp::socket socket_;  // the TCP kind's stream; moved into secure_ by the other kinds
  std::unique_ptr<secure_layer> secure_;
  std::string detail_;
};

}  // namespace natsbus::detail
