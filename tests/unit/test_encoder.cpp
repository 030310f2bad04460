#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/encoder.hpp>

#include <string>
#include <vector>

using natsbus::error;
using natsbus::error_code;
using natsbus::headers;
using namespace natsbus::protocol;

namespace {

error_code code(error e) { return make_error_code(e); }

}  // namespace

BOOST_AUTO_TEST_SUITE(encoder_tests)

BOOST_AUTO_TEST_CASE(connect_default) {
  std::string out;
  connect_fields f;
  f.version = "0.1.0";
  encode_connect(out, f);
  BOOST_TEST(out ==
             "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"lang\":\"cpp\","
             "\"version\":\"0.1.0\",\"protocol\":1,\"echo\":true,\"headers\":true,\"no_responders\":true}\r\n");
}

BOOST_AUTO_TEST_CASE(connect_with_credentials) {
  std::string out = "x";
  connect_fields f;
  f.verbose = true;
  f.pedantic = true;
  f.tls_required = true;
  f.name = "svc";
  f.version = "1";
  f.echo = false;
  f.user = "u";
  f.pass = "p";
  f.auth_token = "t";
  f.jwt = "j";
  f.nkey = "n";
  f.sig = "s";
  encode_connect(out, f);
  BOOST_TEST(out ==
             "xCONNECT {\"verbose\":true,\"pedantic\":true,\"tls_required\":true,\"name\":\"svc\",\"lang\":\"cpp\","
             "\"version\":\"1\",\"protocol\":1,\"echo\":false,\"headers\":true,\"no_responders\":true,"
             "\"user\":\"u\",\"pass\":\"p\",\"auth_token\":\"t\",\"jwt\":\"j\",\"nkey\":\"n\",\"sig\":\"s\"}\r\n");

  // Only the fields that are set; an empty but set field is still sent.
  connect_fields g;
  g.auth_token = "";
  out.clear();
  encode_connect(out, g);
  BOOST_TEST(out.find("\"auth_token\":\"\"") != std::string::npos);
  BOOST_TEST(out.find("user") == std::string::npos);
  BOOST_TEST(out.find("pass") == std::string::npos);
  BOOST_TEST(out.find("jwt") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(connect_escapes_strings) {
  std::string out;
  connect_fields f;
  f.version = "v";
  f.name = std::string("q\"b\\s/n\nr\rt\t\x01\x1f\xc3\xa9", 16);
  f.pass = "p\"}";
  encode_connect(out, f);
  BOOST_TEST(out.find(R"("name":"q\"b\\s/n\nr\rt\t\u0001\u001f)" "\xc3\xa9\"") != std::string::npos, out);
  BOOST_TEST(out.find(R"("pass":"p\"}")") != std::string::npos, out);
  BOOST_TEST(out.substr(out.size() - 3) == "}\r\n");
}

BOOST_AUTO_TEST_CASE(pub) {
  std::string out;
  BOOST_TEST(!encode_pub(out, "foo.bar", "", "hello"));
  BOOST_TEST(out == "PUB foo.bar 5\r\nhello\r\n");
  BOOST_TEST(!encode_pub(out, "a", "_INBOX.x.1", ""));
  BOOST_TEST(out == "PUB foo.bar 5\r\nhello\r\nPUB a _INBOX.x.1 0\r\n\r\n");
  out.clear();
  const std::string big(70000, 'z');
  BOOST_TEST(!encode_pub(out, "big", "", big));
  BOOST_TEST(out == "PUB big 70000\r\n" + big + "\r\n");
  out.clear();
  const std::string bin("\0\r\n\xff", 4);
  BOOST_TEST(!encode_pub(out, "b", "", bin));
  BOOST_TEST(out == "PUB b 4\r\n" + bin + "\r\n");
}

BOOST_AUTO_TEST_CASE(hpub) {
  const std::string block = "NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n";  // 28 bytes
  std::string out;
  BOOST_TEST(!encode_hpub(out, "s.1", "r", block, "data"));
  BOOST_TEST(out == "HPUB s.1 r 28 32\r\n" + block + "data\r\n");

  headers h;
  h.add("Nats-Msg-Id", "1");
  std::string out2;
  BOOST_TEST(!encode_hpub(out2, "s.1", "r", h, "data"));
  BOOST_TEST(out2 == out);

  out.clear();
  BOOST_TEST(!encode_hpub(out, "s", "", headers{}, ""));
  BOOST_TEST(out == "HPUB s 12 12\r\nNATS/1.0\r\n\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(sub_unsub_ping_pong) {
  std::string out;
  BOOST_TEST(!encode_sub(out, "foo.*.>", "", 1));
  BOOST_TEST(!encode_sub(out, "foo", "workers", 18446744073709551615ULL));
  encode_unsub(out, 1);
  encode_unsub(out, 2, 10);
  encode_ping(out);
  encode_pong(out);
  BOOST_TEST(out ==
             "SUB foo.*.> 1\r\nSUB foo workers 18446744073709551615\r\nUNSUB 1\r\nUNSUB 2 10\r\nPING\r\nPONG\r\n");
}

BOOST_AUTO_TEST_CASE(invalid_subjects_append_nothing) {
  const std::vector<std::string> bad_publish = {"", ".", "a.", ".a", "a..b", "a b", "a\tb", "a\r\nb", "a.*", "*",
                                                ">", "a.>", std::string("a\0b", 3), "a\x7f"};
  const headers h;
  for (const auto& s : bad_publish) {
    std::string out = "keep";
    BOOST_TEST(encode_pub(out, s, "", "x") == code(error::invalid_subject), s);
    BOOST_TEST(encode_hpub(out, s, "", "NATS/1.0\r\n\r\n", "x") == code(error::invalid_subject), s);
    BOOST_TEST(encode_hpub(out, s, "", h, "x") == code(error::invalid_subject), s);
    // Reply subjects follow the publish rules when present.
    BOOST_TEST(encode_pub(out, "ok", s.empty() ? " " : s, "x") == code(error::invalid_subject), s);
    BOOST_TEST(encode_hpub(out, "ok", s.empty() ? " " : s, h, "x") == code(error::invalid_subject), s);
    BOOST_TEST(out == "keep");
  }
  for (std::string_view s : {"", "a..b", "a.>.b", ">.a", "a b", "a.\n"}) {
    std::string out = "keep";
    BOOST_TEST(encode_sub(out, s, "", 1) == code(error::invalid_subject), s);
    BOOST_TEST(out == "keep");
  }
  for (std::string_view q : {"a b", "q\t", "\r\n", "q\x01"}) {
    std::string out = "keep";
    BOOST_TEST(encode_sub(out, "ok", q, 1) == code(error::invalid_queue_group), q);
    BOOST_TEST(out == "keep");
  }
}

BOOST_AUTO_TEST_CASE(invalid_headers_append_nothing) {
  std::string out = "keep";
  headers h;
  h.add("bad key", "v");
  BOOST_TEST(encode_hpub(out, "s", "", h, "x") == code(error::invalid_argument));
  BOOST_TEST(encode_hpub(out, "s", "", "", "x") == code(error::invalid_argument));
  BOOST_TEST(encode_hpub(out, "s", "", "NATS/1.0\r\n", "x") == code(error::invalid_argument));
  BOOST_TEST(encode_hpub(out, "s", "", "HTTP/1.0\r\n\r\n", "x") == code(error::invalid_argument));
  BOOST_TEST(out == "keep");
}

BOOST_AUTO_TEST_SUITE_END()
