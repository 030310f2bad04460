// Internal, sans-I/O: the servers a connection may use, and the decisions of its reconnect loop (which server next,
// when, and when a server leaves the pool). No clock of its own: the caller passes `now`.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/protocol/url.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace natsbus::detail {

struct pool_entry {
  protocol::server_address addr;
  bool discovered = false;
  bool lame_duck = false;
  int attempts = 0;     // failed attempts since the last success
  int auth_errors = 0;  // authorization failures in a row
  std::chrono::steady_clock::time_point last_attempt{};
};

struct pool_policy {
  int max_reconnects = 60;  // failed attempts before a server leaves the pool; negative: never
  std::chrono::milliseconds reconnect_wait{2000};
  std::chrono::milliseconds reconnect_jitter{100};
  std::function<std::chrono::milliseconds(int attempt)> reconnect_delay;  // replaces wait + jitter when set
  bool ignore_discovered = false;
};

class server_pool {
 public:
  using clock = std::chrono::steady_clock;

  server_pool(pool_policy policy, std::uint64_t seed) : policy_(std::move(policy)), rng_(seed) {}

  // The seed URLs, in order or shuffled. An error names the URL in `bad`.
  error_code seed(const std::vector<std::string>& urls, bool randomize, std::string& bad);

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] pool_entry& operator[](std::size_t i) noexcept { return entries_[i]; }
  [[nodiscard]] const std::vector<pool_entry>& entries() const noexcept { return entries_; }
  // The server of the current (or last) session.
  [[nodiscard]] std::size_t current() const noexcept { return current_; }
  [[nodiscard]] std::string current_name() const { return entries_.empty() ? std::string() : entries_[current_].addr.redacted; }

  // Servers an INFO announced (connect_urls); credentials come from the current server's seed. Returns how many
  // were new.
  std::size_t add_discovered(const std::vector<std::string>& urls);

  // The reconnect loop's next attempt: which server, and when (never before its wait since its last attempt).
  // Servers in lame duck mode come last: skipped while any other is left.
  struct attempt {
    std::size_t index;
    clock::time_point due;
  };
  [[nodiscard]] std::optional<attempt> next_attempt();
  // An attempt on server i starts now.
  void attempting(std::size_t i, clock::time_point now) { entries_[i].last_attempt = now; }
  // Server i is connected: its failure counts start again, and the next attempt after a loss starts after it.
  void connected(std::size_t i);
  // Server i failed with `ec`. Returns true when it left the pool: the same authorization error twice in a row, or
  // more than max_reconnects failed attempts.
  bool failed(std::size_t i, error_code ec);
  // The current server announced lame duck mode.
  void lame_duck() {
    if (!entries_.empty()) entries_[current_].lame_duck = true;
  }
  // The current session was lost at `now`: the wait before its server is tried again runs from here.
  void lost(clock::time_point now) {
    if (!entries_.empty()) entries_[current_].last_attempt = now;
  }

  std::uint64_t random() noexcept;  // splitmix64

 private:
  [[nodiscard]] std::chrono::milliseconds wait_for(const pool_entry& e);

  pool_policy policy_;
  std::uint64_t rng_;
  std::vector<pool_entry> entries_;
  std::size_t current_ = 0;
  std::size_t next_ = 0;  // where next_attempt looks first
};

}  // namespace natsbus::detail
