// Internal, sans-I/O: PINGs in flight and who waits for their PONGs (PONGs come back in order: a FIFO), and the
// keepalive's decision: another PING, or a stale connection.
#pragma once

#include <natsbus/error.hpp>

#include <boost/asio/any_completion_handler.hpp>

#include <chrono>
#include <deque>
#include <optional>
#include <vector>

namespace natsbus::detail {

using void_handler = boost::asio::any_completion_handler<void(error_code)>;

// Handlers are moved by construction only, never by assignment: Boost 1.81's any_completion_handler move assignment
// wraps the source in a new handler instead of taking it over (which recurses without end).

class ping_tracker {
 public:
  explicit ping_tracker(int max_out) : max_out_(max_out < 1 ? 1 : max_out) {}

  using time_point = std::chrono::steady_clock::time_point;

  // A flush's PING, queued at `sent`: `h` completes with its PONG.
  void flush(void_handler h, time_point sent = {}) { waiters_.push_back({std::move(h), sent}); }
  // The keepalive's interval passed with no PONG for its last PINGs: false means stale (max_pings_out unanswered);
  // true means send another PING (queued at `sent`).
  [[nodiscard]] bool keepalive(time_point sent = {}) {
    if (out_ >= max_out_) return false;
    ++out_;
    waiters_.push_back({std::nullopt, sent});
    return true;
  }
  // When the PING the last pong() answered was queued (the epoch when unknown): its round trip.
  [[nodiscard]] time_point answered_sent() const noexcept { return answered_sent_; }
  [[nodiscard]] int outstanding() const noexcept { return out_; }

  // A PONG: the connection is alive, and the oldest PING's waiter (if a flush) is returned to complete.
  std::optional<void_handler> pong() {
    out_ = 0;
    std::optional<void_handler> w;
    answered_sent_ = {};
    if (waiters_.empty()) return w;
    if (waiters_.front().h) w.emplace(std::move(*waiters_.front().h));
    answered_sent_ = waiters_.front().sent;
    waiters_.pop_front();
    return w;
  }

  // The session was lost. `still_pending` PINGs never left (they go out after the reconnect and will be answered);
  // the flushes whose PING left with the old session never will be: they are returned to fail.
  void lost(std::size_t still_pending, std::vector<void_handler>& fail) {
    out_ = 0;
    std::size_t gone = waiters_.size() > still_pending ? waiters_.size() - still_pending : 0;
    for (std::size_t i = 0; i < gone; ++i) {
      if (waiters_.front().h) fail.push_back(std::move(*waiters_.front().h));
      waiters_.pop_front();
    }
  }
  void fail_all(std::vector<void_handler>& fail) {
    for (auto& w : waiters_)
      if (w.h) fail.push_back(std::move(*w.h));
    waiters_.clear();
    out_ = 0;
  }
  void reset() noexcept { out_ = 0; }

 private:
  struct waiter {
    std::optional<void_handler> h;  // nullopt: a keepalive PING
    time_point sent;
  };
  std::deque<waiter> waiters_;
  time_point answered_sent_{};
  int out_ = 0;
  int max_out_;
};

}  // namespace natsbus::detail
