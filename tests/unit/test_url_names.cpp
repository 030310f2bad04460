// The protocol library's server URL parser, inbox prefix rule and JetStream name rule, and the places in the
// client that use them: the JetStream API's name check and the configuration loader give the same answers.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/bus_config.hpp>
#include <natsbus/event_bus.hpp>
#include <natsbus/protocol/names.hpp>
#include <natsbus/protocol/url.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace natsbus::detail {
// Defined in src/jetstream.cpp: the name check of every JetStream API call.
bool valid_name(std::string_view name) noexcept;
}  // namespace natsbus::detail

using namespace natsbus;
using namespace natsbus::protocol;

namespace {

server_address parsed(std::string_view url) {
  server_address a;
  const error_code ec = parse_server_url(url, a);
  BOOST_TEST(!ec, url << ": " << ec.message());
  return a;
}

// The configuration loader's verdict on a stream name (given as a YAML scalar).
bool config_accepts_stream(std::string_view yaml_name, std::string& message) {
  const std::string doc = "eventbus:\n  nats:\n    urls: localhost\n    jetstream:\n      stream:\n        name: " +
                          std::string(yaml_name) + "\n";
  event_bus_config cfg;
  return !parse_event_bus_config(doc, cfg, message);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(url_tests)

BOOST_AUTO_TEST_CASE(schemes_and_default_ports) {
  struct row {
    std::string_view url, scheme, host;
    std::uint16_t port;
    std::string_view redacted;
  };
  const row rows[] = {
      {"nats://localhost:4222", "nats", "localhost", 4222, "nats://localhost:4222"},
      {"localhost", "nats", "localhost", 4222, "nats://localhost:4222"},
      {"127.0.0.1:5222", "nats", "127.0.0.1", 5222, "nats://127.0.0.1:5222"},
      {"tls://demo.example", "tls", "demo.example", 4222, "tls://demo.example:4222"},
      {"ws://h", "ws", "h", 80, "ws://h:80"},
      {"wss://h", "wss", "h", 443, "wss://h:443"},
      {"ws://h:8080", "ws", "h", 8080, "ws://h:8080"},
      {"nats://h:1", "nats", "h", 1, "nats://h:1"},
      {"nats://h:65535", "nats", "h", 65535, "nats://h:65535"},
      {"nats://h:0080", "nats", "h", 80, "nats://h:80"},
      {"nats://[::1]:4223", "nats", "::1", 4223, "nats://[::1]:4223"},
      {"nats://[::1]", "nats", "::1", 4222, "nats://[::1]:4222"},
      {"nats://h/", "nats", "h", 4222, "nats://h:4222"},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.url) {
      const auto a = parsed(r.url);
      BOOST_TEST(a.scheme == r.scheme);
      BOOST_TEST(a.host == r.host);
      BOOST_TEST(a.port == r.port);
      BOOST_TEST(a.redacted == r.redacted);
      BOOST_TEST(a.user.empty());
      BOOST_TEST(a.password.empty());
      BOOST_TEST(a.token.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(credentials_stay_out_of_the_redacted_form) {
  auto a = parsed("nats://alice:s3cret@h:4333");
  BOOST_TEST(a.user == "alice");
  BOOST_TEST(a.password == "s3cret");
  BOOST_TEST(a.token.empty());
  BOOST_TEST(a.redacted == "nats://***@h:4333");

  a = parsed("nats://t0ken@h");
  BOOST_TEST(a.token == "t0ken");
  BOOST_TEST(a.user.empty());
  BOOST_TEST(a.password.empty());
  BOOST_TEST(a.redacted == "nats://***@h:4222");

  a = parsed("bob:pw@h:1");  // a bare host:port with credentials is nats:// too
  BOOST_TEST(a.scheme == "nats");
  BOOST_TEST(a.user == "bob");
  BOOST_TEST(a.password == "pw");
  BOOST_TEST(a.redacted == "nats://***@h:1");
}

BOOST_AUTO_TEST_CASE(invalid_urls) {
  for (std::string_view url : {"", "nats://", "nats://:4222", "http://h", "https://h:443", "nats://h:0",
                               "nats://h:65536", "nats://h:99999999999", "nats://h:", "nats://h:port",
                               "nats://h h", "nats://[::1", "nats://[]", "NATS-X://h", "nats://user@", "://h"}) {
    server_address a;
    BOOST_TEST(parse_server_url(url, a) == error::invalid_url, url);
  }
}

BOOST_AUTO_TEST_CASE(a_second_parse_starts_afresh) {
  server_address a;
  BOOST_TEST(!parse_server_url("nats://u:p@h:1", a));
  BOOST_TEST(!parse_server_url("tls://other", a));
  BOOST_TEST(a.scheme == "tls");
  BOOST_TEST(a.host == "other");
  BOOST_TEST(a.port == 4222);
  BOOST_TEST(a.user.empty());
  BOOST_TEST(a.password.empty());
}

BOOST_AUTO_TEST_CASE(inbox_prefixes) {
  for (std::string_view p : {"_INBOX", "_SVC.orders", "a", "$JS.x"}) BOOST_TEST(valid_inbox_prefix(p), p);
  BOOST_TEST(valid_inbox_prefix(std::string(max_inbox_prefix, 'a')));
  BOOST_TEST(!valid_inbox_prefix(std::string(max_inbox_prefix + 1, 'a')));
  for (std::string_view p : {"", "_SVC.*", "_SVC.>", "_SVC.", ".x", "a..b", "a b", "a\tb"}) {
    BOOST_TEST(!valid_inbox_prefix(p), p);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(name_tests)

BOOST_AUTO_TEST_CASE(the_stream_name_rule) {
  const std::vector<std::string> good = {"ORDERS", "a", "a-b_c", "KV_config", "OBJ~x", "a:b", "a#b", "caf\xc3\xa9",
                                         "$SYS", std::string(max_stream_name, 'S')};
  for (const auto& n : good) BOOST_TEST(is_valid_stream_name(n), n);
  const std::vector<std::string> bad = {"",     ".",     "a.b",   "a.",    "*",     "a*",    ">",
                                        "a>b",  "a b",   " a",    "a\t",   "a\r",   "a\n",   "a\f",
                                        "a\x01", "a\x7f", std::string("a\0b", 3), "a/b",   "/",     "a\\b",
                                        "\\",   std::string(max_stream_name + 1, 'S')};
  for (const auto& n : bad) BOOST_TEST(!is_valid_stream_name(n), n);
}

// The JetStream API's check and the configuration loader used to differ: the API let '/' and '\' through (the
// server then refused the name), the loader did not, and neither knew the server's 255-byte limit.
BOOST_AUTO_TEST_CASE(api_and_config_agree) {
  struct row {
    std::string name;       // the name itself
    std::string yaml;       // the name as a YAML scalar
    bool valid;
  };
  const std::vector<row> rows = {
      {"ORDERS", "ORDERS", true},
      {"a/b", "a/b", false},
      {"a\\b", "'a\\b'", false},
      {"a.b", "a.b", false},
      {"a*", "'a*'", false},
      {"a>", "'a>'", false},
      {"a b", "'a b'", false},
      {std::string(255, 'x'), std::string(255, 'x'), true},
      {std::string(256, 'x'), std::string(256, 'x'), false},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.yaml) {
      BOOST_TEST(is_valid_stream_name(r.name) == r.valid);
      BOOST_TEST(detail::valid_name(r.name) == r.valid);
      std::string message;
      BOOST_TEST(config_accepts_stream(r.yaml, message) == r.valid, message);
      if (!r.valid) BOOST_TEST(message.find("invalid stream name") != std::string::npos, message);
    }
  }
}

BOOST_AUTO_TEST_CASE(per_topic_stream_names_are_valid_names) {
  const std::vector<std::string> topics = {"orders.created", "a", "a_b", "a.b.c", "*", ">", "a.*", "a/b", "a\\b",
                                           "a b", "x\x01y", "caf\xc3\xa9", "", ".", std::string(300, 't'),
                                           std::string(254, 'u') + "." + std::string(254, 'v')};
  for (const auto& t : topics) {
    const std::string name = event_bus::stream_name_for(t);
    BOOST_TEST(is_valid_stream_name(name), "topic '" << t << "' -> '" << name << "'");
  }
}

BOOST_AUTO_TEST_SUITE_END()
