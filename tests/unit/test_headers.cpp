#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/headers.hpp>

#include <cstdint>
#include <string>
#include <vector>

using natsbus::error;
using natsbus::error_code;
using natsbus::headers;
using natsbus::protocol::decode_headers;
using natsbus::protocol::encode_headers;
using natsbus::protocol::peek_status;

namespace {

error_code code(error e) { return make_error_code(e); }

headers decode_ok(std::string_view block) {
  headers h;
  auto ec = decode_headers(block, h);
  BOOST_TEST(!ec, block << ": " << ec.message());
  return h;
}

std::vector<std::string> strings(const std::vector<std::string_view>& v) { return {v.begin(), v.end()}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(headers_tests)

BOOST_AUTO_TEST_CASE(map_operations) {
  headers h;
  BOOST_TEST(h.empty());
  h.add("Nats-Msg-Id", "1").add("X-Tag", "a").add("x-tag", "b");
  BOOST_TEST(!h.empty());
  BOOST_TEST(h.size() == 3u);
  BOOST_TEST(*h.get("NATS-MSG-ID") == "1");
  BOOST_TEST(h.contains("nats-msg-id"));
  BOOST_TEST(!h.contains("Nats-Msg"));
  BOOST_TEST(!h.get("missing"));
  BOOST_TEST(strings(h.get_all("X-TAG")) == (std::vector<std::string>{"a", "b"}), boost::test_tools::per_element());
  BOOST_TEST(h.entries()[2].first == "x-tag");  // spelling kept

  h.set("X-Tag", "c");
  BOOST_TEST(h.size() == 2u);
  BOOST_TEST(strings(h.get_all("x-tag")) == (std::vector<std::string>{"c"}), boost::test_tools::per_element());
  BOOST_TEST(h.entries()[1].first == "X-Tag");
  h.set("New", "n");
  BOOST_TEST(*h.get("new") == "n");
  BOOST_TEST(h.erase("NEW") == 1u);
  BOOST_TEST(h.erase("nothing") == 0u);
  BOOST_TEST(h.size() == 2u);

  headers s;
  s.set_status(503);
  BOOST_TEST(!s.empty());
  BOOST_TEST(s.status() == 503);
  BOOST_TEST(s.description().empty());
}

BOOST_AUTO_TEST_CASE(decode_plain) {
  auto h = decode_ok("NATS/1.0\r\n\r\n");
  BOOST_TEST(h.empty());
  BOOST_TEST(h.status() == 0);

  h = decode_ok("NATS/1.0\r\nNats-Msg-Id: abc\r\nNats-Expected-Stream: S\r\n\r\n");
  BOOST_TEST(h.size() == 2u);
  BOOST_TEST(*h.get("nats-msg-id") == "abc");
  BOOST_TEST(*h.get("Nats-Expected-Stream") == "S");
  BOOST_TEST(h.status() == 0);
}

BOOST_AUTO_TEST_CASE(decode_status) {
  auto h = decode_ok("NATS/1.0 503\r\n\r\n");
  BOOST_TEST(h.status() == 503);
  BOOST_TEST(h.description() == "");
  BOOST_TEST(h.size() == 0u);

  h = decode_ok("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n\r\n");
  BOOST_TEST(h.status() == 100);
  BOOST_TEST(h.description() == "Idle Heartbeat");
  BOOST_TEST(*h.get("Nats-Last-Stream") == "0");

  h = decode_ok("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1\r\nNats-Pending-Bytes: 0\r\n\r\n");
  BOOST_TEST(h.status() == 408);
  BOOST_TEST(h.description() == "Request Timeout");
  BOOST_TEST(h.size() == 2u);

  h = decode_ok("NATS/1.0 409 Consumer Deleted\r\n\r\n");
  BOOST_TEST(h.status() == 409);
  BOOST_TEST(h.description() == "Consumer Deleted");

  h = decode_ok("NATS/1.0 100 FlowControl Request\r\n\r\n");
  BOOST_TEST(h.status() == 100);

  h = decode_ok("NATS/1.0  503 \r\n\r\n");
  BOOST_TEST(h.status() == 503);
  BOOST_TEST(h.description() == "");
}

BOOST_AUTO_TEST_CASE(decode_values_and_keys) {
  auto h = decode_ok("NATS/1.0\r\nA: 1\r\na: 2\r\nB:3\r\nC:\t  spaced value \r\nD:\r\nE: x:y: z\r\n\r\n");
  BOOST_TEST(strings(h.get_all("a")) == (std::vector<std::string>{"1", "2"}), boost::test_tools::per_element());
  BOOST_TEST(h.entries()[0].first == "A");
  BOOST_TEST(h.entries()[1].first == "a");
  BOOST_TEST(*h.get("b") == "3");
  BOOST_TEST(*h.get("c") == "spaced value");
  BOOST_TEST(*h.get("d") == "");
  BOOST_TEST(*h.get("e") == "x:y: z");
  // UTF-8 in values passes through.
  h = decode_ok("NATS/1.0\r\nName: caf\xc3\xa9\r\n\r\n");
  BOOST_TEST(*h.get("name") == "caf\xc3\xa9");
}

BOOST_AUTO_TEST_CASE(decode_malformed) {
  const std::vector<std::string> bad = {
      "",
      "NATS/1.0",
      "NATS/1.0\r\n",                 // no terminating empty line
      "NATS/1.0\r\n\r",               // half a terminator
      "NATS/1.0\n\n",                 // LF only
      "NATS/1.0 5\r\n\r\n",           // short status
      "NATS/1.0 50\r\n\r\n",
      "NATS/1.0 abc\r\n\r\n",         // junk status
      "NATS/1.0 5x3\r\n\r\n",
      "NATS/1.0 5033\r\n\r\n",        // four digits
      "NATS/1.0 099\r\n\r\n",
      "NATS/1.0 000 Zero\r\n\r\n",
      "NATS/1.0 503x\r\n\r\n",
      "NATS/1.0x\r\n\r\n",
      "NATS/2.0\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",
      "nats/1.0\r\n\r\n",
      " NATS/1.0\r\n\r\n",
      "NATS/1.0\r\nNoColon\r\n\r\n",  // missing colon
      "NATS/1.0\r\n: value\r\n\r\n",  // empty key
      "NATS/1.0\r\nKey Space: v\r\n\r\n",
      "NATS/1.0\r\nKey : v\r\n\r\n",
      "NATS/1.0\r\n folded: v\r\n\r\n",
      "NATS/1.0\r\nA: 1\r\n  continued\r\n\r\n",
      "NATS/1.0\r\nK: v\r\n",          // missing terminator
      "NATS/1.0\r\nK: v",
      "NATS/1.0\r\nK: v\n\r\n",        // bare LF
      "NATS/1.0\r\nK: a\rb\r\n\r\n",   // bare CR
      "NATS/1.0\r\nK: a\nb\r\n\r\n",
      "NATS/1.0\r\nK: v\r\n\r\nextra",  // bytes after the block
      "NATS/1.0\r\n\r\n\r\n",
      std::string("NATS/1.0\r\nK\0: v\r\n\r\n", 18),
  };
  for (const auto& block : bad) {
    headers h;
    BOOST_TEST(decode_headers(block, h) == code(error::bad_header), "block: " << block);
  }
}

BOOST_AUTO_TEST_CASE(every_truncation_is_rejected) {
  const std::string block = "NATS/1.0 408 Request Timeout\r\nA: 1\r\nB: 2\r\n\r\n";
  for (std::size_t n = 0; n < block.size(); ++n) {
    headers h;
    BOOST_TEST(decode_headers(std::string_view(block).substr(0, n), h) == code(error::bad_header), "n=" << n);
  }
}

// An empty view with no data at all (found by the fuzzer's prefix pass: memchr was given a null pointer).
BOOST_AUTO_TEST_CASE(empty_view_without_data) {
  headers h;
  BOOST_TEST(decode_headers(std::string_view{}, h) == code(error::bad_header));
  BOOST_TEST(peek_status(std::string_view{}) == 0);
}

BOOST_AUTO_TEST_CASE(hostile_bytes_never_crash) {
  // Deterministic pseudo-random mutations of a valid block and pure noise; the answer does not matter here,
  // only that decode and peek finish without touching memory they should not (run under ASan in CI).
  const std::string base = "NATS/1.0 503 No Responders\r\nA: 1\r\nB: 2\r\n\r\n";
  constexpr char chars[] = "NATS/1.0 \r\n:abc5039\t\x7f\x00\xff";
  const std::string alphabet(chars, sizeof chars - 1);
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rnd() % 4);
    for (int e = 0; e < edits; ++e) {
      const auto pos = rnd() % (s.size() + 1);
      switch (rnd() % 3) {
        case 0: if (pos < s.size()) s[pos] = alphabet[rnd() % alphabet.size()]; break;
        case 1: s.insert(pos, 1, alphabet[rnd() % alphabet.size()]); break;
        default: if (pos < s.size()) s.erase(pos, 1); break;
      }
    }
    if (i % 4 == 0) {
      s.resize(rnd() % 64);
      for (auto& c : s) c = static_cast<char>(rnd());
    }
    headers h;
    auto ec = decode_headers(s, h);
    (void)peek_status(s);
    if (!ec) {
      // Whatever decoded must encode again.
      std::string out;
      BOOST_TEST(!encode_headers(h, out));
    }
  }
}

