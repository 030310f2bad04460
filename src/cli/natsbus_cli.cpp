// natsbus: NATS, JetStream and the event bus from a shell.
//
//   natsbus [-s URL] [--creds FILE] [--json] <command> ...
//   pub SUBJECT [DATA]            core publish (--js: JetStream, the ack printed), --count, -H KEY:VALUE
//   sub SUBJECT                   prints messages (--count N to stop after N, --queue GROUP)
//   req SUBJECT [DATA]            a request; prints the reply
//   stream ls|info|add|rm|purge   streams
//   consumer ls|info|add|rm|next  consumers (next: fetch and ack)
//   bus plan|apply CONFIG.yaml    what the bus's pre-creation would do to each topic, or doing it (pipelined)
//   bench                         publish (and consume) benchmarks with a progress bar and a final table
//
// Defaults come from NATS_URL and NATS_CREDS. Exit codes: 0 success, 1 a failure (the server refused, a timeout,
// no connection), 2 a usage error. Errors go to stderr as "natsbus: <what>: <why>".
#include <natsbus/bus_config.hpp>
#include <natsbus/connection.hpp>
#include <natsbus/consumer.hpp>
#include <natsbus/event_bus.hpp>
#include <natsbus/jetstream.hpp>
#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <CLI/CLI.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace json = boost::json;
using natsbus::error_code;
using namespace std::chrono_literals;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

// A failure that ends the command: its text, and exit code 1.
struct failure {
  std::string text;
};

struct global_options {
  std::string servers;
  std::string creds, nkey_seed_file, user, password, token;
  std::string tls_ca, tls_cert, tls_key, tls_name;
  std::string timeout = "5s";
  bool json = false;
  std::chrono::milliseconds wait{5000};
  bool server_given = false;  // -s on the command line (wins over a bus file's urls; NATS_URL does not)
  std::string metrics_listen;  // ADDR:PORT: serve /metrics, /healthz, /readyz while the command runs
};

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const auto end = s.find(sep, at);
    auto piece = s.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (!piece.empty()) out.push_back(std::move(piece));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

