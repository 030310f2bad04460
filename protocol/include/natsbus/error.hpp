// natsbus error codes. One enum and category for the client, a second category for JetStream API errors
// whose values are JetStream's own err_code (10059 stream not found, ...).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <ostream>
#include <string>
#include <type_traits>

namespace natsbus {

using error_code = boost::system::error_code;

enum class error {
  // Wire protocol (parser, headers, encoder, JSON models).
  protocol_violation = 1,   // a frame the parser cannot accept
  control_line_too_long,    // no CRLF within the control line limit
  payload_too_large,        // a frame's size is over max_payload plus slack
  invalid_size,             // negative, overflowing or inconsistent size fields
  unknown_operation,        // an operation name the protocol does not have
  missing_crlf,             // payload not followed by CRLF
  bad_header,               // malformed NATS/1.0 header block
  invalid_json,             // JSON that is not valid or has fields of the wrong type
  invalid_subject,          // a subject or pattern that fails validation
  invalid_queue_group,      // a queue group name that fails validation
  invalid_argument,         // any other bad argument from the caller

  // Connection.
  invalid_url,
  connection_closed,        // the connection was closed by the user
  disconnected,             // the connection is down (request failed fast, or server went away)
  timeout,                  // an operation's deadline passed
  connect_timeout,
  write_timeout,
  no_responders,            // status 503: nobody is subscribed to the subject
  max_payload_exceeded,     // the payload is larger than the server's max_payload
  slow_consumer,            // a subscription's queue overflowed and messages were dropped
  stale_connection,         // max_pings_out unanswered PINGs
  authorization_violation,  // -ERR 'Authorization Violation'
  authentication_expired,   // -ERR 'User Authentication Expired'
  permissions_violation,    // -ERR 'Permissions Violation for ...' (not fatal)
  server_error,             // any other -ERR from the server
  no_servers,               // no server in the pool could be reached
  draining,                 // the connection or subscription is draining
  subscription_closed,      // the subscription was unsubscribed or its limit reached
  tls_required,             // server requires TLS and the client is not configured for it
  not_supported,            // a feature the server does not have (headers, JetStream, ...)
  reconnect_buffer_full,    // a publish while reconnecting that does not fit in the reconnect buffer
  lame_duck_mode,           // the server announced lame duck mode; the client moves to another server

  // JetStream.
  jetstream_not_enabled,
  stream_not_found_for_topic,  // the event bus could not find or create a stream for a topic
  stream_config_mismatch,      // validate_only found differences
  topic_config_conflict,       // per-topic options would change a stream other topics share
  // Configuration.
  invalid_config,              // a configuration (file or code) that cannot be used

  // Security: TLS, credentials, WebSocket. Appended, so earlier values keep their numbers.
  secure_connection_not_available,  // TLS wanted, and the server's INFO offers neither tls_required nor tls_available
  tls_handshake_failed,             // a TLS handshake failure that none of the codes below describes
  tls_untrusted_certificate,        // the server's certificate chain does not lead to a trusted CA
  tls_certificate_expired,          // the server's certificate (or one in its chain) has expired or is not yet valid
  tls_name_mismatch,                // the server's certificate does not name the host (DNS name or IP address)
  tls_handshake_timeout,            // the TLS handshake did not finish within the connect deadline
  tls_client_certificate_rejected,  // the server refused the client certificate (or required one and got none)
  invalid_tls_material,             // a CA, certificate or key file that cannot be read or parsed
  invalid_nkey_seed,                // an NKey seed with bad base32, prefix, length or checksum
  invalid_credentials,              // a .creds file or JWT that cannot be used (missing block, wrong key type, ...)
  signing_failed,                   // the nonce could not be signed (signing callback or OpenSSL failed)
  websocket_upgrade_failed,         // the HTTP upgrade to WebSocket was refused or malformed
  websocket_closed,                 // the server closed the WebSocket (its close code is in the message)
  websocket_protocol_error,         // a WebSocket frame that breaks RFC 6455 (bad opcode, oversize, ...)

  // Consumers.
  missed_heartbeat,           // a pull or push consumer's idle heartbeats stopped coming (two intervals)
  consumer_deleted,           // 409 Consumer Deleted (or the consumer is gone: 10014 on a pull)
  consumer_is_push_based,     // 409 Consumer is push based: pulled from a push consumer
  pull_request_refused,       // 409 Exceeded MaxWaiting / MaxRequestBatch / MaxRequestExpires / MaxRequestMaxBytes
  message_exceeds_max_bytes,  // 409 Message Size Exceeds MaxBytes: the next message is larger than the pull allows
  leadership_change,          // 409 Leadership Change: the pull ended, a new one is needed
  already_acknowledged,       // a second ack of one message: nothing was sent
  not_supported_by_server,    // a consumer field the connected server would silently drop (2.9 and filter_subjects)
  consumer_not_found_for_subscriber,  // validate_only: the subscriber's durable consumer does not exist
  consumer_config_mismatch,           // validate_only: it exists with another configuration
};

[[nodiscard]] const boost::system::error_category& client_category() noexcept;
[[nodiscard]] const boost::system::error_category& jetstream_category() noexcept;

[[nodiscard]] inline error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), client_category()};
}

inline std::ostream& operator<<(std::ostream& os, error e) { return os << make_error_code(e).message(); }

// A JetStream API error by its err_code (10058 name in use, 10059 not found, 10071 wrong last sequence, ...).
[[nodiscard]] inline error_code make_jetstream_error(int err_code) noexcept {
  return {err_code, jetstream_category()};
}

namespace jetstream_errc {
inline constexpr int stream_name_in_use = 10058;
inline constexpr int stream_not_found = 10059;
inline constexpr int stream_subjects_overlap = 10065;
inline constexpr int stream_wrong_last_sequence = 10071;
inline constexpr int stream_wrong_last_msg_id = 10070;
inline constexpr int consumer_not_found = 10014;
inline constexpr int consumer_name_exists = 10013;
inline constexpr int jetstream_not_enabled = 10076;
inline constexpr int jetstream_not_enabled_for_account = 10039;
inline constexpr int stream_message_not_found = 10037;
}  // namespace jetstream_errc

// Whether the connection must be dropped after this error. Permission violations, JetStream API errors,
// timeouts of single operations and slow consumers leave the connection usable.
[[nodiscard]] bool is_fatal(const error_code& ec) noexcept;

// Exception thrown to coroutine callers that did not ask for error codes. what() holds the server's or
// JetStream's text when there is one, otherwise the category's message.
class system_error : public boost::system::system_error {
 public:
  using boost::system::system_error::system_error;
};

}  // namespace natsbus

namespace boost::system {
template <>
struct is_error_code_enum<natsbus::error> : std::true_type {};
}  // namespace boost::system
