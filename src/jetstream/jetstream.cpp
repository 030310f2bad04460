// natsbus::jetstream management API: each call is one request over the connection's multiplexed inbox.
#include "jetstream/jetstream_impl.hpp"

#include <natsbus/protocol/consumer.hpp>

#include <natsbus/protocol/names.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/json.hpp>

namespace natsbus {
namespace detail {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

bool valid_name(std::string_view name) noexcept { return protocol::is_valid_stream_name(name); }

namespace {

// A failure with the text for the caller (the server's description of a JetStream error, or what failed).
struct described_error : boost::system::system_error {
  described_error(error_code ec, std::string t) : boost::system::system_error(ec, t), text(std::move(t)) {}
  std::string text;
};

[[noreturn]] void fail(error_code ec, const std::string& what = {}) { throw described_error(ec, what); }

void check_name(std::string_view name) {
  if (name.empty()) fail(error::invalid_argument, "empty name");
  if (!valid_name(name)) fail(error::invalid_argument, "bad name");
}

// The operation's error code; its text goes to `text` when the caller wants it.
error_code to_error_code(std::exception_ptr e, const std::shared_ptr<std::string>& text = {}) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const described_error& de) {
    if (text) *text = de.text;
    return de.code();
  } catch (const boost::system::system_error& se) {
    if (text) *text = se.what();
    return se.code();
  } catch (...) {
    return error::protocol_violation;
  }
}

}  // namespace

jetstream_impl::jetstream_impl(std::shared_ptr<connection_impl> conn, jetstream_options opts)
    : conn_(std::move(conn)), opts_(std::move(opts)), sweep_timer_(conn_->executor()) {
  prefix_ = opts_.domain.empty() ? opts_.api_prefix : "$JS." + opts_.domain + ".API";
  if (opts_.max_pending == 0) opts_.max_pending = 1;
  std::size_t ring = 1;
  while (ring < opts_.max_pending * 2) ring <<= 1;
  ring_.assign(ring, nullptr);
  mask_ = ring - 1;
  while ((std::size_t{1} << slot_bits_) < ring) ++slot_bits_;
  slot_gen_.assign(ring, 0);
  free_slots_.resize(ring);
  for (std::size_t i = 0; i < ring; ++i) free_slots_[i] = static_cast<std::uint32_t>(i);
  free_count_ = ring;
}

template <class T>
void jetstream_impl::spawn(asio::awaitable<T> op, asio::any_completion_handler<void(error_code, T)> h,
                           std::shared_ptr<std::string> text) {
  auto strand = conn_->executor();
  asio::co_spawn(strand, std::move(op),
                 [strand, h = std::move(h), text = std::move(text)](std::exception_ptr e, T v) mutable {
                   error_code ec = to_error_code(e, text);
                   if (ec) v = T{};
                   complete(strand, std::move(h), ec, std::move(v));
                 });
}

asio::awaitable<jetstream_impl::api_reply> jetstream_impl::send(std::string subject, std::string body) {
  auto self = shared_from_this();
  std::string full = prefix_ + "." + subject;
  auto conn = conn_;
  auto [ec, m] = co_await asio::async_initiate<decltype(use_ec), void(error_code, message)>(
      [&](auto h) { conn->do_request(full, body, nullptr, opts_.timeout, message_handler(std::move(h))); }, use_ec);
  if (ec == error::no_responders) {
    conn->log()->warn("natsbus: JetStream: no responder for {} (JetStream not enabled?)", full);
    co_return api_reply{error::jetstream_not_enabled, "no JetStream responder for " + full};
  }
  if (ec) {
    conn->log()->warn("natsbus: JetStream: {}: {}", full, ec.message());
    co_return api_reply{ec, std::move(full)};
  }
  conn->log()->trace("natsbus: JetStream: {}: {} bytes answered", full, m.payload.size());
  co_return api_reply{{}, std::move(m.payload)};
}

