// JetStream consumer protocol pieces (protocol/consumer.hpp): ack-subject metadata in both forms, every status a
// pull subscription can receive (as nats-server 2.9.10 to 2.10.x writes them), the request and ack bodies byte
// for byte, the consumer create subjects and the server-version checks.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/consumer.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace natsbus;
using namespace natsbus::protocol;
using namespace std::chrono_literals;

namespace {

message_metadata parsed(std::string_view subject) {
  message_metadata m;
  const error_code ec = parse_ack_subject(subject, m);
  BOOST_TEST(!ec, subject << ": " << ec.message());
  return m;
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

pull_status_info classified(std::string_view block) {
  pull_status_info s;
  const error_code ec = classify_pull_status(block, s);
  BOOST_TEST(!ec, block << ": " << ec.message());
  return s;
}

std::string encoded(const message_metadata& m) {
  std::string s;
  encode_ack_subject(s, m);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ack_subject_tests)

BOOST_AUTO_TEST_CASE(nine_token_form) {
  // As nats-server's ackReply writes it: delivered, stream seq, consumer seq, timestamp, pending.
  const std::string subject = "$JS.ACK.ORDERS.worker.1.42.17.1700000000123456789.5";
  const auto m = parsed(subject);
  BOOST_TEST(m.domain.empty());
  BOOST_TEST(m.account_hash.empty());
  BOOST_TEST(m.stream == "ORDERS");
  BOOST_TEST(m.consumer == "worker");
  BOOST_TEST(m.num_delivered == 1u);
  BOOST_TEST(m.stream_sequence == 42u);
  BOOST_TEST(m.consumer_sequence == 17u);
  BOOST_TEST(m.timestamp_ns == 1700000000123456789);
  BOOST_TEST(m.num_pending == 5u);
  BOOST_TEST(m.tail.empty());
  BOOST_TEST(inside(m.stream, subject));
  BOOST_TEST(inside(m.consumer, subject));
  BOOST_TEST(encoded(m) == subject);
}

BOOST_AUTO_TEST_CASE(long_form_with_domain_hash_and_tail) {
  const std::string subject = "$JS.ACK.hub.ACCX7QZ2.ORDERS.worker.3.1001.998.1712345678901234567.0.Kq9rT2";
  const auto m = parsed(subject);
  BOOST_TEST(m.domain == "hub");
  BOOST_TEST(m.account_hash == "ACCX7QZ2");
  BOOST_TEST(m.stream == "ORDERS");
  BOOST_TEST(m.consumer == "worker");
  BOOST_TEST(m.num_delivered == 3u);
  BOOST_TEST(m.stream_sequence == 1001u);
  BOOST_TEST(m.consumer_sequence == 998u);
  BOOST_TEST(m.timestamp_ns == 1712345678901234567);
  BOOST_TEST(m.num_pending == 0u);
  BOOST_TEST(m.tail == "Kq9rT2");
  for (auto v : {m.domain, m.account_hash, m.stream, m.consumer, m.tail}) BOOST_TEST(inside(v, subject));
  BOOST_TEST(encoded(m) == subject);
}

BOOST_AUTO_TEST_CASE(long_form_without_domain_or_tail) {
  // "_" stands for no domain; eleven tokens is enough (nats.go does not require the twelfth).
  const std::string subject = "$JS.ACK._.ACCX7QZ2.KV_config.c1.1.7.7.1712345678901234567.12";
  const auto m = parsed(subject);
  BOOST_TEST(m.domain.empty());
  BOOST_TEST(m.account_hash == "ACCX7QZ2");
  BOOST_TEST(m.stream == "KV_config");
  BOOST_TEST(m.consumer == "c1");
  BOOST_TEST(m.num_pending == 12u);
  BOOST_TEST(m.tail.empty());
  BOOST_TEST(encoded(m) == subject);

  // More than one token after <pending>: kept whole.
  const std::string more = "$JS.ACK._.H.S.C.1.2.3.4.5.t1.t2.t3";
  const auto n = parsed(more);
  BOOST_TEST(n.tail == "t1.t2.t3");
  BOOST_TEST(n.num_pending == 5u);
  BOOST_TEST(encoded(n) == more);
}

BOOST_AUTO_TEST_CASE(limits_of_the_numbers) {
  const auto m = parsed("$JS.ACK.S.C.18446744073709551615.18446744073709551615.18446744073709551615."
                        "9223372036854775807.18446744073709551615");
  BOOST_TEST(m.num_delivered == UINT64_MAX);
  BOOST_TEST(m.stream_sequence == UINT64_MAX);
  BOOST_TEST(m.consumer_sequence == UINT64_MAX);
  BOOST_TEST(m.timestamp_ns == INT64_MAX);
  BOOST_TEST(m.num_pending == UINT64_MAX);

  const auto z = parsed("$JS.ACK.S.C.0.0.0.0.0");
  BOOST_TEST(z.num_delivered == 0u);
  BOOST_TEST(z.timestamp_ns == 0);

  // Leading zeros are read as nats.go reads them; the server never writes them.
  // However many: the digits after them are what must fit.
  const auto zeros = parsed("$JS.ACK.S.C.1.1.1.1.000000000000000000000000000000018446744073709551615");
  BOOST_TEST(zeros.num_pending == UINT64_MAX);
  const auto l = parsed("$JS.ACK.S.C.01.002.0003.04.05");
  BOOST_TEST(l.num_delivered == 1u);
  BOOST_TEST(l.stream_sequence == 2u);
  BOOST_TEST(l.consumer_sequence == 3u);
  BOOST_TEST(l.timestamp_ns == 4);
  BOOST_TEST(l.num_pending == 5u);
}

// The numbers are read eight bytes at a time from the word ending at their last digit: every length from 1 to
// 20 digits, in every number position, at every alignment (stream names of 1 to 9 bytes shift the offsets), in
// both forms, with a digit-free neighbour and a non-digit planted in each place of the number.
BOOST_AUTO_TEST_CASE(every_number_length_and_alignment) {
  const std::string digits = "0123456789012345678";
  for (std::size_t len = 1; len <= 20; ++len) {
    // No leading zero (it would not encode back), every digit inside; at 20 digits the largest uint64.
    const std::string number = len == 20 ? "18446744073709551615" : "9" + digits.substr(0, len - 1);
    const std::uint64_t value = std::stoull(number);
    for (std::size_t pos = 0; pos < 5; ++pos) {
      if (pos == 3 && value > static_cast<std::uint64_t>(INT64_MAX)) continue;
      for (std::size_t shift = 1; shift <= 9; ++shift) {
        for (bool long_form : {false, true}) {
          std::string subject = long_form ? "$JS.ACK._.H." : "$JS.ACK.";
          subject += std::string(shift, 's') + ".C";
          for (std::size_t i = 0; i < 5; ++i) subject += "." + (i == pos ? number : std::string("7"));
          BOOST_TEST_CONTEXT(subject) {
            const auto m = parsed(subject);
            const std::uint64_t got[] = {m.num_delivered, m.stream_sequence, m.consumer_sequence,
                                         static_cast<std::uint64_t>(m.timestamp_ns), m.num_pending};
            for (std::size_t i = 0; i < 5; ++i) BOOST_TEST(got[i] == (i == pos ? value : 7u));
            BOOST_TEST(encoded(m) == subject);
            // A non-digit in each place of the number.
            const std::size_t at = subject.size() - (pos == 4 ? 0 : 2 * (4 - pos)) - len;
            for (std::size_t j = 0; j < len; ++j) {
              for (char bad : {'/', ':', 'a', ' ', '\xff', '\0'}) {
                std::string broken = subject;
                broken[at + j] = bad;
                message_metadata x;
                BOOST_TEST(parse_ack_subject(broken, x) == error::protocol_violation, broken);
              }
            }
          }
        }
      }
    }
  }
  // One past the largest value, at each length where a number can overflow.
  for (std::string big : {"18446744073709551616", "18446744073709551620", "19999999999999999999",
                          "99999999999999999999", "100000000000000000000"}) {
    message_metadata x;
    BOOST_TEST(parse_ack_subject("$JS.ACK.S.C." + big + ".1.1.1.1", x) == error::protocol_violation, big);
    BOOST_TEST(parse_ack_subject("$JS.ACK.S.C.1.1.1.1." + big, x) == error::protocol_violation, big);
  }
}

BOOST_AUTO_TEST_CASE(bad_number_tokens_in_each_position) {
  // Each of the five numbers in turn, in both forms: empty, non-digit, sign, blank, overflow.
  const std::vector<std::string> bad = {"",       "x",      "1a",     "a1",     "-1",      "+1",
                                        " 1",     "1 ",     "0x10",   "1e3",    "\xd9\xa1", "18446744073709551616",
                                        "99999999999999999999", "184467440737095516150"};
  const std::vector<std::string> good = {"1", "42", "17", "1700000000123456789", "5"};
  for (int pos = 0; pos < 5; ++pos) {
    for (const auto& b : bad) {
      std::string numbers;
      for (int i = 0; i < 5; ++i) numbers += "." + (i == pos ? b : good[static_cast<std::size_t>(i)]);
      for (const std::string head : {"$JS.ACK.S.C", "$JS.ACK.D.H.S.C"}) {
        for (const std::string tail : {"", ".tok"}) {
          if (tail == ".tok" && head == "$JS.ACK.S.C") continue;
          const std::string subject = head + numbers + tail;
          message_metadata m;
          m.stream = "untouched";
          BOOST_TEST(parse_ack_subject(subject, m) == error::protocol_violation, subject);
          BOOST_TEST(m.stream == "untouched");
        }
      }
    }
  }
  // The timestamp is signed: one past INT64_MAX fails, while other fields take it.
  message_metadata m;
  BOOST_TEST(parse_ack_subject("$JS.ACK.S.C.1.1.1.9223372036854775808.1", m) == error::protocol_violation);
  BOOST_TEST(!parse_ack_subject("$JS.ACK.S.C.9223372036854775808.1.1.1.1", m));
}

BOOST_AUTO_TEST_CASE(wrong_shapes) {
  for (std::string_view s : {
           "",
           "$JS.ACK",
           "$JS.ACK.",
           "$JS.ACK.S.C.1.2.3.4",              // 8 tokens
           "$JS.ACK.S.C.1.2.3.4.5.6",          // 10 tokens: neither form
           "$JS.ACK.S.1.2.3.4.5",              // 8 tokens
           "$JS.ACK.D.H.S.C.1.2.3.4.5.",       // empty last token
           "$JS.ACK.D.H.S.C.1.2.3.4.5.t..u",   // empty token in the tail
           "$JS.ACK.D.H.S.C.1.2.3.4.5..t",     // empty first tail token
           "$JS.ACK..C.1.2.3.4.5",             // empty stream
           "$JS.ACK.S..1.2.3.4.5",             // empty consumer
           "$JS.ACK..H.S.C.1.2.3.4.5",         // empty domain (none is "_")
           "$JS.ACK.D..S.C.1.2.3.4.5",         // empty account hash
           "$JS.ACK.S.C.1.2.3.4.5.",           // trailing dot: 10 tokens
           ".$JS.ACK.S.C.1.2.3.4.5",
           "$JS.ACKS.C.1.2.3.4.5.6.7",
           "$JS.ACKX.S.C.1.2.3.4.5",
           "$js.ack.S.C.1.2.3.4.5",
           "$JS.API.S.C.1.2.3.4.5",
           "JS.ACK.S.C.1.2.3.4.5",
           "_INBOX.abc.1.2.3.4.5.6.7",
           "$JS.FC.ORDERS.worker.abc",
       }) {
    message_metadata m;
    BOOST_TEST(parse_ack_subject(s, m) == error::protocol_violation, "'" << s << "'");
  }
}

BOOST_AUTO_TEST_CASE(a_parse_starts_afresh) {
  message_metadata m;
  BOOST_TEST(!parse_ack_subject("$JS.ACK.hub.H.S.C.1.2.3.4.5.t", m));
  BOOST_TEST(!parse_ack_subject("$JS.ACK.S2.C2.6.7.8.9.10", m));
  BOOST_TEST(m.domain.empty());
  BOOST_TEST(m.account_hash.empty());
  BOOST_TEST(m.tail.empty());
  BOOST_TEST(m.stream == "S2");
  BOOST_TEST(m.num_pending == 10u);
}

BOOST_AUTO_TEST_CASE(encode_appends) {
  message_metadata m;
  m.stream = "S";
  m.consumer = "C";
  m.num_delivered = 1;
  m.stream_sequence = 2;
  m.consumer_sequence = 3;
  m.timestamp_ns = 4;
  m.num_pending = 5;
  std::string out = "x:";
  encode_ack_subject(out, m);
  BOOST_TEST(out == "x:$JS.ACK.S.C.1.2.3.4.5");
  m.account_hash = "H";
  BOOST_TEST(encoded(m) == "$JS.ACK._.H.S.C.1.2.3.4.5");
  m.domain = "D";
  m.tail = "t";
  BOOST_TEST(encoded(m) == "$JS.ACK.D.H.S.C.1.2.3.4.5.t");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(pull_status_tests)

BOOST_AUTO_TEST_CASE(messages_without_a_status) {
  for (std::string_view b : {"", "NATS/1.0\r\n\r\n", "NATS/1.0\r\nNats-Msg-Id: a1\r\nX: y\r\n\r\n",
                             "NATS/1.0 \r\n\r\n", "NATS/1.0 \t \r\nK: v\r\n\r\n"}) {
    const auto s = classified(b);
    BOOST_TEST((s.kind == pull_status::message), b);
    BOOST_TEST(s.code == 0);
    BOOST_TEST(!ends_pull_request(s));
    BOOST_TEST(!is_fatal_for_consume(s));
  }
}

// Every status text of nats-server's consumer.go and jetstream.go (2.9.10 and 2.10.x), in the exact bytes it
// writes, with what it means for one pull request and for a continuous consume.
BOOST_AUTO_TEST_CASE(every_server_status) {
  struct row {
    std::string_view block;
    pull_status kind;
    int code;
    std::string_view description;
    bool ends_request, fatal;
  };
  const row rows[] = {
      {"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 17\r\nNats-Last-Stream: 42\r\n\r\n",
       pull_status::idle_heartbeat, 100, "Idle Heartbeat", false, false},
      {"NATS/1.0 100 FlowControl Request\r\n\r\n", pull_status::flow_control, 100, "FlowControl Request", false,
       false},
      {"NATS/1.0 404 No Messages\r\n\r\n", pull_status::no_messages, 404, "No Messages", true, false},
      {"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 1024\r\n\r\n",
       pull_status::request_timeout, 408, "Request Timeout", true, false},
      {"NATS/1.0 408 Interest Expired\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n",
       pull_status::request_timeout, 408, "Interest Expired", true, false},
      {"NATS/1.0 408 Requests Pending\r\n\r\n", pull_status::request_timeout, 408, "Requests Pending", true, false},
      {"NATS/1.0 503\r\n\r\n", pull_status::no_responders, 503, "", true, false},
      {"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n", pull_status::exceeded_max_waiting, 409, "Exceeded MaxWaiting",
       true, false},
      {"NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 10\r\nNats-Pending-Bytes: 100\r\n\r\n",
       pull_status::message_size_exceeds_max_bytes, 409, "Message Size Exceeds MaxBytes", true, false},
      {"NATS/1.0 409 Consumer Deleted\r\n\r\n", pull_status::consumer_deleted, 409, "Consumer Deleted", true, true},
      {"NATS/1.0 409 Consumer is push based\r\n\r\n", pull_status::consumer_is_push_based, 409,
       "Consumer is push based", true, true},
      {"NATS/1.0 409 Leadership Change\r\n\r\n", pull_status::leadership_change, 409, "Leadership Change", true,
       false},
      {"NATS/1.0 409 Exceeded MaxRequestBatch of 100\r\n\r\n", pull_status::exceeded_max_request_batch, 409,
       "Exceeded MaxRequestBatch of 100", true, true},
      {"NATS/1.0 409 Exceeded MaxRequestExpires of 1m0s\r\n\r\n", pull_status::exceeded_max_request_expires, 409,
       "Exceeded MaxRequestExpires of 1m0s", true, true},
      {"NATS/1.0 409 Exceeded MaxRequestExpires of 500ms\r\n\r\n", pull_status::exceeded_max_request_expires, 409,
       "Exceeded MaxRequestExpires of 500ms", true, true},
      {"NATS/1.0 409 Exceeded MaxRequestMaxBytes of 1048576\r\n\r\n", pull_status::exceeded_max_request_max_bytes,
       409, "Exceeded MaxRequestMaxBytes of 1048576", true, true},
      {"NATS/1.0 409 Batch Completed\r\nNats-Pending-Messages: 0\r\nNats-Pending-Bytes: 12\r\n\r\n",
       pull_status::batch_completed, 409, "Batch Completed", true, false},
      {"NATS/1.0 409 Server Shutdown\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 0\r\n\r\n",
       pull_status::server_shutdown, 409, "Server Shutdown", true, false},
      {"NATS/1.0 409 Something New\r\n\r\n", pull_status::other_409, 409, "Something New", true, false},
      {"NATS/1.0 409\r\n\r\n", pull_status::other_409, 409, "", true, false},
      {"NATS/1.0 400 Bad Request - heartbeat value too large\r\n\r\n", pull_status::bad_request, 400,
       "Bad Request - heartbeat value too large", true, true},
      {"NATS/1.0 423 Nats-Pin-Id mismatch\r\n\r\n", pull_status::unknown, 423, "Nats-Pin-Id mismatch", true, false},
      {"NATS/1.0 100 Something Else\r\n\r\n", pull_status::unknown, 100, "Something Else", false, false},
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT(r.block) {
      const auto s = classified(r.block);
      BOOST_TEST(to_string(s.kind) == to_string(r.kind));
      BOOST_TEST(s.code == r.code);
      BOOST_TEST(s.description == r.description);
      BOOST_TEST(inside(s.description, r.block));
      BOOST_TEST(ends_pull_request(s) == r.ends_request);
      BOOST_TEST(is_fatal_for_consume(s) == r.fatal);
    }
  }
}

// Message Size Exceeds MaxBytes ends a partly filled request as a matter of course; only a request that got
// nothing (its whole max_bytes still pending) shows a message too large for any such request.
BOOST_AUTO_TEST_CASE(max_bytes_is_fatal_only_for_an_empty_request) {
  pull_request r;
  r.batch = 100;
  r.max_bytes = 1024;
  auto s = classified("NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 100\r\n"
                      "Nats-Pending-Bytes: 1024\r\n\r\n");
  BOOST_TEST(is_fatal_for_consume(s, r));
  BOOST_TEST(!is_fatal_for_consume(s));
  s = classified("NATS/1.0 409 Message Size Exceeds MaxBytes\r\nNats-Pending-Messages: 97\r\n"
                 "Nats-Pending-Bytes: 300\r\n\r\n");
  BOOST_TEST(!is_fatal_for_consume(s, r));
  r.max_bytes = 0;
  BOOST_TEST(!is_fatal_for_consume(s, r));
  // Other statuses answer as without the request.
  s = classified("NATS/1.0 409 Consumer Deleted\r\n\r\n");
  BOOST_TEST(is_fatal_for_consume(s, r));
  s = classified("NATS/1.0 409 Leadership Change\r\n\r\n");
  BOOST_TEST(!is_fatal_for_consume(s, r));
}

BOOST_AUTO_TEST_CASE(header_values) {
  auto s = classified("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 1024\r\n\r\n");
  BOOST_TEST(s.pending_messages == 3u);
  BOOST_TEST(s.pending_bytes == 1024u);

  const std::string hb =
      "NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 17\r\nNats-Last-Stream: 42\r\n"
      "Nats-Consumer-Stalled: $JS.FC.ORDERS.worker.Zx3\r\n\r\n";
  s = classified(hb);
  BOOST_TEST((s.kind == pull_status::idle_heartbeat));
  BOOST_TEST(s.last_consumer == "17");
  BOOST_TEST(s.last_stream == "42");
  BOOST_TEST(s.consumer_stalled == "$JS.FC.ORDERS.worker.Zx3");
  for (auto v : {s.last_consumer, s.last_stream, s.consumer_stalled}) BOOST_TEST(inside(v, hb));

  // Keys and descriptions compare without case, values are trimmed, the first of a repeated key counts, and
  // other keys are skipped.
  s = classified("NATS/1.0  409   consumer DELETED  \r\nX-Other: 1\r\nnats-pending-messages:\t7 \r\n"
                 "NATS-PENDING-MESSAGES: 9\r\nNats-Pending-Bytes:8\r\n\r\n");
  BOOST_TEST((s.kind == pull_status::consumer_deleted));
  BOOST_TEST(s.description == "consumer DELETED");
  BOOST_TEST(s.pending_messages == 7u);
  BOOST_TEST(s.pending_bytes == 8u);

  s = classified("NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 18446744073709551615\r\n\r\n");
  BOOST_TEST(s.pending_messages == UINT64_MAX);
  BOOST_TEST(s.pending_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(junk_is_an_error) {
  for (std::string_view b : {
           "NATS/1.0",                                   // no line end
           "NATS/1.0\r",                                 // CR alone
           "NATS/1.0\rX",                                // CR without LF
           "NATS/1.0\n\r\n",                             // LF alone
           "NATS/1.0x\r\n\r\n",                          // no blank before the status
           "NATS/2.0 404\r\n\r\n",                       // other version
           "nats/1.0 404\r\n\r\n",                       //
           "HTTP/1.1 404 Not Found\r\n\r\n",             //
           "NATS/1.0 abc\r\n\r\n",                       // not a number
           "NATS/1.0 40\r\n\r\n",                        // two digits
           "NATS/1.0 4044\r\n\r\n",                      // four digits
           "NATS/1.0 404x No Messages\r\n\r\n",          // digits run into text
           "NATS/1.0 099\r\n\r\n",                       // below 100
           "NATS/1.0 -404\r\n\r\n",                      //
           "NATS/1.0 404 No Messages",                   // no CRLF
           "NATS/1.0 404 No Messages\r\n",               // no terminating empty line
           "NATS/1.0 404 No Messages\r\n\r",             //
           "NATS/1.0 404 No\nMessages\r\n\r\n",          // LF inside the status line
           "NATS/1.0 404 No\rMessages\r\n\r\n",          // CR inside the status line
           "NATS/1.0 404 No Messages\r\n\r\nextra",      // bytes after the block
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: x\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: \r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: -1\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: +1\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1 2\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNats-Pending-Bytes: 18446744073709551616\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nNo colon here\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\n: value\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nBad Key: 1\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\n folded: 1\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nK: a\nb\r\n\r\n",
           "NATS/1.0 408 Request Timeout\r\nK: a\rb\r\n\r\n",
           "\r\n\r\n",
           "garbage",
       }) {
    pull_status_info s;
    s.code = 1;
    BOOST_TEST(classify_pull_status(b, s) == error::bad_header, "'" << b << "'");
    BOOST_TEST((s.kind == pull_status::message));
    BOOST_TEST(s.code == 0);
  }
}

BOOST_AUTO_TEST_CASE(a_classification_starts_afresh) {
  pull_status_info s;
  BOOST_TEST(!classify_pull_status("NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1\r\n\r\n", s));
  BOOST_TEST(!classify_pull_status("NATS/1.0\r\n\r\n", s));
  BOOST_TEST((s.kind == pull_status::message));
  BOOST_TEST(s.code == 0);
  BOOST_TEST(s.last_consumer.empty());
  BOOST_TEST(s.description.empty());
}

BOOST_AUTO_TEST_CASE(every_kind_has_a_name) {
  for (int k = 0; k <= static_cast<int>(pull_status::unknown); ++k) {
    const auto name = to_string(static_cast<pull_status>(k));
    BOOST_TEST(!name.empty());
    if (k != static_cast<int>(pull_status::unknown)) BOOST_TEST(name != "unknown status");
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(consumer_body_tests)

BOOST_AUTO_TEST_CASE(pull_request_bytes) {
  std::string out;
  encode_pull_request(out, pull_request{});
  BOOST_TEST(out == R"({"batch":1})");

  out = "prefix:";
  pull_request r;
  r.batch = 100;
  r.max_bytes = 1048576;
  r.expires = 30s;
  r.no_wait = true;
  r.idle_heartbeat = 15s;
  encode_pull_request(out, r);
  BOOST_TEST(out == R"(prefix:{"batch":100,"max_bytes":1048576,"expires":30000000000,"no_wait":true,)"
                    R"("idle_heartbeat":15000000000})");

  out.clear();
  r = {};
  r.batch = 10;
  r.expires = 5s;
  encode_pull_request(out, r);
  BOOST_TEST(out == R"({"batch":10,"expires":5000000000})");

  out.clear();
  r = {};
  r.no_wait = true;
  r.max_bytes = -5;  // unset fields and nonsense are left out; check_pull_request refuses the nonsense
  r.expires = -1s;
  encode_pull_request(out, r);
  BOOST_TEST(out == R"({"batch":1,"no_wait":true})");
}

BOOST_AUTO_TEST_CASE(pull_request_checks) {
  struct row {
    pull_request r;
    bool ok;
  };
  auto make = [](std::int64_t batch, std::int64_t max_bytes, std::chrono::nanoseconds expires,
                 std::chrono::nanoseconds hb) {
    pull_request r;
    r.batch = batch;
    r.max_bytes = max_bytes;
    r.expires = expires;
    r.idle_heartbeat = hb;
    return r;
  };
  const row rows[] = {
      {make(1, 0, 0s, 0s), true},       {make(500, 1 << 20, 30s, 15s), true}, {make(1, 0, 30s, 5s), true},
      {make(0, 0, 0s, 0s), false},      {make(-1, 0, 0s, 0s), false},         {make(1, -1, 0s, 0s), false},
      {make(1, 0, -1s, 0s), false},     {make(1, 0, 30s, -1s), false},        {make(1, 0, 30s, 16s), false},
      {make(1, 0, 0s, 1s), false},      {make(1, 0, 29999999999ns, 15s), false},
  };
  for (const auto& x : rows) {
    std::string_view problem = "stale";
    const error_code ec = check_pull_request(x.r, problem);
    BOOST_TEST(!ec == x.ok, problem);
    BOOST_TEST(problem.empty() == x.ok);
    if (!x.ok) BOOST_TEST(ec == error::invalid_argument);
  }
}

BOOST_AUTO_TEST_CASE(ack_bodies) {
  BOOST_TEST(ack_body(ack_kind::ack) == "+ACK");
  BOOST_TEST(ack_body(ack_kind::nak) == "-NAK");
  BOOST_TEST(ack_body(ack_kind::in_progress) == "+WPI");
  BOOST_TEST(ack_body(ack_kind::term) == "+TERM");

  std::string out;
  encode_nak_with_delay(out, 5s);
  BOOST_TEST(out == R"(-NAK {"delay":5000000000})");
  out.clear();
  encode_nak_with_delay(out, 1ns);
  BOOST_TEST(out == R"(-NAK {"delay":1})");
  out.clear();
  encode_nak_with_delay(out, 0s);
  BOOST_TEST(out == "-NAK");
  out.clear();
  encode_nak_with_delay(out, -3s);
  BOOST_TEST(out == "-NAK");

  out = "x";
  encode_term_with_reason(out, "bad payload: missing id");
  BOOST_TEST(out == "x+TERM bad payload: missing id");
  out.clear();
  encode_term_with_reason(out, "");
  BOOST_TEST(out == "+TERM");

  out.clear();
  pull_request r;
  r.batch = 10;
  r.expires = 5s;
  encode_ack_next(out, r);
  BOOST_TEST(out == R"(+NXT {"batch":10,"expires":5000000000})");
  out.clear();
  encode_ack_next(out, pull_request{});
  BOOST_TEST(out == R"(+NXT {"batch":1})");
}

BOOST_AUTO_TEST_CASE(consumer_create_subjects) {
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "", "") == "$JS.API.CONSUMER.CREATE.ORDERS");
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "", "orders.>") == "$JS.API.CONSUMER.CREATE.ORDERS");
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "worker", "") == "$JS.API.CONSUMER.CREATE.ORDERS.worker");
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "worker", "orders.eu") ==
             "$JS.API.CONSUMER.CREATE.ORDERS.worker.orders.eu");
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "worker", "orders.*.eu") ==
             "$JS.API.CONSUMER.CREATE.ORDERS.worker.orders.*.eu");
  BOOST_TEST(consumer_create_subject("$JS.API", "ORDERS", "worker", ">") ==
             "$JS.API.CONSUMER.CREATE.ORDERS.worker.>");
  BOOST_TEST(consumer_create_subject("$JS.hub.API", "ORDERS", "worker", "a") ==
             "$JS.hub.API.CONSUMER.CREATE.ORDERS.worker.a");
  // A filter that is not a subject stays in the body only.
  for (std::string_view f : {"a..b", ".a", "a.", "a b", "a.>.b", "a\r\n"})
    BOOST_TEST(consumer_create_subject("$JS.API", "S", "n", f) == "$JS.API.CONSUMER.CREATE.S.n", f);

  BOOST_TEST(consumer_create_subject("", "ORDERS", "worker", "a.b") == "CONSUMER.CREATE.ORDERS.worker.a.b");
  BOOST_TEST(consumer_create_subject("", "ORDERS", "", "") == "CONSUMER.CREATE.ORDERS");
  BOOST_TEST(consumer_durable_create_subject("", "ORDERS", "worker") == "CONSUMER.DURABLE.CREATE.ORDERS.worker");
  BOOST_TEST(consumer_durable_create_subject("$JS.API", "ORDERS", "worker") ==
             "$JS.API.CONSUMER.DURABLE.CREATE.ORDERS.worker");
  BOOST_TEST(consumer_durable_create_subject("$JS.hub.API", "S", "d") == "$JS.hub.API.CONSUMER.DURABLE.CREATE.S.d");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server_version_tests)

