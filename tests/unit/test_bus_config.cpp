#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/bus_config.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace natsbus;
using namespace std::chrono_literals;

namespace {

std::string data_file(const std::string& name) { return std::string(NATSBUS_TEST_DATA_DIR) + "/config/" + name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct parsed {
  error_code ec;
  std::string message;
  event_bus_config cfg;
};

parsed parse(std::string_view text) {
  parsed p;
  p.ec = parse_event_bus_config(text, p.cfg, p.message);
  return p;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bus_config)

BOOST_AUTO_TEST_CASE(full_file) {
  event_bus_config c;
  std::string msg;
  const auto ec = load_event_bus_config(data_file("valid.yaml"), c, msg);
  BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << msg);
  BOOST_TEST(msg.empty());

  const std::vector<std::string> urls = {"nats://nats-1.internal:4222", "tls://nats-2.internal:4443",
                                         "nats-3.internal:4222"};
  BOOST_TEST(c.connection.servers == urls, boost::test_tools::per_element());
  BOOST_TEST(c.connection.name == "orders-service");
  BOOST_TEST(c.connection.user.value_or("") == "orders");
  BOOST_TEST(c.connection.password.value_or("") == "s3cret");
  BOOST_TEST(c.connection.token.value_or("") == "tok-123");
  BOOST_TEST(c.connection.connect_timeout.count() == 3000);
  BOOST_TEST(c.connection.request_timeout.count() == 1500);
  BOOST_TEST(c.connection.inbox_prefix == "_INBOX_orders");

  BOOST_TEST(c.jetstream_enabled);
  BOOST_TEST(c.jetstream.api_prefix == "$JS.hub.API");
  BOOST_TEST(c.jetstream.domain == "hub");
  BOOST_TEST(c.jetstream.timeout.count() == 7000);
  BOOST_TEST(c.jetstream.max_pending == 512u);

  BOOST_TEST_REQUIRE(c.default_stream.has_value());
  stream_config s;
  s.name = "EVENTS";
  s.description = "shared event stream";
  s.subjects = {"business.>", "audit.*"};
  s.storage = storage_type::memory;
  s.num_replicas = 3;
  s.retention = retention_policy::interest;
  s.max_age = 7 * 24h;
  s.max_msgs = 1000000;
  s.max_bytes = 1073741824;
  s.max_msg_size = 65536;
  s.discard = discard_policy::new_;
  s.duplicate_window = 2min;
  BOOST_TEST((*c.default_stream == s));

  BOOST_TEST((c.mapping == stream_mapping::shared));
  BOOST_TEST(to_string(c.strategy) == "create_or_update");
  BOOST_TEST(!c.auto_msg_id);

  topic_options d;
  d.persistence = topic_persistence::persistent;
  d.retention_time = 48h;
  d.max_messages = 5000;
  d.max_bytes = 10485760;
  d.max_message_size = 4096;
  d.replicas = 2;
  d.storage = storage_type::file;
  d.discard = discard_policy::old;
  d.duplicate_window = 90s;
  d.description = "default for unconfigured topics";
  BOOST_TEST((c.default_topic_options == d));

  BOOST_TEST(c.precreation.enabled);
  BOOST_TEST(to_string(c.precreation.strategy) == "validate_only");
  BOOST_TEST(c.max_provisioning_in_flight == 16u);
  BOOST_TEST_REQUIRE(c.precreation.topics.size() == 3u);

  topic_options t0;
  t0.persistence = topic_persistence::persistent;
  t0.retention_time = 24h;
  t0.max_messages = 10000;
  t0.max_bytes = 104857600;
  t0.max_message_size = 8192;
  t0.replicas = 3;
  t0.storage = storage_type::memory;
  t0.discard = discard_policy::new_;
  t0.duplicate_window = 90min;
  t0.description = "orders that were placed";
  BOOST_TEST(c.precreation.topics[0].name == "business.orders.created");
  BOOST_TEST((c.precreation.topics[0].options == t0));

  topic_options t1;
  t1.retention_time = 3600s;
  BOOST_TEST(c.precreation.topics[1].name == "business.orders.cancelled");
  BOOST_TEST((c.precreation.topics[1].options == t1));

  topic_options t2;
  t2.persistence = topic_persistence::ephemeral;
  BOOST_TEST(c.precreation.topics[2].name == "telemetry.heartbeat");
  BOOST_TEST((c.precreation.topics[2].options == t2));
}

BOOST_AUTO_TEST_CASE(example_file_loads) {
  event_bus_config c;
  std::string msg;
  const auto ec = load_event_bus_config(std::string(NATSBUS_TEST_DATA_DIR) + "/../../examples/eventbus.yaml", c, msg);
  BOOST_TEST_REQUIRE(!ec, ec.message() << ": " << msg);
  BOOST_TEST(c.precreation.enabled);
  BOOST_TEST(c.precreation.topics.size() == 3u);
  BOOST_TEST(c.precreation.topics[0].name == "business.orders.created");
  BOOST_TEST_REQUIRE(c.subscribers.size() == 2u);
  BOOST_TEST(c.subscribers[0].topic == "business.orders.created");
  BOOST_TEST(c.subscribers[0].options.group == "billing");
  BOOST_TEST(c.subscribers[1].options.group == "notifications");
  BOOST_TEST((c.subscribers[1].options.deliver == deliver_policy::new_));
}

BOOST_AUTO_TEST_CASE(minimal_file_keeps_defaults) {
  auto p = parse("eventbus:\n  nats:\n");
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  const event_bus_config d;
  BOOST_TEST(p.cfg.connection.servers == d.connection.servers, boost::test_tools::per_element());
  BOOST_TEST(p.cfg.connection.name == d.connection.name);
  BOOST_TEST(p.cfg.jetstream_enabled == d.jetstream_enabled);
  BOOST_TEST(!p.cfg.default_stream.has_value());
  BOOST_TEST((p.cfg.mapping == d.mapping));
  BOOST_TEST(to_string(p.cfg.strategy) == to_string(d.strategy));
  BOOST_TEST((p.cfg.default_topic_options == d.default_topic_options));
  BOOST_TEST(p.cfg.auto_msg_id == d.auto_msg_id);
  BOOST_TEST(!p.cfg.precreation.enabled);
  BOOST_TEST(p.cfg.precreation.topics.empty());

  // A single string is a list of one URL; durations given as plain numbers are seconds.
  p = parse("eventbus:\n  nats:\n    urls: localhost:4333\n    connect_timeout: 4\n    jetstream: {enabled: off}\n");
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  BOOST_TEST(p.cfg.connection.servers == std::vector<std::string>{"localhost:4333"}, boost::test_tools::per_element());
  BOOST_TEST(p.cfg.connection.connect_timeout.count() == 4000);
  BOOST_TEST(!p.cfg.jetstream_enabled);
}

// backend: memory needs no nats section (and keeps its topic settings when there is one); nats, the default,
// needs it; anything else is named.
BOOST_AUTO_TEST_CASE(backend) {
  auto p = parse("eventbus:\n  backend: memory\n");
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  BOOST_TEST(to_string(p.cfg.backend) == "memory");
  p = parse("eventbus:\n  backend: memory\n  nats:\n    mapping: per_topic\n    strategy: validate_only\n"
            "    subscribers:\n      - {topic: orders, group: billing}\n");
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  BOOST_TEST(to_string(p.cfg.strategy) == "validate_only");
  BOOST_TEST_REQUIRE(p.cfg.subscribers.size() == 1u);
  BOOST_TEST(p.cfg.subscribers[0].options.group == "billing");
  p = parse("eventbus:\n  nats:\n");
  BOOST_TEST(to_string(p.cfg.backend) == "nats");
  p = parse("eventbus:\n  backend: nats\n");
  BOOST_TEST(p.ec == error::invalid_config);
  BOOST_TEST(p.message == "line 2: eventbus.nats: missing (required)", p.message);
  p = parse("eventbus:\n  nats:\n  backend: redis\n");
  BOOST_TEST(p.ec == error::invalid_config);
  BOOST_TEST(p.message == "line 3: eventbus.backend: unknown backend 'redis' (expected nats or memory)", p.message);
  p = parse("eventbus:\n  backend: [memory]\n");
  BOOST_TEST(p.ec == error::invalid_config);
  BOOST_TEST(p.message.find("eventbus.backend") != std::string::npos, p.message);
}

BOOST_AUTO_TEST_CASE(fields_left_out_keep_the_callers_values) {
  event_bus_config c;
  c.connection.ping_interval = 7s;
  c.connection.name = "from-code";
  c.jetstream.max_pending = 9;
  std::string msg;
  BOOST_TEST_REQUIRE(!parse_event_bus_config("eventbus:\n  nats:\n    client_id: from-file\n", c, msg), msg);
  BOOST_TEST(c.connection.name == "from-file");
  BOOST_TEST(c.connection.ping_interval.count() == 7000);
  BOOST_TEST(c.jetstream.max_pending == 9u);

  // A failed parse leaves the struct as it was.
  BOOST_TEST(parse_event_bus_config("eventbus:\n  nats:\n    client_id: other\n    bogus: 1\n", c, msg) ==
             error::invalid_config);
  BOOST_TEST(c.connection.name == "from-file");
}

BOOST_AUTO_TEST_CASE(errors_name_line_and_field) {
  struct row {
    std::string name;
    std::string yaml;
    std::string expected;  // the message must start with this
  };
  const std::string head = "eventbus:\n  nats:\n";  // lines 1-2
  const std::vector<row> rows = {
      {"unknown field", head + "    jetstream:\n      enabled: true\n    precreaton:\n      enabled: true\n",
       "line 5: eventbus.nats.precreaton: unknown field (did you mean precreation?)"},
      {"unknown nested field", head + "    precreation:\n      topics:\n        - name: a.b\n          retension: 1h\n",
       "line 6: eventbus.nats.precreation.topics[0].retension: unknown field"},
      {"name in default_topic", head + "    default_topic:\n      name: a.b\n",
       "line 4: eventbus.nats.default_topic.name: unknown field"},
      {"field given twice", head + "    client_id: a\n    client_id: b\n", "line 4: eventbus.nats.client_id: field given twice"},
      {"bool wrong type", head + "    auto_msg_id: maybe\n", "line 3: eventbus.nats.auto_msg_id: expected true or false"},
      {"bool is a map", head + "    jetstream:\n      enabled: {a: 1}\n",
       "line 4: eventbus.nats.jetstream.enabled: expected true or false, got a map"},
      {"string is a list", head + "    client_id: [a, b]\n", "line 3: eventbus.nats.client_id: expected a string, got a list"},
      {"string is null", head + "    client_id:\n    auto_msg_id: true\n",
       "line 3: eventbus.nats.client_id: expected a string, got nothing"},
      {"section is a scalar", head + "    jetstream: yes\n", "line 3: eventbus.nats.jetstream: expected a map"},
      {"nats is a list", "eventbus:\n  nats: [1]\n", "line 2: eventbus.nats: expected a map, got a list"},
      {"bad strategy", head + "    precreation:\n      strategy: create_maybe\n",
       "line 4: eventbus.nats.precreation.strategy: unknown strategy 'create_maybe' (expected create_only, "
       "create_or_update, validate_only or skip)"},
      {"bad runtime strategy", head + "    strategy: 3\n", "line 3: eventbus.nats.strategy: unknown strategy '3'"},
      {"bad duration", head + "    precreation:\n      topics:\n        - name: a.b\n          retention: 24 hours\n",
       "line 6: eventbus.nats.precreation.topics[0].retention: invalid duration '24 hours'"},
      {"negative duration", head + "    request_timeout: -5s\n", "line 3: eventbus.nats.request_timeout: invalid duration"},
      {"wildcard inbox prefix", head + "    inbox_prefix: _SVC.*\n",
       "line 3: eventbus.nats.inbox_prefix: invalid inbox prefix '_SVC.*' (a subject with no wildcards"},
      {"inbox prefix with an empty token", head + "    inbox_prefix: _SVC.\n",
       "line 3: eventbus.nats.inbox_prefix: invalid inbox prefix '_SVC.'"},
      {"timeout under 1ms", head + "    connect_timeout: 10us\n",
       "line 3: eventbus.nats.connect_timeout: must be at least 1ms"},
      {"bad storage", head + "    jetstream:\n      stream:\n        name: S\n        storage: disk\n",
       "line 6: eventbus.nats.jetstream.stream.storage: unknown storage 'disk' (expected file or memory)"},
      {"bad topic storage", head + "    default_topic: {storage: ssd}\n",
       "line 3: eventbus.nats.default_topic.storage: unknown storage 'ssd'"},
      {"bad retention policy", head + "    jetstream:\n      stream: {name: S, retention: forever}\n",
       "line 4: eventbus.nats.jetstream.stream.retention: unknown retention policy 'forever'"},
      {"bad discard", head + "    default_topic:\n      discard: oldest\n",
       "line 4: eventbus.nats.default_topic.discard: unknown discard policy 'oldest'"},
      {"bad persistence", head + "    default_topic:\n      persistence: durable\n",
       "line 4: eventbus.nats.default_topic.persistence: unknown persistence 'durable'"},
      {"replicas too many", head + "    precreation:\n      topics:\n        - name: a.b\n          replicas: 7\n",
       "line 6: eventbus.nats.precreation.topics[0].replicas: 7 is out of range; must be between 1 and 5"},
      {"replicas zero", head + "    jetstream:\n      stream: {name: S, replicas: 0}\n",
       "line 4: eventbus.nats.jetstream.stream.replicas: 0 is out of range"},
      {"replicas not a number", head + "    default_topic: {replicas: three}\n",
       "line 3: eventbus.nats.default_topic.replicas: expected an integer, got 'three'"},
      {"integer with garbage", head + "    default_topic:\n      max_messages: 12abc\n",
       "line 4: eventbus.nats.default_topic.max_messages: expected an integer, got '12abc'"},
      {"integer float", head + "    default_topic:\n      max_bytes: 1.5\n",
       "line 4: eventbus.nats.default_topic.max_bytes: expected an integer"},
      {"huge integer", head + "    default_topic:\n      max_bytes: 99999999999999999999999\n",
       "line 4: eventbus.nats.default_topic.max_bytes: number '99999999999999999999999' is too large"},
      {"negative limit", head + "    default_topic:\n      max_messages: -2\n",
       "line 4: eventbus.nats.default_topic.max_messages: -2 is out of range; must be at least -1"},
      {"message size over int32", head + "    default_topic:\n      max_message_size: 3000000000\n",
       "line 4: eventbus.nats.default_topic.max_message_size: 3000000000 is out of range"},
      {"max_pending zero", head + "    jetstream:\n      max_pending: 0\n",
       "line 4: eventbus.nats.jetstream.max_pending: 0 is out of range"},
      {"max_in_flight zero", head + "    precreation:\n      max_in_flight: 0\n",
       "line 4: eventbus.nats.precreation.max_in_flight: 0 is out of range"},
      {"shared without stream", head + "    jetstream:\n      enabled: true\n    mapping: shared\n",
       "line 5: eventbus.nats.mapping: shared needs a stream"},
      {"bad mapping", head + "    mapping: global\n", "line 3: eventbus.nats.mapping: unknown mapping 'global'"},
      {"missing topic name", head + "    precreation:\n      topics:\n        - name: a.b\n        - retention: 1h\n",
       "line 6: eventbus.nats.precreation.topics[1].name: missing"},
      {"topic is a string", head + "    precreation:\n      topics:\n        - a.b\n",
       "line 5: eventbus.nats.precreation.topics[0]: expected a map with a name, got 'a.b'"},
      {"topics is a map", head + "    precreation:\n      topics: {name: a.b}\n",
       "line 4: eventbus.nats.precreation.topics: expected a list of topics, got a map"},
      {"invalid topic subject", head + "    precreation:\n      topics:\n        - name: orders.*\n",
       "line 5: eventbus.nats.precreation.topics[0].name: invalid topic 'orders.*'"},
      {"topic with space", head + "    precreation:\n      topics:\n        - name: \"a b\"\n",
       "line 5: eventbus.nats.precreation.topics[0].name: invalid topic 'a b'"},
      {"duplicate topic",
       head + "    precreation:\n      topics:\n        - name: a.b\n        - name: c.d\n        -\n          retention: 1h\n"
              "          name: a.b\n",
       "line 9: eventbus.nats.precreation.topics[2].name: duplicate topic 'a.b' (first given at line 5)"},
      {"invalid stream name", head + "    jetstream:\n      stream:\n        name: my.stream\n",
       "line 5: eventbus.nats.jetstream.stream.name: invalid stream name 'my.stream'"},
      {"stream without name", head + "    jetstream:\n      stream:\n        storage: file\n",
       "line 5: eventbus.nats.jetstream.stream.name: missing"},
      {"invalid stream subject", head + "    jetstream:\n      stream:\n        name: S\n        subjects:\n          - a.>\n          - a..b\n",
       "line 8: eventbus.nats.jetstream.stream.subjects[1]: invalid subject 'a..b'"},
      {"empty urls", head + "    urls: []\n", "line 3: eventbus.nats.urls: must not be empty"},
      {"bad url", head + "    urls:\n      - nats://ok:4222\n      - http://web:80\n",
       "line 5: eventbus.nats.urls[1]: invalid server URL 'http://web:80'"},
      {"bad url hides credentials", head + "    urls: http://user:pw@web:80\n",
       "line 3: eventbus.nats.urls: invalid server URL 'http://***@web:80'"},
      {"url is a map", head + "    urls:\n      - {host: a}\n", "line 4: eventbus.nats.urls[0]: expected a string, got a map"},
      {"duplicate window over max age", head + "    default_topic:\n      retention: 1m\n      duplicate_window: 2m\n",
       "line 5: eventbus.nats.default_topic.duplicate_window: must not be longer than the retention"},
      {"yaml syntax error", head + "    urls: [nats://a:4222\n    client_id: x\n", "line 4: YAML syntax error: "},
      {"yaml bad indentation", "eventbus:\n  nats:\n    client_id: x\n   auto_msg_id: true\n", "line 4: YAML syntax error: "},
      {"undefined alias", head + "    client_id: *nope\n", "line 3: YAML syntax error: the referenced anchor is not defined"},
      {"empty document", "", "line 1: eventbus: missing (the document is empty)"},
      {"only comments", "# nothing here\n\n", "line 1: eventbus: missing"},
      {"only eventbus", "eventbus:\n", "line 1: eventbus.nats: missing"},
      {"no eventbus", "app:\n  x: 1\nevents:\n  nats: {}\n", "line 1: eventbus: missing"},
      {"root is a list", "- eventbus\n", "line 1: (document): expected a map with an 'eventbus' key, got a list"},
      {"root is a scalar", "eventbus\n", "line 1: (document): expected a map"},
      {"key is a list", head + "    [a, b]: 1\n", "line 3: eventbus.nats.?: a key must be a name"},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      parsed p;
      BOOST_REQUIRE_NO_THROW(p = parse(r.yaml));
      BOOST_TEST(p.ec == error::invalid_config);
      BOOST_TEST(p.message.starts_with(r.expected), "got: " << p.message << "\nexpected: " << r.expected);
      BOOST_TEST_MESSAGE(p.message);
    }
  }
}

