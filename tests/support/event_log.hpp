// Test helper: records a connection's events (count, last error, first and last time and a text line per event) and lets
// a coroutine wait for the n-th event of a kind, without polling.
#pragma once

#include "run.hpp"

#include <natsbus/connection.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace natsbus::test {

inline const char* kind_name(event_kind k) {
  switch (k) {
    case event_kind::connected: return "connected";
    case event_kind::disconnected: return "disconnected";
    case event_kind::reconnected: return "reconnected";
    case event_kind::closed: return "closed";
    case event_kind::error: return "error";
    case event_kind::slow_consumer: return "slow_consumer";
    case event_kind::server_info: return "server_info";
    case event_kind::lame_duck: return "lame_duck";
    case event_kind::discovered_servers: return "discovered_servers";
  }
  return "?";
}

class event_log {
 public:
  using clock_type = std::chrono::steady_clock;

  explicit event_log(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  // Declare the log before the connection it watches: the connection must not outlive it.
  void attach(natsbus::connection& c) {
    c.set_event_handler([this](const natsbus::connection_event& e) {
      auto k = static_cast<int>(e.kind);
      ++counts_[k];
      last_ec_[k] = e.ec;
      last_at_[k] = clock_type::now();
      if (counts_[k] == 1) first_at_[k] = last_at_[k];
      lines_.push_back(std::string(kind_name(e.kind)) + (e.ec ? " (" + e.ec.message() + ")" : std::string()) + " " + e.text);
      for (auto& w : waiters_)
        if (w.first == e.kind) w.second->notify();
    });
  }
  [[nodiscard]] int count(event_kind k) const { return counts_[static_cast<int>(k)]; }
  [[nodiscard]] error_code last_error(event_kind k) const { return last_ec_[static_cast<int>(k)]; }
  [[nodiscard]] clock_type::time_point last_time(event_kind k) const { return last_at_[static_cast<int>(k)]; }
  [[nodiscard]] clock_type::time_point first_time(event_kind k) const { return first_at_[static_cast<int>(k)]; }
  [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
  // Waits until `k` has been seen at least `n` times in all.
  boost::asio::awaitable<void> wait(event_kind k, int n) {
    while (count(k) < n) {
      auto sig = std::make_shared<signal>(ex_);
      waiters_.emplace_back(k, sig);
      co_await sig->wait();
      std::erase_if(waiters_, [&](const auto& w) { return w.second == sig; });
    }
  }

 private:
  boost::asio::any_io_executor ex_;
  int counts_[16] = {};
  error_code last_ec_[16];
  clock_type::time_point last_at_[16] = {};
  clock_type::time_point first_at_[16] = {};
  std::vector<std::string> lines_;
  std::vector<std::pair<event_kind, std::shared_ptr<signal>>> waiters_;
};

}  // namespace natsbus::test
