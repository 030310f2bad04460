#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/parser.hpp>

#include <ostream>
#include <string>
#include <vector>

using natsbus::error;
using natsbus::error_code;
using natsbus::protocol::event;
using natsbus::protocol::op;
using natsbus::protocol::parser;
using natsbus::protocol::parser_limits;

namespace {

error_code code(error e) { return make_error_code(e); }

// An event with its own bytes, so it can outlive the buffer it was parsed from.
struct owned_event {
  op kind{};
  std::string subject;
  std::string reply;
  std::uint64_t sid = 0;
  std::string headers;
  std::string payload;
  bool operator==(const owned_event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const owned_event& e) {
  return os << "{kind=" << static_cast<int>(e.kind) << " subject=" << e.subject << " reply=" << e.reply
            << " sid=" << e.sid << " headers=" << e.headers.size() << "B payload=" << e.payload.size() << "B}";
}

owned_event own(const event& e) {
  return {e.kind, std::string(e.subject), std::string(e.reply), e.sid, std::string(e.headers), std::string(e.payload)};
}

owned_event ev(op kind, std::string payload = {}) { return {kind, {}, {}, 0, {}, std::move(payload)}; }
owned_event msg(std::string subject, std::uint64_t sid, std::string reply, std::string payload) {
  return {op::msg, std::move(subject), std::move(reply), sid, {}, std::move(payload)};
}
owned_event hmsg(std::string subject, std::uint64_t sid, std::string reply, std::string headers, std::string payload) {
  return {op::hmsg, std::move(subject), std::move(reply), sid, std::move(headers), std::move(payload)};
}

struct outcome {
  std::vector<owned_event> events;
  error_code ec;
};

// Takes every event the buffered bytes hold, as a reader would, and erases what they used. With `relocate`,
// each call sees a fresh copy of the bytes at a new address, as when the caller's buffer grows or compacts.
void drain(parser& p, std::string& buf, outcome& out, bool relocate) {
  while (!out.ec) {
    error_code ec;
    std::string moved;
    std::string_view view = buf;
    if (relocate) {
      moved = buf;
      view = moved;
    }
    auto e = p.next(view, ec);
    if (ec) {
      BOOST_TEST(!e);
      BOOST_TEST(p.consumed() == 0u);
      BOOST_TEST(p.failed());
      out.ec = ec;
      return;
    }
    if (!e) {
      BOOST_TEST(p.consumed() == 0u);
      return;
    }
    BOOST_TEST(p.consumed() > 0u);
    BOOST_TEST(p.consumed() <= view.size());
    out.events.push_back(own(*e));
    buf.erase(0, p.consumed());
  }
}

outcome parse_whole(std::string_view input, parser_limits limits = {}) {
  parser p(limits);
  std::string buf(input);
  outcome out;
  drain(p, buf, out, false);
  return out;
}

outcome parse_split(std::string_view input, std::size_t at, parser_limits limits = {}) {
  parser p(limits);
  std::string buf(input.substr(0, at));
  outcome out;
  drain(p, buf, out, false);
  buf.append(input.substr(at));
  drain(p, buf, out, true);
  return out;
}

outcome parse_bytewise(std::string_view input, parser_limits limits = {}) {
  parser p(limits);
  std::string buf;
  outcome out;
  for (char c : input) {
    buf.push_back(c);
    drain(p, buf, out, true);
    if (out.ec) break;
  }
  return out;
}

// A valid byte stream gives the same events however it is split, and leaves nothing behind.
void check_stream(std::string_view input, const std::vector<owned_event>& expected, parser_limits limits = {},
                  bool every_split = true) {
  {
    auto r = parse_whole(input, limits);
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.events == expected, boost::test_tools::per_element());
  }
  if (every_split) {
    for (std::size_t at = 0; at <= input.size(); ++at) {
      auto r = parse_split(input, at, limits);
      BOOST_TEST_CONTEXT("split at " << at) {
        BOOST_TEST(!r.ec, r.ec.message());
        BOOST_TEST(r.events == expected, boost::test_tools::per_element());
      }
    }
  }
  {
    auto r = parse_bytewise(input, limits);
    BOOST_TEST(!r.ec, r.ec.message());
    BOOST_TEST(r.events == expected, boost::test_tools::per_element());
  }
}

// One frame: every proper prefix gives nothing (a fresh parser each time, then the same parser given the whole
// frame), and the whole frame gives exactly one event using every byte.
void check_frame(std::string_view frame, const owned_event& expected, parser_limits limits = {}) {
  for (std::size_t at = 0; at < frame.size(); ++at) {
    BOOST_TEST_CONTEXT("prefix " << at) {
      parser p(limits);
      error_code ec;
      auto e = p.next(frame.substr(0, at), ec);
      BOOST_TEST(!ec, ec.message());
      BOOST_TEST(!e);
      BOOST_TEST(p.consumed() == 0u);
      std::string whole(frame);  // elsewhere in memory
      e = p.next(whole, ec);
      BOOST_TEST(!ec, ec.message());
      BOOST_REQUIRE(e);
      BOOST_TEST(own(*e) == expected);
      BOOST_TEST(p.consumed() == frame.size());
    }
  }
  check_stream(frame, {expected}, limits);
}

// A bad stream fails with `expected` however it arrives, and the parser then stays failed.
void check_error(std::string_view input, error expected, parser_limits limits = {}) {
  const error_code want = expected;
  for (auto r : {parse_whole(input, limits), parse_bytewise(input, limits)}) {
    BOOST_TEST(r.ec == want, r.ec.message() << " != " << want.message());
  }
  parser p(limits);
  error_code ec;
  while (true) {
    auto e = p.next(input, ec);
    if (!e) break;
    input.remove_prefix(p.consumed());
  }
  BOOST_TEST(ec == want);
  for (std::string_view more : {std::string_view("PING\r\n"), input, std::string_view{}}) {
    error_code again;
    auto e = p.next(more, again);
    BOOST_TEST(!e);
    BOOST_TEST(again == want);
    BOOST_TEST(p.consumed() == 0u);
    BOOST_TEST(p.failed());
  }
}

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(parser_tests)

BOOST_AUTO_TEST_CASE(control_frames) {
  check_frame("PING\r\n", ev(op::ping));
  check_frame("PONG\r\n", ev(op::pong));
  check_frame("+OK\r\n", ev(op::ok));
  check_frame("ping\r\n", ev(op::ping));
  check_frame("pOnG\r\n", ev(op::pong));
  check_frame("+ok\r\n", ev(op::ok));
  check_frame("PING \t\r\n", ev(op::ping));
}

BOOST_AUTO_TEST_CASE(info) {
  const std::string json = R"({"server_id":"NABC","version":"2.10.7","max_payload":1048576,"headers":true})";
  check_frame("INFO " + json + "\r\n", ev(op::info, json));
  check_frame("info\t  " + json + " \r\n", ev(op::info, json));
}

BOOST_AUTO_TEST_CASE(info_longer_than_control_line) {
  // Many connect_urls make INFO outgrow max_control_line; it is bounded by max_payload instead.
  std::string json = R"({"connect_urls":[)";
  while (json.size() < 20000) json += R"("10.0.0.1:4222",)";
  json += R"("10.0.0.2:4222"]})";
  const std::string frame = "INFO " + json + "\r\n";
  auto r = parse_whole(frame);
  BOOST_TEST(!r.ec);
  BOOST_REQUIRE(r.events.size() == 1u);
  BOOST_TEST(r.events[0].payload == json);
  r = parse_bytewise(frame);
  BOOST_TEST(!r.ec);
  BOOST_TEST(r.events.size() == 1u);

  parser_limits small;
  small.max_payload = 10000;
  check_error(frame, error::control_line_too_long, small);
}

BOOST_AUTO_TEST_CASE(err) {
  check_frame("-ERR 'Unknown Protocol Operation'\r\n", ev(op::err, "Unknown Protocol Operation"));
  check_frame("-ERR 'Permissions Violation for Publish to \"foo\"'\r\n",
              ev(op::err, "Permissions Violation for Publish to \"foo\""));
  check_frame("-err 'Authorization Violation'\r\n", ev(op::err, "Authorization Violation"));
  check_frame("-ERR unquoted text\r\n", ev(op::err, "unquoted text"));
  check_frame("-ERR ''\r\n", ev(op::err, ""));
  check_frame("-ERR\r\n", ev(op::err, ""));
}

BOOST_AUTO_TEST_CASE(msg_frames) {
  check_frame("MSG foo.bar 9 5\r\nhello\r\n", msg("foo.bar", 9, "", "hello"));
  check_frame("MSG foo.bar 9 _INBOX.abc.1 5\r\nhello\r\n", msg("foo.bar", 9, "_INBOX.abc.1", "hello"));
  check_frame("msg foo 1 0\r\n\r\n", msg("foo", 1, "", ""));
  check_frame("MSG foo 18446744073709551615 0\r\n\r\n", msg("foo", 18446744073709551615ULL, "", ""));
  // A payload may hold CRLF: only the size counts.
  check_frame("MSG a 1 6\r\n\r\nab\r\n\r\n", msg("a", 1, "", "\r\nab\r\n"));
}

BOOST_AUTO_TEST_CASE(msg_argument_whitespace) {
  // JetStream acks arrive with a double space where the reply would be.
  const std::string ack = R"({"stream":"S","seq":1})";
  check_frame("MSG _INBOX.x.1 1  " + std::to_string(ack.size()) + "\r\n" + ack + "\r\n",
              msg("_INBOX.x.1", 1, "", ack));
  check_frame("MSG\tfoo\t\t2\t r \t3 \t\r\nabc\r\n", msg("foo", 2, "r", "abc"));
  check_frame("MSG  foo 2 3\r\nabc\r\n", msg("foo", 2, "", "abc"));
}

BOOST_AUTO_TEST_CASE(binary_payload) {
  const std::string body = all_bytes();
  check_frame("MSG bin 3 256\r\n" + body + "\r\n", msg("bin", 3, "", body));
}

BOOST_AUTO_TEST_CASE(hmsg_frames) {
  const std::string hdr = "NATS/1.0\r\nA: 1\r\n\r\n";  // 18 bytes
  check_frame("HMSG foo 4 " + std::to_string(hdr.size()) + " " + std::to_string(hdr.size() + 5) + "\r\n" + hdr +
                  "hello\r\n",
              hmsg("foo", 4, "", hdr, "hello"));
  check_frame("HMSG foo 4 rep.ly " + std::to_string(hdr.size()) + " " + std::to_string(hdr.size() + 5) + "\r\n" +
                  hdr + "hello\r\n",
              hmsg("foo", 4, "rep.ly", hdr, "hello"));
  const std::string status = "NATS/1.0 503\r\n\r\n";
  check_frame("hmsg _INBOX.a 7 16 16\r\n" + status + "\r\n", hmsg("_INBOX.a", 7, "", status, ""));
  check_frame("HMSG a 1 0 0\r\n\r\n", hmsg("a", 1, "", "", ""));
}

BOOST_AUTO_TEST_CASE(mixed_stream) {
  const std::string hdr = "NATS/1.0 100 Idle Heartbeat\r\n\r\n";
  const std::string stream = "INFO {\"a\":1}\r\n+OK\r\nPING\r\nMSG s 1 r 3\r\nabc\r\nHMSG h 2 " +
                             std::to_string(hdr.size()) + " " + std::to_string(hdr.size() + 2) + "\r\n" + hdr +
                             "xy\r\nPONG\r\nMSG e 3 0\r\n\r\n-ERR 'Stale Connection'\r\n";
  check_stream(stream, {ev(op::info, "{\"a\":1}"), ev(op::ok), ev(op::ping), msg("s", 1, "r", "abc"),
                        hmsg("h", 2, "", hdr, "xy"), ev(op::pong), msg("e", 3, "", ""),
                        ev(op::err, "Stale Connection")});
}

BOOST_AUTO_TEST_CASE(consumed_counts_one_frame) {
  parser p;
  const std::string_view in = "MSG a 1 2\r\nhi\r\nPING\r\n";
  error_code ec;
  auto e = p.next(in, ec);
  BOOST_REQUIRE(e);
  BOOST_TEST(p.consumed() == 15u);
  e = p.next(in.substr(15), ec);
  BOOST_REQUIRE(e);
  BOOST_TEST((e->kind == op::ping));
  BOOST_TEST(p.consumed() == 6u);
  e = p.next(in.substr(21), ec);
  BOOST_TEST(!e);
  BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(large_payload_in_many_reads) {
  // A 1 MiB payload arriving in 4000-byte reads; the buffer is relocated on each call.
  const std::string body(1024 * 1024, 'x');
  const std::string frame = "MSG big 5 reply " + std::to_string(body.size()) + "\r\n" + body + "\r\n";
  parser p;
  std::string buf;
  std::optional<owned_event> got;
  for (std::size_t at = 0; at < frame.size() && !got; at += 4000) {
    buf.append(frame, at, 4000);
    std::string moved = buf;
    error_code ec;
    auto e = p.next(moved, ec);
    BOOST_REQUIRE(!ec);
    if (e) {
      got = own(*e);
      BOOST_TEST(p.consumed() == frame.size());
    }
  }
  BOOST_REQUIRE(got);
  BOOST_TEST((*got == msg("big", 5, "reply", body)));
}

BOOST_AUTO_TEST_CASE(payload_at_the_limit) {
  parser_limits lim;
  lim.max_payload = 1000;
  lim.payload_slack = 24;
  const std::string body(1024, 'b');
  check_stream("MSG a 1 1024\r\n" + body + "\r\n", {msg("a", 1, "", body)}, lim, false);
  check_error("MSG a 1 1025\r\n", error::payload_too_large, lim);
  check_error("HMSG a 1 12 1025\r\n", error::payload_too_large, lim);
  check_error("HMSG a 1 1025 1025\r\n", error::payload_too_large, lim);

  parser p(lim);
  p.set_max_payload(10);
  BOOST_TEST(p.limits().max_payload == 10u);
  BOOST_TEST(p.max_frame_size() == 4096u + 10u + 24u + 2u);
  error_code ec;
  auto e = p.next("MSG a 1 35\r\n", ec);
  BOOST_TEST(!e);
  BOOST_TEST(ec == code(error::payload_too_large));
}

BOOST_AUTO_TEST_CASE(control_line_limit) {
  // Exactly max_control_line bytes before CRLF is fine.
  const std::string prefix = "MSG ";
  const std::string tail = " 1 0";
  const std::string subject(4096 - prefix.size() - tail.size(), 's');
  const std::string line = prefix + subject + tail;
  BOOST_REQUIRE(line.size() == 4096u);
  check_stream(line + "\r\n\r\n", {msg(subject, 1, "", "")}, {}, false);

  // One more byte is an error, as soon as it is there.
  const std::string too_long = prefix + subject + "s" + tail + "\r\n\r\n";
  check_error(too_long, error::control_line_too_long);
  parser p;
  error_code ec;
  BOOST_TEST(!p.next(std::string_view(too_long).substr(0, 4096), ec));
  BOOST_TEST(!ec);
  BOOST_TEST(!p.next(std::string_view(too_long).substr(0, 4097), ec));
  BOOST_TEST(ec == code(error::control_line_too_long));
}

BOOST_AUTO_TEST_CASE(megabyte_line_without_crlf) {
  const std::string junk = "MSG " + std::string(1024 * 1024, 'a');
  check_error(junk, error::control_line_too_long);
  for (std::size_t n : {4096u, 4097u}) {
    parser p;
    error_code ec;
    auto e = p.next(std::string_view(junk).substr(0, n), ec);
    BOOST_TEST(!e);
    BOOST_TEST((ec == code(error::control_line_too_long)) == (n > 4096));
  }
  // A CR as byte 4097 may still be the end of a 4096-byte line.
  parser p;
  error_code ec;
  BOOST_TEST(!p.next(junk.substr(0, 4096) + "\r", ec));
  BOOST_TEST(!ec);
  BOOST_TEST(!p.next(junk.substr(0, 4096) + "\rx", ec));
  BOOST_TEST(ec == code(error::control_line_too_long));
}

BOOST_AUTO_TEST_CASE(bad_sizes) {
  check_error("MSG a 1 99999999999999999999\r\n", error::invalid_size);                  // 20 digits, > 2^64
  check_error("MSG a 1 999999999999999999999999999999\r\nabc\r\n", error::invalid_size);
  check_error("MSG a 1 4294967299\r\nabc\r\n", error::payload_too_large);              // must not wrap to 3
  check_error("MSG a 1 18446744073709551619\r\nabc\r\n", error::invalid_size);          // 2^64 + 3
  check_error("MSG a 1 18446744073709551615\r\n", error::payload_too_large);
  check_error("MSG a 1 -1\r\n", error::invalid_size);
  check_error("MSG a 1 -0\r\n\r\n", error::invalid_size);
  check_error("MSG a 1 +3\r\nabc\r\n", error::invalid_size);
  check_error("MSG a 1 3x\r\nabc\r\n", error::invalid_size);
  check_error("MSG a 1 0x10\r\n", error::invalid_size);
  check_error("HMSG a 1 -5 10\r\n", error::invalid_size);
  check_error("HMSG a 1 5 -10\r\n", error::invalid_size);
  check_error("HMSG a 1 10 5\r\n0123456789\r\n", error::invalid_size);  // header larger than total
  check_error("HMSG a 1 99999999999999999999 5\r\n", error::invalid_size);
}

BOOST_AUTO_TEST_CASE(missing_crlf_after_payload) {
  check_error("MSG a 1 3\r\nabcX\r\n", error::missing_crlf);
  check_error("MSG a 1 3\r\nabc\rX", error::missing_crlf);
  check_error("MSG a 1 3\r\nabc\n", error::missing_crlf);
  check_error("MSG a 1 2\r\nabc\r\n", error::missing_crlf);  // declared size too small
  check_error("HMSG a 1 12 12\r\nNATS/1.0\r\n\r\nX\r\n", error::missing_crlf);
  // Detected on the first wrong byte, without waiting for a second one.
  parser p;
  error_code ec;
  BOOST_TEST(!p.next("MSG a 1 3\r\nabcd", ec));
  BOOST_TEST(ec == code(error::missing_crlf));
}

BOOST_AUTO_TEST_CASE(unknown_operations) {
  check_error("XYZ\r\n", error::unknown_operation);
  check_error("HELLO\r\n", error::unknown_operation);
  check_error("MSGX a 1 0\r\n\r\n", error::unknown_operation);
  check_error("PINGPONG\r\n", error::unknown_operation);
  check_error("PUB a 1\r\nx\r\n", error::unknown_operation);
  check_error("+OKAY\r\n", error::unknown_operation);
  check_error("INFO{}\r\n", error::unknown_operation);
  check_error("\r\n", error::unknown_operation);
  check_error(" PING\r\n", error::unknown_operation);
  check_error(std::string("\0PING\r\n", 7), error::unknown_operation);
  // Decided on the first byte that cannot belong to a name, not at the end of the line.
  for (std::string_view in : {"X", "PX", "PIX", "ME", "HMX", "+O!", "-E!", "INFOX", "PINGx"}) {
    parser p;
    error_code ec;
    BOOST_TEST(!p.next(in, ec));
    BOOST_TEST(ec == code(error::unknown_operation), in);
  }
  for (std::string_view in : {"M", "P", "PI", "PO", "PONG", "HMS", "+", "-ER", "INFO"}) {
    parser p;
    error_code ec;
    BOOST_TEST(!p.next(in, ec));
    BOOST_TEST(!ec, in);
  }
}

BOOST_AUTO_TEST_CASE(malformed_lines) {
  check_error("MSG\r\n", error::unknown_operation);  // MSG needs arguments
  check_error("MSG a\r\n", error::protocol_violation);
  check_error("MSG a 1\r\n", error::protocol_violation);
  check_error("MSG a 1 r s 3\r\nabc\r\n", error::protocol_violation);
  check_error("HMSG a 1 3\r\nabc\r\n", error::protocol_violation);
  check_error("HMSG a 1 r x 3 3\r\nabc\r\n", error::protocol_violation);
  check_error("MSG a x 3\r\nabc\r\n", error::protocol_violation);   // sid not a number
  check_error("MSG a -1 3\r\nabc\r\n", error::protocol_violation);
  check_error("MSG a 99999999999999999999 3\r\nabc\r\n", error::protocol_violation);
  check_error("PING\n", error::protocol_violation);  // LF without CR
  check_error("MSG a 1 3\nabc\r\n", error::protocol_violation);
  check_error("PING junk\r\n", error::protocol_violation);
}

BOOST_AUTO_TEST_CASE(events_before_an_error_are_delivered) {
  parser p;
  std::string_view in = "PING\r\nMSG a 1 1\r\nx\r\nBOGUS\r\n";
  error_code ec;
  auto e = p.next(in, ec);
  BOOST_REQUIRE(e);
  BOOST_TEST((e->kind == op::ping));
  in.remove_prefix(p.consumed());
  e = p.next(in, ec);
  BOOST_REQUIRE(e);
  BOOST_TEST((e->kind == op::msg));
  in.remove_prefix(p.consumed());
  e = p.next(in, ec);
  BOOST_TEST(!e);
  BOOST_TEST(ec == code(error::unknown_operation));
}

BOOST_AUTO_TEST_CASE(stays_failed_until_reset) {
  parser p;
  error_code ec;
  BOOST_TEST(!p.next("MSG a 1 -1\r\n", ec));
  BOOST_TEST(ec == code(error::invalid_size));
  BOOST_TEST(p.failed());
  for (int i = 0; i < 3; ++i) {
    error_code again;
    BOOST_TEST(!p.next("PING\r\n", again));
    BOOST_TEST(again == code(error::invalid_size));
    BOOST_TEST(p.consumed() == 0u);
  }
  p.reset();
  BOOST_TEST(!p.failed());
  error_code fresh;
  auto e = p.next("PING\r\n", fresh);
  BOOST_TEST(!fresh);
  BOOST_REQUIRE(e);
  BOOST_TEST((e->kind == op::ping));
}

BOOST_AUTO_TEST_CASE(reset_drops_a_pending_frame) {
  parser p;
  error_code ec;
  BOOST_TEST(!p.next("MSG a 1 100\r\nabc", ec));
  BOOST_TEST(!ec);
  p.reset();
  auto e = p.next("PONG\r\n", ec);
  BOOST_TEST(!ec);
  BOOST_REQUIRE(e);
  BOOST_TEST((e->kind == op::pong));
}

BOOST_AUTO_TEST_CASE(hostile_streams_split_the_same_way) {
  // Mutated streams: whatever the outcome (events, then perhaps an error), it does not depend on the split.
  const std::string hdr = "NATS/1.0 503\r\n\r\n";
  const std::string base = "INFO {\"a\":1}\r\nPING\r\nMSG s 1 r 3\r\nabc\r\nHMSG h 2 16 18\r\n" + hdr +
                           "xy\r\n-ERR 'x'\r\n+OK\r\n";
  constexpr char chars[] = "MSGHPINGOK+-ER 0123\t\r\n\x00\xff";
  const std::string alphabet(chars, sizeof chars - 1);
  std::uint64_t x = 0x2545f4914f6cdd1dULL;
  auto rnd = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  parser_limits lim;
  lim.max_control_line = 32;
  lim.max_payload = 16;
  lim.payload_slack = 8;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rnd() % 3);
    for (int e = 0; e < edits; ++e) {
      const auto pos = rnd() % (s.size() + 1);
      switch (rnd() % 3) {
        case 0: if (pos < s.size()) s[pos] = alphabet[rnd() % alphabet.size()]; break;
        case 1: s.insert(pos, 1, alphabet[rnd() % alphabet.size()]); break;
        default: if (pos < s.size()) s.erase(pos, 1); break;
      }
    }
    const auto whole = parse_whole(s, lim);
    const auto bytewise = parse_bytewise(s, lim);
    const auto split = parse_split(s, rnd() % (s.size() + 1), lim);
    BOOST_TEST_CONTEXT("input #" << i) {
      BOOST_TEST(bytewise.ec == whole.ec);
      BOOST_TEST(split.ec == whole.ec);
      BOOST_TEST(bytewise.events == whole.events, boost::test_tools::per_element());
      BOOST_TEST(split.events == whole.events, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
