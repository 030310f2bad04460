// JetStream consumer protocol pieces (protocol/consumer.hpp). Sources of the wire facts:
// - ack subjects: nats-server server/consumer.go (ackReplyT "$JS.ACK.<stream>.<consumer>.%d.%d.%d.%d.%d" filled
//   by ackReply(dc, sseq, dseq, ts, pending); since 2.14 also the 11-token jsAckTv2 form behind the feature flag
//   js_ack_fc_v2, off by default, read back by ackReplyInfo with "11 or more" tokens); nats.go
//   internal/parser/parse.go GetMetadataFields (9 tokens, or at least 11 with domain and account hash first, "_"
//   for no domain).
// - statuses: nats-server server/consumer.go (processNextMsgRequest's sendErr texts, sendIdleHeartbeat,
//   sendFlowControl, JsPullRequestRemainingBytesT), server/jetstream.go (409 Server Shutdown).
// - bodies: nats-server server/consumer.go processAck (+ACK, -NAK, +WPI, +TERM, +NXT), processNak (JSON
//   {"delay":ns} or a Go duration), nextReqFromMsg; server/jetstream_api.go JSApiConsumerGetNextRequest.
// - create subjects: nats-server server/jetstream_api.go jsConsumerCreateRequest; nats.go jetstream/consumer.go
//   upsertConsumer and jsm.go upsertConsumer.
#include <natsbus/protocol/consumer.hpp>
#include <natsbus/protocol/subject.hpp>

#include <bit>
#include <charconv>
#include <cstring>
#include <limits>

