// The transport's connect, its secure kinds and close. TLS is Asio's SSL stream over OpenSSL 3; WebSocket is Beast's
// stream (binary messages, client masking, permessage-deflate when asked and offered). This is the one translation
// unit that compiles their templates.
#include "transport/transport.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <optional>

namespace natsbus::detail {

using namespace asio::experimental::awaitable_operators;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using tls_stream = ssl::stream<tcp::socket>;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

// Closes the stream when `deadline` passes while a step (connect, TLS or WebSocket handshake) is under way; the step
// then fails with operation_aborted, and fired() tells the caller why. Every operation the stream has is cancelled by
// a close, so no step needs a cancellation protocol of its own.
class deadline_guard {
 public:
  template <class OnExpiry>
  deadline_guard(const asio::any_io_executor& ex, std::chrono::steady_clock::time_point deadline, OnExpiry on_expiry)
      : timer_(ex), state_(std::make_shared<state>()) {
    timer_.expires_at(deadline);
    timer_.async_wait([s = state_, f = std::move(on_expiry)](error_code ec) {
      if (ec || s->done) return;
      s->fired = true;
      f();
    });
  }
  ~deadline_guard() {
    state_->done = true;  // a completion already queued must not close the next step's stream
    timer_.cancel();
  }
  deadline_guard(const deadline_guard&) = delete;
  deadline_guard& operator=(const deadline_guard&) = delete;
  [[nodiscard]] bool fired() const noexcept { return state_->fired; }

 private:
  struct state {
    bool fired = false;
    bool done = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<state> state_;
};

bool is_ip_address(const std::string& host) {
  error_code ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "not usable";
  const char* r = ERR_reason_error_string(e);
  return r ? r : "not usable";
}

// A fresh context per connect, so that rotated CA, certificate and key files take effect on the next reconnect.
std::unique_ptr<ssl::context> make_context(const tls_options& o, std::string& detail, error_code& ec) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native,
                                o.min_version == tls_options::version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  ERR_clear_error();
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_file(native, o.ca_file.c_str()) != 1) {
      detail = "ca_file " + o.ca_file + ": " + openssl_reason();
      ec = error::invalid_tls_material;
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
    detail = "the system's trust store: " + openssl_reason();
    ec = error::invalid_tls_material;
    return nullptr;
  }
  if (o.cert_file.empty() != o.key_file.empty()) {
    detail = "a client certificate needs both cert_file and key_file";
    ec = error::invalid_tls_material;
    return nullptr;
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(native, o.cert_file.c_str()) != 1) {
      detail = "cert_file " + o.cert_file + ": " + openssl_reason();
      ec = error::invalid_tls_material;
      return nullptr;
    }
    // The key's own text never reaches a message: OpenSSL's reason names what is wrong, not the content.
    if (SSL_CTX_use_PrivateKey_file(native, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      const std::string reason = openssl_reason();
      detail = reason.find("mismatch") != std::string::npos
                   ? "key_file " + o.key_file + " does not match cert_file " + o.cert_file
                   : "key_file " + o.key_file + ": " + reason;
      ec = error::invalid_tls_material;
      return nullptr;
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      detail = "key_file " + o.key_file + " does not match cert_file " + o.cert_file;
      ERR_clear_error();
      ec = error::invalid_tls_material;
      return nullptr;
    }
  }
  return ctx;
}

// Verification: the certificate must carry the name (a DNS name, wildcards allowed but not partial ones) or the IP
// address; SNI only for DNS names (RFC 6066 forbids addresses there).
void prepare(tls_stream& s, const tls_options& o, const std::string& name) {
  SSL* native = s.native_handle();
  const bool ip = is_ip_address(name);
  if (!ip && !name.empty()) SSL_set_tlsext_host_name(native, name.c_str());
  if (o.insecure_skip_verify_dangerous) {
    s.set_verify_mode(ssl::verify_none);
    return;
  }
  s.set_verify_mode(ssl::verify_peer);
  X509_VERIFY_PARAM* param = SSL_get0_param(native);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (ip) X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  else X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
}

template <class Ws>
void configure(Ws& w, const transport_spec& spec) {
  // Bounds the closing handshake Beast starts on a protocol error or a close frame: a peer that never answers it
  // must not hold the read (and the session) forever.
  websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(beast::role_type::client);
  t.handshake_timeout = spec.close_timeout;
  t.idle_timeout = websocket::stream_base::none();  // NATS PINGs watch an idle link
  t.keep_alive_pings = false;
  w.set_option(t);
  w.binary(true);
  w.auto_fragment(false);  // one coalesced batch, one frame
  const websocket_options defaults;
  const websocket_options& o = spec.ws ? *spec.ws : defaults;
  w.read_message_max(o.max_message_size);
  if (o.compression) {
    websocket::permessage_deflate pmd;
    pmd.client_enable = true;
    w.set_option(pmd);
  }
  w.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "natsbus"); }));
}

