// natsbus::metrics_server on Beast: the only translation unit that includes Beast (it compiles slowly).
//
// One strand holds the server's state (the acceptor and the open connections); each connection is a coroutine
// that reads a request with Beast's parser, answers it, and goes on while the client keeps the connection alive.
#include <natsbus/error.hpp>
#include <natsbus/metrics_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <set>

namespace natsbus {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace detail {

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t header_limit = 8 * 1024;
constexpr std::size_t body_limit = 8 * 1024;  // a scrape sends none; anything bigger is refused

bool is_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

class metrics_server_impl : public std::enable_shared_from_this<metrics_server_impl> {
 public:
  metrics_server_impl(asio::any_io_executor ex, std::function<void(std::string&)> write, metrics_server_options opts)
      : strand_(asio::make_strand(std::move(ex))),
        acceptor_(strand_),
        write_(std::move(write)),
        opts_(std::move(opts)) {}

  void listen() {
    acceptor_.open(opts_.endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(opts_.endpoint);
    acceptor_.listen();
    bound_ = acceptor_.local_endpoint();
    asio::co_spawn(strand_, accept_loop(shared_from_this()), asio::detached);
  }

  void stop() {
    asio::post(strand_, [self = shared_from_this()] {
      self->stopped_ = true;
      error_code ignored;
      self->acceptor_.close(ignored);
      for (auto* s : self->sessions_) s->close();
    });
  }

  [[nodiscard]] tcp::endpoint local_endpoint() const { return bound_; }

 private:
  asio::awaitable<void> accept_loop(std::shared_ptr<metrics_server_impl> self) {
    (void)self;  // held: the server lives while it accepts
    asio::steady_timer pause(strand_);
    while (!stopped_) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_ec);
      if (stopped_) break;
      if (ec) {
        // Out of descriptors, or a connection reset before it was taken: wait a little rather than spin.
        pause.expires_after(std::chrono::milliseconds(50));
        auto [pec] = co_await pause.async_wait(use_ec);
        (void)pec;
        continue;
      }
      if (sessions_.size() >= opts_.max_connections) {
        error_code ignored;
        socket.close(ignored);
        continue;
      }
      asio::co_spawn(strand_, session(shared_from_this(), std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(std::shared_ptr<metrics_server_impl> self, tcp::socket socket) {
    (void)self;
    beast::tcp_stream stream(std::move(socket));
    sessions_.insert(&stream);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(header_limit);
      parser.body_limit(body_limit);
      stream.expires_after(opts_.idle_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_ec);
      (void)n;
      if (stopped_) break;
      http::response<http::string_body> res;
      bool keep_alive = false;
      if (ec) {
        if (!is_parse_error(ec) || ec == http::error::end_of_stream || ec == http::error::partial_message) break;
        // A request Beast cannot parse: say so, then close (the rest of the stream cannot be trusted).
        const auto status = ec == http::error::body_limit     ? http::status::payload_too_large
                            : ec == http::error::header_limit ? http::status::request_header_fields_too_large
                                                              : http::status::bad_request;
        plain(res, status, std::string(http::obsolete_reason(status)) + "\n");
        res.version(11);
      } else if (const auto& req = parser.get(); req.version() != 10 && req.version() != 11) {
        plain(res, http::status::bad_request, "HTTP/1.0 or HTTP/1.1 only\n");
        res.version(11);
      } else {
        respond(req, res);
        res.version(req.version());
        keep_alive = req.keep_alive();
      }
      res.keep_alive(keep_alive);
      size_send_buffer(stream.socket(), res.body().size());
      auto [wec, wn] = co_await http::async_write(stream, res, use_ec);
      (void)wn;
      // The body's buffer serves the next scrape: no fresh pages for hundreds of kilobytes each time.
      if (res.body().capacity() > 64 * 1024 && spare_bodies_.size() < 2) spare_bodies_.push_back(std::move(res.body()));
      if (wec || !keep_alive || stopped_) break;
    }
    sessions_.erase(&stream);
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
  }

  // A scrape of many series is hundreds of kilobytes. A send buffer that takes it whole lets the kernel hand it
  // to the scraper at the scraper's pace, without this thread woken for every few kilobytes (on a busy machine,
  // each wake-up waits for a time slice).
  static void size_send_buffer(tcp::socket& s, std::size_t body) {
    constexpr std::size_t small = 64 * 1024, most = 8 * 1024 * 1024;
    if (body <= small) return;
    error_code ignored;
    s.set_option(tcp::socket::send_buffer_size(static_cast<int>(std::min(body + 4096, most))), ignored);
  }

  static void plain(http::response<http::string_body>& res, http::status status, std::string body) {
    res.result(status);
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = std::move(body);
    res.prepare_payload();
  }

  void respond(const http::request<http::string_body>& req, http::response<http::string_body>& res) {
    const bool head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
      plain(res, http::status::method_not_allowed, "only GET and HEAD\n");
      res.set(http::field::allow, "GET, HEAD");
      return;
    }
    std::string_view path = req.target();
    if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, metrics::registry::content_type);
      if (!spare_bodies_.empty()) {
        res.body() = std::move(spare_bodies_.back());
        spare_bodies_.pop_back();
        res.body().clear();
      }
      write_(res.body());
      res.prepare_payload();
    } else if (path == "/healthz") {
      plain(res, http::status::ok, "ok\n");
    } else if (path == "/readyz") {
      readiness r;
      if (opts_.ready) {
        try {
          r = opts_.ready();
        } catch (const std::exception& e) {
          r = {false, std::string("readiness check failed: ") + e.what()};
        }
      }
      if (r.ready) plain(res, http::status::ok, "ready\n");
      else plain(res, http::status::service_unavailable, (r.reason.empty() ? "not ready" : r.reason) + "\n");
    } else {
      plain(res, http::status::not_found, "not found: /metrics, /healthz, /readyz\n");
    }
    if (head) {
      // The length of what GET would send, and no body.
      const auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
  }

