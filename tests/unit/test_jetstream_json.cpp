// JSON models against responses captured from a real nats-server 2.9.10 (tests/data/js), plus hostile input.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/jetstream.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <sstream>
#include <string>

namespace natsbus::protocol::detail {
// Test hooks defined in jetstream.cpp: the fast scanner and the full parse behind decode_pub_ack.
bool decode_pub_ack_fast(std::string_view text, pub_ack& out, api_error& err);
error_code decode_pub_ack_full(std::string_view text, pub_ack& out, api_error& err);
}  // namespace natsbus::protocol::detail

using namespace natsbus;
using namespace std::chrono_literals;
namespace np = natsbus::protocol;

namespace {

std::string load(const std::string& name) {
  std::ifstream in(std::string(NATSBUS_TEST_DATA_DIR) + "/js/" + name, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "missing test data " << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const error_code bad_json = make_error_code(error::invalid_json);

}  // namespace

BOOST_AUTO_TEST_SUITE(jetstream_json)

// ---- real server responses ----

BOOST_AUTO_TEST_CASE(info_plain) {
  server_info i;
  BOOST_TEST_REQUIRE(!np::decode(load("info.json"), i));
  BOOST_TEST(i.server_id.size() == 56u);
  BOOST_TEST(i.server_name == i.server_id);
  BOOST_TEST(i.version == "2.9.10");
  BOOST_TEST(i.go == "go1.19.8");
  BOOST_TEST(i.host == "127.0.0.1");
  BOOST_TEST(i.port > 0);
  BOOST_TEST(i.headers);
  BOOST_TEST(i.max_payload == 1048576);
  BOOST_TEST(i.proto == 1);
  BOOST_TEST(i.client_id == 4u);
  BOOST_TEST(i.client_ip == "127.0.0.1");
  BOOST_TEST(i.jetstream);
  BOOST_TEST(!i.auth_required);
  BOOST_TEST(!i.tls_required);
  BOOST_TEST(!i.lame_duck_mode);
  BOOST_TEST(i.connect_urls.empty());
  BOOST_TEST(i.cluster.empty());
}

BOOST_AUTO_TEST_CASE(info_cluster_and_ldm) {
  server_info i;
  BOOST_TEST_REQUIRE(!np::decode(load("info_cluster.json"), i));
  BOOST_TEST(i.server_name == "n1");
  BOOST_TEST(i.cluster == "cl");
  BOOST_TEST(i.domain == "hub");
  BOOST_TEST(i.connect_urls.size() == 3u);
  BOOST_TEST(i.connect_urls[1] == "127.0.0.1:42222");
  BOOST_TEST(!i.lame_duck_mode);

  server_info l;
  BOOST_TEST_REQUIRE(!np::decode(load("info_ldm.json"), l));
  BOOST_TEST(l.lame_duck_mode);
  BOOST_TEST(l.server_name == "n3");
  BOOST_TEST(l.connect_urls.size() == 2u);
}

BOOST_AUTO_TEST_CASE(info_auth_nonce) {
  server_info i;
  BOOST_TEST_REQUIRE(!np::decode(load("info_auth_nonce.json"), i));
  BOOST_TEST(i.auth_required);
  BOOST_TEST(i.nonce == "nTCJ8BPUcnVmgw8");
  BOOST_TEST(!i.jetstream);
}

BOOST_AUTO_TEST_CASE(info_all_fields) {
  server_info i;
  BOOST_TEST_REQUIRE(!np::decode(
      R"({"server_id":"S","server_name":"n","version":"2.9.10","go":"go","host":"0.0.0.0","port":4222,)"
      R"("headers":true,"max_payload":8388608,"proto":1,"client_id":18446744073709551615,"client_ip":"::1",)"
      R"("auth_required":true,"tls_required":true,"tls_available":true,"jetstream":true,"ldm":true,"nonce":"x",)"
      R"("cluster":"c","domain":"d","connect_urls":["a:1"],"ws_connect_urls":["b:2","c:3"],"xkey":"ignored"})",
      i));
  BOOST_TEST(i.port == 4222);
  BOOST_TEST(i.max_payload == 8388608);
  BOOST_TEST(i.client_id == 18446744073709551615ull);
  BOOST_TEST(i.tls_required);
  BOOST_TEST(i.tls_available);
  BOOST_TEST(i.lame_duck_mode);
  BOOST_TEST(i.ws_connect_urls.size() == 2u);
}

BOOST_AUTO_TEST_CASE(stream_create_response) {
  stream_info si;
  BOOST_TEST_REQUIRE(!np::decode(load("stream_create.json"), si));
  const auto& c = si.config;
  BOOST_TEST(c.name == "ORDERS");
  BOOST_TEST(c.description == "orders stream");
  BOOST_TEST_REQUIRE(c.subjects.size() == 1u);
  BOOST_TEST(c.subjects[0] == "orders.>");  // the server escapes '>' as \u003e
  BOOST_TEST((c.retention == retention_policy::limits));
  BOOST_TEST((c.storage == storage_type::file));
  BOOST_TEST((c.discard == discard_policy::old));
  BOOST_TEST(c.max_consumers == -1);
  BOOST_TEST(c.max_msgs == -1);
  BOOST_TEST(c.max_bytes == -1);
  BOOST_TEST(c.max_age.count() == std::chrono::nanoseconds(1h).count());
  BOOST_TEST(c.max_msg_size == -1);
  BOOST_TEST(c.num_replicas == 1);
  BOOST_TEST(c.duplicate_window.count() == std::chrono::nanoseconds(2min).count());
  BOOST_TEST(si.state.messages == 0u);
  BOOST_TEST(!si.created.empty());
  BOOST_TEST(!si.cluster.has_value());
}

BOOST_AUTO_TEST_CASE(stream_create_memory_workqueue) {
  stream_info si;
  BOOST_TEST_REQUIRE(!np::decode(load("stream_create_memory.json"), si));
  BOOST_TEST((si.config.retention == retention_policy::workqueue));
  BOOST_TEST((si.config.storage == storage_type::memory));
  BOOST_TEST((si.config.discard == discard_policy::new_));
  BOOST_TEST(si.config.max_msgs == 1000);
  BOOST_TEST(si.config.allow_rollup_hdrs);
  BOOST_TEST(si.config.deny_delete);
  BOOST_TEST(!si.config.deny_purge);
  BOOST_TEST(si.config.description.empty());
}

BOOST_AUTO_TEST_CASE(stream_info_with_state) {
  stream_info si;
  BOOST_TEST_REQUIRE(!np::decode(load("stream_info.json"), si));
  BOOST_TEST(si.state.messages == 2u);
  BOOST_TEST(si.state.bytes == 123u);
  BOOST_TEST(si.state.first_seq == 1u);
  BOOST_TEST(si.state.last_seq == 2u);
  BOOST_TEST(si.state.consumer_count == 0);
  BOOST_TEST(si.created.rfind("20", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(stream_info_clustered) {
  stream_info si;
  BOOST_TEST_REQUIRE(!np::decode(load("stream_info_r3.json"), si));
  BOOST_TEST(si.config.num_replicas == 3);
  BOOST_TEST_REQUIRE(si.cluster.has_value());
  BOOST_TEST(si.cluster->name == "cl");
  BOOST_TEST(si.cluster->leader == "n2");
  BOOST_TEST_REQUIRE(si.cluster->replicas.size() == 2u);
  BOOST_TEST(si.cluster->replicas[0].name == "n1");
  BOOST_TEST(si.cluster->replicas[0].current);
  BOOST_TEST(!si.cluster->replicas[0].offline);

  stream_info created;
  BOOST_TEST_REQUIRE(!np::decode(load("stream_create_r3.json"), created));
  BOOST_TEST_REQUIRE(created.cluster.has_value());
  BOOST_TEST(!created.cluster->replicas[1].current);  // a replica still catching up right after create
}

BOOST_AUTO_TEST_CASE(api_errors) {
  struct expect {
    const char* file;
    int code;
    int err_code;
    const char* description;
  };
  for (const expect& e : {expect{"error_10058.json", 400, 10058, "stream name already in use with a different configuration"},
                          expect{"error_10059.json", 404, 10059, "stream not found"},
                          expect{"error_10065.json", 400, 10065, "subjects overlap with an existing stream"},
                          expect{"error_10014.json", 404, 10014, "consumer not found"},
                          expect{"msg_get_error_10037.json", 404, 10037, "no message found"}}) {
    BOOST_TEST_CONTEXT(e.file) {
      const std::string text = load(e.file);
      api_error err;
      error_code ec;
      BOOST_TEST(np::extract_api_error(text, err, ec));
      BOOST_TEST(!ec);
      BOOST_TEST(err.code == e.code);
      BOOST_TEST(err.err_code == e.err_code);
      BOOST_TEST(err.description == e.description);

      // Response decoders report the JetStream error instead of an empty value.
      stream_info si;
      BOOST_TEST((np::decode(text, si) == make_jetstream_error(e.err_code)));
      consumer_info ci;
      BOOST_TEST((np::decode(text, ci) == make_jetstream_error(e.err_code)));
      stored_message m;
      BOOST_TEST((np::decode(text, m) == make_jetstream_error(e.err_code)));
      std::vector<std::string> names;
      page_info page;
      BOOST_TEST((np::decode_names(text, "streams", names, page) == make_jetstream_error(e.err_code)));

      // In one parse, with the error's text.
      api_error one;
      BOOST_TEST((np::decode(text, si, one) == make_jetstream_error(e.err_code)));
      BOOST_TEST(one.code == e.code);
      BOOST_TEST(one.err_code == e.err_code);
      BOOST_TEST(one.description == e.description);
    }
  }
  // A response without an error leaves err alone; an error object without err_code is a server_error.
  stream_info si;
  api_error err;
  err.description = "untouched";
  BOOST_TEST(!np::decode(load("stream_info.json"), si, err));
  BOOST_TEST(err.description == "untouched");
  account_info ai;
  BOOST_TEST(!np::decode(load("account_info.json"), ai, err));
  BOOST_TEST((np::decode(R"({"error":{"code":500,"description":"boom"}})", ai, err) == make_error_code(error::server_error)));
  BOOST_TEST(err.description == "boom");
  BOOST_TEST((np::decode(R"({"error":"boom"})", ai, err) == bad_json));
}

BOOST_AUTO_TEST_CASE(extract_api_error_absent_and_invalid) {
  api_error err;
  error_code ec = make_error_code(error::timeout);
  BOOST_TEST(!np::extract_api_error(load("stream_info.json"), err, ec));
  BOOST_TEST(!ec);
  BOOST_TEST(!np::extract_api_error(R"({"error":null})", err, ec));
  BOOST_TEST(!ec);
  BOOST_TEST(!np::extract_api_error(R"({"error":"boom"})", err, ec));
  BOOST_TEST((ec == bad_json));
  BOOST_TEST(!np::extract_api_error(R"({"error":{"code":"400"}})", err, ec));
  BOOST_TEST((ec == bad_json));
  BOOST_TEST(!np::extract_api_error(R"({"error":{"code":400)", err, ec));
  BOOST_TEST((ec == bad_json));
  BOOST_TEST(!np::extract_api_error("[]", err, ec));
  BOOST_TEST((ec == bad_json));
  BOOST_TEST(np::extract_api_error(R"({"error":{}})", err, ec));
  BOOST_TEST(!ec);
  BOOST_TEST(err.err_code == 0);
}

BOOST_AUTO_TEST_CASE(pub_acks_real) {
  pub_ack a;
  api_error err;
  BOOST_TEST_REQUIRE(!np::decode_pub_ack(load("pub_ack.json"), a, err));
  BOOST_TEST(a.stream == "ORDERS");
  BOOST_TEST(a.seq == 1u);
  BOOST_TEST(!a.duplicate);
  BOOST_TEST(a.domain.empty());
  BOOST_TEST(err.err_code == 0);

  BOOST_TEST_REQUIRE(!np::decode_pub_ack(load("pub_ack_duplicate.json"), a, err));
  BOOST_TEST(a.seq == 2u);
  BOOST_TEST(a.duplicate);

  BOOST_TEST_REQUIRE(!np::decode_pub_ack(load("pub_ack_domain.json"), a, err));
  BOOST_TEST(a.stream == "R3");
  BOOST_TEST(a.domain == "hub");
  BOOST_TEST(a.seq == 1u);
  BOOST_TEST(!a.duplicate);

  BOOST_TEST_REQUIRE(!np::decode_pub_ack(load("pub_ack_domain_duplicate.json"), a, err));
  BOOST_TEST(a.domain == "hub");
  BOOST_TEST(a.seq == 2u);
  BOOST_TEST(a.duplicate);

  // Every real success ack takes the fast path.
  for (const char* f : {"pub_ack.json", "pub_ack_msgid.json", "pub_ack_duplicate.json", "pub_ack_domain.json",
                        "pub_ack_domain_duplicate.json"}) {
    BOOST_TEST_CONTEXT(f) {
      pub_ack fast;
      BOOST_TEST(np::detail::decode_pub_ack_fast(load(f), fast, err));
    }
  }
}

BOOST_AUTO_TEST_CASE(pub_ack_error_real) {
  for (const char* f : {"pub_ack_error_10071.json", "pub_ack_domain_error_10071.json"}) {
    BOOST_TEST_CONTEXT(f) {
      pub_ack a;
      a.stream = "stale";
      api_error err;
      BOOST_TEST_REQUIRE(!np::decode_pub_ack(load(f), a, err));
      BOOST_TEST(err.code == 400);
      BOOST_TEST(err.err_code == 10071);
      BOOST_TEST(err.description == "wrong last sequence: 2");
      BOOST_TEST(a.seq == 0u);
    }
  }
  // An error object clears on the next good ack.
  pub_ack a;
  api_error err;
  err.err_code = 10071;
  err.description = "x";
  BOOST_TEST_REQUIRE(!np::decode_pub_ack(R"({"stream":"S","seq":5})", a, err));
  BOOST_TEST(err.err_code == 0);
  BOOST_TEST(err.description.empty());
}

BOOST_AUTO_TEST_CASE(names_and_lists) {
  std::vector<std::string> names{"stale"};
  page_info page;
  BOOST_TEST_REQUIRE(!np::decode_names(load("stream_names.json"), "streams", names, page));
  BOOST_TEST(names == (std::vector<std::string>{"EVENTS", "ORDERS"}), boost::test_tools::per_element());
  BOOST_TEST(page.total == 2);
  BOOST_TEST(page.limit == 1024);

  names = {"stale"};
  BOOST_TEST_REQUIRE(!np::decode_names(load("stream_names_filtered_empty.json"), "streams", names, page));
  BOOST_TEST(names.empty());  // "streams":null
  BOOST_TEST(page.total == 0);

  BOOST_TEST_REQUIRE(!np::decode_names(load("consumer_names.json"), "consumers", names, page));
  BOOST_TEST(names.size() == 2u);
  BOOST_TEST(names[1] == "proc");

  std::vector<stream_info> streams;
  BOOST_TEST_REQUIRE(!np::decode_stream_list(load("stream_list.json"), streams, page));
  BOOST_TEST_REQUIRE(streams.size() == 2u);
  BOOST_TEST(streams[0].config.name == "EVENTS");
  BOOST_TEST(streams[1].config.name == "ORDERS");
  BOOST_TEST(streams[1].state.messages == 2u);
  BOOST_TEST(page.limit == 256);

  std::vector<consumer_info> consumers;
  BOOST_TEST_REQUIRE(!np::decode_consumer_list(load("consumer_list.json"), consumers, page));
  BOOST_TEST_REQUIRE(consumers.size() == 2u);
  BOOST_TEST(consumers[1].name == "proc");
  BOOST_TEST(consumers[0].config.deliver_subject == "push.here");

  BOOST_TEST((np::decode_names(R"({"streams":[1]})", "streams", names, page) == bad_json));
  BOOST_TEST((np::decode_names(R"({"streams":"A"})", "streams", names, page) == bad_json));
  BOOST_TEST((np::decode_names(R"({"total":-1.5,"streams":[]})", "streams", names, page) == bad_json));
  BOOST_TEST((np::decode_stream_list(R"({"streams":[{"config":{"name":5}}]})", streams, page) == bad_json));
  BOOST_TEST((np::decode_stream_list(R"({"streams":[{}]})", streams, page) == bad_json));
  BOOST_TEST((np::decode_stream_list(R"({"streams":[null]})", streams, page) == bad_json));
  BOOST_TEST((np::decode_consumer_list(R"({"consumers":{}})", consumers, page) == bad_json));
  BOOST_TEST(!np::decode_stream_list(R"({"streams":null})", streams, page));
  BOOST_TEST(streams.empty());
}

BOOST_AUTO_TEST_CASE(consumer_create_pull) {
  consumer_info ci;
  BOOST_TEST_REQUIRE(!np::decode(load("consumer_create.json"), ci));
  BOOST_TEST(ci.stream_name == "ORDERS");
  BOOST_TEST(ci.name == "proc");
  BOOST_TEST(!ci.created.empty());
  const auto& c = ci.config;
  BOOST_TEST(c.durable_name == "proc");
  BOOST_TEST(c.description == "processor");
  BOOST_TEST((c.deliver == deliver_policy::all));
  BOOST_TEST((c.ack == ack_policy::explicit_));
  BOOST_TEST(c.ack_wait.count() == std::chrono::nanoseconds(30s).count());
  BOOST_TEST(c.max_deliver == 5);
  BOOST_TEST(c.filter_subject == "orders.new");
  BOOST_TEST((c.replay == replay_policy::instant));
  BOOST_TEST(c.max_waiting == 512);
  BOOST_TEST(c.max_ack_pending == 100);
  BOOST_TEST(ci.num_pending == 2u);
  BOOST_TEST(!ci.cluster.has_value());
}

BOOST_AUTO_TEST_CASE(consumer_create_push) {
  consumer_info ci;
  BOOST_TEST_REQUIRE(!np::decode(load("consumer_create_push.json"), ci));
  const auto& c = ci.config;
  BOOST_TEST(c.durable_name.empty());
  BOOST_TEST((c.deliver == deliver_policy::by_start_sequence));
  BOOST_TEST(c.opt_start_seq == 2u);
  BOOST_TEST((c.ack == ack_policy::none));
  BOOST_TEST((c.replay == replay_policy::original));
  BOOST_TEST(c.idle_heartbeat.count() == std::chrono::nanoseconds(5s).count());
  BOOST_TEST(c.flow_control);
  BOOST_TEST(c.headers_only);
  BOOST_TEST(c.mem_storage);
  BOOST_TEST(c.deliver_subject == "push.here");
  BOOST_TEST(c.inactive_threshold.count() == std::chrono::nanoseconds(60s).count());
  BOOST_TEST(ci.delivered.stream_seq == 1u);
  BOOST_TEST(ci.delivered.consumer_seq == 0u);
  BOOST_TEST(ci.num_pending == 1u);
}

BOOST_AUTO_TEST_CASE(consumer_info_and_cluster) {
  consumer_info ci;
  BOOST_TEST_REQUIRE(!np::decode(load("consumer_info.json"), ci));
  BOOST_TEST(ci.name == "proc");
  BOOST_TEST(ci.ack_floor.stream_seq == 0u);

  consumer_info r3;
  BOOST_TEST_REQUIRE(!np::decode(load("consumer_create_r3.json"), r3));
  BOOST_TEST_REQUIRE(r3.cluster.has_value());
  BOOST_TEST(r3.cluster->leader == "n2");
  BOOST_TEST(r3.cluster->replicas.size() == 2u);
  BOOST_TEST(r3.config.max_ack_pending == 1000);
}

BOOST_AUTO_TEST_CASE(account_info_real) {
  account_info a;
  BOOST_TEST_REQUIRE(!np::decode(load("account_info.json"), a));
  BOOST_TEST(a.memory == 0u);
  BOOST_TEST(a.storage == 123u);
  BOOST_TEST(a.streams == 2);
  BOOST_TEST(a.consumers == 2);
  BOOST_TEST(a.limits.max_memory == -1);
  BOOST_TEST(a.limits.max_consumers == -1);
  BOOST_TEST(a.domain.empty());

  account_info d;
  BOOST_TEST_REQUIRE(!np::decode(load("account_info_domain.json"), d));
  BOOST_TEST(d.domain == "hub");
  BOOST_TEST(d.streams == 1);
}

BOOST_AUTO_TEST_CASE(stored_message_real) {
  stored_message m;
  BOOST_TEST_REQUIRE(!np::decode(load("msg_get.json"), m));
  BOOST_TEST(m.subject == "orders.new");
  BOOST_TEST(m.seq == 2u);
  BOOST_TEST(m.data == "world");
  BOOST_TEST(m.headers == "NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n");
  BOOST_TEST(!m.time.empty());

  stored_message h;
  BOOST_TEST_REQUIRE(!np::decode(load("msg_get_headers.json"), h));
  BOOST_TEST(h.data.empty());  // an empty payload has no "data" field
  BOOST_TEST(h.headers == "NATS/1.0\r\nX-Trace: abc\r\nX-Multi: 1\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(stored_message_base64) {
  auto data_of = [](std::string_view b64, std::string& out) {
    stored_message m;
    const error_code ec = np::decode(R"({"message":{"subject":"a","seq":1,"data":")" + std::string(b64) + "\"}}", m);
    out = m.data;
    return ec;
  };
  std::string out;
  BOOST_TEST(!data_of("", out));
  BOOST_TEST(out.empty());
  BOOST_TEST(!data_of("Zg==", out));
  BOOST_TEST(out == "f");
  BOOST_TEST(!data_of("Zm8=", out));
  BOOST_TEST(out == "fo");
  BOOST_TEST(!data_of("Zm9v", out));
  BOOST_TEST(out == "foo");
  BOOST_TEST(!data_of("Zm9vYg", out));  // unpadded is accepted
  BOOST_TEST(out == "foob");
  BOOST_TEST(!data_of("AP8A/+8=", out));
  BOOST_TEST(out == std::string("\x00\xff\x00\xff\xef", 5));
  for (const char* bad : {"Z", "Zm9vY", "Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm=v", "=Zm9", "Zm9v\\n", "Zm 9v", "===="}) {
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST((data_of(bad, out) == bad_json)); }
  }
  stored_message m;
  BOOST_TEST((np::decode(R"({"message":{"data":5}})", m) == bad_json));
  BOOST_TEST((np::decode(R"({"message":{"hdrs":"%%%%"}})", m) == bad_json));
  BOOST_TEST((np::decode(R"({"message":"x"})", m) == bad_json));
  BOOST_TEST((np::decode(R"({"type":"io.nats.jetstream.api.v1.stream_msg_get_response"})", m) == bad_json));
}

// ---- wrong types, garbage, truncation ----

BOOST_AUTO_TEST_CASE(wrong_types) {
  stream_config c;
  for (const char* text : {R"({"name":5})", R"({"subjects":5})", R"({"subjects":["a",1]})", R"({"retention":"forever"})",
                           R"({"retention":1})", R"({"storage":"disk"})", R"({"discard":true})", R"({"max_msgs":"1"})",
                           R"({"max_msgs":1.5})", R"({"max_msgs":9223372036854775808})", R"({"max_msg_size":2147483648})",
                           R"({"max_age":1e9})", R"({"num_replicas":[]})", R"({"deny_delete":1})", "[]", "5", "null",
                           "\"x\"", ""}) {
    BOOST_TEST_CONTEXT(text) { BOOST_TEST((np::decode(text, c) == bad_json)); }
  }
  stream_info si;
  for (const char* text : {R"({"config":{},"state":{"messages":-1}})", R"({"config":{},"state":{"messages":"x"}})",
                           R"({"config":{},"state":[]})", R"({"config":{},"cluster":"c"})",
                           R"({"config":{},"cluster":{"replicas":[{"name":1}]}})", R"({"config":{},"cluster":{"replicas":[5]}})",
                           R"({"config":{},"created":7})", R"({"config":[]})", R"({"state":{}})", R"({"config":{},"error":"x"})"}) {
    BOOST_TEST_CONTEXT(text) { BOOST_TEST((np::decode(text, si) == bad_json)); }
  }
  consumer_info ci;
  for (const char* text : {R"({"config":{"deliver_policy":"sometimes"}})", R"({"config":{"ack_policy":"maybe"}})",
                           R"({"config":{"replay_policy":5}})", R"({"config":{"opt_start_seq":-1}})",
                           R"({"config":{"ack_wait":"30s"}})", R"({"config":{},"delivered":{"stream_seq":-2}})",
                           R"({"config":{},"num_pending":-1})", R"({"config":{},"num_waiting":true})"}) {
    BOOST_TEST_CONTEXT(text) { BOOST_TEST((np::decode(text, ci) == bad_json)); }
  }
  server_info i;
  for (const char* text : {R"({"port":"4222"})", R"({"port":4294967296})", R"({"client_id":-1})", R"({"headers":"true"})",
                           R"({"connect_urls":"a"})", R"({"ldm":0})"}) {
    BOOST_TEST_CONTEXT(text) { BOOST_TEST((np::decode(text, i) == bad_json)); }
  }
  account_info a;
  BOOST_TEST((np::decode(R"({"memory":-5})", a) == bad_json));
  BOOST_TEST((np::decode(R"({"limits":{"max_streams":"x"}})", a) == bad_json));
  BOOST_TEST((np::decode(R"({"limits":7})", a) == bad_json));
}

BOOST_AUTO_TEST_CASE(nulls_and_unknown_fields) {
  stream_config c;
  BOOST_TEST_REQUIRE(!np::decode(R"({"name":"A","subjects":null,"future":{"x":[1,2,{"y":null}]},"max_msgs":null})", c));
  BOOST_TEST(c.name == "A");
  BOOST_TEST(c.subjects.empty());
  BOOST_TEST(c.max_msgs == -1);
  // Both integer representations are accepted.
  BOOST_TEST_REQUIRE(!np::decode(R"({"max_bytes":9223372036854775807,"max_msgs":-9223372036854775808})", c));
  BOOST_TEST(c.max_bytes == 9223372036854775807ll);
}

BOOST_AUTO_TEST_CASE(decode_leaves_output_on_error) {
  stream_config c;
  c.name = "keep";
  BOOST_TEST((np::decode(R"({"name":"new","max_msgs":"x"})", c) == bad_json));
  BOOST_TEST(c.name == "keep");
}

BOOST_AUTO_TEST_CASE(truncated_real_responses) {
  for (const char* f : {"stream_info_r3.json", "consumer_list.json", "account_info.json", "msg_get.json", "info_cluster.json",
                        "stream_list.json"}) {
    const std::string text = load(f);
    for (std::size_t n = 0; n + 2 < text.size(); ++n) {  // info ends with "} ": keep at least the brace out
      const std::string_view cut(text.data(), n);
      stream_info si;
      consumer_info ci;
      account_info ai;
      stored_message m;
      server_info i;
      std::vector<stream_info> sl;
      std::vector<consumer_info> cl;
      page_info p;
      BOOST_TEST_REQUIRE((np::decode(cut, si) == bad_json));
      BOOST_TEST_REQUIRE((np::decode(cut, ci) == bad_json));
      BOOST_TEST_REQUIRE((np::decode(cut, ai) == bad_json));
      BOOST_TEST_REQUIRE((np::decode(cut, m) == bad_json));
      BOOST_TEST_REQUIRE((np::decode(cut, i) == bad_json));
      BOOST_TEST_REQUIRE((np::decode_stream_list(cut, sl, p) == bad_json));
      BOOST_TEST_REQUIRE((np::decode_consumer_list(cut, cl, p) == bad_json));
    }
  }
}

BOOST_AUTO_TEST_CASE(garbage) {
  const std::string inputs[] = {"\xff\xfe", "{\"name\":\"\xc3\x28\"}", std::string(1000, '['), std::string(100, '{'),
                                "{\"a\":" + std::string(40, '[') + std::string(40, ']') + "}", "{}}", "{} x", "nul",
                                std::string("{\"name\":\"a\0b\"}", 14), "{'name':'a'}", "{\"name\":\"A\",}"};
  for (const auto& text : inputs) {
    stream_config c;
    stream_info si;
    pub_ack a;
    api_error err;
    error_code ec;
    BOOST_TEST((np::decode(text, c) == bad_json));
    BOOST_TEST((np::decode(text, si) == bad_json));
    BOOST_TEST((np::decode_pub_ack(text, a, err) == bad_json));
    BOOST_TEST(!np::extract_api_error(text, err, ec));
    BOOST_TEST((ec == bad_json));
  }
}

// ---- pub ack fast path vs full parse ----

namespace {

void check_parity(std::string_view text, bool expect_fast) {
  BOOST_TEST_CONTEXT(text) {
    pub_ack fast, full, pub;
    api_error fast_err, full_err, pub_err;
    fast_err.err_code = full_err.err_code = 1;
    const bool took_fast = np::detail::decode_pub_ack_fast(text, fast, fast_err);
    const error_code full_ec = np::detail::decode_pub_ack_full(text, full, full_err);
    const error_code pub_ec = np::decode_pub_ack(text, pub, pub_err);
    BOOST_TEST(took_fast == expect_fast);
    BOOST_TEST(pub_ec == full_ec);
    if (took_fast) {
      BOOST_TEST_REQUIRE(!full_ec);
      BOOST_TEST(fast.stream == full.stream);
      BOOST_TEST(fast.seq == full.seq);
      BOOST_TEST(fast.duplicate == full.duplicate);
      BOOST_TEST(fast.domain == full.domain);
      BOOST_TEST(fast_err.err_code == full_err.err_code);
    }
    if (!full_ec) {
      BOOST_TEST(pub.stream == full.stream);
      BOOST_TEST(pub.seq == full.seq);
      BOOST_TEST(pub.duplicate == full.duplicate);
      BOOST_TEST(pub.domain == full.domain);
      BOOST_TEST(pub_err.err_code == full_err.err_code);
      BOOST_TEST(pub_err.description == full_err.description);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(pub_ack_fast_path_parity) {
  // Shapes the fast path takes.
  for (const char* text : {R"({"stream":"S","seq":1})", R"({"stream":"S", "seq":1})", R"({"stream":"S","seq":0})",
                           R"({"stream":"S","seq":18446744073709551615})", R"({"stream":"","seq":7})",
                           R"({"stream":"S","seq":1,"duplicate":true})", R"({"stream":"S", "seq":2,"duplicate": true})",
                           R"({"stream":"S","seq":1,"duplicate":false})", R"({"stream":"S","seq":1,"domain":"D"})",
                           R"({"stream":"S", "domain":"hub", "seq":1})", R"({"stream":"S", "domain":"hub", "seq":9,"duplicate": true})",
                           R"({"stream":"S","seq":3,"duplicate":true,"domain":"D"})", R"({"stream":"a b-c_d.~","seq":42})",
                           R"({"stream":"S","domain":"","seq":1})"}) {
    check_parity(text, true);
  }
  // Shapes that need the full parser: all must still decode the same.
  for (const char* text : {R"({ "stream":"S","seq":1})", R"({"seq":1,"stream":"S"})", R"({"stream":"S","seq":1} )",
                           R"({"stream":"S\u0041","seq":1})", R"({"stream":"S\"","seq":1})", "{\"stream\":\"\xc3\xa9\",\"seq\":1}",
                           R"({"stream":"S","seq":1,"other":2})", R"({"stream":"S","seq":1,"seq":2})",
                           R"({"stream":"S","seq":1,"duplicate":true,"duplicate":false})", R"({"stream":"S","seq":1.0})",
                           R"({"stream":"S","seq":1e2})", R"({"stream":"S","seq":01})", R"({"stream":"S","seq":-1})",
                           R"({"stream":"S","seq":18446744073709551616})", R"({"stream":"S","seq":"1"})",
                           R"({"stream":"S","seq":1,"duplicate":"true"})", R"({"stream":"S","seq":1,"domain":5})",
                           R"({"stream":"S","seq":1,"duplicate":null})", R"({"stream":"S","seq":1,"domain":null})",
                           R"({"stream":"S"})", R"({"stream":5,"seq":1})", R"({"stream":null,"seq":1})", R"({"stream":"S","seq":null})",
                           R"({"stream":"S","seq":1,})", R"({"stream":"S","seq":1)", R"({"stream":"S","seq")",
                           R"({"stream":"S",  "seq":1})", R"({"stream":"S","seq":  1})", "{\"stream\":\"S\",\t\"seq\":1}",
                           R"({"stream" :"S","seq":1})", R"({"stream":"S","seq":1}x)", R"({"stream":"S","seq":1}})",
                           R"({"error":{"code":503,"err_code":10039,"description":"jetstream not enabled"}})",
                           R"({"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"},"stream":"S","seq":0})",
                           R"({"stream":"S","seq":1,"error":{"code":500}})", R"({"error":null,"stream":"S","seq":1})",
                           R"({"error":"x","stream":"S","seq":1})", R"({"error":{"code":"x"}})", "{}", "[]", "", "{",
                           R"({"stream":"S","seq":1,"duplicate":tru})", R"({"stream":"S","seq":1,"duplicate":true )"}) {
    check_parity(text, false);
  }
}

BOOST_AUTO_TEST_CASE(pub_ack_fast_path_reuses_capacity) {
  pub_ack a;
  api_error err;
  a.stream.reserve(64);
  const auto* before = a.stream.data();
  BOOST_TEST_REQUIRE(!np::decode_pub_ack(R"({"stream":"ORDERS", "seq":10})", a, err));
  BOOST_TEST(a.stream.data() == before);
  BOOST_TEST(a.seq == 10u);
}

BOOST_AUTO_TEST_CASE(pub_ack_every_truncation) {
  for (const char* f : {"pub_ack_domain_duplicate.json", "pub_ack_error_10071.json"}) {
    const std::string text = load(f);
    for (std::size_t n = 0; n < text.size(); ++n) {
      pub_ack a;
      api_error err;
      BOOST_TEST_REQUIRE((np::decode_pub_ack(std::string_view(text.data(), n), a, err) == bad_json));
    }
  }
}

// ---- encoding ----

BOOST_AUTO_TEST_CASE(encode_stream_config_defaults) {
  stream_config c;
  c.name = "ORDERS";
  c.subjects = {"orders.>"};
  // The server's defaults are left out; name, subjects and storage always go.
  BOOST_TEST(np::encode(c) == R"({"name":"ORDERS","subjects":["orders.>"],"storage":"file"})");
  for (const char* key : {"retention", "discard", "num_replicas", "max_consumers", "max_msgs", "max_bytes", "max_age",
                          "max_msgs_per_subject", "max_msg_size", "allow_rollup_hdrs", "deny_delete", "deny_purge",
                          "duplicate_window", "description"}) {
    BOOST_TEST_CONTEXT(key) { BOOST_TEST(np::encode(c).find(std::string("\"") + key + "\"") == std::string::npos); }
  }
  // Zero limits are not defaults: they are sent for the server to judge.
  c.max_msgs = 0;
  c.num_replicas = 0;
  const boost::json::value v = boost::json::parse(np::encode(c));
  BOOST_TEST(v.at("max_msgs").as_int64() == 0);
  BOOST_TEST(v.at("num_replicas").as_int64() == 0);
}

BOOST_AUTO_TEST_CASE(encode_decode_round_trip) {
  stream_config c;
  c.name = "EV\"ENTS";  // escaping survives
  c.description = "caf\xc3\xa9 \\ \n";
  c.subjects = {"a.*", "b.>", "c"};
  c.retention = retention_policy::interest;
  c.storage = storage_type::memory;
  c.max_consumers = 10;
  c.max_msgs = 1000000;
  c.max_bytes = 1ll << 40;
  c.max_age = 24h;
  c.max_msgs_per_subject = 5;
  c.max_msg_size = 65536;
  c.discard = discard_policy::new_;
  c.num_replicas = 3;
  c.duplicate_window = 30s;
  c.allow_rollup_hdrs = true;
  c.deny_delete = true;
  c.deny_purge = true;
  stream_config back;
  BOOST_TEST_REQUIRE(!np::decode(np::encode(c), back));
  BOOST_TEST((back == c));

  for (auto r : {retention_policy::limits, retention_policy::interest, retention_policy::workqueue}) {
    c.retention = r;
    BOOST_TEST_REQUIRE(!np::decode(np::encode(c), back));
    BOOST_TEST((back == c));
  }
  stream_config plain;
  plain.name = "P";
  BOOST_TEST_REQUIRE(!np::decode(np::encode(plain), back));
  BOOST_TEST((back == plain));
}

BOOST_AUTO_TEST_CASE(encode_escapes_every_control_character) {
  stream_config c;
  c.name = "S";
  std::string d = "q\" b\\ /";
  for (int ch = 1; ch < 0x20; ++ch) d.push_back(static_cast<char>(ch));
  d += "\x7f caf\xc3\xa9";
  c.description = d;
  const std::string body = np::encode(c);
  for (char ch : body) BOOST_TEST_REQUIRE(static_cast<unsigned char>(ch) >= 0x20);  // nothing raw below 0x20
  BOOST_TEST(body.find(R"("description":"q\" b\\ /\u0001\u0002)") != std::string::npos, body);
  BOOST_TEST(body.find(R"(\b\t\n\u000b\f\r\u000e)") != std::string::npos, body);
  const boost::json::value v = boost::json::parse(body);
  BOOST_TEST(v.at("description").as_string() == d);
  const std::string expected_head = R"({"name":"S","description":)";
  BOOST_TEST(body.rfind(expected_head, 0) == 0u);
  BOOST_TEST(body.back() == '}');
}

BOOST_AUTO_TEST_CASE(encode_consumer_filters_metadata_and_action) {
  consumer_config c;
  c.name = "multi";
  c.filter_subjects = {"orders.new", "orders.paid"};
  c.metadata = {{"owner", "billing"}, {"tier", "gold \"1\""}};
  const std::string body = np::encode_consumer_create("ORDERS", c, "create");
  const boost::json::value v = boost::json::parse(body);
  BOOST_TEST(v.at("action").as_string() == "create");
  const auto& cfg = v.at("config").as_object();
  BOOST_TEST(cfg.at("filter_subjects").as_array().size() == 2u);
  BOOST_TEST(cfg.at("filter_subjects").as_array()[1].as_string() == "orders.paid");
  BOOST_TEST(cfg.at("metadata").as_object().at("tier").as_string() == "gold \"1\"");
  BOOST_TEST(!cfg.contains("filter_subject"));
  // Decoded back: the same configuration.
  consumer_config back;
  BOOST_REQUIRE(!np::decode(boost::json::serialize(cfg), back));
  BOOST_TEST(back.filter_subjects == c.filter_subjects);
  BOOST_TEST((back.metadata == c.metadata));
  // No action: the field is absent (what a 2.9 server gets).
  const boost::json::value plain = boost::json::parse(np::encode_consumer_create("ORDERS", consumer_config{}));
  BOOST_TEST(!plain.as_object().contains("action"));
}

BOOST_AUTO_TEST_CASE(encode_consumer) {
  consumer_config c;
  c.durable_name = "proc";
  c.filter_subject = "orders.new";
  c.ack_wait = 30s;
  const std::string body = np::encode_consumer_create("ORDERS", c);
  const boost::json::value v = boost::json::parse(body);
  BOOST_TEST(v.at("stream_name").as_string() == "ORDERS");
  const auto& cfg = v.at("config").as_object();
  BOOST_TEST(cfg.at("durable_name").as_string() == "proc");
  BOOST_TEST(cfg.at("ack_policy").as_string() == "explicit");
  BOOST_TEST(cfg.at("deliver_policy").as_string() == "all");
  BOOST_TEST(cfg.at("replay_policy").as_string() == "instant");
  BOOST_TEST(cfg.at("ack_wait").as_int64() == 30000000000ll);
  for (const char* absent : {"name", "description", "deliver_subject", "deliver_group", "idle_heartbeat", "inactive_threshold",
                             "max_deliver", "max_ack_pending", "max_waiting", "opt_start_seq", "flow_control", "headers_only",
                             "mem_storage", "num_replicas"}) {
    BOOST_TEST_CONTEXT(absent) { BOOST_TEST(!cfg.contains(absent)); }
  }

  consumer_config p;
  p.name = "push";
  p.deliver = deliver_policy::by_start_sequence;
  p.opt_start_seq = 7;
  p.ack = ack_policy::none;
  p.replay = replay_policy::original;
  p.deliver_subject = "push.here";
  p.deliver_group = "g";
  p.flow_control = true;
  p.idle_heartbeat = 5s;
  p.headers_only = true;
  p.inactive_threshold = 1min;
  p.max_deliver = 3;
  p.max_ack_pending = 10;
  p.num_replicas = 1;
  p.mem_storage = true;
  p.description = "d";
  const boost::json::value pv = boost::json::parse(np::encode_consumer_create("S", p));
  // The config object decodes back to the same consumer_config.
  consumer_config back;
  BOOST_TEST_REQUIRE(!np::decode(boost::json::serialize(pv.at("config")), back));
  BOOST_TEST((back == p));
  BOOST_TEST(pv.at("config").at("deliver_policy").as_string() == "by_start_sequence");
  BOOST_TEST(pv.at("config").at("ack_policy").as_string() == "none");

  for (auto d : {deliver_policy::all, deliver_policy::last, deliver_policy::new_, deliver_policy::by_start_time,
                 deliver_policy::last_per_subject}) {
    p.deliver = d;
    for (auto a : {ack_policy::none, ack_policy::all, ack_policy::explicit_}) {
      p.ack = a;
      const boost::json::value x = boost::json::parse(np::encode_consumer_create("S", p));
      BOOST_TEST_REQUIRE(!np::decode(boost::json::serialize(x.at("config")), back));
      BOOST_TEST((back == p));
    }
  }
}

BOOST_AUTO_TEST_CASE(to_string_names) {
  BOOST_TEST(np::to_string(retention_policy::workqueue) == "workqueue");
  BOOST_TEST(np::to_string(retention_policy::interest) == "interest");
  BOOST_TEST(np::to_string(storage_type::memory) == "memory");
  BOOST_TEST(np::to_string(discard_policy::new_) == "new");
  BOOST_TEST(np::to_string(discard_policy::old) == "old");
}

BOOST_AUTO_TEST_SUITE_END()