// A failed reply from the server's error object (its text, recorded in last_error_), or from a response that
// could not be read.
jetstream_impl::api_reply jetstream_impl::failed(error_code ec, api_error&& err, bool from_server) {
  if (!from_server) {
    conn_->log()->warn("natsbus: JetStream: a response could not be read: {}", ec.message());
    return api_reply{ec, "decoding JetStream response"};
  }
  conn_->log()->debug("natsbus: JetStream: error {} ({}): {}", err.err_code, err.code, err.description);
  std::string text = err.description;
  std::lock_guard lock(error_mutex_);
  last_error_ = std::move(err);
  return api_reply{ec, std::move(text)};
}

template <class T>
asio::awaitable<jetstream_impl::api_reply> jetstream_impl::request(std::string subject, std::string body, T& out) {
  auto reply = co_await send(std::move(subject), std::move(body));
  if (reply.ec) co_return reply;
  api_error err;
  if (error_code ec = protocol::decode(reply.text, out, err))
    co_return failed(ec, std::move(err), ec.category() == jetstream_category() || ec == error::server_error);
  co_return api_reply{};
}

asio::awaitable<std::string> jetstream_impl::call(std::string subject, std::string body) {
  auto reply = co_await send(std::move(subject), std::move(body));
  if (reply.ec) fail(reply.ec, reply.text);
  api_error err;
  error_code jec;
  if (protocol::extract_api_error(reply.text, err, jec)) {
    error_code code = err.err_code ? make_jetstream_error(err.err_code) : error_code(error::server_error);
    reply = failed(code, std::move(err), true);
    fail(reply.ec, reply.text);
  }
  if (jec) fail(jec, "decoding JetStream response");
  co_return std::move(reply.text);
}

template <class T>
asio::awaitable<T> jetstream_impl::call_decoded(std::string subject, std::string body) {
  T out{};
  auto reply = co_await request(std::move(subject), std::move(body), out);
  if (reply.ec) fail(reply.ec, reply.text);
  co_return out;
}

template asio::awaitable<jetstream_impl::api_reply> jetstream_impl::request(std::string, std::string, stream_info&);

}  // namespace detail

using detail::jetstream_impl;

jetstream::jetstream(connection& conn, jetstream_options opts)
    : impl_(std::make_shared<jetstream_impl>(conn.impl(), std::move(opts))) {
  asio::dispatch(impl_->conn_->executor(), [w = std::weak_ptr<jetstream_impl>(impl_)] {
    if (auto impl = w.lock()) impl->conn_->add_listener(impl);
  });
}

jetstream::~jetstream() {
  asio::dispatch(impl_->conn_->executor(), [impl = impl_] { impl->fail_all(error::connection_closed); });
}

connection::executor_type jetstream::get_executor() const noexcept { return impl_->conn_->executor(); }

api_error jetstream::last_api_error() const {
  std::lock_guard lock(impl_->error_mutex_);
  return impl_->last_error_;
}

void jetstream::create_stream_impl(std::shared_ptr<const stream_config> cfg, bool update, handler<stream_info> h,
                                   text_slot t) {
  auto impl = impl_;
  impl->spawn<natsbus::stream_info>(
      [](std::shared_ptr<jetstream_impl> impl, std::shared_ptr<const stream_config> cfg,
         bool update) -> asio::awaitable<natsbus::stream_info> {
        detail::check_name(cfg->name);
        // Named locals: GCC 12 mishandles non-trivial temporaries inside co_await.
        std::string request_subject = (update ? "STREAM.UPDATE." : "STREAM.CREATE.") + cfg->name;
        std::string request_body = protocol::encode(*cfg);
        co_return co_await impl->call_decoded<natsbus::stream_info>(std::move(request_subject),
                                                                    std::move(request_body));
      }(impl, std::move(cfg), update),
      std::move(h), std::move(t));
}

void jetstream::stream_info_impl(std::string name, handler<stream_info> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<natsbus::stream_info>(
      [](std::shared_ptr<jetstream_impl> impl, std::string name) -> asio::awaitable<natsbus::stream_info> {
        detail::check_name(name);
        std::string request_subject = "STREAM.INFO." + name;
        std::string request_body = {};
        co_return co_await impl->call_decoded<natsbus::stream_info>(std::move(request_subject),
                                                                    std::move(request_body));
      }(impl, std::move(name)),
      std::move(h), std::move(t));
}