  asio::strand<asio::any_io_executor> strand_;
  tcp::acceptor acceptor_;
  std::function<void(std::string&)> write_;
  metrics_server_options opts_;
  tcp::endpoint bound_;
  bool stopped_ = false;
  std::set<beast::tcp_stream*> sessions_;  // open connections, for stop()
  std::vector<std::string> spare_bodies_;
};

}  // namespace detail

metrics_server& metrics_server::operator=(metrics_server&& o) noexcept {
  if (this != &o) {
    stop();
    impl_ = std::move(o.impl_);
  }
  return *this;
}

metrics_server metrics_server::start(asio::any_io_executor ex, const metrics::registry& reg,
                                     metrics_server_options opts) {
  auto impl = std::make_shared<detail::metrics_server_impl>(std::move(ex), reg.writer(), std::move(opts));
  impl->listen();
  return metrics_server(std::move(impl));
}

metrics_server metrics_server::start(asio::any_io_executor ex, const metrics::registry& reg,
                                     asio::ip::tcp::endpoint endpoint, readiness_check ready) {
  metrics_server_options opts;
  opts.endpoint = endpoint;
  opts.ready = std::move(ready);
  return start(std::move(ex), reg, std::move(opts));
}

asio::ip::tcp::endpoint metrics_server::local_endpoint() const {
  return impl_ ? impl_->local_endpoint() : asio::ip::tcp::endpoint{};
}

void metrics_server::stop() {
  if (auto impl = std::move(impl_)) impl->stop();
}

std::optional<asio::ip::tcp::endpoint> metrics_server::parse_endpoint(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port_text.empty() || port > 65535)
    return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  asio::ip::address addr;
  if (host.empty() || host == "localhost") {
    addr = asio::ip::address_v4::loopback();
  } else {
    error_code aec;
    addr = asio::ip::make_address(std::string(host), aec);
    if (aec) return std::nullopt;
  }
  return asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(port));
}

}  // namespace natsbus