std::chrono::milliseconds duration_of(const std::string& text, const char* what) {
  auto d = natsbus::parse_duration(text);
  if (!d || d->count() < 0) throw failure{std::string(what) + ": '" + text + "' is not a duration (e.g. 500ms, 5s, 2m)"};
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

natsbus::connection_options connection_options_of(const global_options& g) {
  natsbus::connection_options o;
  o.servers = split(g.servers, ',');
  if (o.servers.empty()) throw failure{"no server: give -s URL or set NATS_URL"};
  o.name = "natsbus-cli";
  o.credentials_file = g.creds;
  o.nkey_seed_file = g.nkey_seed_file;
  if (!g.user.empty()) o.user = g.user;
  if (!g.password.empty()) o.password = g.password;
  if (!g.token.empty()) o.token = g.token;
  o.tls.ca_file = g.tls_ca;
  o.tls.cert_file = g.tls_cert;
  o.tls.key_file = g.tls_key;
  o.tls.server_name = g.tls_name;
  o.max_reconnects = 0;  // a shell command fails rather than waits for a server
  o.connect_timeout = g.wait;
  return o;
}

std::string why(const error_code& ec, const std::string& detail) {
  return detail.empty() || detail == ec.message() ? ec.message() : ec.message() + " (" + detail + ")";
}

// ---- printing ----

std::string ms(std::chrono::nanoseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
}

json::object stream_json(const natsbus::stream_info& si) {
  json::object o;
  o["name"] = si.config.name;
  json::array subjects;
  for (const auto& s : si.config.subjects) subjects.emplace_back(s);
  o["subjects"] = std::move(subjects);
  o["storage"] = std::string(natsbus::protocol::to_string(si.config.storage));
  o["replicas"] = si.config.num_replicas;
  o["max_msgs"] = si.config.max_msgs;
  o["max_bytes"] = si.config.max_bytes;
  o["max_age_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(si.config.max_age).count();
  o["duplicate_window_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(si.config.duplicate_window).count();
  o["messages"] = si.state.messages;
  o["bytes"] = si.state.bytes;
  o["first_seq"] = si.state.first_seq;
  o["last_seq"] = si.state.last_seq;
  o["consumers"] = si.state.consumer_count;
  o["created"] = si.created;
  return o;
}

json::object consumer_json(const natsbus::consumer_info& ci) {
  json::object o;
  o["stream"] = ci.stream_name;
  o["name"] = ci.name;
  o["filter_subject"] = ci.config.filter_subject;
  o["ack_wait_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(ci.config.ack_wait).count();
  o["max_deliver"] = ci.config.max_deliver;
  o["max_ack_pending"] = ci.config.max_ack_pending;
  o["push"] = !ci.config.deliver_subject.empty();
  o["num_pending"] = ci.num_pending;
  o["num_ack_pending"] = ci.num_ack_pending;
  o["num_redelivered"] = ci.num_redelivered;
  o["delivered_stream_seq"] = ci.delivered.stream_seq;
  o["ack_floor_stream_seq"] = ci.ack_floor.stream_seq;
  o["created"] = ci.created;
  return o;
}

void print_stream(const natsbus::stream_info& si) {
  std::string subjects;
  for (const auto& s : si.config.subjects) subjects += (subjects.empty() ? "" : ", ") + s;
  std::printf("Stream %s\n  subjects: %s\n  storage: %s, replicas: %d\n  limits: max_msgs %lld, max_bytes %lld, "
              "max_age %s, duplicate window %s\n  state: %llu messages, %llu bytes, sequences %llu..%llu, %lld "
              "consumers\n",
              si.config.name.c_str(), subjects.c_str(), std::string(natsbus::protocol::to_string(si.config.storage)).c_str(),
              si.config.num_replicas, static_cast<long long>(si.config.max_msgs),
              static_cast<long long>(si.config.max_bytes), ms(si.config.max_age).c_str(),
              ms(si.config.duplicate_window).c_str(), static_cast<unsigned long long>(si.state.messages),
              static_cast<unsigned long long>(si.state.bytes), static_cast<unsigned long long>(si.state.first_seq),
              static_cast<unsigned long long>(si.state.last_seq), static_cast<long long>(si.state.consumer_count));
}

void print_consumer(const natsbus::consumer_info& ci) {
  std::printf("Consumer %s > %s\n  filter: %s\n  ack wait: %s, max deliver: %lld, max ack pending: %lld\n"
              "  pending: %llu, ack pending: %lld, redelivered: %lld\n  delivered: stream #%llu, ack floor: stream "
              "#%llu\n",
              ci.stream_name.c_str(), ci.name.c_str(),
              ci.config.filter_subject.empty() ? "(none)" : ci.config.filter_subject.c_str(),
              ms(ci.config.ack_wait).c_str(), static_cast<long long>(ci.config.max_deliver),
              static_cast<long long>(ci.config.max_ack_pending), static_cast<unsigned long long>(ci.num_pending),
              static_cast<long long>(ci.num_ack_pending), static_cast<long long>(ci.num_redelivered),
              static_cast<unsigned long long>(ci.delivered.stream_seq),
              static_cast<unsigned long long>(ci.ack_floor.stream_seq));
}

void print_message(bool as_json, std::uint64_t n, std::string_view subject, const natsbus::headers* hdrs,
                   std::string_view payload, std::string_view extra_key = {}, std::uint64_t extra = 0) {
  if (as_json) {
    json::object o;
    o["subject"] = subject;
    o["data"] = payload;
    if (hdrs && !hdrs->entries().empty()) {
      json::object h;
      for (const auto& [k, v] : hdrs->entries()) h[k] = v;
      o["headers"] = std::move(h);
    }
    if (!extra_key.empty()) o[extra_key] = extra;
    std::cout << json::serialize(o) << "\n" << std::flush;
    return;
  }
  std::cout << "[#" << n << "] " << subject;
  if (!extra_key.empty()) std::cout << " (" << extra_key << " " << extra << ")";
  std::cout << "\n";
  if (hdrs)
    for (const auto& [k, v] : hdrs->entries()) std::cout << k << ": " << v << "\n";
  std::cout << payload << "\n\n" << std::flush;
}

// ---- the session a command runs in ----

struct session {
  const global_options& g;
  natsbus::connection conn;
  std::optional<natsbus::jetstream> js;
  // --metrics-listen: the connection's (and JetStream's) figures served while the command runs.
  natsbus::metrics::registry registry;
  std::vector<natsbus::metrics::registration> measured;
  natsbus::metrics_server endpoint;

  session(asio::any_io_executor ex, const global_options& opts)
      : g(opts), conn(std::move(ex), connection_options_of(opts)) {}
  ~session() {
    endpoint.stop();
    measured.clear();  // before the objects they measure
  }

  asio::awaitable<void> connect() {
    auto [ec] = co_await conn.connect(use_ec);
    if (ec) throw failure{"cannot connect to " + g.servers + ": " + why(ec, conn.last_error())};
    if (!g.metrics_listen.empty()) {
      auto at = natsbus::metrics_server::parse_endpoint(g.metrics_listen);
      if (!at) throw failure{"--metrics-listen: '" + g.metrics_listen + "' is not ADDR:PORT"};
      measured.push_back(registry.add(conn, "natsbus-cli"));
      measured.push_back(registry.add(jet(), "natsbus-cli"));
      try {
        endpoint = natsbus::metrics_server::start(conn.get_executor(), registry, *at);
      } catch (const std::exception& e) {
        throw failure{"--metrics-listen " + g.metrics_listen + ": " + e.what()};
      }
      std::cerr << "Metrics on http://" << endpoint.local_endpoint() << "/metrics" << std::endl;
    }
  }
  natsbus::jetstream& jet() {
    if (!js) {
      natsbus::jetstream_options jo;
      jo.timeout = g.wait;
      js.emplace(conn, jo);
    }
    return *js;
  }
  [[noreturn]] void fail(const std::string& what, const error_code& ec) {
    std::string detail;
    if (js && ec.category() == natsbus::jetstream_category()) detail = js->last_api_error().description;
    throw failure{what + ": " + why(ec, detail)};
  }
};

// ---- commands ----

struct pub_args {
  std::string subject, data;
  std::vector<std::string> headers;
  std::size_t count = 1;
  bool js = false;
};

asio::awaitable<int> cmd_pub(session& s, const pub_args& a) {
  natsbus::headers h;
  for (const auto& kv : a.headers) {
    const auto colon = kv.find(':');
    if (colon == std::string::npos || colon == 0) throw failure{"header '" + kv + "' is not KEY:VALUE"};
    h.add(kv.substr(0, colon), std::string_view(kv).substr(colon + 1 + (kv.size() > colon + 1 && kv[colon + 1] == ' ')));
  }
  const natsbus::headers* hp = h.entries().empty() ? nullptr : &h;
  co_await s.connect();
  for (std::size_t i = 0; i < a.count; ++i) {
    if (a.js) {
      natsbus::publish_options po;
      po.hdrs = hp;
      auto [ec, ack] = co_await s.jet().publish(a.subject, a.data, po, use_ec);
      if (ec) s.fail("publish to " + a.subject, ec);
      if (s.g.json) {
        json::object o{{"stream", ack.stream}, {"seq", ack.seq}, {"duplicate", ack.duplicate}};
        std::cout << json::serialize(o) << "\n";
      } else {
        std::cout << "Published to " << a.subject << ": stream " << ack.stream << " #" << ack.seq
                  << (ack.duplicate ? " (duplicate)" : "") << "\n";
      }
    } else {
      auto [ec] = co_await s.conn.publish(a.subject, a.data, hp, {}, use_ec);
      if (ec) s.fail("publish to " + a.subject, ec);
    }
  }
  auto [fec] = co_await s.conn.flush(use_ec);
  if (fec) s.fail("flush", fec);
  if (!a.js && !s.g.json) std::cout << "Published " << a.count << " message(s) to " << a.subject << "\n";
  co_return 0;
}

struct sub_args {
  std::string subject, queue;
  std::size_t count = 0;  // 0: until interrupted
};

asio::awaitable<int> cmd_sub(session& s, const sub_args& a) {
  co_await s.connect();
  auto [ec, sub] = co_await s.conn.subscribe(a.subject, a.queue, use_ec);
  if (ec) s.fail("subscribe to " + a.subject, ec);
  auto [fec] = co_await s.conn.flush(use_ec);  // the server has the SUB: what is published from now on arrives
  if (fec) s.fail("flush", fec);
  std::cerr << "Listening on " << a.subject << (a.queue.empty() ? "" : " (queue " + a.queue + ")") << std::endl;
  asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
  signals.async_wait([&](error_code sec, int) {
    if (!sec) sub.unsubscribe();
  });
  std::uint64_t n = 0;
  while (a.count == 0 || n < a.count) {
    auto [mec, m] = co_await sub.next(use_ec);
    if (mec) break;  // unsubscribed (a signal) or the connection closed
    print_message(s.g.json, ++n, m.subject, m.has_headers() ? &m.headers : nullptr, m.payload);
  }
  signals.cancel();
  co_return 0;
}

struct req_args {
  std::string subject, data;
};

asio::awaitable<int> cmd_req(session& s, const req_args& a) {
  co_await s.connect();
  auto [ec, m] = co_await s.conn.request(a.subject, a.data, s.g.wait, use_ec);
  if (ec) s.fail("request to " + a.subject, ec);
  print_message(s.g.json, 1, m.subject, m.has_headers() ? &m.headers : nullptr, m.payload);
  co_return 0;
}

struct stream_args {
  std::string action, name, storage = "file", max_age = "0s", retention = "limits";
  std::vector<std::string> subjects;
  std::int64_t max_msgs = -1, max_bytes = -1;
  int replicas = 1;
  bool force = false;
};

asio::awaitable<int> cmd_stream(session& s, const stream_args& a) {
  co_await s.connect();
  auto& js = s.jet();
  if (a.action == "ls") {
    auto [ec, list] = co_await js.list_streams(use_ec);
    if (ec) s.fail("list streams", ec);
    if (s.g.json) {
      json::array arr;
      for (const auto& si : list) arr.emplace_back(stream_json(si));
      std::cout << json::serialize(arr) << "\n";
    } else if (list.empty()) {
      std::cout << "No streams\n";
    } else {
      for (const auto& si : list)
        std::printf("%-32s %10llu msgs %12llu bytes  %s\n", si.config.name.c_str(),
                    static_cast<unsigned long long>(si.state.messages), static_cast<unsigned long long>(si.state.bytes),
                    std::string(natsbus::protocol::to_string(si.config.storage)).c_str());
    }
    co_return 0;
  }
  if (a.action == "info") {
    auto [ec, si] = co_await js.get_stream_info(a.name, use_ec);
    if (ec) s.fail("stream info " + a.name, ec);
    if (s.g.json) std::cout << json::serialize(stream_json(si)) << "\n";
    else print_stream(si);
    co_return 0;
  }
  if (a.action == "add") {
    natsbus::stream_config c;
    c.name = a.name;
    c.subjects = a.subjects.empty() ? std::vector<std::string>{a.name} : a.subjects;
    if (a.storage == "memory") c.storage = natsbus::storage_type::memory;
    else if (a.storage != "file") throw failure{"--storage must be file or memory, not '" + a.storage + "'"};
    if (a.retention == "interest") c.retention = natsbus::retention_policy::interest;
    else if (a.retention == "workqueue") c.retention = natsbus::retention_policy::workqueue;
    else if (a.retention != "limits") throw failure{"--retention must be limits, interest or workqueue"};
    c.max_msgs = a.max_msgs;
    c.max_bytes = a.max_bytes;
    c.max_age = duration_of(a.max_age, "--max-age");
    c.num_replicas = a.replicas;
    auto [ec, si] = co_await js.create_stream(c, use_ec);
    if (ec) s.fail("create stream " + a.name, ec);
    if (s.g.json) std::cout << json::serialize(stream_json(si)) << "\n";
    else std::cout << "Stream " << a.name << (si.did_create ? " created" : " exists (same configuration)") << "\n";
    co_return 0;
  }
  if (a.action == "rm") {
    auto [ec] = co_await js.delete_stream(a.name, use_ec);
    if (ec) s.fail("delete stream " + a.name, ec);
    if (!s.g.json) std::cout << "Stream " << a.name << " deleted\n";
    else std::cout << json::serialize(json::object{{"deleted", a.name}}) << "\n";
    co_return 0;
  }
  // purge
  natsbus::purge_options po;
  auto [ec, purged] = co_await js.purge_stream(a.name, po, use_ec);
  if (ec) s.fail("purge stream " + a.name, ec);
  if (s.g.json) std::cout << json::serialize(json::object{{"stream", a.name}, {"purged", purged}}) << "\n";
  else std::cout << "Stream " << a.name << ": " << purged << " message(s) purged\n";
  co_return 0;
}

struct consumer_args {
  std::string action, stream, name, filter, ack_wait = "30s", deliver = "all";
  std::int64_t max_deliver = -1, max_ack_pending = 1000;
  std::size_t count = 1;
  bool no_ack = false;
};

asio::awaitable<int> cmd_consumer(session& s, const consumer_args& a) {
  co_await s.connect();
  auto& js = s.jet();
  if (a.action == "ls") {
    auto [ec, list] = co_await js.list_consumers(a.stream, use_ec);
    if (ec) s.fail("list consumers of " + a.stream, ec);
    if (s.g.json) {
      json::array arr;
      for (const auto& ci : list) arr.emplace_back(consumer_json(ci));
      std::cout << json::serialize(arr) << "\n";
    } else if (list.empty()) {
      std::cout << "No consumers on " << a.stream << "\n";
    } else {
      for (const auto& ci : list)
        std::printf("%-32s pending %-10llu ack pending %-8lld %s\n", ci.name.c_str(),
                    static_cast<unsigned long long>(ci.num_pending), static_cast<long long>(ci.num_ack_pending),
                    ci.config.deliver_subject.empty() ? "pull" : "push");
    }
    co_return 0;
  }
  if (a.action == "info") {
    auto [ec, ci] = co_await js.get_consumer_info(a.stream, a.name, use_ec);
    if (ec) s.fail("consumer info " + a.stream + " > " + a.name, ec);
    if (s.g.json) std::cout << json::serialize(consumer_json(ci)) << "\n";
    else print_consumer(ci);
    co_return 0;
  }
  if (a.action == "add") {
    natsbus::consumer_config c;
    c.durable_name = a.name;
    c.filter_subject = a.filter;
    c.ack_wait = duration_of(a.ack_wait, "--ack-wait");
    c.max_deliver = a.max_deliver;
    c.max_ack_pending = a.max_ack_pending;
    if (a.deliver == "new") c.deliver = natsbus::deliver_policy::new_;
    else if (a.deliver == "last") c.deliver = natsbus::deliver_policy::last;
    else if (a.deliver != "all") throw failure{"--deliver must be all, new or last, not '" + a.deliver + "'"};
    auto [ec, ci] = co_await js.create_consumer(a.stream, c, use_ec);
    if (ec) s.fail("create consumer " + a.stream + " > " + a.name, ec);
    if (s.g.json) std::cout << json::serialize(consumer_json(ci)) << "\n";
    else std::cout << "Consumer " << a.stream << " > " << a.name << " created\n";
    co_return 0;
  }
  if (a.action == "rm") {
    auto [ec] = co_await js.delete_consumer(a.stream, a.name, use_ec);
    if (ec) s.fail("delete consumer " + a.stream + " > " + a.name, ec);
    if (!s.g.json) std::cout << "Consumer " << a.stream << " > " << a.name << " deleted\n";
    else std::cout << json::serialize(json::object{{"deleted", a.name}}) << "\n";
    co_return 0;
  }
  // next: fetch up to count messages (waiting up to --timeout), print and ack them
  natsbus::pull_consumer pc(js, a.stream, a.name);
  natsbus::fetch_options fo;
  fo.batch = a.count;
  fo.expires = s.g.wait;
  auto [ec, batch] = co_await pc.fetch(fo, use_ec);
  if (ec) s.fail("fetch from " + a.stream + " > " + a.name, ec);
  std::uint64_t n = 0;
  for (auto& m : batch) {
    natsbus::message_info mi;
    (void)m.info(mi);
    natsbus::headers h;
    const bool has = !m.header_block().empty() && !m.get_headers(h);
    print_message(s.g.json, ++n, m.subject(), has ? &h : nullptr, m.payload(), "stream_seq", mi.stream_sequence);
    if (!a.no_ack)
      if (auto aec = m.ack()) s.fail("ack", aec);
  }
  auto [fec] = co_await s.conn.flush(use_ec);  // the acks reach the server before the process ends
  if (fec) s.fail("flush", fec);
  if (n == 0 && !s.g.json) std::cerr << "No messages\n";
  co_return n == 0 && a.count > 0 ? 1 : 0;
}

struct bus_args {
  std::string action, config;
};

asio::awaitable<int> cmd_bus(const global_options& g, const bus_args& a) {
  natsbus::event_bus_config cfg;
  std::string message;
  if (auto ec = natsbus::load_event_bus_config(a.config, cfg, message)) throw failure{message};
  if (cfg.backend != natsbus::bus_backend::nats) throw failure{a.config + ": backend " + std::string(to_string(cfg.backend)) + ": there is no server to plan against"};
  // The server and credentials given on the command line win over the file's.
  if (g.server_given) cfg.connection.servers = split(g.servers, ',');
  if (!g.creds.empty()) cfg.connection.credentials_file = g.creds;
  cfg.connection.max_reconnects = 0;
  cfg.connection.connect_timeout = g.wait;
  const auto topics = cfg.precreation.topics;
  const auto strategy = cfg.precreation.strategy;
  const auto precreation = cfg.precreation;
  const bool apply = a.action == "apply";
  cfg.precreation.enabled = false;  // the topics are configured below, with a result each
  auto subscribers = std::move(cfg.subscribers);
  cfg.subscribers.clear();
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus bus(ex, cfg);
  auto [sec] = co_await bus.start(use_ec);
  if (sec) throw failure{"cannot connect to " + (cfg.connection.servers.empty() ? std::string("?") : cfg.connection.servers[0]) + ": " + bus.last_error()};
  // plan: validate_only changes nothing and reports each difference; what the strategy would do follows from it.
  bus.set_topic_config_strategy(natsbus::topic_strategy::validate_only);
  auto [pec, results] = co_await bus.configure_topics(topics, use_ec);
  (void)pec;
  // apply: the strategy's pass, after the plan; what it did is read against the plan (a 2.9 server says
  // did_create for an identical stream that existed already).
  std::vector<natsbus::topic_configure_result> applied;
  if (apply && strategy != natsbus::topic_strategy::validate_only && strategy != natsbus::topic_strategy::skip) {
    bus.set_topic_config_strategy(strategy);
    auto [aec, done] = co_await bus.configure_topics(topics, use_ec);
    (void)aec;
    applied = std::move(done);
  }
  json::array out;
  int failed = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    const bool missing = r.message.find("does not exist") != std::string::npos;
    std::string action;
    if (!missing && r.differences.empty() && !r.message.empty()) {
      action = "failed";
    } else if (missing) {
      action = strategy == natsbus::topic_strategy::validate_only || strategy == natsbus::topic_strategy::skip ? "missing" : "create";
    } else if (!r.differences.empty()) {
      action = strategy == natsbus::topic_strategy::create_or_update ? "update" : "differs";
    } else {
      action = "unchanged";
    }
    std::string error = action == "failed" ? r.message : std::string();
    if (i < applied.size()) {
      if (!applied[i].message.empty()) action = "failed", error = applied[i].message;
      else if (action == "create") action = "created";
      else if (action == "update") action = "updated";
    }
    if (action == "failed") ++failed;
    if (g.json) {
      json::object o{{"topic", r.topic}, {"stream", r.stream}, {"action", action}};
      json::array d;
      for (const auto& x : r.differences) d.emplace_back(x);
      o["differences"] = std::move(d);
      if (action == "failed") o["error"] = error;
      out.emplace_back(std::move(o));
    } else {
      std::printf("%-10s %s -> %s\n", action.c_str(), r.topic.c_str(), r.stream.c_str());
      for (const auto& x : r.differences) std::printf("             %s\n", x.c_str());
      if (action == "failed") std::printf("             %s\n", error.c_str());
    }
  }
  if (apply && !subscribers.empty()) {
    // The subscribers' consumers, as start() makes them: a second bus with the whole configuration (its topics'
    // options are what the consumers' streams are checked against; configuring them again changes nothing).
    natsbus::event_bus_config only = cfg;
    only.precreation = precreation;
    only.subscribers = std::move(subscribers);
    natsbus::event_bus sub_bus(ex, only);
    auto [uec] = co_await sub_bus.start(use_ec);
    if (uec) {
      ++failed;
      std::cerr << "natsbus: subscribers' consumers: " << sub_bus.last_error() << "\n";
    } else if (!g.json) {
      std::printf("%-10s %zu subscriber consumer(s)\n", "ensured", only.subscribers.size());
    }
    sub_bus.close();
  }
  if (g.json) std::cout << json::serialize(out) << "\n";
  bus.close();
  co_return failed ? 1 : 0;
}

struct bench_args {
  std::string scenario = "pub", subject = "natsbus.bench";
  std::size_t msgs = 100000, size = 128;
};

// A progress line: on a terminal one bar redrawn in place, otherwise a plain line about once a second.
class progress {
 public:
  explicit progress(std::size_t total) : total_(total), tty_(::isatty(STDERR_FILENO) == 1), start_(clock::now()) {}
  void show(std::size_t done, bool last = false) {
    const auto now = clock::now();
    if (!last && now - shown_ < (tty_ ? 100ms : 1000ms)) return;
    shown_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const int pct = total_ ? static_cast<int>(100 * done / total_) : 100;
    if (tty_) {
      std::string bar(30, ' ');
      for (int i = 0; i < pct * 30 / 100; ++i) bar[static_cast<std::size_t>(i)] = '#';
      std::fprintf(stderr, "\r[%s] %3d%% %zu/%zu %.0f msg/s%s", bar.c_str(), pct, done, total_, rate, last ? "\n" : "");
    } else {
      std::fprintf(stderr, "progress %d%% %zu/%zu %.0f msg/s\n", pct, done, total_, rate);
    }
  }

 private:
  using clock = std::chrono::steady_clock;
  std::size_t total_;
  bool tty_;
  clock::time_point start_, shown_{};
};

asio::awaitable<int> cmd_bench(session& s, const bench_args& a) {
  if (a.scenario != "pub" && a.scenario != "js" && a.scenario != "consume")
    throw failure{"--scenario must be pub, js or consume, not '" + a.scenario + "'"};
  if (a.msgs == 0) throw failure{"--msgs must be positive"};
  co_await s.connect();
  std::string stream = "NATSBUS_CLI_BENCH";
  if (a.scenario != "pub") {
    natsbus::stream_config c;
    c.name = stream;
    c.subjects = {a.subject};
    c.storage = natsbus::storage_type::memory;
    auto [dec] = co_await s.jet().delete_stream(stream, use_ec);
    (void)dec;
    auto [cec, si] = co_await s.jet().create_stream(c, use_ec);
    if (cec) s.fail("create stream " + stream, cec);
  }
  const std::string payload(a.size, 'x');
  std::optional<progress> bar;
  if (a.scenario != "consume") bar.emplace(a.msgs);
  else std::cerr << "filling " << stream << " with " << a.msgs << " messages" << std::endl;
  auto t0 = std::chrono::steady_clock::now();
  std::size_t errors = 0;
  std::vector<natsbus::ack_future> window;
  for (std::size_t i = 0; i < a.msgs; ++i) {
    if (a.scenario == "pub") {
      auto [ec] = co_await s.conn.publish(a.subject, payload, nullptr, {}, use_ec);
      errors += ec ? 1 : 0;
    } else {
      auto [ec, f] = co_await s.jet().publish_async(a.subject, payload, use_ec);
      errors += ec ? 1 : 0;
      if (!ec) window.push_back(std::move(f));
      if (window.size() >= 1000) {
        for (auto& w : window) errors += std::get<0>(co_await w.get(use_ec)) ? 1 : 0;
        window.clear();
      }
    }
    if (bar && (i & 1023) == 0) bar->show(i);
  }
  for (auto& w : window) errors += std::get<0>(co_await w.get(use_ec)) ? 1 : 0;
  auto [fec] = co_await s.conn.flush(use_ec);
  if (fec) ++errors;
  if (a.scenario == "consume" && errors == 0) {
    // The stream is full: a durable pull consumer drains it, acking every message; only this is timed.
    natsbus::consumer_config cc;
    cc.durable_name = "natsbus-cli-bench";
    auto [cec, ci] = co_await s.jet().create_consumer(stream, cc, use_ec);
    if (cec) s.fail("create consumer", cec);
    natsbus::pull_consumer pc(s.jet(), stream, cc.durable_name);
    natsbus::consume_options co;
    if (auto ec = pc.consume(co)) s.fail("consume", ec);
    bar.emplace(a.msgs);
    t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < a.msgs; ++i) {
      auto [nec, m] = co_await pc.next(use_ec);
      if (nec) {
        ++errors;
        break;
      }
      errors += m->ack() ? 1 : 0;
      if ((i & 1023) == 0) bar->show(i);
    }
    pc.stop();
    auto [f2] = co_await s.conn.flush(use_ec);
    if (f2) ++errors;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bar->show(a.msgs, true);
  if (a.scenario != "pub") {
    auto [dec] = co_await s.jet().delete_stream(stream, use_ec);
    (void)dec;
  }
  const double rate = static_cast<double>(a.msgs) / secs;
  if (s.g.json) {
    json::object o{{"scenario", a.scenario}, {"msgs", a.msgs},  {"size", a.size}, {"seconds", secs},
                   {"msgs_per_s", rate},     {"errors", errors}};
    std::cout << json::serialize(o) << "\n";
  } else {
    std::printf("%-10s %10s %8s %10s %12s %10s %8s\n", "scenario", "msgs", "size", "seconds", "msg/s", "MB/s", "errors");
    std::printf("%-10s %10zu %8zu %10.3f %12.0f %10.2f %8zu\n", a.scenario.c_str(), a.msgs, a.size, secs, rate,
                rate * static_cast<double>(a.size) / 1e6, errors);
  }
  co_return errors ? 1 : 0;
}

// The first word that is neither an option nor an option's value, when it names no command: "natsbus bogus"
// says so, rather than that a command is missing.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("-")) {
      // The app's own options say which take a value (the next word), so this list is never kept twice.
      const auto* opt = a.find('=') == std::string_view::npos ? app.get_option_no_throw(std::string(a)) : nullptr;
      if (opt && opt->get_expected_max() != 0) ++i;  // a flag expects none
      continue;
    }
    std::string names;
    for (const auto* sub : app.get_subcommands({})) {
      if (sub->get_name() == a) return std::nullopt;
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    return "unknown command '" + std::string(a) + "' (expected " + names + ")";
  }
  return std::nullopt;
}

// Runs a command's coroutine to its end; its exit code.
template <class F>
int run(F&& f) {
  asio::io_context io(1);
  int code = 1;
  asio::co_spawn(io, std::forward<F>(f)(io.get_executor()), [&](std::exception_ptr e, int rc) {
    code = rc;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const failure& f) {
      std::cerr << "natsbus: " << f.text << "\n";
    } catch (const std::exception& x) {
      std::cerr << "natsbus: " << x.what() << "\n";
    }
    code = 1;
  });
  io.run();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"natsbus: NATS, JetStream and the event bus from a shell"};
  app.require_subcommand(1);
  app.fallthrough();  // the global options are taken after the command too: natsbus stream ls --json
  global_options g;
  g.servers = env_or("NATS_URL", "nats://127.0.0.1:4222");
  g.creds = env_or("NATS_CREDS", "");
  auto* server_opt = app.add_option("-s,--server", g.servers, "server URLs, comma-separated (default: $NATS_URL or nats://127.0.0.1:4222)");
  app.add_option("--creds", g.creds, "credentials file (JWT and NKey seed; default: $NATS_CREDS)");
  app.add_option("--nkey", g.nkey_seed_file, "NKey seed file");
  app.add_option("--user", g.user, "user name");
  app.add_option("--password", g.password, "password");
  app.add_option("--token", g.token, "authentication token");
  app.add_option("--tls-ca", g.tls_ca, "CA file to verify the server with");
  app.add_option("--tls-cert", g.tls_cert, "client certificate file");
  app.add_option("--tls-key", g.tls_key, "client key file");
  app.add_option("--tls-name", g.tls_name, "server name to verify");
  app.add_option("--timeout", g.timeout, "connect, request and fetch timeout (default 5s)");
  app.add_flag("--json", g.json, "JSON output, for scripts");
  app.add_option("--metrics-listen", g.metrics_listen,
                 "serve Prometheus metrics (/metrics, /healthz, /readyz) on ADDR:PORT while the command runs");

  pub_args pa;
  auto* pub = app.add_subcommand("pub", "publish a message (core NATS; --js for JetStream, with its ack)");
  pub->add_option("subject", pa.subject, "subject")->required();
  pub->add_option("data", pa.data, "payload");
  pub->add_option("-H,--header", pa.headers, "header KEY:VALUE (repeatable)");
  pub->add_option("--count", pa.count, "publish it this many times")->check(CLI::PositiveNumber);
  pub->add_flag("--js", pa.js, "a JetStream publish: wait for and print the ack");

  sub_args sa;
  auto* sub = app.add_subcommand("sub", "print the messages on a subject (wildcards allowed)");
  sub->add_option("subject", sa.subject, "subject")->required();
  sub->add_option("--queue", sa.queue, "queue group");
  sub->add_option("--count", sa.count, "stop after this many messages (default: until interrupted)");

  req_args ra;
  auto* req = app.add_subcommand("req", "send a request and print the reply");
  req->add_option("subject", ra.subject, "subject")->required();
  req->add_option("data", ra.data, "payload");

  stream_args st;
  auto* stream = app.add_subcommand("stream", "streams: ls, info, add, rm, purge");
  stream->add_option("action", st.action, "ls | info | add | rm | purge")
      ->required()
      ->check(CLI::IsMember({"ls", "info", "add", "rm", "purge"}));
  stream->add_option("name", st.name, "stream name");
  stream->add_option("--subjects", st.subjects, "subjects (add; default: the name)")->delimiter(',');
  stream->add_option("--storage", st.storage, "file or memory (add)");
  stream->add_option("--retention", st.retention, "limits, interest or workqueue (add)");
  stream->add_option("--max-msgs", st.max_msgs, "message limit (add)");
  stream->add_option("--max-bytes", st.max_bytes, "byte limit (add)");
  stream->add_option("--max-age", st.max_age, "age limit, e.g. 24h (add)");
  stream->add_option("--replicas", st.replicas, "replicas (add)");

  consumer_args ca;
  auto* consumer = app.add_subcommand("consumer", "consumers: ls, info, add, rm, next");
  consumer->add_option("action", ca.action, "ls | info | add | rm | next")
      ->required()
      ->check(CLI::IsMember({"ls", "info", "add", "rm", "next"}));
  consumer->add_option("stream", ca.stream, "stream name")->required();
  consumer->add_option("name", ca.name, "consumer name");
  consumer->add_option("--filter", ca.filter, "filter subject (add)");
  consumer->add_option("--ack-wait", ca.ack_wait, "ack wait, e.g. 30s (add)");
  consumer->add_option("--deliver", ca.deliver, "all, new or last (add)");
  consumer->add_option("--max-deliver", ca.max_deliver, "deliveries at most (add)");
  consumer->add_option("--max-ack-pending", ca.max_ack_pending, "unacked messages at most (add)");
  consumer->add_option("--count", ca.count, "messages to fetch (next)")->check(CLI::PositiveNumber);
  consumer->add_flag("--no-ack", ca.no_ack, "print without acking (next)");

  bus_args ba;
  auto* bus = app.add_subcommand("bus", "the event bus's topics: plan (what pre-creation would do) or apply");
  bus->add_option("action", ba.action, "plan | apply")->required()->check(CLI::IsMember({"plan", "apply"}));
  bus->add_option("config", ba.config, "bus configuration file (YAML)")->required();

  bench_args bb;
  auto* bench = app.add_subcommand("bench", "publish benchmark with a progress bar and a final table");
  bench->add_option("--scenario", bb.scenario,
                    "pub (core publish), js (JetStream publish, acked) or consume (a filled stream drained by a "
                    "pull consumer, every message acked)");
  bench->add_option("--msgs", bb.msgs, "messages");
  bench->add_option("--size", bb.size, "payload bytes");
  bench->add_option("--subject", bb.subject, "subject");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "natsbus: " << unknown_command(app, argc, argv).value_or(e.what()) << "\n"
              << "Run with --help for the commands and options.\n";
    return 2;
  }
  g.server_given = server_opt->count() > 0;
  try {
    g.wait = duration_of(g.timeout, "--timeout");
  } catch (const failure& f) {
    std::cerr << "natsbus: " << f.text << "\n";
    return 2;
  }
  // Arguments a command needs beyond CLI11's checks.
  auto need = [](bool ok, const char* what) {
    if (!ok) std::cerr << "natsbus: " << what << "\n";
    return ok;
  };
  if (stream->parsed() && st.action != "ls" && !need(!st.name.empty(), "stream: a stream name is needed")) return 2;
  if (consumer->parsed() && ca.action != "ls" && !need(!ca.name.empty(), "consumer: a consumer name is needed"))
    return 2;

  try {
    if (bus->parsed()) return run([&](asio::any_io_executor) { return cmd_bus(g, ba); });
    auto with_session = [&](auto cmd) {
      return run([&, cmd](asio::any_io_executor ex) -> asio::awaitable<int> {
        session s(ex, g);
        int rc = co_await cmd(s);
        s.conn.close();
        co_return rc;
      });
    };
    if (pub->parsed()) return with_session([&](session& s) { return cmd_pub(s, pa); });
    if (sub->parsed()) return with_session([&](session& s) { return cmd_sub(s, sa); });
    if (req->parsed()) return with_session([&](session& s) { return cmd_req(s, ra); });
    if (stream->parsed()) return with_session([&](session& s) { return cmd_stream(s, st); });
    if (consumer->parsed()) return with_session([&](session& s) { return cmd_consumer(s, ca); });
    if (bench->parsed()) return with_session([&](session& s) { return cmd_bench(s, bb); });
  } catch (const failure& f) {
    std::cerr << "natsbus: " << f.text << "\n";
    return 1;
  }
  return 2;
}
