#pragma once

#include <boost/system/error_code.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

using error_code = boost::system::error_code;

// TLS, for tls:// and wss:// URLs, for nats:// URLs when `enabled` or any file is set, and whenever a server's
// INFO says tls_required. Files are read again on every connect: rotated files take effect on the next reconnect.
struct tls_options {
  bool enabled = false;            // TLS on nats:// URLs too; never a plaintext fallback
  bool handshake_first = false;    // TLS before the server's INFO (servers with tls { handshake_first: true })
  std::string ca_file;             // PEM CA bundle; empty: the system's trust store
  std::string cert_file;           // client certificate chain (mutual TLS), PEM
  std::string key_file;            // its private key, PEM
  // The name the server's certificate must carry (DNS name or IP address). Empty: the URL's host; for a server
  // discovered by IP address, the host of the seed URL that led to it.
  std::string server_name;
  enum class version { tls1_2, tls1_3 };
  version min_version = version::tls1_2;
  // Accepts any certificate from anyone: no protection against an active attacker. For tests only.
  bool insecure_skip_verify_dangerous = false;

  [[nodiscard]] bool wanted() const noexcept {
    return enabled || handshake_first || !ca_file.empty() || !cert_file.empty() || !key_file.empty() ||
           !server_name.empty() || insecure_skip_verify_dangerous;
  }
};

// WebSocket, for ws:// and wss:// URLs (the URL's path is the upgrade request's target).
struct websocket_options {
  bool compression = false;                       // permessage-deflate, when the server offers it
  std::size_t max_message_size = 64 * 1024 * 1024;  // a larger WebSocket message is a protocol error
};

struct connection_options {
  // Seed URLs: nats://[user:pass@]host[:port]. A bare host:port means nats://.
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name = "natsbus";
  bool verbose = false;
  bool pedantic = false;
  bool echo = true;
  bool no_responders = true;

  // Credentials; URL user info is used when these are empty.
  std::optional<std::string> user;
  std::optional<std::string> password;
  std::optional<std::string> token;

  // NKey authentication: a user seed ("SU..."), inline or in a file read on every connect. The server's nonce is
  // signed with it; the seed never leaves the process and is wiped after use.
  std::string nkey_seed;
  std::string nkey_seed_file;
  // Or a public key ("U...") and a signer for a key held elsewhere: it returns the raw 64-byte Ed25519 signature
  // of `nonce`.
  std::string nkey_public_key;
  std::function<error_code(std::string_view nonce, std::string& signature)> sign_nonce;
  // JWT authentication: a .creds file (user JWT and seed), read on every connect...
  std::string credentials_file;
  // ...or a callback asked for the user JWT on every connect, with sign_nonce as the signer.
  std::function<error_code(std::string& jwt)> user_jwt;

  tls_options tls;
  websocket_options websocket;

  std::chrono::milliseconds connect_timeout{2000};
  // A PING every ping_interval; max_pings_out unanswered PINGs mean a stale connection (a half-open link is
  // detected within ping_interval * (max_pings_out + 1)).
  std::chrono::milliseconds ping_interval{120000};
  int max_pings_out = 2;
  // The first tokens of the connection's reply subjects (requests, JetStream API calls and acknowledgements):
  // "<inbox_prefix>.<nuid>.<token>". Set it where the account's permissions allow
  // subscriptions only under another prefix (for example "_INBOX_svc" with subscribe allow "_INBOX_svc.>").
  // A literal subject: no wildcards, no empty token.
  std::string inbox_prefix = "_INBOX";
  // Deadline for request() when the caller gives none.
  std::chrono::milliseconds request_timeout{5000};

  // Bytes a publisher may queue ahead of the socket before publish() suspends (backpressure).
  std::size_t write_buffer_limit = 8 * 1024 * 1024;
  // A write that the server does not take within this fails the connection with write_timeout (a server that
  // stopped reading): publishers blocked on the write buffer get that error, and the client reconnects.
  std::chrono::milliseconds write_deadline{10000};
  // Initial read buffer; it grows up to the largest frame the server's max_payload allows.
  std::size_t read_buffer_size = 64 * 1024;
  std::size_t max_control_line = 4096;

  // Per-subscription queue bounds; overflow drops the message and counts it (slow consumer).
  std::size_t subscription_pending_msgs = 65536;
  std::size_t subscription_pending_bytes = 64 * 1024 * 1024;

  // ---- server pool and reconnect ----
  bool randomize_servers = true;           // shuffle the seed URLs before the first connect
  bool ignore_discovered_servers = false;  // do not add the servers INFO announces (connect_urls)
  bool allow_reconnect = true;
  // Failed attempts per server before it leaves the pool (nats.go's MaxReconnect); negative: never.
  int max_reconnects = 60;
  std::chrono::milliseconds reconnect_wait{2000};   // between two attempts on the same server
  std::chrono::milliseconds reconnect_jitter{100};  // random extra wait, up to this
  // When set, replaces reconnect_wait + jitter: the wait before the attempt numbered `attempt` (from 1) on a
  // server.
  std::function<std::chrono::milliseconds(int attempt)> reconnect_delay;
  // Bytes of publishes kept while reconnecting, sent after the subscriptions are replayed. A publish that does
  // not fit fails at once with reconnect_buffer_full. 0: publishes fail with disconnected while reconnecting.
  std::size_t reconnect_buffer_size = 8 * 1024 * 1024;
  // Requests awaiting a reply fail at once with disconnected when the connection is lost.
  bool fail_requests_on_disconnect = true;
  // When the first connect finds no server, connect() still succeeds and the client keeps trying in the
  // background (publishes are buffered meanwhile).
  bool retry_on_failed_connect = false;

  // Busy polling for lone round trips on a single-threaded io_context. When a request or publish is written
  // alone and its caller waits for the reply, the connection keeps the io_context polling (a non-blocking
  // epoll per turn: timers and other handlers still run) rather than putting the thread to sleep, for up to
  // twice the recent round-trip time and never longer than this. Waking a sleeping thread costs more than a
  // loopback round trip takes; round trips slower than this are never polled for. Zero disables it.
  std::chrono::microseconds busy_poll{100};

  // Logging goes through spdlog; null means quiet.
  std::shared_ptr<spdlog::logger> logger;
};

}  // namespace natsbus