BOOST_AUTO_TEST_CASE(missing_file) {
  event_bus_config c;
  std::string msg;
  const std::string path = data_file("does-not-exist.yaml");
  const auto ec = load_event_bus_config(path, c, msg);
  BOOST_TEST((ec == boost::system::errc::no_such_file_or_directory));
  BOOST_TEST(msg.find(path) != std::string::npos, msg);

  // A directory opens but cannot be read.
  msg.clear();
  const auto ec2 = load_event_bus_config(std::string(NATSBUS_TEST_DATA_DIR) + "/config", c, msg);
  BOOST_TEST(!!ec2);
  BOOST_TEST(!msg.empty());
}

// Whatever the input, the loader answers with a code and never throws: every prefix of the full file, and
// every value of it replaced by each kind of node.
BOOST_AUTO_TEST_CASE(never_throws) {
  const std::string text = read_text(data_file("valid.yaml"));
  BOOST_TEST_REQUIRE(!text.empty());
  std::size_t failures = 0;
  for (std::size_t n = 0; n <= text.size(); ++n) {
    parsed p;
    BOOST_REQUIRE_NO_THROW(p = parse(std::string_view(text).substr(0, n)));
    if (p.ec) {
      ++failures;
      BOOST_TEST(p.ec == error::invalid_config);
      BOOST_TEST(p.message.starts_with("line "), p.message);
    }
  }
  BOOST_TEST(failures > 0u);

  const std::vector<std::string> replacements = {"", "~", "{}", "[]", "{a: 1}", "[1, [2]]", "-1", "0",
                                                 "99999999999999999999", "\"\"", "!!binary aGVsbG8=", "&a [*a]"};
  std::istringstream lines(text);
  std::vector<std::string> all;
  for (std::string l; std::getline(lines, l);) all.push_back(l);
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto colon = all[i].find(": ");
    if (colon == std::string::npos) continue;
    for (const auto& r : replacements) {
      std::string doc;
      for (std::size_t j = 0; j < all.size(); ++j) doc += (j == i ? all[j].substr(0, colon + 2) + r : all[j]) + "\n";
      parsed p;
      BOOST_REQUIRE_NO_THROW(p = parse(doc));
      if (p.ec) BOOST_TEST(p.message.starts_with("line "), p.message);
    }
  }

  for (std::string_view odd : {std::string_view("eventbus: {nats: &n {precreation: {topics: [*n]}}}"),
                               std::string_view("eventbus: &e {nats: *e}"), std::string_view("\t"),
                               std::string_view("eventbus:\0\n", 11), std::string_view("\xff\xfe\x00", 3),
                               std::string_view("%YAML 9.9\n---\neventbus: {}"), std::string_view("--- |\n  x\n")}) {
    parsed p;
    BOOST_REQUIRE_NO_THROW(p = parse(odd));
    BOOST_TEST(p.ec == error::invalid_config, p.message);
  }
  std::string deep(100000, '[');
  parsed p;
  BOOST_REQUIRE_NO_THROW(p = parse(deep));
  BOOST_TEST(p.ec == error::invalid_config);
}

