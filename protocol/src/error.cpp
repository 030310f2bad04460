#include <natsbus/error.hpp>

#include <string>

namespace natsbus {
namespace {

class client_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "natsbus"; }
  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::protocol_violation: return "protocol violation";
      case error::control_line_too_long: return "control line too long";
      case error::payload_too_large: return "payload too large";
      case error::invalid_size: return "invalid size field";
      case error::unknown_operation: return "unknown protocol operation";
      case error::missing_crlf: return "missing CRLF after payload";
      case error::bad_header: return "malformed header block";
      case error::invalid_json: return "invalid JSON";
      case error::invalid_subject: return "invalid subject";
      case error::invalid_queue_group: return "invalid queue group";
      case error::invalid_argument: return "invalid argument";
      case error::invalid_url: return "invalid URL";
      case error::connection_closed: return "connection closed";
      case error::disconnected: return "disconnected";
      case error::timeout: return "timeout";
      case error::connect_timeout: return "connect timeout";
      case error::write_timeout: return "write timeout";
      case error::no_responders: return "no responders";
      case error::max_payload_exceeded: return "maximum payload exceeded";
      case error::slow_consumer: return "slow consumer, messages dropped";
      case error::stale_connection: return "stale connection";
      case error::authorization_violation: return "authorization violation";
      case error::authentication_expired: return "user authentication expired";
      case error::permissions_violation: return "permissions violation";
      case error::server_error: return "server error";
      case error::no_servers: return "no servers available";
      case error::draining: return "draining";
      case error::subscription_closed: return "subscription closed";
      case error::tls_required: return "server requires TLS";
      case error::not_supported: return "not supported by the server";
      case error::jetstream_not_enabled: return "JetStream not enabled";
      case error::stream_not_found_for_topic: return "no stream for topic";
      case error::stream_config_mismatch: return "stream configuration mismatch";
      case error::topic_config_conflict: return "topic options conflict with a shared stream";
      case error::invalid_config: return "invalid configuration";
      case error::reconnect_buffer_full: return "reconnect buffer full";
      case error::lame_duck_mode: return "server entered lame duck mode";
      case error::secure_connection_not_available: return "secure connection not available: the server offers no TLS";
      case error::tls_handshake_failed: return "TLS handshake failed";
      case error::tls_untrusted_certificate: return "TLS: server certificate not trusted (unknown CA)";
      case error::tls_certificate_expired: return "TLS: server certificate expired or not yet valid";
      case error::tls_name_mismatch: return "TLS: server certificate does not match the host name or IP address";
      case error::tls_handshake_timeout: return "TLS handshake timeout";
      case error::tls_client_certificate_rejected: return "TLS: client certificate rejected by the server";
      case error::invalid_tls_material: return "invalid TLS material (CA, certificate or key file)";
      case error::invalid_nkey_seed: return "invalid NKey seed";
      case error::invalid_credentials: return "invalid credentials";
      case error::signing_failed: return "signing the server nonce failed";
      case error::websocket_upgrade_failed: return "WebSocket upgrade failed";
      case error::websocket_closed: return "WebSocket closed by the server";
      case error::websocket_protocol_error: return "WebSocket protocol error";
      case error::missed_heartbeat: return "missed idle heartbeats from the consumer";
      case error::consumer_deleted: return "consumer deleted";
      case error::consumer_is_push_based: return "consumer is push based";
      case error::pull_request_refused: return "pull request refused by the server";
      case error::message_exceeds_max_bytes: return "message size exceeds the pull's max_bytes";
      case error::leadership_change: return "consumer leadership changed";
      case error::already_acknowledged: return "message already acknowledged";
      case error::not_supported_by_server: return "not supported by the connected server";
      case error::consumer_not_found_for_subscriber: return "the subscriber's consumer does not exist";
      case error::consumer_config_mismatch: return "consumer configuration differs from the subscriber's options";
    }
    return "unknown natsbus error " + std::to_string(ev);
  }
};

class jetstream_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "natsbus.jetstream"; }
  std::string message(int ev) const override {
    switch (ev) {
      case jetstream_errc::stream_name_in_use: return "stream name already in use with a different configuration";
      case jetstream_errc::stream_not_found: return "stream not found";
      case jetstream_errc::stream_subjects_overlap: return "subjects overlap with an existing stream";
      case jetstream_errc::stream_wrong_last_sequence: return "wrong last sequence";
      case jetstream_errc::stream_wrong_last_msg_id: return "wrong last msg id";
      case jetstream_errc::consumer_not_found: return "consumer not found";
      case jetstream_errc::consumer_name_exists: return "consumer name already in use";
      case jetstream_errc::jetstream_not_enabled: return "JetStream not enabled";
      case jetstream_errc::jetstream_not_enabled_for_account: return "JetStream not enabled for account";
      case jetstream_errc::stream_message_not_found: return "no message found";
      default: return "JetStream API error " + std::to_string(ev);
    }
  }
};

}  // namespace

const boost::system::error_category& client_category() noexcept {
  static const client_category_impl instance;
  return instance;
}

const boost::system::error_category& jetstream_category() noexcept {
  static const jetstream_category_impl instance;
  return instance;
}

bool is_fatal(const error_code& ec) noexcept {
  if (!ec) return false;
  if (ec.category() == jetstream_category()) return false;
  if (ec.category() != client_category()) return true;  // socket, TLS, resolver errors
  switch (static_cast<error>(ec.value())) {
    case error::protocol_violation:
    case error::control_line_too_long:
    case error::payload_too_large:
    case error::invalid_size:
    case error::unknown_operation:
    case error::missing_crlf:
    case error::stale_connection:
    case error::authorization_violation:
    case error::authentication_expired:
    case error::server_error:
    case error::write_timeout:
    case error::connect_timeout:
    case error::disconnected:
    case error::connection_closed:
    case error::tls_required:
    case error::secure_connection_not_available:
    case error::tls_handshake_failed:
    case error::tls_untrusted_certificate:
    case error::tls_certificate_expired:
    case error::tls_name_mismatch:
    case error::tls_handshake_timeout:
    case error::tls_client_certificate_rejected:
    case error::invalid_tls_material:
    case error::invalid_nkey_seed:
    case error::invalid_credentials:
    case error::signing_failed:
    case error::websocket_upgrade_failed:
    case error::websocket_closed:
    case error::websocket_protocol_error:
      return true;
    default:
      return false;
  }
}

}  // namespace natsbus
