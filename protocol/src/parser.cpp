// Server-to-client framing. Rules beyond the header's contract:
// - Lines end in CRLF; a bare LF is a protocol violation (the server never sends one).
// - Operation names are case-insensitive; arguments are separated by runs of spaces and tabs.
// - INFO is bounded by max(max_control_line, max_payload), not max_control_line: see next().
#include <natsbus/protocol/parser.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>

namespace natsbus::protocol {
namespace {

constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }
constexpr char to_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c; }

enum class match { need_more, unknown, found };

// Compares the bytes present with an operation name, case-insensitively. A name must be followed by a blank
// (operations with arguments) or may also be followed by the end of the line (operations without), so that
// "MSGX" or "PINGS" is not taken for MSG or PING. Decides on the first byte that cannot belong to the name.
match match_name(std::string_view in, std::string_view name, bool needs_args) noexcept {
  const std::size_t n = std::min(in.size(), name.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (to_upper(in[i]) != name[i]) return match::unknown;
  }
  if (in.size() <= name.size()) return match::need_more;
  const char d = in[name.size()];
  if (is_blank(d)) return match::found;
  if (!needs_args && (d == '\r' || d == '\n')) return match::found;
  return match::unknown;
}

struct op_name {
  match result = match::unknown;
  op kind{};
  std::size_t length = 0;
};

op_name match_op(std::string_view in) noexcept {
  auto try_name = [&](std::string_view name, op kind, bool needs_args) {
    return op_name{match_name(in, name, needs_args), kind, name.size()};
  };
  switch (to_upper(in[0])) {
    case 'M': return try_name("MSG", op::msg, true);
    case 'H': return try_name("HMSG", op::hmsg, true);
    case 'I': return try_name("INFO", op::info, true);
    case '+': return try_name("+OK", op::ok, false);
    case '-': return try_name("-ERR", op::err, false);
    case 'P': {
      auto r = try_name("PING", op::ping, false);
      if (r.result != match::unknown) return r;
      return try_name("PONG", op::pong, false);
    }
    default: return {};
  }
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// The first space or tab in [p, end), eight bytes at a time: subjects are most of a control line.
const char* find_blank(const char* p, const char* end) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto has_zero_byte = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    const std::uint64_t found = has_zero_byte(w ^ (ones * ' ')) | has_zero_byte(w ^ (ones * '\t'));
    if (found != 0) {
      // The lowest flagged byte is exact (borrows only run upwards from a true match).
      if constexpr (std::endian::native == std::endian::little) return p + std::countr_zero(found) / 8;
      break;
    }
    p += 8;
  }
  while (p != end && !is_blank(*p)) ++p;
  return p;
}

// Splits on runs of blanks. Returns the number of arguments, or N + 1 when there are more than N.
template <std::size_t N>
std::size_t split_args(std::string_view s, std::string_view (&out)[N]) noexcept {
  std::size_t count = 0;
  const char* p = s.data();
  const char* const end = p + s.size();
  while (true) {
    while (p != end && is_blank(*p)) ++p;
    if (p == end) return count;
    const char* start = p;
    p = find_blank(p, end);
    if (count == N) return N + 1;
    out[count++] = std::string_view(start, static_cast<std::size_t>(p - start));
  }
}

// A size field, checked against the limit here, before anyone buffers the frame. Returns error{} (zero) on
// success. Sizes are parsed as 64-bit and compared before any narrowing, so 4294967299 never becomes 3.
error parse_size(std::string_view s, std::size_t limit, std::size_t& out) noexcept {
  if (s.empty() || s.front() == '-') return error::invalid_size;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return error::invalid_size;  // junk or > 2^64-1
  if (v > limit) return error::payload_too_large;
  out = static_cast<std::size_t>(v);
  return error{};
}

bool parse_sid(std::string_view s, std::uint64_t& out) noexcept {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && ptr == s.data() + s.size();
}

enum class body { incomplete, missing_crlf, complete };

// Whether the CRLF after a body ending at body_end is there. A wrong byte is an error as soon as it arrives.
body body_state(std::string_view in, std::size_t body_end) noexcept {
  if (in.size() <= body_end) return body::incomplete;
  if (in[body_end] != '\r') return body::missing_crlf;
  if (in.size() == body_end + 1) return body::incomplete;
  return in[body_end + 1] == '\n' ? body::complete : body::missing_crlf;
}

}  // namespace

void parser::reset() noexcept {
  consumed_ = 0;
  failed_ = false;
  error_ = {};
  pending_.reset();
}