BOOST_AUTO_TEST_CASE(durations) {
  struct row {
    std::string_view text;
    std::optional<std::chrono::nanoseconds> want;
  };
  const row rows[] = {
      {"24h", 24h},
      {"90m", 90min},
      {"30s", 30s},
      {"500ms", 500ms},
      {"1h30m", 90min},
      {"2d", 48h},
      {"1.5h", 90min},
      {"250us", 250us},
      {"250\xc2\xb5s", 250us},
      {"10ns", 10ns},
      {"0", 0ns},
      {"0s", 0ns},
      {"45", 45s},
      {"1.5", 1500ms},
      {".5s", 500ms},
      {"1d2h3m4s5ms6us7ns", 26h + 3min + 4s + 5ms + 6us + 7ns},
      {"0.000000001s", 1ns},
      {"9223372036s", 9223372036s},
      {"", std::nullopt},
      {"-1s", std::nullopt},
      {"-5", std::nullopt},
      {"+5s", std::nullopt},
      {"s", std::nullopt},
      {"5x", std::nullopt},
      {"5S", std::nullopt},
      {"1h30", std::nullopt},
      {"1h 30m", std::nullopt},
      {" 5s", std::nullopt},
      {".", std::nullopt},
      {".s", std::nullopt},
      {"1..5s", std::nullopt},
      {"abc", std::nullopt},
      {"9223372037s", std::nullopt},          // over the range of nanoseconds
      {"107000d", std::nullopt},
      {"99999999999999999999999ns", std::nullopt},
      {"9223372036s9223372036s", std::nullopt},
  };
  for (const auto& r : rows) {
    const auto got = parse_duration(r.text);
    BOOST_TEST(got.has_value() == r.want.has_value(), "'" << r.text << "'");
    if (got && r.want) BOOST_TEST(got->count() == r.want->count(), "'" << r.text << "'");
  }
}