BOOST_AUTO_TEST_CASE(encode_exact_bytes) {
  std::string out;
  BOOST_TEST(!encode_headers(headers{}, out));
  BOOST_TEST(out == "NATS/1.0\r\n\r\n");

  headers h;
  h.add("Nats-Msg-Id", "m1").add("X", "a").add("x", "b");
  out = "prefix";
  BOOST_TEST(!encode_headers(h, out));
  BOOST_TEST(out == "prefixNATS/1.0\r\nNats-Msg-Id: m1\r\nX: a\r\nx: b\r\n\r\n");

  headers s;
  s.set_status(503);
  out.clear();
  BOOST_TEST(!encode_headers(s, out));
  BOOST_TEST(out == "NATS/1.0 503\r\n\r\n");
  s.set_status(100, "Idle Heartbeat");
  s.add("Nats-Last-Stream", "0");
  out.clear();
  BOOST_TEST(!encode_headers(s, out));
  BOOST_TEST(out == "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Stream: 0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(encode_rejects_and_appends_nothing) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "v"}, {"a b", "v"}, {"a:b", "v"}, {"a\r", "v"}, {"a\n", "v"}, {"a\t", "v"},
      {"k", "v\r\n"}, {"k", "a\rb"}, {"k", "a\nb"},
  };
  for (const auto& [k, v] : bad) {
    headers h;
    h.add("Good", "1").add(k, v);
    std::string out = "keep";
    BOOST_TEST(encode_headers(h, out) == code(error::invalid_argument));
    BOOST_TEST(out == "keep");
  }
  headers st;
  st.set_status(42);
  std::string out = "keep";
  BOOST_TEST(encode_headers(st, out) == code(error::invalid_argument));
  st.set_status(503, "bad\r\ndesc");
  BOOST_TEST(encode_headers(st, out) == code(error::invalid_argument));
  BOOST_TEST(out == "keep");
}