std::optional<event> parser::next(std::string_view in, error_code& ec) {
  // Every path returns this one object, so the event is built in place in the caller's slot (this is the hot
  // path: copying a finished event costs about as much as building it).
  std::optional<event> result;
  consumed_ = 0;
  if (failed_) {
    ec = error_;
    return result;
  }
  auto fail = [&](error e) {
    failed_ = true;
    error_ = e;
    ec = error_;
    pending_.reset();
  };

  if (pending_) {
    // The control line was parsed on an earlier call. Views are re-derived from offsets because the caller may
    // have moved its bytes since.
    const pending_frame& f = *pending_;
    const std::size_t body_end = f.line_len + f.total_len;
    switch (body_state(in, body_end)) {
      case body::incomplete: return result;
      case body::missing_crlf: fail(error::missing_crlf); return result;
      case body::complete: break;
    }
    const char* base = in.data();
    event& ev = result.emplace();
    ev.kind = f.ev.kind;
    ev.sid = f.ev.sid;
    ev.subject = std::string_view(base + f.subject_off, f.subject_len);
    ev.reply = std::string_view(base + f.reply_off, f.reply_len);
    ev.headers = std::string_view(base + f.line_len, f.header_len);
    ev.payload = std::string_view(base + f.line_len + f.header_len, f.total_len - f.header_len);
    consumed_ = body_end + 2;
    pending_.reset();
    return result;
  }
  if (in.empty()) return result;

  const op_name name = match_op(in);
  if (name.result == match::unknown) {
    fail(error::unknown_operation);
    return result;
  }
  if (name.result == match::need_more) return result;

  // INFO carries the server's JSON, which outgrows the control line limit in large clusters (connect_urls), so
  // it is bounded by max_payload instead: a size the caller must be able to buffer anyway.
  const std::size_t line_limit =
      name.kind == op::info ? std::max(limits_.max_control_line, limits_.max_payload) : limits_.max_control_line;
  const std::size_t scan = std::min(in.size(), line_limit + 2);
  const void* nl = std::memchr(in.data(), '\n', scan);
  if (nl == nullptr) {
    // line_limit bytes and a CR may still be a valid line; anything more without LF is not.
    if (in.size() > line_limit + 1 || (in.size() == line_limit + 1 && in[line_limit] != '\r')) {
      fail(error::control_line_too_long);
    }
    return result;
  }
  const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(nl) - in.data());
  if (lf <= name.length || in[lf - 1] != '\r') {
    fail(error::protocol_violation);
    return result;
  }
  const std::size_t line_len = lf + 1;
  const std::string_view args(in.data() + name.length, lf - 1 - name.length);

  switch (name.kind) {
    case op::ping:
    case op::pong:
    case op::ok:
      if (!trim(args).empty()) {
        fail(error::protocol_violation);
        return result;
      }
      result.emplace().kind = name.kind;
      consumed_ = line_len;
      return result;
    case op::info: {
      event& ev = result.emplace();
      ev.kind = name.kind;
      ev.payload = trim(args);
      consumed_ = line_len;
      return result;
    }
    case op::err: {
      auto text = trim(args);
      if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'') text = text.substr(1, text.size() - 2);
      event& ev = result.emplace();
      ev.kind = name.kind;
      ev.payload = text;
      consumed_ = line_len;
      return result;
    }
    case op::msg:
    case op::hmsg: break;
  }

  // MSG <subject> <sid> [reply] <#bytes>
  // HMSG <subject> <sid> [reply] <#header bytes> <#total bytes>
  std::string_view a[5];
  const std::size_t n = split_args(args, a);
  const bool hmsg = name.kind == op::hmsg;
  const std::size_t sizes = hmsg ? 2 : 1;
  if (n != 2 + sizes && n != 3 + sizes) {
    fail(error::protocol_violation);
    return result;
  }

  const std::size_t limit = limits_.max_payload + limits_.payload_slack;
  std::size_t header_len = 0;
  std::size_t total_len = 0;
  error e{};
  if (hmsg) {
    e = parse_size(a[n - 2], limit, header_len);
    if (e == error{}) e = parse_size(a[n - 1], limit, total_len);
    if (e == error{} && header_len > total_len) e = error::invalid_size;
  } else {
    e = parse_size(a[n - 1], limit, total_len);
  }
  std::uint64_t sid = 0;
  if (e == error{} && !parse_sid(a[1], sid)) e = error::protocol_violation;
  if (e != error{}) {
    fail(e);
    return result;
  }
  const std::string_view reply = n == 3 + sizes ? a[2] : std::string_view{};

  const std::size_t body_end = line_len + total_len;
  switch (body_state(in, body_end)) {
    case body::incomplete: {
      pending_ = pending_frame{};
      pending_frame& f = *pending_;
      f.line_len = line_len;
      f.ev.kind = name.kind;
      f.ev.sid = sid;
      f.header_len = header_len;
      f.total_len = total_len;
      f.subject_off = static_cast<std::size_t>(a[0].data() - in.data());
      f.subject_len = a[0].size();
      f.reply_off = reply.empty() ? 0 : static_cast<std::size_t>(reply.data() - in.data());
      f.reply_len = reply.size();
      return result;
    }
    case body::missing_crlf: fail(error::missing_crlf); return result;
    case body::complete: break;
  }
  event& ev = result.emplace();
  ev.kind = name.kind;
  ev.sid = sid;
  ev.subject = a[0];
  ev.reply = reply;
  ev.headers = std::string_view(in.data() + line_len, header_len);
  ev.payload = std::string_view(in.data() + line_len + header_len, total_len - header_len);
  consumed_ = body_end + 2;
  return result;
}

namespace {
bool iequals_prefix(std::string_view text, std::string_view prefix) noexcept {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = text[i], b = prefix[i];
    if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
    if (b >= 'A' && b <= 'Z') b = static_cast<char>(b - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}
}  // namespace

error_code classify_server_error(std::string_view text) noexcept {
  // The server quotes the text: 'Authorization Violation'.
  if (!text.empty() && text.front() == '\'') text.remove_prefix(1);
  if (iequals_prefix(text, "Permissions Violation")) return error::permissions_violation;
  if (iequals_prefix(text, "Authorization Violation")) return error::authorization_violation;
  if (iequals_prefix(text, "User Authentication Expired")) return error::authentication_expired;
  if (iequals_prefix(text, "Stale Connection")) return error::stale_connection;
  if (iequals_prefix(text, "Maximum Payload")) return error::max_payload_exceeded;
  return error::server_error;
}

}  // namespace natsbus::protocol