BOOST_AUTO_TEST_CASE(strategies) {
  struct row {
    std::string_view text;
    std::optional<topic_strategy> want;
  };
  const row rows[] = {
      {"create_only", topic_strategy::create_only},
      {"create-only", topic_strategy::create_only},
      {"CREATE_ONLY", topic_strategy::create_only},
      {"CreateOnly", topic_strategy::create_only},
      {"StrategyCreateOnly", topic_strategy::create_only},
      {"create_or_update", topic_strategy::create_or_update},
      {"Create-Or-Update", topic_strategy::create_or_update},
      {"CreateOrUpdate", topic_strategy::create_or_update},
      {"validate_only", topic_strategy::validate_only},
      {"ValidateOnly", topic_strategy::validate_only},
      {"StrategyValidateOnly", topic_strategy::validate_only},
      {"skip", topic_strategy::skip},
      {"SKIP", topic_strategy::skip},
      {"StrategySkip", topic_strategy::skip},
      {"", std::nullopt},
      {"create", std::nullopt},
      {"createonly", std::nullopt},
      {"create__only", std::nullopt},
      {"strategy", std::nullopt},
      {"strategy_", std::nullopt},
      {"create_maybe", std::nullopt},
      {" skip", std::nullopt},
      {std::string_view("skip\0", 5), std::nullopt},
      {"create_only_create_only_create_only_create_only_create_only_create_only", std::nullopt},
  };
  for (const auto& r : rows) {
    const auto got = parse_topic_strategy(r.text);
    BOOST_TEST(got.has_value() == r.want.has_value(), "'" << r.text << "'");
    if (got && r.want) BOOST_TEST(to_string(*got) == to_string(*r.want), "'" << r.text << "'");
  }
  for (auto s : {topic_strategy::create_only, topic_strategy::create_or_update, topic_strategy::validate_only,
                 topic_strategy::skip}) {
    const auto back = parse_topic_strategy(to_string(s));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST((*back == s));
  }
}

