// The Prometheus text exposition format as the registry writes it: HELP and TYPE once per family, label values
// and help text escaped, histograms cumulative with +Inf, _sum and _count; names checked; collectors grouped by
// family; the internal latency histogram's buckets; the endpoint's address parser; the PING round-trip times.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "connection/pings.hpp"
#include "metrics/latency_buckets.hpp"

#include <natsbus/metrics.hpp>
#include <natsbus/metrics_server.hpp>

#include <cmath>
#include <limits>

using namespace natsbus::metrics;

namespace {
std::string text_of(const registry& r) {
  std::string out;
  r.write_prometheus(out);
  return out;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(metrics_text)

BOOST_AUTO_TEST_CASE(counters_and_gauges_with_labels) {
  registry r;
  auto& requests = r.counter_family("app_requests_total", "Requests handled", {"method", "code"});
  requests.with({"get", "200"}).inc();
  requests.with({"get", "200"}).inc(2);
  requests.with({"post", "500"}).inc(0.5);
  r.gauge_family("app_temperature_celsius", "Temperature").with({}).set(-3.25);
  BOOST_TEST(text_of(r) ==
             "# HELP app_requests_total Requests handled\n"
             "# TYPE app_requests_total counter\n"
             "app_requests_total{method=\"get\",code=\"200\"} 3\n"
             "app_requests_total{method=\"post\",code=\"500\"} 0.5\n"
             "# HELP app_temperature_celsius Temperature\n"
             "# TYPE app_temperature_celsius gauge\n"
             "app_temperature_celsius -3.25\n");
  // The same child every time.
  BOOST_TEST(&requests.with({"get", "200"}) == &requests.with({"get", "200"}));
  BOOST_CHECK_THROW(requests.with({"get"}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(label_values_and_help_are_escaped) {
  registry r;
  r.counter_family("app_x_total", "a \\ b\nc \"quoted\"", {"v"}).with({"back\\slash \"q\" new\nline"}).inc();
  BOOST_TEST(text_of(r) ==
             "# HELP app_x_total a \\\\ b\\nc \"quoted\"\n"
             "# TYPE app_x_total counter\n"
             "app_x_total{v=\"back\\\\slash \\\"q\\\" new\\nline\"} 1\n");
}

BOOST_AUTO_TEST_CASE(histograms_are_cumulative_with_inf_sum_and_count) {
  registry r;
  auto& h = r.histogram_family("app_wait_seconds", "Wait", {"queue"}, {0.1, 0.5, 1}).with({"q1"});
  h.observe(0.05);
  h.observe(0.1);  // on a bound: counted in that bucket (le means <=)
  h.observe(0.7);
  h.observe(3);
  BOOST_TEST(text_of(r) ==
             "# HELP app_wait_seconds Wait\n"
             "# TYPE app_wait_seconds histogram\n"
             "app_wait_seconds_bucket{queue=\"q1\",le=\"0.1\"} 2\n"
             "app_wait_seconds_bucket{queue=\"q1\",le=\"0.5\"} 2\n"
             "app_wait_seconds_bucket{queue=\"q1\",le=\"1\"} 3\n"
             "app_wait_seconds_bucket{queue=\"q1\",le=\"+Inf\"} 4\n"
             "app_wait_seconds_sum{queue=\"q1\"} 3.85\n"
             "app_wait_seconds_count{queue=\"q1\"} 4\n");
  BOOST_CHECK_THROW(r.histogram_family("app_bad_seconds", "x", {}, {1, 0.5}), std::invalid_argument);
  BOOST_CHECK_THROW(r.histogram_family("app_le_seconds", "x", {"le"}), std::invalid_argument);
  // Default buckets: natsbus's latency buckets.
  auto& d = r.histogram_family("app_default_seconds", "x");
  d.with({}).observe(0.001);
  BOOST_TEST(text_of(r).find("app_default_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
  BOOST_TEST(text_of(r).find("app_default_seconds_bucket{le=\"0.0005\"} 0\n") != std::string::npos);
  BOOST_TEST(text_of(r).find("app_default_seconds_bucket{le=\"1e-05\"} 0\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(names_are_checked) {
  BOOST_TEST(valid_metric_name("natsbus_x:y_total"));
  BOOST_TEST(!valid_metric_name("1abc"));
  BOOST_TEST(!valid_metric_name("a-b"));
  BOOST_TEST(!valid_metric_name(""));
  BOOST_TEST(valid_label_name("topic_2"));
  BOOST_TEST(!valid_label_name("__reserved"));
  BOOST_TEST(!valid_label_name("a:b"));
  registry r;
  BOOST_CHECK_THROW(r.counter_family("bad name", "x"), std::invalid_argument);
  BOOST_CHECK_THROW(r.counter_family("app_ok_total", "x", {"bad-label"}), std::invalid_argument);
  r.counter_family("app_once_total", "x");
  BOOST_CHECK_THROW(r.gauge_family("app_once_total", "x"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(collectors_share_families_and_go_with_their_registration) {
  registry r;
  auto one = r.add_collector([](sample_writer& w) {
    w.open("lib_events_total", "Events", metric_type::counter).add({{"client", "a"}}, std::uint64_t{1});
    w.open("lib_depth", "Depth", metric_type::gauge).add({{"client", "a"}}, 2.5);
  });
  auto two = r.add_collector([](sample_writer& w) {
    w.open("lib_events_total", "Events", metric_type::counter).add({{"client", "b"}}, std::uint64_t{18446744073709551615u});
    // The same name with another type, an invalid name, an invalid label: dropped, not written.
    w.open("lib_events_total", "Events", metric_type::gauge).add({{"client", "c"}}, 1.0);
    w.open("lib bad", "x", metric_type::gauge).add({}, 1.0);
    w.open("lib_depth", "Depth", metric_type::gauge).add({{"bad-label", "c"}}, 1.0);
  });
  auto throws = r.add_collector([](sample_writer& w) {
    w.open("lib_partial", "x", metric_type::gauge).add({}, 1.0);
    throw std::runtime_error("collector failure");
  });
  BOOST_TEST(text_of(r) ==
             "# HELP lib_events_total Events\n"
             "# TYPE lib_events_total counter\n"
             "lib_events_total{client=\"a\"} 1\n"
             "lib_events_total{client=\"b\"} 18446744073709551615\n"
             "# HELP lib_depth Depth\n"
             "# TYPE lib_depth gauge\n"
             "lib_depth{client=\"a\"} 2.5\n"
             "# HELP lib_partial x\n"
             "# TYPE lib_partial gauge\n"
             "lib_partial 1\n");
  one.reset();
  throws.reset();
  BOOST_TEST(!one.active());
  BOOST_TEST(text_of(r) ==
             "# HELP lib_events_total Events\n"
             "# TYPE lib_events_total counter\n"
             "lib_events_total{client=\"b\"} 18446744073709551615\n");
  // A name taken over by another type in a later scrape is written with its new type.
  two.reset();
  auto three = r.add_collector([](sample_writer& w) {
    w.open("lib_events_total", "Now a gauge", metric_type::gauge).add({}, 7.0);
  });
  BOOST_TEST(text_of(r) ==
             "# HELP lib_events_total Now a gauge\n"
             "# TYPE lib_events_total gauge\n"
             "lib_events_total 7\n");
  // A registration may outlive its registry.
  registration outlives;
  {
    registry gone;
    outlives = gone.add_collector([](sample_writer&) {});
  }
  outlives.reset();
}

BOOST_AUTO_TEST_CASE(special_values) {
  registry r;
  auto c = r.add_collector([](sample_writer& w) {
    auto f = w.open("lib_values", "x", metric_type::gauge);
    f.add({{"v", "nan"}}, std::numeric_limits<double>::quiet_NaN());
    f.add({{"v", "inf"}}, std::numeric_limits<double>::infinity());
    f.add({{"v", "-inf"}}, -std::numeric_limits<double>::infinity());
    f.add({{"v", "small"}}, 0.000125);
    f.add({{"v", "smaller"}}, 0.00005);
    f.add({{"v", "hundreds"}}, 300.0);
    f.add({{"v", "big"}}, 1e21);
    f.add({{"v", "below"}}, 123456789012345678900.0);
  });
  BOOST_TEST(text_of(r) ==
             "# HELP lib_values x\n"
             "# TYPE lib_values gauge\n"
             "lib_values{v=\"nan\"} NaN\n"
             "lib_values{v=\"inf\"} +Inf\n"
             "lib_values{v=\"-inf\"} -Inf\n"
             "lib_values{v=\"small\"} 0.000125\n"
             "lib_values{v=\"smaller\"} 5e-05\n"
             "lib_values{v=\"hundreds\"} 300\n"
             "lib_values{v=\"big\"} 1e+21\n"
             "lib_values{v=\"below\"} 123456789012345683968\n");
}

// The executor-side histogram uses the public bounds, in nanoseconds, and counts a bound in its own bucket.
BOOST_AUTO_TEST_CASE(latency_buckets_match_the_public_bounds) {
  using natsbus::detail::latency_buckets;
  const auto pub = natsbus::metrics::latency_buckets();
  BOOST_REQUIRE_EQUAL(pub.size(), latency_buckets::bounds_ns.size());
  for (std::size_t i = 0; i < pub.size(); ++i)
    BOOST_TEST(std::llround(pub[i] * 1e9) == static_cast<long long>(latency_buckets::bounds_ns[i]));
  latency_buckets h;
  h.record(std::chrono::nanoseconds(10'000));  // == the first bound
  h.record(std::chrono::nanoseconds(10'001));
  h.record(std::chrono::seconds(100));  // above every bound
  h.record(std::chrono::nanoseconds(-5));
  std::array<std::uint64_t, latency_buckets::buckets> counts{};
  double sum = 0;
  h.read(counts, sum);
  BOOST_TEST(counts[0] == 2u);
  BOOST_TEST(counts[1] == 1u);
  BOOST_TEST(counts[latency_buckets::buckets - 1] == 1u);
  BOOST_TEST(std::abs(sum - 100.000020001) < 1e-9);
}

BOOST_AUTO_TEST_CASE(endpoint_addresses) {
  using natsbus::metrics_server;
  auto a = metrics_server::parse_endpoint("127.0.0.1:9464");
  BOOST_REQUIRE(a.has_value());
  BOOST_TEST(a->address().to_string() == "127.0.0.1");
  BOOST_TEST(a->port() == 9464);
  auto b = metrics_server::parse_endpoint("[::1]:0");
  BOOST_REQUIRE(b.has_value());
  BOOST_TEST(b->address().is_v6());
  auto c = metrics_server::parse_endpoint(":9100");
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->address().is_loopback());
  BOOST_TEST(metrics_server::parse_endpoint("localhost:1")->address().is_loopback());
  BOOST_TEST(!metrics_server::parse_endpoint("127.0.0.1").has_value());
  BOOST_TEST(!metrics_server::parse_endpoint("127.0.0.1:70000").has_value());
  BOOST_TEST(!metrics_server::parse_endpoint("127.0.0.1:x").has_value());
  BOOST_TEST(!metrics_server::parse_endpoint("no.such.host:80").has_value());
  BOOST_TEST(metrics_server::default_endpoint().address().is_loopback());
}

// A PONG tells which PING it answered: its queue time, for the round trip.
BOOST_AUTO_TEST_CASE(pongs_give_their_pings_times) {
  using natsbus::detail::ping_tracker;
  using natsbus::detail::void_handler;
  ping_tracker pings(2);
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(pings.keepalive(t0));
  bool flushed = false;
  pings.flush(void_handler([&](natsbus::error_code) { flushed = true; }), t0 + std::chrono::seconds(1));
  BOOST_TEST(!pings.pong().has_value());
  BOOST_TEST((pings.answered_sent() == t0));
  auto w = pings.pong();
  BOOST_REQUIRE(w.has_value());
  BOOST_TEST((pings.answered_sent() == t0 + std::chrono::seconds(1)));
  std::move (*w)(natsbus::error_code{});
  BOOST_TEST(flushed);
  pings.pong();  // an unexpected PONG: no time
  BOOST_TEST((pings.answered_sent() == ping_tracker::time_point{}));
}

BOOST_AUTO_TEST_SUITE_END()