void jetstream::delete_impl(std::string subject, handler<void> h, text_slot t) {
  auto impl = impl_;
  auto strand = impl->conn_->executor();
  asio::co_spawn(strand,
                 [](std::shared_ptr<jetstream_impl> impl, std::string subject) -> asio::awaitable<void> {
                   auto pos = subject.find('.', subject.find('.') + 1);
                   std::string_view names = std::string_view(subject).substr(pos + 1);
                   // Each name after the verb is one subject token.
                   std::size_t start = 0;
                   while (start <= names.size()) {
                     auto dot = names.find('.', start);
                     detail::check_name(names.substr(start, dot == std::string_view::npos ? dot : dot - start));
                     if (dot == std::string_view::npos) break;
                     start = dot + 1;
                   }
                   std::string request_subject = subject;
                   std::string request_body = {};
                   auto json = co_await impl->call(std::move(request_subject), std::move(request_body));
                   (void)json;
                 }(impl, std::move(subject)),
                 [strand, h = std::move(h), t = std::move(t)](std::exception_ptr e) mutable {
                   detail::complete(strand, std::move(h), detail::to_error_code(e, t));
                 });
}

void jetstream::purge_impl(std::string name, purge_options opts, handler<std::uint64_t> h, text_slot t) {
  boost::json::object req;
  if (!opts.subject.empty()) req["filter"] = opts.subject;
  if (opts.sequence) req["seq"] = *opts.sequence;
  if (opts.keep) req["keep"] = *opts.keep;
  std::string body = req.empty() ? std::string{} : boost::json::serialize(req);
  auto impl = impl_;
  impl->spawn<std::uint64_t>(
      [](std::shared_ptr<jetstream_impl> impl, std::string name, std::string body) -> asio::awaitable<std::uint64_t> {
        detail::check_name(name);
        std::string request_subject = "STREAM.PURGE." + name;
        auto json = co_await impl->call(std::move(request_subject), std::move(body));
        error_code ec;
        auto v = boost::json::parse(json, ec);
        if (ec || !v.is_object()) detail::fail(error::invalid_json, "purge response");
        const auto* purged = v.as_object().if_contains("purged");
        if (!purged) co_return 0;
        if (purged->is_uint64()) co_return purged->as_uint64();
        if (purged->is_int64() && purged->as_int64() >= 0) co_return static_cast<std::uint64_t>(purged->as_int64());
        detail::fail(error::invalid_json, "purge response");
      }(impl, std::move(name), std::move(body)),
      std::move(h), std::move(t));
}

void jetstream::names_impl(std::string subject, std::string field, std::string filter,
                           handler<std::vector<std::string>> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<std::vector<std::string>>(
      [](std::shared_ptr<jetstream_impl> impl, std::string subject, std::string field,
         std::string filter) -> asio::awaitable<std::vector<std::string>> {
        std::vector<std::string> all;
        for (;;) {
          boost::json::object req;
          req["offset"] = all.size();
          if (!filter.empty()) req["subject"] = filter;
          std::string request_subject = subject;
          std::string request_body = boost::json::serialize(req);
          auto json = co_await impl->call(std::move(request_subject), std::move(request_body));
          std::vector<std::string> names;
          page_info page;
          if (auto ec = protocol::decode_names(json, field, names, page)) detail::fail(ec, "names response");
          all.insert(all.end(), names.begin(), names.end());
          if (names.empty() || static_cast<std::int64_t>(all.size()) >= page.total) break;
        }
        co_return all;
      }(impl, std::move(subject), std::move(field), std::move(filter)),
      std::move(h), std::move(t));
}

void jetstream::list_streams_impl(handler<std::vector<stream_info>> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<std::vector<natsbus::stream_info>>(
      [](std::shared_ptr<jetstream_impl> impl) -> asio::awaitable<std::vector<natsbus::stream_info>> {
        std::vector<natsbus::stream_info> all;
        for (;;) {
          boost::json::object req;
          req["offset"] = all.size();
          std::string request_subject = "STREAM.LIST";
          std::string request_body = boost::json::serialize(req);
          auto json = co_await impl->call(std::move(request_subject), std::move(request_body));
          std::vector<natsbus::stream_info> page_items;
          page_info page;
          if (auto ec = protocol::decode_stream_list(json, page_items, page)) detail::fail(ec, "list response");
          for (auto& i : page_items) all.push_back(std::move(i));
          if (page_items.empty() || static_cast<std::int64_t>(all.size()) >= page.total) break;
        }
        co_return all;
      }(impl),
      std::move(h), std::move(t));
}

