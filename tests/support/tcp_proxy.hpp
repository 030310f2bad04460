// Test support: a TCP proxy on 127.0.0.1 for fault injection between a client and a server.
//
// It listens on an ephemeral port and forwards each accepted connection to 127.0.0.1:<target>, with one pump
// coroutine per direction (64 KiB buffer each). The test drives the faults:
//  - cut(): closes every current connection, both sockets at once, wherever the streams are (mid-frame
//    included); the proxy keeps listening;
//  - blackhole(true): bytes are still read from both sides but thrown away; the sockets stay open, so each
//    end sees a silent, half-open link. Connections accepted meanwhile are black-holed too. blackhole(false)
//    resumes forwarding and closes the connections that lost bytes: their streams have a hole in them, which a
//    real network would have filled by retransmission, so no client should keep parsing them;
//  - cut_after_server_bytes(n): forwards n more bytes server -> client (in all, over every connection), then
//    cuts, so a test can stop the stream at a chosen byte (acks in flight, half a frame, ...).
//
// Everything the clients send is also recorded (client_bytes()), so a test can check what went on the wire,
// e.g. that no plaintext CONNECT ever reached a server that requires TLS. The record only grows: the proxy is
// for tests that move megabytes, not gigabytes.
//
// Everything runs on the given executor, which must be single-threaded (the test's io_context); call the
// member functions from that thread. close() (also run by the destructor) cancels everything: the accept loop
// and every pump end promptly, so the io_context runs out of work.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace natsbus::test {

class tcp_proxy {
 public:
  // Listens on 127.0.0.1:<ephemeral>; target_port 0 means "set later with set_target()" (connections accepted
  // before that are closed at once).
  tcp_proxy(boost::asio::any_io_executor ex, std::uint16_t target_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] std::string url() const;  // nats://127.0.0.1:<port>
  // Where new connections go; current ones keep their server.
  void set_target(std::uint16_t port) noexcept;

  // Closes every current connection (both sides); new ones are accepted as usual.
  void cut();
  void blackhole(bool on);
  [[nodiscard]] bool blackholed() const noexcept;
  // Arms a one-shot cut after n more bytes have gone server -> client (the n-th byte is delivered). n = 0
  // cuts at the next byte the server sends, which is then dropped.
  void cut_after_server_bytes(std::uint64_t n);
  // Stops listening and closes everything. Idempotent.
  void close();

  // Counters, since construction.
  [[nodiscard]] std::uint64_t accepted() const noexcept;           // client connections accepted
  [[nodiscard]] std::size_t active() const noexcept;               // connections open now
  [[nodiscard]] std::uint64_t cuts() const noexcept;               // cut() calls, armed cuts included
  [[nodiscard]] std::uint64_t bytes_to_server() const noexcept;    // forwarded client -> server
  [[nodiscard]] std::uint64_t bytes_to_client() const noexcept;    // forwarded server -> client
  [[nodiscard]] std::uint64_t bytes_discarded() const noexcept;    // read and dropped by the black hole

  // Every byte read from the clients since construction, over all connections in the order read (one
  // connection's bytes stay in order; two connections open at once may interleave at read boundaries). Bytes
  // the black hole swallowed, or that a cut kept from the server, are included: this is what the clients sent.
  [[nodiscard]] std::string client_bytes() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace natsbus::test