BOOST_AUTO_TEST_CASE(round_trip) {
  headers h;
  h.add("Nats-Msg-Id", "id-1").add("Tag", "a").add("tag", "b").add("TAG", "c").add("Empty", "");
  h.add("Utf8", "\xc3\xa9t\xc3\xa9").add("Colon", "a:b");
  std::string block;
  BOOST_REQUIRE(!encode_headers(h, block));
  headers back;
  BOOST_REQUIRE(!decode_headers(block, back));
  BOOST_TEST((back == h));
  BOOST_TEST(strings(back.get_all("tag")) == (std::vector<std::string>{"a", "b", "c"}),
             boost::test_tools::per_element());

  headers s;
  s.set_status(408, "Request Timeout");
  s.add("Nats-Pending-Messages", "3").add("Nats-Pending-Bytes", "10");
  block.clear();
  BOOST_REQUIRE(!encode_headers(s, block));
  BOOST_REQUIRE(!decode_headers(block, back));
  BOOST_TEST((back == s));
  BOOST_TEST(peek_status(block) == 408);
}

BOOST_AUTO_TEST_CASE(peek) {
  BOOST_TEST(peek_status("NATS/1.0 503\r\n\r\n") == 503);
  BOOST_TEST(peek_status("NATS/1.0 100 Idle Heartbeat\r\n\r\n") == 100);
  BOOST_TEST(peek_status("NATS/1.0 408 Request Timeout\r\nA: 1\r\n\r\n") == 408);
  BOOST_TEST(peek_status("NATS/1.0 409\tConflict\r\n\r\n") == 409);
  BOOST_TEST(peek_status("NATS/1.0\r\nA: 1\r\n\r\n") == 0);
  BOOST_TEST(peek_status("NATS/1.0 5\r\n\r\n") == 0);
  BOOST_TEST(peek_status("NATS/1.0 abc\r\n\r\n") == 0);
  BOOST_TEST(peek_status("NATS/1.0 5033\r\n\r\n") == 0);
  BOOST_TEST(peek_status("NATS/1.0 503") == 0);
  BOOST_TEST(peek_status("NATS/1.0x503\r\n") == 0);
  BOOST_TEST(peek_status("HTTP/1.0 503\r\n") == 0);
  BOOST_TEST(peek_status("") == 0);
  BOOST_TEST(peek_status("NATS") == 0);
}

BOOST_AUTO_TEST_CASE(jetstream_publish_header_block) {
  using natsbus::protocol::encode_publish_headers;
  using natsbus::protocol::publish_expectations;
  std::string out = "left over";
  BOOST_TEST(!encode_publish_headers(nullptr, publish_expectations{}, out));
  BOOST_TEST(out.empty());  // nothing to send: a PUB
  publish_expectations x;
  x.msg_id = "id-1";
  x.expected_last_seq = 42;
  BOOST_TEST(!encode_publish_headers(nullptr, x, out));
  BOOST_TEST(out == "NATS/1.0\r\nNats-Msg-Id: id-1\r\nNats-Expected-Last-Sequence: 42\r\n\r\n");
  headers h;
  h.add("Trace", "t");
  x = {};
  x.expected_stream = "S";
  x.expected_last_msg_id = "m";
  x.expected_last_subject_seq = 0;
  BOOST_TEST(!encode_publish_headers(&h, x, out));
  BOOST_TEST(out ==
             "NATS/1.0\r\nTrace: t\r\nNats-Expected-Stream: S\r\nNats-Expected-Last-Msg-Id: m\r\n"
             "Nats-Expected-Last-Subject-Sequence: 0\r\n\r\n");
  BOOST_TEST(!encode_publish_headers(&h, publish_expectations{}, out));
  BOOST_TEST(out == "NATS/1.0\r\nTrace: t\r\n\r\n");
  x = {};
  x.msg_id = "a\r\nInjected: 1";
  BOOST_TEST(encode_publish_headers(&h, x, out) == error::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
