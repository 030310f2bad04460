// Metrics against a real nats-server: the registry's figures for a bus, its topics and subscriptions, scraped
// over HTTP from the endpoint; the text checked by promtool; a real Prometheus scraping the endpoint and answering
// a query; /readyz's reasons; bad requests answered with 4xx.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "bus_fixtures.hpp"
#include "http_probe.hpp"
#include "nats_server.hpp"
#include "prometheus_server.hpp"
#include "run.hpp"

#include <natsbus/event_bus.hpp>
#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/json/parse.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace asio = boost::asio;
using natsbus::test::http_get;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;
using natsbus::test::eventually;
using natsbus::test::fast_subscribe_options;

natsbus::event_bus_config bus_config(const nats_server& s) {
  return natsbus::test::persistent_bus_config(s, "metrics-test", natsbus::topic_strategy::create_only);
}

// The endpoint as an application runs it: on an io_context and a thread of its own, on a port the system picks.
class endpoint_thread {
 public:
  endpoint_thread(const natsbus::metrics::registry& reg, natsbus::readiness_check ready = {},
                  std::chrono::milliseconds idle_timeout = 30s)
      : work_(io_.get_executor()) {
    natsbus::metrics_server_options o;
    o.endpoint = {asio::ip::address_v4::loopback(), 0};
    o.ready = std::move(ready);
    o.idle_timeout = idle_timeout;
    server_ = natsbus::metrics_server::start(io_.get_executor(), reg, o);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~endpoint_thread() {
    server_.stop();
    work_.reset();
    thread_.join();
  }
  [[nodiscard]] unsigned short port() const { return server_.local_endpoint().port(); }

 private:
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  natsbus::metrics_server server_;
  std::thread thread_;
};

// The value of the sample whose line starts with `series` (name and labels exactly as written), or -1.
double sample(const std::string& text, const std::string& series) {
  const std::string key = series + " ";
  std::size_t at = 0;
  while ((at = text.find(key, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::strtod(text.c_str() + at + key.size(), nullptr);
    at += key.size();
  }
  return -1;
}

struct promtool_result {
  int status = -1;
  std::string output;
};

// `promtool check metrics` (Debian's prometheus package) on the text.
promtool_result promtool_check(const std::string& text) {
  namespace fs = std::filesystem;
  std::string dir = (fs::temp_directory_path() / "natsbus-promtool-XXXXXX").string();
  BOOST_REQUIRE(::mkdtemp(dir.data()));
  std::ofstream(dir + "/metrics.txt") << text;
  const std::string cmd = "promtool check metrics < " + dir + "/metrics.txt > " + dir + "/out.txt 2>&1";
  promtool_result r;
  const int rc = std::system(cmd.c_str());
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::ifstream in(dir + "/out.txt");
  r.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

bool promtool_available() { return std::system("command -v promtool >/dev/null 2>&1") == 0; }

struct fixture {
  nats_server server;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(metrics, fixture)

// A bus with two topics and a durable subscription, scraped over HTTP: the per-topic publishes and acks, the
// subscription's handled count and handler durations, JetStream's acks, the connection's state; promtool finds
// nothing wrong with the text (the application's own family, with a label value that needs escaping, included).
BOOST_AUTO_TEST_CASE(the_endpoint_serves_the_bus_figures_and_promtool_accepts_them) {
  BOOST_REQUIRE_MESSAGE(promtool_available(), "promtool not found: scripts/setup.sh installs Debian's prometheus");
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        natsbus::event_bus bus(ex, bus_config(server));
        natsbus::metrics::registry reg;
        auto registered = reg.add(bus);
        reg.counter_family("app_orders_total", "Orders taken\nby region", {"region"}).with({"eu \"west\"\\1\n"}).inc(3);
        co_await bus.start();
        std::size_t seen = 0;
        natsbus::event_handler_fn handler = [&](const natsbus::bus_event&) -> asio::awaitable<natsbus::handle_result> {
          ++seen;
          co_return natsbus::handle_result::ok();
        };
        const auto opts = fast_subscribe_options("workers");
        auto sub = co_await bus.subscribe("metrics.a", handler, opts);
        for (int i = 0; i < 5; ++i) co_await bus.publish("metrics.a", "event");
        for (int i = 0; i < 3; ++i) co_await bus.publish("metrics.b", "event");
        BOOST_REQUIRE(co_await eventually([&] { return sub.stats().handled == 5; }));

        endpoint_thread endpoint(reg, natsbus::bus_readiness(bus));
        auto r = http_get(endpoint.port(), "/metrics");
        BOOST_REQUIRE_EQUAL(r.status, 200);
        BOOST_TEST(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        const auto& t = r.body;
        BOOST_TEST(sample(t, R"(natsbus_bus_topic_publishes_total{client="metrics-test",topic="metrics.a"})") == 5);
        BOOST_TEST(sample(t, R"(natsbus_bus_topic_acks_total{client="metrics-test",topic="metrics.a"})") == 5);
        BOOST_TEST(sample(t, R"(natsbus_bus_topic_acks_total{client="metrics-test",topic="metrics.b"})") == 3);
        BOOST_TEST(sample(t, R"(natsbus_bus_topic_failures_total{client="metrics-test",topic="metrics.b"})") == 0);
        BOOST_TEST(sample(t, R"(natsbus_jetstream_acks_total{client="metrics-test"})") == 8);
        BOOST_TEST(sample(t, R"(natsbus_jetstream_publishes_in_flight{client="metrics-test"})") == 0);
        BOOST_TEST(sample(t, R"(natsbus_bus_streams_created_total{client="metrics-test"})") >= 2);
        BOOST_TEST(sample(t, R"(natsbus_connection_connected{client="metrics-test"})") == 1);
        BOOST_TEST(sample(t, R"(natsbus_connection_rtt_seconds{client="metrics-test"})") > 0);
        BOOST_TEST(sample(t, R"(natsbus_connection_out_messages_total{client="metrics-test"})") >= 8);
        const std::string sl = R"({client="metrics-test",topic="metrics.a",group="workers"})";
        BOOST_TEST(sample(t, "natsbus_subscription_handled_total" + sl) == 5);
        BOOST_TEST(sample(t, "natsbus_subscription_consuming" + sl) == 1);
        BOOST_TEST(sample(t, "natsbus_subscription_handler_duration_seconds_count" + sl) == 5);
        BOOST_TEST(sample(t, R"(natsbus_subscription_handler_duration_seconds_bucket{client="metrics-test",topic="metrics.a",group="workers",le="+Inf"})") == 5);
        BOOST_TEST(sample(t, R"(app_orders_total{region="eu \"west\"\\1\n"})") == 3);
        BOOST_TEST(t.find("# HELP app_orders_total Orders taken\\nby region\n") != std::string::npos);
        // Each family once, however many sources write into it.
        std::size_t types = 0;
        for (std::size_t at = 0; (at = t.find("# TYPE natsbus_jetstream_acks_total ", at)) != std::string::npos; ++at)
          ++types;
        BOOST_TEST(types == 1u);

        const auto check = promtool_check(t);
        BOOST_TEST(check.status == 0, "promtool check metrics: " << check.output);

        auto health = http_get(endpoint.port(), "/healthz");
        BOOST_TEST(health.status == 200);
        BOOST_TEST(health.body == "ok\n");
        auto ready = http_get(endpoint.port(), "/readyz");
        BOOST_TEST(ready.status == 200);
        BOOST_TEST(ready.body == "ready\n");
        // HEAD: the length GET would send, no body.
        auto head = natsbus::test::http_exchange(endpoint.port(),
                                                 "HEAD /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        BOOST_TEST(head.status == 200);
        BOOST_TEST(head.header("Content-Length") == "3");
        BOOST_TEST(head.body.empty());
        // A query string is ignored.
        BOOST_TEST(http_get(endpoint.port(), "/metrics?name[]=x").status == 200);

        // Removing the registration removes its figures; the application's family stays.
        registered.reset();
        std::string after;
        reg.write_prometheus(after);
        BOOST_TEST(after.find("natsbus_") == std::string::npos);
        BOOST_TEST(after.find("app_orders_total") != std::string::npos);
        sub.stop();
        bus.close();
      },
      60s);
}

// /readyz: 503 with the reason when a subscription stops consuming, and when the connection is lost.
BOOST_AUTO_TEST_CASE(readyz_says_why_it_is_not_ready) {
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        natsbus::event_bus bus(ex, bus_config(server));
        natsbus::metrics::registry reg;
        co_await bus.start();
        natsbus::event_handler_fn handler = [](const natsbus::bus_event&) -> asio::awaitable<natsbus::handle_result> {
          co_return natsbus::handle_result::ok();
        };
        const auto opts = fast_subscribe_options("readiness");
        auto sub = co_await bus.subscribe("metrics.ready", handler, opts);
        endpoint_thread endpoint(reg, natsbus::bus_readiness(bus));
        BOOST_TEST(http_get(endpoint.port(), "/readyz").status == 200);

        sub.stop();
        BOOST_REQUIRE(co_await eventually([&] { return !sub.stats().consuming; }));
        auto r = http_get(endpoint.port(), "/readyz");
        BOOST_TEST(r.status == 503);
        BOOST_TEST(r.body.find("subscription metrics.ready (group readiness): not consuming") != std::string::npos,
                   r.body);
        BOOST_TEST(http_get(endpoint.port(), "/healthz").status == 200);  // alive all the same

        server.stop();
        BOOST_REQUIRE(co_await eventually([&] { return !bus.conn().is_connected(); }));
        r = http_get(endpoint.port(), "/readyz");
        BOOST_TEST(r.status == 503);
        BOOST_TEST(r.body.starts_with("not connected"), r.body);
        bus.close();
      },
      60s);
}

// Unknown paths, other methods, and bytes that are no HTTP get a 4xx; mutated and random requests (a bounded fuzz
// over raw sockets, through Beast's parser) never get a 5xx nor stop the server.
BOOST_AUTO_TEST_CASE(bad_requests_get_4xx_and_never_stop_the_server) {
  natsbus::metrics::registry reg;
  reg.gauge_family("app_up", "1").with({}).set(1);
  endpoint_thread endpoint(reg, {}, 2s);
  const auto port = endpoint.port();
  using natsbus::test::http_exchange;
  BOOST_TEST(http_get(port, "/nope").status == 404);
  BOOST_TEST(http_get(port, "/metricsx").status == 404);
  BOOST_TEST(http_exchange(port, "FOO /metrics HTTP/1.1\r\nHost: a\r\n\r\n").status == 405);
  auto post = http_exchange(port, "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
  BOOST_TEST(post.status == 405);
  BOOST_TEST(post.header("Allow") == "GET, HEAD");
  BOOST_TEST(http_exchange(port, "\x01\x02 garbage\r\n\r\n").status == 400);
  BOOST_TEST(http_exchange(port, "GET /metrics HTTP/9.9\r\n\r\n").status == 400);
  BOOST_TEST(http_exchange(port, "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n").status == 431);
  BOOST_TEST(http_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n").status == 413);
  // Keep-alive: two requests on one connection, both answered.
  auto two = http_exchange(port, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n"
                                 "Connection: close\r\n\r\n");
  BOOST_TEST(two.status == 200);
  BOOST_TEST(two.body.find("HTTP/1.1 200") != std::string::npos);

  std::mt19937 rng(20240519);
  const std::string valid = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n";
  int answered = 0;
  for (int i = 0; i < 300; ++i) {
    std::string req;
    if (i % 3 == 0) {
      req.resize(1 + rng() % 300);
      for (auto& c : req) c = static_cast<char>(rng());
    } else {
      req = valid;
      for (int k = 0, flips = 1 + static_cast<int>(rng() % 4); k < flips; ++k)
        req[rng() % req.size()] = static_cast<char>(rng());
    }
    req += "\r\n\r\n";
    // Half-closed after the request, so an incomplete one ends at once rather than at the idle timeout.
    auto r = http_exchange(port, req, 5s, true);
    if (r.answered) {
      ++answered;
      BOOST_TEST(r.status < 500, "request " << i << " got " << r.status);
    }
  }
  BOOST_TEST_MESSAGE("fuzz: " << answered << " of 300 mutated or random requests answered");
  BOOST_TEST(http_get(port, "/healthz").status == 200);
  BOOST_TEST(http_get(port, "/metrics").body.find("app_up 1\n") != std::string::npos);
}

// A real Prometheus (Debian's package), started on loopback with a scrape config that points at the endpoint,
// scrapes it; the series then comes back through its HTTP query API.
BOOST_AUTO_TEST_CASE(prometheus_scrapes_the_endpoint_and_answers_a_query) {
  BOOST_REQUIRE_MESSAGE(natsbus::test::prometheus_server::available(),
                        "prometheus not found: scripts/setup.sh installs Debian's prometheus package");
  run_coro(
      [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        natsbus::event_bus bus(ex, bus_config(server));
        natsbus::metrics::registry reg;
        auto registered = reg.add(bus, "prom-test");
        co_await bus.start();
        for (int i = 0; i < 7; ++i) co_await bus.publish("metrics.prom", "event");
        endpoint_thread endpoint(reg, natsbus::bus_readiness(bus));
        natsbus::test::prometheus_server prom("127.0.0.1:" + std::to_string(endpoint.port()), 1s);
        const std::string query =
            "/api/v1/query?query=" +
            natsbus::test::url_encode(R"(natsbus_bus_topic_acks_total{client="prom-test",topic="metrics.prom"})");
        std::string value, last;
        const auto until = clock_type::now() + 60s;
        while (value.empty() && clock_type::now() < until) {
          auto r = http_get(prom.port(), query, true, 5s);
          last = r.body;
          if (r.status == 200) {
            auto doc = boost::json::parse(r.body);
            const auto& result = doc.at("data").at("result").as_array();
            if (!result.empty()) value = result[0].at("value").as_array()[1].as_string().c_str();
          }
          if (value.empty()) co_await natsbus::test::pause(200ms);
        }
        BOOST_TEST(value == "7", "last answer: " << last << "\nprometheus log: " << prom.log());
        // Prometheus saw the target up.
        auto up = http_get(prom.port(), "/api/v1/query?query=" + natsbus::test::url_encode(R"(up{job="natsbus"})"), true);
        BOOST_TEST(up.body.find(R"("value":[)") != std::string::npos, up.body);
        BOOST_TEST(up.body.find(R"(,"1"])") != std::string::npos, up.body);
        prom.stop();
        bus.close();
      },
      120s);
}

// JetStream's failures by kind, and its acks, as a connection and a JetStream context registered on their own.
BOOST_AUTO_TEST_CASE(jetstream_errors_are_counted_by_kind) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection_options o;
    o.servers = {server.url()};
    natsbus::connection conn(ex, o);
    natsbus::jetstream_options jo;
    jo.publish_retry_wait = 20ms;
    natsbus::jetstream js(conn, jo);
    natsbus::metrics::registry reg;
    auto rc = reg.add(conn, "js-test");
    auto rj = reg.add(js, "js-test");
    co_await conn.connect();
    natsbus::stream_config sc;
    sc.name = "METRICS_JS";
    sc.subjects = {"metrics.js"};
    sc.storage = natsbus::storage_type::memory;
    co_await js.create_stream(sc);
    co_await js.publish("metrics.js", "a");
    auto [ec, ack] = co_await js.publish("metrics.nostream", "b", asio::as_tuple(asio::use_awaitable));
    BOOST_TEST(ec == natsbus::error::no_responders);
    natsbus::publish_options wrong;
    wrong.expected_last_seq = 99;
    auto [ec2, ack2] = co_await js.publish("metrics.js", "c", wrong, asio::as_tuple(asio::use_awaitable));
    BOOST_TEST((ec2.category() == natsbus::jetstream_category()), ec2.message());
    const auto st = js.stats();
    BOOST_TEST(st.acks == 1u);
    BOOST_TEST(st.no_responders == 1u);
    BOOST_TEST(st.api_errors == 1u);
    BOOST_TEST(st.resends >= 1u);  // the 503 was retried before it failed
    std::string t;
    reg.write_prometheus(t);
    BOOST_TEST(sample(t, R"(natsbus_jetstream_publish_errors_total{client="js-test",kind="no_responders"})") == 1);
    BOOST_TEST(sample(t, R"(natsbus_jetstream_publish_errors_total{client="js-test",kind="api"})") == 1);
    BOOST_TEST(sample(t, R"(natsbus_jetstream_publish_errors_total{client="js-test",kind="timeout"})") == 0);
    BOOST_TEST(sample(t, R"(natsbus_jetstream_ack_latency_seconds_count{client="js-test"})") == 1);
    BOOST_TEST(sample(t, R"(natsbus_connection_in_messages_total{client="js-test"})") >= 3);
    conn.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()