BOOST_AUTO_TEST_CASE(security_and_websocket_fields_are_applied) {
  const std::string ca = data_file("valid.yaml");  // any readable file stands in for PEM files here
  const std::string text = "eventbus:\n  nats:\n    security:\n      user: u\n      password: hunter2\n"
                           "      token: t0k\n      nkey_seed: SUAXX\n      tls: true\n      ca_file: " + ca +
                           "\n      cert_file: " + ca + "\n      key_file: " + ca +
                           "\n      server_name: nats.example\n      tls_min_version: \"1.3\"\n"
                           "      tls_handshake_first: true\n      insecure_skip_verify: true\n"
                           "    websocket:\n      compression: true\n      max_message_size: 65536\n";
  auto p = parse(text);
  BOOST_REQUIRE_MESSAGE(!p.ec, p.message);
  const auto& c = p.cfg.connection;
  BOOST_TEST(*c.user == "u");
  BOOST_TEST(*c.password == "hunter2");
  BOOST_TEST(*c.token == "t0k");
  BOOST_TEST(c.nkey_seed == "SUAXX");
  BOOST_TEST(c.tls.enabled);
  BOOST_TEST(c.tls.ca_file == ca);
  BOOST_TEST(c.tls.cert_file == ca);
  BOOST_TEST(c.tls.key_file == ca);
  BOOST_TEST(c.tls.server_name == "nats.example");
  BOOST_TEST((c.tls.min_version == natsbus::tls_options::version::tls1_3));
  BOOST_TEST(c.tls.handshake_first);
  BOOST_TEST(c.tls.insecure_skip_verify_dangerous);
  BOOST_TEST(c.websocket.compression);
  BOOST_TEST(c.websocket.max_message_size == 65536u);
}

BOOST_AUTO_TEST_CASE(security_errors_are_clear_and_name_no_secret) {
  const std::string head = "eventbus:\n  nats:\n    security:\n";  // lines 1-3
  struct row {
    std::string yaml, expected;
  };
  const std::vector<row> rows = {
      {head + "      creds_file: /nonexistent/user.creds\n",
       "line 4: eventbus.nats.security.creds_file: no such file '/nonexistent/user.creds'"},
      {head + "      ca_file: /nonexistent/ca.pem\n", "line 4: eventbus.nats.security.ca_file: no such file"},
      {head + "      tls_min_version: \"1.0\"\n", "line 4: eventbus.nats.security.tls_min_version: invalid TLS version"},
      {head + "      insecure_skip_verify: perhaps\n",
       "line 4: eventbus.nats.security.insecure_skip_verify: expected true or false"},
      {head + "      passwrd: hunter2\n", "line 4: eventbus.nats.security.passwrd: unknown field"},
      {head + "      cert_file: " + data_file("valid.yaml") + "\n", "line 4: eventbus.nats.security: cert_file and key_file"},
      {head + "      nkey_seed: SUAXX\n      creds_file: " + data_file("valid.yaml") + "\n",
       "line 4: eventbus.nats.security: creds_file holds its own seed"},
      {head + "      password: [hunter2]\n", "line 4: eventbus.nats.security.password: expected a string, got a list"},
      {"eventbus:\n  nats:\n    websocket:\n      compresion: true\n",
       "line 4: eventbus.nats.websocket.compresion: unknown field"},
  };
  for (const auto& r : rows) {
    auto p = parse(r.yaml);
    BOOST_TEST(p.ec == natsbus::error::invalid_config, r.yaml);
    BOOST_TEST(p.message.rfind(r.expected, 0) == 0u, "got: " << p.message << "\nwant: " << r.expected);
    BOOST_TEST(p.message.find("hunter2") == std::string::npos, p.message);
    BOOST_TEST(p.message.find("SUAXX") == std::string::npos, p.message);
  }
}

