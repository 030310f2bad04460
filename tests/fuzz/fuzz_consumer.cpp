// JetStream consumer protocol pieces (protocol/consumer.hpp) on arbitrary bytes. The first byte chooses where
// the rest splits into a reply subject and a header block, each copied into a buffer of its own exact size so a
// read past either end is caught. Checks:
// - parse_ack_subject: it agrees with a plain token-by-token reading (std::from_chars on each number); every
//   view lies in the subject; the metadata encodes to a subject that parses to the same metadata, and to the
//   input itself when no number has a leading zero; a failure leaves the output untouched.
// - classify_pull_status: every view lies in the block; a failure leaves a plain message; a status agrees with
//   decode_headers (code, description, pending counts) and with peek_status.
// - the encoders, fed with numbers and text from the same bytes: the pull request is JSON with the values put in,
//   and a create subject from valid names is a valid subject.
#include <natsbus/protocol/consumer.hpp>
#include <natsbus/protocol/headers.hpp>
#include <natsbus/protocol/names.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace np = natsbus::protocol;

void check(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

bool same(const np::message_metadata& a, const np::message_metadata& b) {
  return a.domain == b.domain && a.account_hash == b.account_hash && a.stream == b.stream &&
         a.consumer == b.consumer && a.num_delivered == b.num_delivered && a.stream_sequence == b.stream_sequence &&
         a.consumer_sequence == b.consumer_sequence && a.timestamp_ns == b.timestamp_ns &&
         a.num_pending == b.num_pending && a.tail == b.tail;
}

bool has_leading_zero(std::string_view s) {
  for (std::size_t i = 0; i + 1 < s.size(); ++i) {
    const bool token_start = i == 0 || s[i - 1] == '.';
    if (token_start && s[i] == '0' && s[i + 1] >= '0' && s[i + 1] <= '9') return true;
  }
  return false;
}

// The plain reading of an ack subject, token by token, to hold the word-at-a-time parser to.
bool reference_parse(std::string_view s, np::message_metadata& m) {
  std::vector<std::string_view> t;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '.') {
      t.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  for (auto x : t)
    if (x.empty()) return false;
  if (t.size() < 9 || t.size() == 10 || t[0] != "$JS" || t[1] != "ACK") return false;
  std::size_t k = 2;
  if (t.size() >= 11) {
    m.domain = t[2] == "_" ? std::string_view() : t[2];
    m.account_hash = t[3];
    k = 4;
    if (t.size() > 11) m.tail = s.substr(static_cast<std::size_t>(t[11].data() - s.data()));
  }
  m.stream = t[k];
  m.consumer = t[k + 1];
  std::uint64_t v[5];
  for (std::size_t j = 0; j < 5; ++j) {
    const auto x = t[k + 2 + j];
    const auto r = std::from_chars(x.data(), x.data() + x.size(), v[j]);
    if (r.ec != std::errc{} || r.ptr != x.data() + x.size()) return false;
  }
  if (v[3] > static_cast<std::uint64_t>(INT64_MAX)) return false;
  m.num_delivered = v[0];
  m.stream_sequence = v[1];
  m.consumer_sequence = v[2];
  m.timestamp_ns = static_cast<std::int64_t>(v[3]);
  m.num_pending = v[4];
  return true;
}

void check_ack_subject(std::string_view subject) {
  np::message_metadata m;
  m.stream = "sentinel";
  np::message_metadata ref;
  const bool ref_ok = reference_parse(subject, ref);
  if (np::parse_ack_subject(subject, m)) {
    check(!ref_ok);
    check(m.stream == "sentinel" && m.num_pending == 0);
    return;
  }
  check(ref_ok && same(m, ref));
  for (auto v : {m.domain, m.account_hash, m.stream, m.consumer, m.tail}) check(inside(v, subject));
  check(!m.stream.empty() && !m.consumer.empty());
  check(m.timestamp_ns >= 0);
  check(m.tail.empty() || !m.account_hash.empty());
  std::string again;
  np::encode_ack_subject(again, m);
  np::message_metadata n;
  check(!np::parse_ack_subject(again, n));
  check(same(m, n));
  // "_" and "" both mean no domain, and the long form writes "_".
  if (!has_leading_zero(subject)) check(again == subject);
}

void check_status(std::string_view block) {
  np::pull_status_info s;
  s.code = -1;
  const natsbus::error_code ec = np::classify_pull_status(block, s);
  for (auto v : {s.description, s.last_consumer, s.last_stream, s.consumer_stalled}) check(inside(v, block));
  if (ec) {
    check(ec == natsbus::error::bad_header);
    check(s.kind == np::pull_status::message && s.code == 0 && s.description.empty());
    return;
  }
  check((s.kind == np::pull_status::message) == (s.code == 0));
  check(np::ends_pull_request(s) == (s.code != 0 && s.code != 100));
  if (np::is_fatal_for_consume(s)) check(np::ends_pull_request(s));
  check(!np::to_string(s.kind).empty());
  if (s.code == 0) return;  // a block without a status is not checked further, by design

  check(s.code >= 100 && s.code <= 999);
  check(np::peek_status(block) == s.code);
  natsbus::headers h;
  check(!np::decode_headers(block, h));
  check(h.status() == s.code && h.description() == s.description);
  std::uint64_t n = 0;
  const auto number = [&](std::string_view key, std::uint64_t got) {
    const auto v = h.get(key);
    if (!v) return got == 0;
    return !v->empty() && std::from_chars(v->data(), v->data() + v->size(), n).ptr == v->data() + v->size() &&
           n == got;
  };
  check(number("Nats-Pending-Messages", s.pending_messages));
  check(number("Nats-Pending-Bytes", s.pending_bytes));
  check(h.get("Nats-Last-Consumer").value_or("") == s.last_consumer);
  check(h.get("Nats-Last-Stream").value_or("") == s.last_stream);
  check(h.get("Nats-Consumer-Stalled").value_or("") == s.consumer_stalled);
}

std::int64_t take_i64(const std::uint8_t*& p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  p += sizeof v;
  return static_cast<std::int64_t>(v);
}

void check_pull_request(const std::uint8_t* p) {
  np::pull_request r;
  r.batch = take_i64(p);
  r.max_bytes = take_i64(p);
  r.expires = std::chrono::nanoseconds(take_i64(p));
  r.idle_heartbeat = std::chrono::nanoseconds(take_i64(p));
  r.no_wait = (*p & 1) != 0;
  std::string body;
  np::encode_pull_request(body, r);
  boost::system::error_code jec;
  const auto v = boost::json::parse(body, jec);
  check(!jec && v.is_object());
  const auto& o = v.as_object();
  check(o.at("batch").as_int64() == r.batch);
  const auto field = [&](std::string_view key, std::int64_t want) {
    const auto* f = o.if_contains(key);
    return want > 0 ? (f != nullptr && f->as_int64() == want) : f == nullptr;
  };
  check(field("max_bytes", r.max_bytes));
  check(field("expires", r.expires.count()));
  check(field("idle_heartbeat", r.idle_heartbeat.count()));
  check((o.if_contains("no_wait") != nullptr) == r.no_wait);
  check(o.size() == 1 + (r.max_bytes > 0) + (r.expires.count() > 0) + (r.idle_heartbeat.count() > 0) + r.no_wait);

  std::string_view problem = "x";
  const bool ok = !np::check_pull_request(r, problem);
  check(ok == problem.empty());

  std::string nak;
  np::encode_nak_with_delay(nak, r.expires);
  if (r.expires.count() > 0) {
    check(nak.starts_with("-NAK "));
    const auto d = boost::json::parse(std::string_view(nak).substr(5), jec);
    check(!jec && d.as_object().at("delay").as_int64() == r.expires.count());
  } else {
    check(nak == "-NAK");
  }
}

void check_text(std::string_view text) {
  int a = -1, b = -1, c = -1;
  if (np::parse_server_version(text, a, b, c)) {
    check(a >= 0 && b >= 0 && c >= 0);
  } else {
    check(a == -1 && b == -1 && c == -1);
  }
  // Three names from the text: stream, consumer and filter, split at the first two NULs.
  const auto first = text.find('\0');
  if (first == std::string_view::npos) return;
  const auto second = text.find('\0', first + 1);
  if (second == std::string_view::npos) return;
  const auto stream = text.substr(0, first);
  const auto name = text.substr(first + 1, second - first - 1);
  const auto filter = text.substr(second + 1);
  if (!np::is_valid_stream_name(stream)) return;
  const std::string subject = np::consumer_create_subject("$JS.API", stream, name, filter);
  check(subject.starts_with("$JS.API.CONSUMER.CREATE."));
  if (name.empty() || np::is_valid_stream_name(name)) check(np::is_valid_subscription_subject(subject));
  std::string term;
  np::encode_term_with_reason(term, filter);
  check(term == (filter.empty() ? std::string("+TERM") : "+TERM " + std::string(filter)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::vector<char> exact(data, data + size);
    const std::string_view v(exact.data(), size);
    check_ack_subject(v);
    check_status(v);
    check_text(v);
  }
  if (size == 0) return 0;
  const std::size_t split = data[0] % size;  // the first byte belongs to the subject when split > 0
  std::vector<char> subject(data + 1, data + 1 + (split > 0 ? split - 1 : 0));
  std::vector<char> block(data + 1 + subject.size(), data + size);
  check_ack_subject(std::string_view(subject.data(), subject.size()));
  check_status(std::string_view(block.data(), block.size()));
  if (size >= 1 + 4 * 8 + 1) check_pull_request(data + 1);
  return 0;
}
