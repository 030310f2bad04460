// The transport's connect and close. The read and write paths are templates in the header: they keep the caller's
// completion handler type, so a read or write costs what the socket's own operation costs.
#include "transport/transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace natsbus::detail {

using namespace asio::experimental::awaitable_operators;

asio::awaitable<error_code> transport::connect(std::string host, std::uint16_t port,
                                               std::chrono::steady_clock::time_point deadline) {
  constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
  auto ex = socket_.get_executor();
  close();
  socket_ = asio::ip::tcp::socket(ex);
  asio::steady_timer timer(ex);
  timer.expires_at(deadline);
  asio::ip::tcp::resolver resolver(ex);
  // One deadline for the resolve and the TCP connect (and, for the secure kinds, their handshakes).
  auto resolved = co_await (resolver.async_resolve(host, std::to_string(port), use_ec) || timer.async_wait(use_ec));
  if (resolved.index() == 1) co_return error_code(error::connect_timeout);
  auto [rec, results] = std::get<0>(resolved);
  if (rec) co_return rec;
  auto r = co_await (asio::async_connect(socket_, results, use_ec) || timer.async_wait(use_ec));
  if (r.index() == 1) {
    close();
    co_return error_code(error::connect_timeout);
  }
  auto [cec, ep] = std::get<0>(r);
  (void)ep;
  if (cec) co_return cec;
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);  // try_write: the writer tries the socket before waiting on the reactor
  co_return error_code{};
}

void transport::close() noexcept {
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace natsbus::detail
