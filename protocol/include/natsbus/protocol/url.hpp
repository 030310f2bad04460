// Server URLs and the inbox prefix rule: what the connection and the configuration loader both check, with no
// I/O, so that the loader (and its fuzzer) need nothing of the Asio client.
#pragma once

#include <natsbus/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace natsbus::protocol {

struct server_address {
  std::string scheme = "nats";
  std::string host;
  std::uint16_t port = 4222;
  std::string user;
  std::string password;
  std::string token;
  std::string path = "/";  // ws:// and wss://: the upgrade request's target (path and query)
  // The name the server's TLS certificate must carry when it is not `host`: a server discovered by IP address
  // is verified against the host of the seed URL that led to it.
  std::string tls_name;
  std::string redacted;  // for logs: no credentials
};

// Parses nats://[user[:pass]@]host[:port] (also tls://, ws://, wss://; a bare host:port means nats://).
// The default port is 4222, 80 for ws:// and 443 for wss://; a user with no password is a token.
error_code parse_server_url(std::string_view url, server_address& out);

// Whether a URL's host is an IP address (IPv4 dotted quad, or IPv6 as the URL parser leaves it, without brackets)
// rather than a DNS name.
[[nodiscard]] bool is_ip_literal(std::string_view host) noexcept;

// connection_options::inbox_prefix's rule: a subject with no wildcards, at most max_inbox_prefix characters.
inline constexpr std::size_t max_inbox_prefix = 64;
[[nodiscard]] bool valid_inbox_prefix(std::string_view prefix) noexcept;
// The rule in words, for the errors that refuse a prefix.
inline constexpr std::string_view inbox_prefix_rule = "a subject with no wildcards, at most 64 characters";
static_assert(max_inbox_prefix == 64, "inbox_prefix_rule names the limit");

}  // namespace natsbus::protocol