BOOST_AUTO_TEST_CASE(subscribers_every_field) {
  const std::string text =
      "eventbus:\n"
      "  nats:\n"
      "    subscribers:\n"
      "      - topic: orders.created\n"
      "        group: billing\n"
      "        ack_wait: 45s\n"
      "        max_deliver: 7\n"
      "        backoff: [250ms, 2s, 1m]\n"
      "        max_ack_pending: -1\n"
      "        deliver_policy: last_per_subject\n"
      "        max_concurrency: 4\n"
      "        key_header: Aggregate-Id\n"
      "        handler_timeout: 20s\n"
      "        dead_letter_topic: orders.created.dlq\n"
      "        prefetch: 8\n"
      "      - topic: orders.created\n"  // the same topic in another group
      "        group: audit-2\n"
      "        deliver_policy: new\n"
      "        max_ack_pending: 50\n"
      "      - {topic: orders.shipped, group: billing, backoff: 10s, deliver_policy: last, key_header: \"\"}\n"
      "      - topic: orders.cancelled\n"
      "        group: ops\n"
      "        backoff:\n"  // null: no backoff
      "        dead_letter_topic: dead.letters\n"
      "      - topic: orders.paid\n"
      "        group: ops\n"
      "        backoff: []\n"
      "        deliver_policy: All\n";
  auto p = parse(text);
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  const auto& subs = p.cfg.subscribers;
  BOOST_TEST_REQUIRE(subs.size() == 5u);

  const auto& a = subs[0];
  BOOST_TEST(a.topic == "orders.created");
  BOOST_TEST(a.options.group == "billing");
  BOOST_TEST(a.options.ack_wait.count() == 45000);
  BOOST_TEST(a.options.max_deliver == 7);
  const std::vector<std::chrono::milliseconds> backoff = {250ms, 2s, 1min};
  BOOST_TEST((a.options.backoff == backoff));
  BOOST_TEST(a.options.max_ack_pending == -1);
  BOOST_TEST((a.options.deliver == deliver_policy::last_per_subject));
  BOOST_TEST(a.options.max_concurrency == 4u);
  BOOST_TEST(a.options.key_header == "Aggregate-Id");
  BOOST_TEST(!a.options.key_fn);
  BOOST_TEST(a.options.handler_timeout.count() == 20000);
  BOOST_TEST(a.options.dead_letter_topic == "orders.created.dlq");
  BOOST_TEST(a.options.prefetch == 8u);

  BOOST_TEST(subs[1].topic == "orders.created");
  BOOST_TEST(subs[1].options.group == "audit-2");
  BOOST_TEST((subs[1].options.deliver == deliver_policy::new_));
  BOOST_TEST(subs[1].options.max_ack_pending == 50);

  BOOST_TEST(subs[2].topic == "orders.shipped");
  BOOST_TEST(subs[2].options.group == "billing");
  BOOST_TEST((subs[2].options.backoff == std::vector<std::chrono::milliseconds>{10s}));
  BOOST_TEST((subs[2].options.deliver == deliver_policy::last));
  BOOST_TEST(subs[2].options.key_header.empty());

  BOOST_TEST(subs[3].options.backoff.empty());
  BOOST_TEST(subs[3].options.dead_letter_topic == "dead.letters");
  BOOST_TEST(subs[4].options.backoff.empty());
  BOOST_TEST((subs[4].options.deliver == deliver_policy::all));
}

BOOST_AUTO_TEST_CASE(subscribers_defaults) {
  auto p = parse("eventbus:\n  nats:\n    subscribers:\n      - topic: a.b\n        group: g\n");
  BOOST_TEST_REQUIRE(!p.ec, p.message);
  BOOST_TEST_REQUIRE(p.cfg.subscribers.size() == 1u);
  const auto& o = p.cfg.subscribers[0].options;
  const subscribe_options d;
  BOOST_TEST(p.cfg.subscribers[0].topic == "a.b");
  BOOST_TEST(o.group == "g");
  BOOST_TEST(o.ack_wait.count() == d.ack_wait.count());
  BOOST_TEST(o.max_deliver == d.max_deliver);
  BOOST_TEST((o.backoff == d.backoff));
  BOOST_TEST(o.max_ack_pending == d.max_ack_pending);
  BOOST_TEST((o.deliver == d.deliver));
  BOOST_TEST(o.max_concurrency == d.max_concurrency);
  BOOST_TEST(o.key_header == d.key_header);
  BOOST_TEST(o.handler_timeout.count() == d.handler_timeout.count());
  BOOST_TEST(o.dead_letter_topic == d.dead_letter_topic);
  BOOST_TEST(o.prefetch == d.prefetch);

  // No subscribers: none, and an empty or null list is none too.
  for (const char* doc : {"eventbus:\n  nats:\n", "eventbus:\n  nats:\n    subscribers:\n",
                          "eventbus:\n  nats:\n    subscribers: []\n"}) {
    p = parse(doc);
    BOOST_TEST_REQUIRE(!p.ec, p.message);
    BOOST_TEST(p.cfg.subscribers.empty(), doc);
  }

  // The caller's list stays when the file has none, and is replaced when it has one (as precreation.topics).
  event_bus_config c;
  c.subscribers.push_back({"from.code", {}});
  c.subscribers.back().options.group = "code";
  std::string msg;
  BOOST_TEST_REQUIRE(!parse_event_bus_config("eventbus:\n  nats:\n    client_id: x\n", c, msg), msg);
  BOOST_TEST_REQUIRE(c.subscribers.size() == 1u);
  BOOST_TEST(c.subscribers[0].topic == "from.code");
  BOOST_TEST_REQUIRE(!parse_event_bus_config("eventbus:\n  nats:\n    subscribers: [{topic: f.f, group: file}]\n", c, msg),
                     msg);
  BOOST_TEST_REQUIRE(c.subscribers.size() == 1u);
  BOOST_TEST(c.subscribers[0].topic == "f.f");
}

