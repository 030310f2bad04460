// Runs a test coroutine on a fresh io_context under a time limit, so a hang fails instead of blocking CI.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>

namespace natsbus::test {

template <class Coro>
void run_coro(Coro&& coro, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  boost::asio::io_context io;
  bool done = false;
  std::exception_ptr failure;
  boost::asio::co_spawn(io, std::forward<Coro>(coro)(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  io.run_for(limit);
  BOOST_REQUIRE_MESSAGE(done, "test coroutine did not finish within its time limit");
  if (failure) std::rethrow_exception(failure);
}

// Suspends the calling coroutine for d (used for bounded waits on conditions polled in a loop).
inline boost::asio::awaitable<void> pause(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

// Polls `done` every 10 ms until it holds (true) or `limit` passes (false): for conditions no event announces.
template <class F>
boost::asio::awaitable<bool> eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    co_await pause(std::chrono::milliseconds(10));
  }
  co_return true;
}

}  // namespace natsbus::test

namespace natsbus::test {

// A one-shot event a test coroutine can wait on (a timer used as a condition variable).
class signal {
 public:
  explicit signal(boost::asio::any_io_executor ex)
      : timer_(ex, boost::asio::steady_timer::time_point::max()) {}
  void notify() {
    set_ = true;
    timer_.cancel();
  }
  [[nodiscard]] bool is_set() const noexcept { return set_; }
  boost::asio::awaitable<void> wait() {
    while (!set_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
  }

 private:
  boost::asio::steady_timer timer_;
  bool set_ = false;
};

}  // namespace natsbus::test