void jetstream::list_consumers_impl(std::string stream, handler<std::vector<consumer_info>> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<std::vector<natsbus::consumer_info>>(
      [](std::shared_ptr<jetstream_impl> impl, std::string stream) -> asio::awaitable<std::vector<natsbus::consumer_info>> {
        detail::check_name(stream);
        std::vector<natsbus::consumer_info> all;
        for (;;) {
          boost::json::object req;
          req["offset"] = all.size();
          std::string request_subject = "CONSUMER.LIST." + stream;
          std::string request_body = boost::json::serialize(req);
          auto json = co_await impl->call(std::move(request_subject), std::move(request_body));
          std::vector<natsbus::consumer_info> page_items;
          page_info page;
          if (auto ec = protocol::decode_consumer_list(json, page_items, page)) detail::fail(ec, "list response");
          for (auto& i : page_items) all.push_back(std::move(i));
          if (page_items.empty() || static_cast<std::int64_t>(all.size()) >= page.total) break;
        }
        co_return all;
      }(impl, std::move(stream)),
      std::move(h), std::move(t));
}

void jetstream::get_message_impl(std::string stream, std::uint64_t seq, std::string subject,
                                 handler<stored_message> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<stored_message>(
      [](std::shared_ptr<jetstream_impl> impl, std::string stream, std::uint64_t seq,
         std::string subject) -> asio::awaitable<stored_message> {
        detail::check_name(stream);
        boost::json::object req;
        if (subject.empty()) req["seq"] = seq;
        else req["last_by_subj"] = subject;
        std::string request_subject = "STREAM.MSG.GET." + stream;
        std::string request_body = boost::json::serialize(req);
        co_return co_await impl->call_decoded<stored_message>(std::move(request_subject),
                                                              std::move(request_body));
      }(impl, std::move(stream), seq, std::move(subject)),
      std::move(h), std::move(t));
}

void jetstream::account_impl(handler<account_info> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<account_info>(
      [](std::shared_ptr<jetstream_impl> impl) -> asio::awaitable<account_info> {
        std::string request_subject = "INFO";
        std::string request_body = {};
        co_return co_await impl->call_decoded<account_info>(std::move(request_subject),
                                                            std::move(request_body));
      }(impl),
      std::move(h), std::move(t));
}

void jetstream::create_consumer_impl(std::string stream, consumer_config cfg, handler<consumer_info> h,
                                     text_slot t, bool update) {
  auto impl = impl_;
  impl->spawn<natsbus::consumer_info>(
      [](std::shared_ptr<jetstream_impl> impl, std::string stream, consumer_config cfg,
         bool update) -> asio::awaitable<natsbus::consumer_info> {
        detail::check_name(stream);
        const server_info info = impl->connection().current_info();
        int major = 0, minor = 0, patch = 0;
        const bool known = protocol::parse_server_version(info.version, major, minor, patch);
        const bool v210 = known && (major > 2 || (major == 2 && minor >= 10));
        std::string problem;
        if (auto ec = protocol::check_consumer_fields_for_server(major, minor, patch, !cfg.filter_subjects.empty(),
                                                                 !cfg.metadata.empty(), false, problem);
            known && ec)
          throw boost::system::system_error(error::not_supported_by_server, problem);
        const std::string& name = !cfg.durable_name.empty() ? cfg.durable_name : cfg.name;
        if (!name.empty()) detail::check_name(name);
        // 2.9 and later take CONSUMER.CREATE.<stream>.<name>[.<filter>] (the filter in the subject serves
        // subject-based permissions); older servers CONSUMER.DURABLE.CREATE for durables.
        const bool named_create =
            !known || protocol::version_at_least(major, minor, patch, protocol::named_consumer_create_version.major,
                                             protocol::named_consumer_create_version.minor,
                                             protocol::named_consumer_create_version.patch);
        std::string subject;
        if (!name.empty() && !named_create) {
          subject = protocol::consumer_durable_create_subject("", stream, name);
        } else {
          // The filter goes into the subject only when it is a literal subject: a publish subject cannot carry
          // wildcards.
          const bool literal = cfg.filter_subjects.empty() && protocol::is_valid_publish_subject(cfg.filter_subject);
          subject = protocol::consumer_create_subject("", stream, name,
                                                      literal ? std::string_view(cfg.filter_subject) : std::string_view());
        }
        const std::string_view action = v210 ? (update ? "update" : "create") : "";
        std::string request_body = protocol::encode_consumer_create(stream, cfg, action);
        co_return co_await impl->call_decoded<natsbus::consumer_info>(std::move(subject), std::move(request_body));
      }(impl, std::move(stream), std::move(cfg), update),
      std::move(h), std::move(t));
}