BOOST_AUTO_TEST_CASE(subscriber_errors_name_line_and_field) {
  struct row {
    std::string name;
    std::string yaml;
    std::string expected;  // the message must start with this
  };
  const std::string head = "eventbus:\n  nats:\n    subscribers:\n";  // lines 1-3
  const std::string one = head + "      - topic: a.b\n        group: g\n";  // lines 4-5
  const std::string s0 = "eventbus.nats.subscribers[0]";
  const std::vector<row> rows = {
      {"misspelt section", "eventbus:\n  nats:\n    subscriber:\n      - {topic: a.b, group: g}\n",
       "line 3: eventbus.nats.subscriber: unknown field (did you mean subscribers?)"},
      {"subscribers is a map", head + "      topic: a.b\n      group: g\n",
       "line 4: eventbus.nats.subscribers: expected a list of subscribers, got a map"},
      {"subscribers is a string", "eventbus:\n  nats:\n    subscribers: a.b\n",
       "line 3: eventbus.nats.subscribers: expected a list of subscribers, got 'a.b'"},
      {"subscriber is a string", head + "      - a.b\n",
       "line 4: " + s0 + ": expected a map with a topic and a group, got 'a.b'"},
      {"subscriber is a list", one + "      - [a.b, g]\n",
       "line 6: eventbus.nats.subscribers[1]: expected a map with a topic and a group, got a list"},
      {"unknown field", one + "        max_delivery: 3\n", "line 6: " + s0 + ".max_delivery: unknown field (did you mean max_deliver?)"},
      {"key_fn is code only", one + "        key_fn: f\n", "line 6: " + s0 + ".key_fn: unknown field"},
      {"field given twice", one + "        group: h\n", "line 6: " + s0 + ".group: field given twice"},
      {"missing topic", head + "      - group: g\n        max_deliver: 2\n",
       "line 4: " + s0 + ".topic: missing (a subscriber needs a topic)"},
      {"missing group", head + "      - topic: a.b\n", "line 4: " + s0 + ".group: missing (a subscriber needs a group)"},
      {"missing group in the second", head + "      - {topic: a.b, group: g}\n      - topic: c.d\n",
       "line 5: eventbus.nats.subscribers[1].group: missing"},
      {"topic is a map", head + "      - topic: {a: b}\n        group: g\n", "line 4: " + s0 + ".topic: expected a string, got a map"},
      {"topic is null", head + "      - topic:\n        group: g\n", "line 4: " + s0 + ".topic: expected a string, got nothing"},
      {"topic is empty", head + "      - topic: \"\"\n        group: g\n", "line 4: " + s0 + ".topic: must not be empty"},
      {"topic with a wildcard", head + "      - topic: orders.*\n        group: g\n",
       "line 4: " + s0 + ".topic: invalid topic 'orders.*' (must be a NATS subject without wildcards)"},
      {"topic with an empty token", head + "      - topic: orders..created\n        group: g\n",
       "line 4: " + s0 + ".topic: invalid topic 'orders..created'"},
      {"topic with a space", head + "      - topic: \"a b\"\n        group: g\n", "line 4: " + s0 + ".topic: invalid topic 'a b'"},
      {"group with an underscore", head + "      - topic: a.b\n        group: billing_team\n",
       "line 5: " + s0 + ".group: invalid group 'billing_team' (must be 1-64 letters, digits or '-')"},
      {"group with a dot", head + "      - topic: a.b\n        group: a.b\n", "line 5: " + s0 + ".group: invalid group 'a.b'"},
      {"group too long", head + "      - topic: a.b\n        group: " + std::string(65, 'g') + "\n",
       "line 5: " + s0 + ".group: invalid group"},
      {"group empty", head + "      - topic: a.b\n        group: ''\n", "line 5: " + s0 + ".group: must not be empty"},
      {"group is a list", head + "      - topic: a.b\n        group: [g]\n", "line 5: " + s0 + ".group: expected a string, got a list"},
      {"max_deliver zero", one + "        max_deliver: 0\n",
       "line 6: " + s0 + ".max_deliver: 0 is out of range; must be at least 1"},
      {"max_deliver negative", one + "        max_deliver: -1\n", "line 6: " + s0 + ".max_deliver: -1 is out of range"},
      {"max_deliver a string", one + "        max_deliver: five\n",
       "line 6: " + s0 + ".max_deliver: expected an integer, got 'five'"},
      {"max_concurrency zero", one + "        max_concurrency: 0\n",
       "line 6: " + s0 + ".max_concurrency: 0 is out of range; must be between 1 and 100000"},
      {"max_concurrency a float", one + "        max_concurrency: 1.5\n",
       "line 6: " + s0 + ".max_concurrency: expected an integer, got '1.5'"},
      {"max_concurrency a map", one + "        max_concurrency: {n: 2}\n",
       "line 6: " + s0 + ".max_concurrency: expected an integer, got a map"},
      {"max_ack_pending zero", one + "        max_ack_pending: 0\n",
       "line 6: " + s0 + ".max_ack_pending: 0 is out of range; must be at least 1, or -1 for no limit"},
      {"max_ack_pending under -1", one + "        max_ack_pending: -2\n",
       "line 6: " + s0 + ".max_ack_pending: -2 is out of range; must be at least 1, or -1 for no limit"},
      {"max_ack_pending huge", one + "        max_ack_pending: 99999999999999999999\n",
       "line 6: " + s0 + ".max_ack_pending: number '99999999999999999999' is too large"},
      {"prefetch negative", one + "        prefetch: -1\n",
       "line 6: " + s0 + ".prefetch: -1 is out of range; must be between 0 and 1000000"},
      {"ack_wait negative", one + "        ack_wait: -1s\n", "line 6: " + s0 + ".ack_wait: invalid duration '-1s'"},
      {"ack_wait unparsable", one + "        ack_wait: soon\n", "line 6: " + s0 + ".ack_wait: invalid duration 'soon'"},
      {"ack_wait too short", one + "        ack_wait: 50ms\n", "line 6: " + s0 + ".ack_wait: must be at least 100ms"},
      {"handler_timeout negative", one + "        handler_timeout: -5s\n",
       "line 6: " + s0 + ".handler_timeout: invalid duration '-5s'"},
      {"handler_timeout a list", one + "        handler_timeout: [1s]\n",
       "line 6: " + s0 + ".handler_timeout: invalid duration a list"},
      {"backoff a map", one + "        backoff: {first: 1s}\n",
       "line 6: " + s0 + ".backoff: expected a list of durations, got a map"},
      {"backoff negative item", one + "        backoff:\n          - 1s\n          - -2s\n",
       "line 8: " + s0 + ".backoff[1]: invalid duration '-2s'"},
      {"backoff nested list", one + "        backoff: [1s, [2s]]\n", "line 6: " + s0 + ".backoff[1]: invalid duration a list"},
      {"backoff unparsable", one + "        backoff: 5 seconds\n", "line 6: " + s0 + ".backoff: invalid duration '5 seconds'"},
      {"unknown deliver policy", one + "        deliver_policy: first\n",
       "line 6: " + s0 + ".deliver_policy: unknown deliver policy 'first' (expected all, new, last or last_per_subject)"},
      {"deliver policy with a start", one + "        deliver_policy: by_start_sequence\n",
       "line 6: " + s0 + ".deliver_policy: deliver policy 'by_start_sequence' needs a start and is not offered"},
      {"deliver policy by time", one + "        deliver_policy: ByStartTime\n",
       "line 6: " + s0 + ".deliver_policy: deliver policy 'ByStartTime' needs a start"},
      {"deliver policy a list", one + "        deliver_policy: [all]\n",
       "line 6: " + s0 + ".deliver_policy: expected all, new, last or last_per_subject, got a list"},
      {"key header with a space", one + "        key_header: Aggregate Id\n",
       "line 6: " + s0 + ".key_header: invalid header name 'Aggregate Id'"},
      {"key header with a colon", one + "        key_header: \"a:b\"\n", "line 6: " + s0 + ".key_header: invalid header name 'a:b'"},
      {"dead letter topic with a wildcard", one + "        dead_letter_topic: dlq.>\n",
       "line 6: " + s0 + ".dead_letter_topic: invalid topic 'dlq.>'"},
      {"dead letter topic is the topic", one + "        dead_letter_topic: a.b\n",
       "line 6: " + s0 + ".dead_letter_topic: must not be the subscriber's own topic"},
      {"duplicate topic and group",
       head + "      - topic: a.b\n        group: g\n      - topic: a.b\n        group: h\n      -\n        group: g\n"
              "        topic: a.b\n",
       "line 9: eventbus.nats.subscribers[2].group: duplicate subscriber: group 'g' on topic 'a.b' (first given at line 5)"},
      {"duplicate in flow style", head + "      - {topic: a.b, group: g}\n      - {group: g, topic: a.b}\n",
       "line 5: eventbus.nats.subscribers[1].group: duplicate subscriber"},
      {"key is a list", one + "        [a]: 1\n", "line 6: " + s0 + ".?: a key must be a name"},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.name) {
      parsed p;
      BOOST_REQUIRE_NO_THROW(p = parse(r.yaml));
      BOOST_TEST(p.ec == error::invalid_config);
      BOOST_TEST(p.message.starts_with(r.expected), "got: " << p.message << "\nexpected: " << r.expected);
      BOOST_TEST_MESSAGE(p.message);
    }
  }
}