namespace natsbus::protocol {
namespace {

constexpr std::string_view ack_prefix = "$JS.ACK.";

constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_number(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// The ack subject is read eight bytes at a time: one pass finds the dots, then each number is converted from
// the word that ends at its last digit. Byte-at-a-time accumulation (v = v * 10 + d) chains a multiply per digit
// and cost about twice as much on a 70-byte subject.

constexpr std::uint64_t ones = 0x0101010101010101;

// Eight bytes with the string's first byte in the low bits, whatever the machine's byte order.
inline std::uint64_t load8(const char* p) noexcept {
  std::uint64_t x;
  std::memcpy(&x, p, sizeof x);
  if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
  return x;
}

// The top bit of each byte of x that equals c, and no other bit. Exact: no carry crosses a byte.
inline std::uint64_t bytes_equal(std::uint64_t x, unsigned char c) noexcept {
  const std::uint64_t y = x ^ (ones * c);
  return ~(((y & (ones * 0x7f)) + ones * 0x7f) | y | (ones * 0x7f));
}

// The last n (1 to 8) bytes of the word x as a decimal number: they are the low digits, the bytes before them
// count as leading zeros. false when one of the n is not an ASCII digit.
inline bool digits8(std::uint64_t x, unsigned n, std::uint64_t& value) noexcept {
  const std::uint64_t keep = n >= 8 ? ~std::uint64_t{0} : ~std::uint64_t{0} << (8 * (8 - n));
  // Digit values in the kept bytes, zeros before them. A kept byte below '0' wraps to 0xd0 or more (its borrow
  // can only spoil bytes after it), one above '9' gives 10 or more: either way d + 0x76 or d has a top bit set.
  std::uint64_t d = (x & keep) - (ones * '0' & keep);  // byte 0 is the most significant digit
  if ((((d + ones * 0x76) | d) & (ones * 0x80)) != 0) return false;
  d = (d * 10 + (d >> 8)) & 0x00ff00ff00ff00ff;       // pairs: 0..99 in each 16 bits
  d = (d * 100 + (d >> 16)) & 0x0000ffff0000ffff;     // quads: 0..9999 in each 32 bits
  value = (d * 10000 + (d >> 32)) & 0xffffffff;       // 0..99999999
  return true;
}

// The decimal number in [b, e): 1 to 20 digits after any leading zeros, without overflow. Words are loaded so
// that they end at e, and the caller guarantees 8 readable bytes before b (the "$JS.ACK." prefix), so no load
// leaves the subject.
inline bool parse_number(const char* b, const char* e, std::uint64_t& out) noexcept {
  auto n = static_cast<std::size_t>(e - b);
  if (n == 0) return false;
  while (n > 20 && *b == '0') {  // leading zeros count for nothing, however many
    ++b;
    --n;
  }
  if (n > 20) return false;
  if (n <= 8) return digits8(load8(e - 8), static_cast<unsigned>(n), out);
  std::uint64_t lo = 0, mid = 0, hi = 0;
  if (!digits8(load8(e - 8), 8, lo)) return false;
  if (n <= 16) {
    if (!digits8(load8(e - 16), static_cast<unsigned>(n - 8), mid)) return false;
    out = mid * 100000000 + lo;
    return true;
  }
  if (!digits8(load8(e - 16), 8, mid) || !digits8(load8(e - 24), static_cast<unsigned>(n - 16), hi)) return false;
  std::uint64_t v = 0;  // hi has at most 4 digits: only a 20-digit number can overflow
  if (__builtin_mul_overflow(hi, std::uint64_t{10000000000000000}, &v) ||
      __builtin_add_overflow(v, mid * 100000000 + lo, &v))
    return false;
  out = v;
  return true;
}

// Dots after the prefix: nine are enough to place the long form's nine tokens and the start of its tail.
constexpr unsigned max_dots = 9;

}  // namespace

error_code parse_ack_subject(std::string_view reply, message_metadata& out) noexcept {
  if (reply.size() <= ack_prefix.size() || std::memcmp(reply.data(), ack_prefix.data(), ack_prefix.size()) != 0)
    return error::protocol_violation;
  const char* const first = reply.data() + ack_prefix.size();
  const char* const end = reply.data() + reply.size();
  const auto len = static_cast<std::size_t>(end - first);

  // Offsets of the dots after the prefix; all of them are counted, the first max_dots kept. A dot first, last
  // or next to another one makes an empty token.
  std::size_t dot[max_dots];
  std::size_t dots = 0;
  std::size_t last = static_cast<std::size_t>(-1);
  bool empty_token = false;
  const auto take = [&](std::uint64_t z, std::size_t base) {
    while (z != 0) {
      const std::size_t at = base + (static_cast<unsigned>(__builtin_ctzll(z)) >> 3);
      empty_token |= at == last + 1;
      last = at;
      if (dots < max_dots) dot[dots] = at;
      ++dots;
      z &= z - 1;
    }
  };
  std::size_t i = 0;
  for (; len - i >= 8; i += 8) take(bytes_equal(load8(first + i), '.'), i);
  if (i != len) {
    // The last 1 to 7 bytes: the word ending at the end, less the bytes already seen (or the prefix's). Its base
    // offset wraps below zero when fewer than 8 bytes follow the prefix; the masked bytes are exactly those.
    const auto seen = static_cast<unsigned>(8 - (len - i));
    take(bytes_equal(load8(end - 8), '.') & (~std::uint64_t{0} << (8 * seen)), len - 8);
  }
  if (empty_token || last == len - 1) return error::protocol_violation;

  const auto token = [&](std::size_t k) {  // the k-th token after the prefix, k < 9
    const std::size_t b = k == 0 ? 0 : dot[k - 1] + 1;
    const std::size_t e = k < dots ? dot[k] : len;
    return std::string_view(first + b, e - b);
  };
  message_metadata m;
  std::size_t k = 0;  // where <stream> is
  if (dots >= 8) {
    m.domain = token(0);
    if (m.domain == "_") m.domain = {};
    m.account_hash = token(1);
    if (dots > 8) m.tail = std::string_view(first + dot[8] + 1, len - dot[8] - 1);
    k = 2;
  } else if (dots != 6) {
    return error::protocol_violation;
  }
  m.stream = token(k);
  m.consumer = token(k + 1);
  std::uint64_t v[5];
  for (std::size_t j = 0; j < 5; ++j) {
    const auto t = token(k + 2 + j);
    if (!parse_number(t.data(), t.data() + t.size(), v[j])) return error::protocol_violation;
  }
  if (v[3] > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return error::protocol_violation;
  m.num_delivered = v[0];
  m.stream_sequence = v[1];
  m.consumer_sequence = v[2];
  m.timestamp_ns = static_cast<std::int64_t>(v[3]);
  m.num_pending = v[4];
  out = m;
  return {};
}

void encode_ack_subject(std::string& out, const message_metadata& m) {
  out.append(ack_prefix);
  if (!m.account_hash.empty()) {
    out.append(m.domain.empty() ? std::string_view("_") : m.domain);
    out.push_back('.');
    out.append(m.account_hash);
    out.push_back('.');
  }
  out.append(m.stream);
  out.push_back('.');
  out.append(m.consumer);
  for (std::uint64_t v : {m.num_delivered, m.stream_sequence, m.consumer_sequence}) {
    out.push_back('.');
    append_number(out, v);
  }
  out.push_back('.');
  append_number(out, m.timestamp_ns);
  out.push_back('.');
  append_number(out, m.num_pending);
  if (!m.account_hash.empty() && !m.tail.empty()) {
    out.push_back('.');
    out.append(m.tail);
  }
}

// ---- Statuses ----

namespace {

constexpr std::string_view version_line = "NATS/1.0";

// The header keys a status can carry (nats-server server/consumer.go JSPullRequestPendingMsgs/Bytes,
// server/stream.go JSLastConsumerSeq, JSLastStreamSeq, JSConsumerStalled).
constexpr std::string_view pending_messages_key = "Nats-Pending-Messages";
constexpr std::string_view pending_bytes_key = "Nats-Pending-Bytes";
constexpr std::string_view last_consumer_key = "Nats-Last-Consumer";
constexpr std::string_view last_stream_key = "Nats-Last-Stream";
constexpr std::string_view consumer_stalled_key = "Nats-Consumer-Stalled";

bool valid_key_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f && c != ':';
}

bool parse_u64(std::string_view s, std::uint64_t& v) noexcept {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

pull_status classify_409(std::string_view d) noexcept {
  // Fixed texts match whole; those that end in the consumer's limit match up to it. Case-insensitive, as
  // nats.go compares them lowered.
  if (iequals(d, "Exceeded MaxWaiting")) return pull_status::exceeded_max_waiting;
  if (iequals(d, "Message Size Exceeds MaxBytes")) return pull_status::message_size_exceeds_max_bytes;
  if (iequals(d, "Consumer Deleted")) return pull_status::consumer_deleted;
  if (iequals(d, "Consumer is push based")) return pull_status::consumer_is_push_based;
  if (iequals(d, "Leadership Change")) return pull_status::leadership_change;
  if (iequals(d, "Batch Completed")) return pull_status::batch_completed;
  if (iequals(d, "Server Shutdown")) return pull_status::server_shutdown;
  if (istarts_with(d, "Exceeded MaxRequestBatch of ")) return pull_status::exceeded_max_request_batch;
  if (istarts_with(d, "Exceeded MaxRequestExpires of ")) return pull_status::exceeded_max_request_expires;
  if (istarts_with(d, "Exceeded MaxRequestMaxBytes of ")) return pull_status::exceeded_max_request_max_bytes;
  return pull_status::other_409;
}

pull_status classify(int code, std::string_view d) noexcept {
  switch (code) {
    case 100:
      if (iequals(d, "Idle Heartbeat")) return pull_status::idle_heartbeat;
      if (iequals(d, "FlowControl Request")) return pull_status::flow_control;
      return pull_status::unknown;
    case 400:
      return pull_status::bad_request;
    case 404:
      return pull_status::no_messages;
    case 408:
      return pull_status::request_timeout;
    case 409:
      return classify_409(d);
    case 503:
      return pull_status::no_responders;
    default:
      return pull_status::unknown;
  }
}

// Reads the key lines after the status line with decode_headers' rules (CRLF line ends, no lone CR or LF, a
// valid key before ':', the empty line last and nothing after it), keeping views of the values we use.
error_code scan_status_headers(std::string_view block, std::size_t pos, pull_status_info& s) noexcept {
  bool seen_msgs = false, seen_bytes = false, seen_consumer = false, seen_stream = false, seen_stalled = false;
  while (true) {
    if (pos >= block.size()) return error::bad_header;  // no terminating empty line
    const char* start = block.data() + pos;
    const std::size_t left = block.size() - pos;
    const auto* cr = static_cast<const char*>(std::memchr(start, '\r', left));
    if (cr == nullptr) return error::bad_header;
    const auto len = static_cast<std::size_t>(cr - start);
    if (len + 1 >= left || cr[1] != '\n') return error::bad_header;
    if (len != 0 && std::memchr(start, '\n', len) != nullptr) return error::bad_header;
    pos += len + 2;
    const std::string_view line(start, len);
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return error::bad_header;
    const auto key = line.substr(0, colon);
    for (char c : key)
      if (!valid_key_char(c)) return error::bad_header;
    const auto value = trim(line.substr(colon + 1));
    // The first of a repeated key counts, as headers::get does.
    if (!seen_msgs && iequals(key, pending_messages_key)) {
      if (!parse_u64(value, s.pending_messages)) return error::bad_header;
      seen_msgs = true;
    } else if (!seen_bytes && iequals(key, pending_bytes_key)) {
      if (!parse_u64(value, s.pending_bytes)) return error::bad_header;
      seen_bytes = true;
    } else if (!seen_consumer && iequals(key, last_consumer_key)) {
      s.last_consumer = value;
      seen_consumer = true;
    } else if (!seen_stream && iequals(key, last_stream_key)) {
      s.last_stream = value;
      seen_stream = true;
    } else if (!seen_stalled && iequals(key, consumer_stalled_key)) {
      s.consumer_stalled = value;
      seen_stalled = true;
    }
  }
  if (pos != block.size()) return error::bad_header;
  return {};
}

// Everything after "NATS/1.0" and a blank: kept out of line so the no-status path stays a few instructions.
[[gnu::noinline]] error_code classify_status_line(std::string_view block, pull_status_info& out) noexcept {
  constexpr std::size_t v = version_line.size();
  const char* line = block.data() + v;
  const auto* cr = static_cast<const char*>(std::memchr(line, '\r', block.size() - v));
  if (cr == nullptr || cr + 1 == block.data() + block.size() || cr[1] != '\n') return error::bad_header;
  std::string_view rest = trim(std::string_view(line, static_cast<std::size_t>(cr - line)));
  if (rest.find('\n') != std::string_view::npos) return error::bad_header;
  const std::size_t after = static_cast<std::size_t>(cr - block.data()) + 2;
  if (rest.empty()) return {};  // "NATS/1.0 \r\n": blanks, no status
  // Three digits, 100 to 999, then the end or a blank: as decode_headers reads it.
  if (rest.size() < 3 || rest[0] < '1' || rest[0] > '9' || !is_digit(rest[1]) || !is_digit(rest[2]) ||
      (rest.size() > 3 && !is_blank(rest[3])))
    return error::bad_header;

  pull_status_info s;
  s.code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  s.description = trim(rest.substr(3));
  if (auto ec = scan_status_headers(block, after, s)) return ec;
  s.kind = classify(s.code, s.description);
  out = s;
  return {};
}

}  // namespace

error_code classify_pull_status(std::string_view block, pull_status_info& out) noexcept {
  // Field by field: assigning a fresh struct became a "rep stos", which alone cost more than the rest of this
  // path.
  out.kind = pull_status::message;
  out.code = 0;
  out.description = {};
  out.pending_messages = 0;
  out.pending_bytes = 0;
  out.last_consumer = {};
  out.last_stream = {};
  out.consumer_stalled = {};
  if (block.empty()) return {};
  constexpr std::size_t v = version_line.size();
  if (block.size() < v + 2 || std::memcmp(block.data(), version_line.data(), v) != 0) return error::bad_header;
  // The common case: "NATS/1.0\r\n" and the publisher's keys, which are not ours to check here.
  if (block[v] == '\r') return block[v + 1] == '\n' ? error_code{} : error_code{error::bad_header};
  if (!is_blank(block[v])) return error::bad_header;  // "NATS/1.0x"
  return classify_status_line(block, out);
}

bool ends_pull_request(const pull_status_info& s) noexcept { return s.code != 0 && s.code != 100; }

bool is_fatal_for_consume(const pull_status_info& s) noexcept {
  switch (s.kind) {
    case pull_status::consumer_deleted:
    case pull_status::consumer_is_push_based:
    case pull_status::bad_request:
    case pull_status::exceeded_max_request_batch:
    case pull_status::exceeded_max_request_expires:
    case pull_status::exceeded_max_request_max_bytes:
      return true;
    default:
      return false;
  }
}

bool is_fatal_for_consume(const pull_status_info& s, const pull_request& sent) noexcept {
  if (s.kind == pull_status::message_size_exceeds_max_bytes)
    return sent.max_bytes > 0 && s.pending_bytes == static_cast<std::uint64_t>(sent.max_bytes);
  return is_fatal_for_consume(s);
}

std::string_view to_string(pull_status s) noexcept {
  switch (s) {
    case pull_status::message: return "message";
    case pull_status::idle_heartbeat: return "idle heartbeat";
    case pull_status::flow_control: return "flow control";
    case pull_status::no_messages: return "no messages";
    case pull_status::request_timeout: return "request timeout";
    case pull_status::no_responders: return "no responders";
    case pull_status::exceeded_max_waiting: return "exceeded max waiting";
    case pull_status::message_size_exceeds_max_bytes: return "message size exceeds max bytes";
    case pull_status::consumer_deleted: return "consumer deleted";
    case pull_status::consumer_is_push_based: return "consumer is push based";
    case pull_status::leadership_change: return "leadership change";
    case pull_status::exceeded_max_request_batch: return "exceeded max request batch";
    case pull_status::exceeded_max_request_expires: return "exceeded max request expires";
    case pull_status::exceeded_max_request_max_bytes: return "exceeded max request max bytes";
    case pull_status::batch_completed: return "batch completed";
    case pull_status::server_shutdown: return "server shutdown";
    case pull_status::other_409: return "other 409";
    case pull_status::bad_request: return "bad request";
    case pull_status::unknown: return "unknown status";
  }
  return "unknown status";
}

// ---- Bodies ----

void encode_pull_request(std::string& out, const pull_request& r) {
  // Field names of nats-server's JSApiConsumerGetNextRequest; it reads durations as integer nanoseconds.
  out.append("{\"batch\":");
  append_number(out, static_cast<std::int64_t>(r.batch));
  if (r.max_bytes > 0) {
    out.append(",\"max_bytes\":");
    append_number(out, static_cast<std::int64_t>(r.max_bytes));
  }
  if (r.expires.count() > 0) {
    out.append(",\"expires\":");
    append_number(out, static_cast<std::int64_t>(r.expires.count()));
  }
  if (r.no_wait) out.append(",\"no_wait\":true");
  if (r.idle_heartbeat.count() > 0) {
    out.append(",\"idle_heartbeat\":");
    append_number(out, static_cast<std::int64_t>(r.idle_heartbeat.count()));
  }
  out.push_back('}');
}

error_code check_pull_request(const pull_request& r, std::string_view& problem) noexcept {
  problem = {};
  if (r.batch < 1) problem = "batch must be at least 1";
  else if (r.max_bytes < 0) problem = "max_bytes must not be negative";
  else if (r.expires.count() < 0) problem = "expires must not be negative";
  else if (r.idle_heartbeat.count() < 0) problem = "idle_heartbeat must not be negative";
  // The server's rule (nextReqFromMsg): a heartbeat needs at least twice its interval to expire in.
  else if (r.idle_heartbeat.count() > 0 && r.idle_heartbeat.count() > r.expires.count() / 2)
    problem = "idle_heartbeat must be at most half of expires";
  return problem.empty() ? error_code{} : error_code{error::invalid_argument};
}

std::string_view ack_body(ack_kind k) noexcept {
  switch (k) {
    case ack_kind::ack: return "+ACK";
    case ack_kind::nak: return "-NAK";
    case ack_kind::in_progress: return "+WPI";
    case ack_kind::term: return "+TERM";
  }
  return "+ACK";
}

void encode_nak_with_delay(std::string& out, std::chrono::nanoseconds delay) {
  out.append("-NAK");
  if (delay.count() <= 0) return;
  // The server unmarshals ConsumerNakOptions {"delay": <time.Duration as ns>} after trimming blanks.
  out.append(" {\"delay\":");
  append_number(out, static_cast<std::int64_t>(delay.count()));
  out.push_back('}');
}

void encode_term_with_reason(std::string& out, std::string_view reason) {
  out.append("+TERM");
  if (reason.empty()) return;
  out.push_back(' ');
  out.append(reason);
}

void encode_ack_next(std::string& out, const pull_request& r) {
  out.append("+NXT ");
  encode_pull_request(out, r);
}

// ---- Create subjects ----

std::string consumer_create_subject(std::string_view prefix, std::string_view stream, std::string_view name,
                                    std::string_view filter) {
  std::string_view op = ".CONSUMER.CREATE.";
  if (prefix.empty()) op.remove_prefix(1);
  const bool with_filter = !name.empty() && !filter.empty() && is_valid_subscription_subject(filter);
  std::string s;
  s.reserve(prefix.size() + op.size() + stream.size() + 1 + name.size() + (with_filter ? 1 + filter.size() : 0));
  s.append(prefix).append(op).append(stream);
  if (!name.empty()) s.append(".").append(name);
  if (with_filter) s.append(".").append(filter);
  return s;
}

std::string consumer_durable_create_subject(std::string_view prefix, std::string_view stream,
                                            std::string_view durable) {
  std::string_view op = ".CONSUMER.DURABLE.CREATE.";
  if (prefix.empty()) op.remove_prefix(1);
  std::string s;
  s.reserve(prefix.size() + op.size() + stream.size() + 1 + durable.size());
  s.append(prefix).append(op).append(stream).append(".").append(durable);
  return s;
}

// ---- Versions ----

namespace {
bool version_component(std::string_view& s, int& out) noexcept {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n == 0 || n > 9) return false;  // nine digits always fit an int
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) v = v * 10 + (s[i] - '0');
  out = v;
  s.remove_prefix(n);
  return true;
}
}  // namespace

bool parse_server_version(std::string_view v, int& major, int& minor, int& patch) noexcept {
  if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
  int a = 0, b = 0, c = 0;
  if (!version_component(v, a) || v.empty() || v.front() != '.') return false;
  v.remove_prefix(1);
  if (!version_component(v, b) || v.empty() || v.front() != '.') return false;
  v.remove_prefix(1);
  if (!version_component(v, c)) return false;
  if (!v.empty() && ((v.front() != '-' && v.front() != '+') || v.size() == 1)) return false;
  major = a;
  minor = b;
  patch = c;
  return true;
}

error_code check_consumer_fields_for_server(int major, int minor, int patch, bool has_filter_subjects,
                                            bool has_metadata, bool has_action, std::string& problem) {
  problem.clear();
  const auto& need = consumer_fields_2_10_version;
  if (version_at_least(major, minor, patch, need.major, need.minor, need.patch)) return {};
  std::string_view fields[3];
  int n = 0;
  if (has_filter_subjects) fields[n++] = "filter_subjects";
  if (has_metadata) fields[n++] = "metadata";
  if (has_action) fields[n++] = "action";
  if (n == 0) return {};
  for (int i = 0; i < n; ++i) {
    if (i > 0) problem.append(i + 1 == n ? " and " : ", ");
    problem.append(fields[i]);
  }
  problem.append(n == 1 ? " needs" : " need");
  problem.append(" nats-server 2.10.0 or later; the server is ");
  problem.append(std::to_string(major)).append(".").append(std::to_string(minor)).append(".");
  problem.append(std::to_string(patch));
  problem.append(", which would ignore ");
  problem.append(n == 1 ? "it" : "them");
  return error::not_supported_by_server;
}

}  // namespace natsbus::protocol