BOOST_AUTO_TEST_CASE(parsing) {
  struct row {
    std::string_view text;
    int major, minor, patch;
  };
  const row good[] = {{"2.10.27", 2, 10, 27},      {"2.11.0-beta.1", 2, 11, 0}, {"v2.9.10", 2, 9, 10},
                      {"2.10.0+build.5", 2, 10, 0}, {"0.0.0", 0, 0, 0},          {"2.12.0-RC.3", 2, 12, 0},
                      {"999999999.1.2", 999999999, 1, 2}};
  for (const auto& r : good) {
    int a = -1, b = -1, c = -1;
    BOOST_TEST(parse_server_version(r.text, a, b, c), r.text);
    BOOST_TEST(a == r.major);
    BOOST_TEST(b == r.minor);
    BOOST_TEST(c == r.patch);
  }
  for (std::string_view bad : {"", "2", "2.10", "2.10.", "2..1", ".2.10.1", "2.10.x", "2.10.1x", "2.10.1-",
                               "2.10.1 ", " 2.10.1", "V2.10.1", "vv2.10.1", "2.10.1.4", "-2.10.1", "1000000000.0.0",
                               "2.a.1", "v", "2.10.1+"}) {
    int a = 7, b = 7, c = 7;
    BOOST_TEST(!parse_server_version(bad, a, b, c), "'" << bad << "'");
    BOOST_TEST((a == 7 && b == 7 && c == 7));
  }
}