// Every value of a subscriber replaced by each kind of node, and every prefix: a code, never an exception.
BOOST_AUTO_TEST_CASE(subscribers_never_throw) {
  const std::vector<std::string> lines = {
      "eventbus:",           "  nats:",          "    subscribers:",        "      - topic: a.b",
      "        group: g",    "        ack_wait: 30s", "        max_deliver: 5", "        backoff: [1s, 5s]",
      "        max_ack_pending: 10", "        deliver_policy: all", "        max_concurrency: 2",
      "        key_header: K", "        handler_timeout: 2s", "        dead_letter_topic: a.dlq", "        prefetch: 4"};
  const std::vector<std::string> replacements = {"", "~", "{}", "[]", "{a: 1}", "[1, [2]]", "-1", "0",
                                                 "99999999999999999999", "\"\"", "!!binary aGVsbG8=", "&a [*a]"};
  std::string full;
  for (const auto& l : lines) full += l + "\n";
  BOOST_TEST_REQUIRE(!parse(full).ec);
  for (std::size_t n = 0; n <= full.size(); ++n) {
    parsed p;
    BOOST_REQUIRE_NO_THROW(p = parse(std::string_view(full).substr(0, n)));
    if (p.ec) BOOST_TEST(p.message.starts_with("line "), p.message);
  }
  for (std::size_t i = 2; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    for (const auto& r : replacements) {
      std::string doc;
      for (std::size_t j = 0; j < lines.size(); ++j) doc += (j == i ? lines[j].substr(0, colon + 1) + " " + r : lines[j]) + "\n";
      parsed p;
      BOOST_REQUIRE_NO_THROW(p = parse(doc));
      if (p.ec) {
        BOOST_TEST(p.ec == error::invalid_config);
        BOOST_TEST(p.message.starts_with("line "), p.message);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