std::string host_header(const transport_spec& spec) {
  const bool v6 = spec.host.find(':') != std::string::npos;
  return (v6 ? "[" + spec.host + "]" : spec.host) + ":" + std::to_string(spec.port);
}

}  // namespace

struct transport::secure_layer {
  std::unique_ptr<ssl::context> ctx;
  std::optional<tls_stream> tls;
  std::optional<websocket::stream<tcp::socket>> ws;
  std::optional<websocket::stream<tls_stream>> wss;

  tls_stream* tls_layer() { return tls ? &*tls : wss ? &wss->next_layer() : nullptr; }
  tcp::socket& lowest() {
    if (tls) return tls->next_layer();
    if (wss) return wss->next_layer().next_layer();
    return ws->next_layer();
  }
  [[nodiscard]] bool has_stream() const { return tls || ws || wss; }
};

transport::transport(asio::any_io_executor ex) : ex_(ex), socket_(std::move(ex)) {}
transport::~transport() = default;

bool transport::is_open() const noexcept {
  if (kind_ == transport_kind::tcp || !secure_ || !secure_->has_stream()) return socket_.is_open();
  return secure_->lowest().is_open();
}

asio::awaitable<error_code> transport::connect(const transport_spec& spec,
                                               std::chrono::steady_clock::time_point deadline) {
  close();
  secure_.reset();  // no operation is pending on a closed stream once the session has ended
  kind_ = transport_kind::tcp;
  detail_.clear();
  socket_ = tcp::socket(ex_);
  asio::steady_timer timer(ex_);
  timer.expires_at(deadline);
  tcp::resolver resolver(ex_);
  auto resolved =
      co_await (resolver.async_resolve(spec.host, std::to_string(spec.port), use_ec) || timer.async_wait(use_ec));
  if (resolved.index() == 1) co_return error_code(error::connect_timeout);
  auto [rec, results] = std::get<0>(resolved);
  if (rec) co_return rec;
  {
    deadline_guard guard(ex_, deadline, [this] { close(); });
    auto [cec, ep] = co_await asio::async_connect(socket_, results, use_ec);
    (void)ep;
    if (guard.fired()) co_return error_code(error::connect_timeout);
    if (cec) co_return cec;
  }
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);  // try_write: the writer tries the socket before waiting on the reactor
  if (spec.tls_first) {
    if (auto ec = co_await tls_handshake(spec, deadline)) co_return ec;
  }
  if (spec.websocket) {
    if (auto ec = co_await websocket_handshake(spec, deadline)) co_return ec;
  }
  co_return error_code{};
}

asio::awaitable<error_code> transport::start_tls(const transport_spec& spec,
                                                 std::chrono::steady_clock::time_point deadline) {
  co_return co_await tls_handshake(spec, deadline);
}

asio::awaitable<error_code> transport::tls_handshake(const transport_spec& spec,
                                                     std::chrono::steady_clock::time_point deadline) {
  static const tls_options defaults;  // a server that requires TLS, and no options: the system's trust store
  const tls_options& o = spec.tls ? *spec.tls : defaults;
  error_code ec;
  auto ctx = make_context(o, detail_, ec);
  if (ec) {
    close();
    co_return ec;
  }
  secure_ = std::make_unique<secure_layer>();
  secure_->ctx = std::move(ctx);
  if (spec.websocket) secure_->wss.emplace(std::move(socket_), *secure_->ctx);
  else secure_->tls.emplace(std::move(socket_), *secure_->ctx);
  kind_ = spec.websocket ? transport_kind::secure_websocket : transport_kind::tls;
  tls_stream& s = *secure_->tls_layer();
  prepare(s, o, spec.tls_name.empty() ? spec.host : spec.tls_name);
  deadline_guard guard(ex_, deadline, [this] { close(); });
  auto [hec] = co_await s.async_handshake(ssl::stream_base::client, use_ec);
  if (guard.fired()) {
    detail_ = "no TLS handshake from " + spec.host + ":" + std::to_string(spec.port) + " within the connect deadline";
    co_return error_code(error::tls_handshake_timeout);
  }
  if (hec) {
    error_code mapped = explain(hec);
    close();
    co_return mapped;
  }
  co_return error_code{};
}

namespace {

template <class Ws>
asio::awaitable<error_code> upgrade(Ws& w, const transport_spec& spec, std::string& detail) {
  configure(w, spec);
  websocket::response_type res;
  auto [ec] = co_await w.async_handshake(res, host_header(spec), spec.ws_target, use_ec);
  if (!ec) co_return error_code{};
  if (res.result_int() != 0 && res.result_int() != 101)
    detail = "HTTP " + std::to_string(res.result_int()) + " " + std::string(res.reason()) + " for " + spec.ws_target;
  else
    detail = ec.message();
  co_return error_code(error::websocket_upgrade_failed);
}

}  // namespace