void jetstream::consumer_info_impl(std::string stream, std::string name, handler<consumer_info> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<natsbus::consumer_info>(
      [](std::shared_ptr<jetstream_impl> impl, std::string stream,
         std::string name) -> asio::awaitable<natsbus::consumer_info> {
        detail::check_name(stream);
        detail::check_name(name);
        std::string request_subject = "CONSUMER.INFO." + stream + "." + name;
        std::string request_body = {};
        co_return co_await impl->call_decoded<natsbus::consumer_info>(std::move(request_subject),
                                                                      std::move(request_body));
      }(impl, std::move(stream), std::move(name)),
      std::move(h), std::move(t));
}

void jetstream::raw_impl(std::string subject, std::string body, handler<std::string> h, text_slot t) {
  auto impl = impl_;
  impl->spawn<std::string>(
      [](std::shared_ptr<jetstream_impl> impl, std::string subject, std::string body) -> asio::awaitable<std::string> {
        std::string request_subject = std::move(subject);
        std::string request_body = std::move(body);
        co_return co_await impl->call(std::move(request_subject), std::move(request_body));
      }(impl, std::move(subject), std::move(body)),
      std::move(h), std::move(t));
}

template <class T>
asio::awaitable<T> jetstream::awaited(starter<T> start) {
  auto text = std::make_shared<std::string>();
  auto init = [&](auto h) { start(handler<T>(std::move(h)), text); };
  if constexpr (std::is_void_v<T>) {
    auto [ec] = co_await asio::async_initiate<decltype(detail::use_ec), void(error_code)>(init, detail::use_ec);
    if (ec) throw boost::system::system_error(ec, *text);
  } else {
    auto [ec, v] = co_await asio::async_initiate<decltype(detail::use_ec), void(error_code, T)>(init, detail::use_ec);
    if (ec) throw boost::system::system_error(ec, *text);
    co_return std::move(v);
  }
}

template asio::awaitable<void> jetstream::awaited<void>(starter<void>);
template asio::awaitable<stream_info> jetstream::awaited<stream_info>(starter<stream_info>);
template asio::awaitable<std::uint64_t> jetstream::awaited<std::uint64_t>(starter<std::uint64_t>);
template asio::awaitable<std::vector<std::string>> jetstream::awaited<std::vector<std::string>>(
    starter<std::vector<std::string>>);
template asio::awaitable<std::vector<stream_info>> jetstream::awaited<std::vector<stream_info>>(
    starter<std::vector<stream_info>>);
template asio::awaitable<stored_message> jetstream::awaited<stored_message>(starter<stored_message>);
template asio::awaitable<account_info> jetstream::awaited<account_info>(starter<account_info>);
template asio::awaitable<consumer_info> jetstream::awaited<consumer_info>(starter<consumer_info>);
template asio::awaitable<std::vector<consumer_info>> jetstream::awaited<std::vector<consumer_info>>(
    starter<std::vector<consumer_info>>);
template asio::awaitable<std::string> jetstream::awaited<std::string>(starter<std::string>);

}  // namespace natsbus