BOOST_AUTO_TEST_CASE(ordering) {
  BOOST_TEST(version_at_least(2, 10, 4, 2, 10, 4));
  BOOST_TEST(version_at_least(2, 10, 5, 2, 10, 4));
  BOOST_TEST(version_at_least(2, 11, 0, 2, 10, 4));
  BOOST_TEST(version_at_least(3, 0, 0, 2, 10, 4));
  BOOST_TEST(!version_at_least(2, 10, 3, 2, 10, 4));
  BOOST_TEST(!version_at_least(2, 9, 25, 2, 10, 0));
  BOOST_TEST(!version_at_least(1, 99, 99, 2, 0, 0));
  constexpr auto t = term_reason_version;
  static_assert(version_at_least(2, 10, 4, t.major, t.minor, t.patch));
  static_assert(!version_at_least(2, 10, 3, t.major, t.minor, t.patch));
}

BOOST_AUTO_TEST_CASE(fields_a_2_9_server_would_drop) {
  std::string problem = "stale";
  BOOST_TEST(!check_consumer_fields_for_server(2, 10, 0, true, true, true, problem));
  BOOST_TEST(problem.empty());
  BOOST_TEST(!check_consumer_fields_for_server(2, 9, 25, false, false, false, problem));
  BOOST_TEST(problem.empty());

  BOOST_TEST(check_consumer_fields_for_server(2, 9, 25, true, false, false, problem) ==
             error::not_supported_by_server);
  BOOST_TEST(problem == "filter_subjects needs nats-server 2.10.0 or later; the server is 2.9.25, which would "
                        "ignore it");
  BOOST_TEST(check_consumer_fields_for_server(2, 9, 10, true, true, false, problem) ==
             error::not_supported_by_server);
  BOOST_TEST(problem == "filter_subjects and metadata need nats-server 2.10.0 or later; the server is 2.9.10, "
                        "which would ignore them");
  BOOST_TEST(check_consumer_fields_for_server(2, 2, 2, true, true, true, problem) ==
             error::not_supported_by_server);
  BOOST_TEST(problem == "filter_subjects, metadata and action need nats-server 2.10.0 or later; the server is "
                        "2.2.2, which would ignore them");
  BOOST_TEST(check_consumer_fields_for_server(2, 9, 0, false, false, true, problem) ==
             error::not_supported_by_server);
  BOOST_TEST(problem == "action needs nats-server 2.10.0 or later; the server is 2.9.0, which would ignore it");
}

BOOST_AUTO_TEST_SUITE_END()