asio::awaitable<error_code> transport::websocket_handshake(const transport_spec& spec,
                                                           std::chrono::steady_clock::time_point deadline) {
  if (!secure_) {
    secure_ = std::make_unique<secure_layer>();
    secure_->ws.emplace(std::move(socket_));
    kind_ = transport_kind::websocket;
  }
  deadline_guard guard(ex_, deadline, [this] { close(); });
  error_code ec = secure_->wss ? co_await upgrade(*secure_->wss, spec, detail_)
                               : co_await upgrade(*secure_->ws, spec, detail_);
  if (guard.fired()) {
    detail_ = "no WebSocket upgrade within the connect deadline";
    co_return error_code(error::connect_timeout);
  }
  if (ec) close();
  co_return ec;
}

// The erased handler's own executor is not one Beast can post to; the transport's executor (the connection's strand)
// is where the caller's handler runs anyway.
void transport::secure_read_some(asio::mutable_buffer b, read_handler h) {
  if (secure_ && secure_->tls) return secure_->tls->async_read_some(b, asio::bind_executor(ex_, std::move(h)));
  if (secure_ && secure_->ws) return secure_->ws->async_read_some(b, asio::bind_executor(ex_, std::move(h)));
  if (secure_ && secure_->wss) return secure_->wss->async_read_some(b, asio::bind_executor(ex_, std::move(h)));
  asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(asio::error::not_connected, 0); });
}

void transport::secure_write(asio::const_buffer b, read_handler h) {
  if (secure_ && secure_->tls) return asio::async_write(*secure_->tls, b, asio::bind_executor(ex_, std::move(h)));
  if (secure_ && secure_->ws) return secure_->ws->async_write(b, asio::bind_executor(ex_, std::move(h)));
  if (secure_ && secure_->wss) return secure_->wss->async_write(b, asio::bind_executor(ex_, std::move(h)));
  asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(asio::error::not_connected, 0); });
}

error_code transport::explain(error_code ec) {
  if (!ec) return ec;
  if (ec.category() == asio::error::get_ssl_category()) {
    tls_stream* s = secure_ ? secure_->tls_layer() : nullptr;
    const long verify = s ? SSL_get_verify_result(s->native_handle()) : X509_V_OK;
    if (verify != X509_V_OK) {
      detail_ = std::string("certificate verification: ") + X509_verify_cert_error_string(verify);
      switch (verify) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID: return error::tls_certificate_expired;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: return error::tls_name_mismatch;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE: return error::tls_untrusted_certificate;
        default: return error::tls_handshake_failed;
      }
    }
    detail_ = "TLS: " + ec.message();
    // The server's alerts about our certificate (TLS 1.2: during the handshake; TLS 1.3: on the first read after
    // it). OpenSSL's reason for a received alert is 1000 + the alert number.
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_AD_REASON_OFFSET + SSL_AD_BAD_CERTIFICATE:
      case SSL_AD_REASON_OFFSET + SSL_AD_UNSUPPORTED_CERTIFICATE:
      case SSL_AD_REASON_OFFSET + SSL_AD_CERTIFICATE_REVOKED:
      case SSL_AD_REASON_OFFSET + SSL_AD_CERTIFICATE_EXPIRED:
      case SSL_AD_REASON_OFFSET + SSL_AD_CERTIFICATE_UNKNOWN:
      case SSL_AD_REASON_OFFSET + SSL_AD_UNKNOWN_CA:
      case SSL_AD_REASON_OFFSET + SSL_AD_ACCESS_DENIED:
      case SSL_AD_REASON_OFFSET + SSL_AD_CERTIFICATE_REQUIRED: return error::tls_client_certificate_rejected;
      default: return error::tls_handshake_failed;
    }
  }
  if (ec == websocket::error::closed) {
    const websocket::close_reason* r = nullptr;
    if (secure_ && secure_->ws) r = &secure_->ws->reason();
    if (secure_ && secure_->wss) r = &secure_->wss->reason();
    detail_ = "WebSocket closed by the server";
    if (r) {
      detail_ += ", code " + std::to_string(r->code);
      if (!r->reason.empty()) detail_ += ": " + std::string(r->reason.c_str());
    }
    return error::websocket_closed;
  }
  if (ec.category() == make_error_code(websocket::error::closed).category() ||
      ec == websocket::condition::protocol_violation) {
    detail_ = "WebSocket: " + ec.message();
    return error::websocket_protocol_error;
  }
  return ec;
}

void transport::close() noexcept {
  error_code ignored;
  if (socket_.is_open()) {
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  if (secure_ && secure_->has_stream()) {
    auto& s = secure_->lowest();
    if (s.is_open()) {
      s.shutdown(tcp::socket::shutdown_both, ignored);
      s.close(ignored);
    }
  }
}

}  // namespace natsbus::detail
