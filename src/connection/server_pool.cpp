#include "connection/server_pool.hpp"

#include <algorithm>

namespace natsbus::detail {

using protocol::is_ip_literal;

std::uint64_t server_pool::random() noexcept {
  std::uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

error_code server_pool::seed(const std::vector<std::string>& urls, bool randomize, std::string& bad) {
  entries_.clear();
  current_ = next_ = 0;
  for (const auto& url : urls) {
    pool_entry e;
    if (auto ec = protocol::parse_server_url(url, e.addr)) {
      bad = url;
      entries_.clear();
      return ec;
    }
    entries_.push_back(std::move(e));
  }
  if (entries_.empty()) return error::no_servers;
  if (randomize)
    for (std::size_t i = entries_.size(); i > 1; --i) std::swap(entries_[i - 1], entries_[random() % i]);
  return {};
}

std::size_t server_pool::add_discovered(const std::vector<std::string>& urls) {
  if (policy_.ignore_discovered) return 0;
  std::size_t added = 0;
  for (const auto& u : urls) {
    pool_entry e;
    if (protocol::parse_server_url(u, e.addr)) continue;
    bool known = std::any_of(entries_.begin(), entries_.end(), [&](const pool_entry& p) {
      return p.addr.host == e.addr.host && p.addr.port == e.addr.port;
    });
    if (known) continue;
    e.discovered = true;
    if (!entries_.empty()) {
      // A discovered server is spoken to as the server that announced it was: same scheme (TLS, WebSocket) and
      // path, same credentials; one known by IP address is verified against the announcer's certificate name.
      const auto& seed = entries_[current_].addr;
      e.addr.user = seed.user;
      e.addr.password = seed.password;
      e.addr.token = seed.token;
      if (u.find("://") == std::string::npos) e.addr.scheme = seed.scheme;
      if (e.addr.path == "/") e.addr.path = seed.path;
      if (is_ip_literal(e.addr.host)) {
        const std::string& name = seed.tls_name.empty() ? seed.host : seed.tls_name;
        if (!is_ip_literal(name)) e.addr.tls_name = name;
      }
      e.addr.redacted = e.addr.scheme + e.addr.redacted.substr(e.addr.redacted.find("://"));
    }
    entries_.push_back(std::move(e));
    ++added;
  }
  return added;
}

std::chrono::milliseconds server_pool::wait_for(const pool_entry& e) {
  if (policy_.reconnect_delay) return policy_.reconnect_delay(e.attempts + 1);
  auto wait = policy_.reconnect_wait;
  if (policy_.reconnect_jitter.count() > 0)
    wait += std::chrono::milliseconds(random() % static_cast<std::uint64_t>(policy_.reconnect_jitter.count() + 1));
  return wait;
}

std::optional<server_pool::attempt> server_pool::next_attempt() {
  if (entries_.empty()) return std::nullopt;
  if (std::all_of(entries_.begin(), entries_.end(), [](const pool_entry& e) { return e.lame_duck; }))
    for (auto& e : entries_) e.lame_duck = false;
  for (std::size_t n = 0; n < entries_.size(); ++n) {
    if (next_ >= entries_.size()) next_ = 0;
    const std::size_t i = next_;
    next_ = (next_ + 1) % entries_.size();
    const auto& e = entries_[i];
    if (e.lame_duck) continue;
    auto due = e.last_attempt.time_since_epoch().count() != 0 ? e.last_attempt + wait_for(e) : clock::time_point{};
    return attempt{i, due};
  }
  return std::nullopt;  // unreachable: not every entry is in lame duck mode
}

void server_pool::connected(std::size_t i) {
  auto& e = entries_[i];
  e.attempts = 0;
  e.auth_errors = 0;
  current_ = i;
  next_ = (i + 1) % entries_.size();
}

bool server_pool::failed(std::size_t i, error_code ec) {
  auto& e = entries_[i];
  ++e.attempts;
  const bool auth = ec == error::authorization_violation || ec == error::authentication_expired;
  e.auth_errors = auth ? e.auth_errors + 1 : 0;
  const bool drop = (auth && e.auth_errors >= 2) || (policy_.max_reconnects >= 0 && e.attempts > policy_.max_reconnects);
  if (!drop) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
  if (current_ > i) --current_;
  if (current_ >= entries_.size()) current_ = 0;
  next_ = i;
  return true;
}

}  // namespace natsbus::detail
