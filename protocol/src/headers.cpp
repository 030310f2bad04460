#include <natsbus/protocol/headers.hpp>

#include "headers_detail.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace natsbus {
namespace {

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
// Whitespace, control characters and DEL: not allowed in a key.
constexpr bool is_ctl_or_space(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x21 || u == 0x7f;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

constexpr std::string_view version_line = "NATS/1.0";

}  // namespace

headers& headers::add(std::string_view key, std::string_view value) {
  entries_.emplace_back(std::string(key), std::string(value));
  return *this;
}

headers& headers::set(std::string_view key, std::string_view value) {
  // The first entry keeps its place (with the new spelling of the key); later ones go.
  auto first = std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return iequals(e.first, key); });
  if (first == entries_.end()) return add(key, value);
  first->first.assign(key);
  first->second.assign(value);
  entries_.erase(std::remove_if(std::next(first), entries_.end(), [&](const auto& e) { return iequals(e.first, key); }),
                 entries_.end());
  return *this;
}

std::size_t headers::erase(std::string_view key) {
  const auto before = entries_.size();
  entries_.erase(
      std::remove_if(entries_.begin(), entries_.end(), [&](const auto& e) { return iequals(e.first, key); }),
      entries_.end());
  return before - entries_.size();
}

std::optional<std::string_view> headers::get(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (iequals(k, key)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> headers::get_all(std::string_view key) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : entries_) {
    if (iequals(k, key)) out.emplace_back(v);
  }
  return out;
}

void headers::set_status(int code, std::string_view description) {
  status_ = code;
  description_.assign(description);
}

namespace protocol {
namespace {

// The status line after "NATS/1.0": blanks, then exactly three digits, then a blank or the end, then the
// description. An empty rest means no status.
bool parse_status_line(std::string_view rest, int& code, std::string_view& description) noexcept {
  code = 0;
  description = {};
  if (rest.empty()) return true;
  if (!is_blank(rest.front())) return false;  // "NATS/1.0x"
  rest = trim(rest);
  if (rest.empty()) return true;
  // Statuses are HTTP-like: 100 to 999.
  if (rest.size() < 3 || rest[0] < '1' || rest[0] > '9' || !is_digit(rest[1]) || !is_digit(rest[2])) return false;
  if (rest.size() > 3 && !is_blank(rest[3])) return false;  // "5033", "503x"
  code = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  description = trim(rest.substr(3));
  return true;
}

// The next line ending in CRLF from pos; a lone CR or LF inside it is malformed.
bool next_line(std::string_view block, std::size_t& pos, std::string_view& line) noexcept {
  // Nothing left: also keeps an empty view's null data away from memchr, which must not be given null.
  if (pos >= block.size()) return false;
  const char* start = block.data() + pos;
  const std::size_t left = block.size() - pos;
  const void* cr = std::memchr(start, '\r', left);
  if (cr == nullptr) return false;
  const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(cr) - start);
  if (len + 1 >= left || start[len + 1] != '\n') return false;
  if (std::memchr(start, '\n', len) != nullptr) return false;
  line = std::string_view(start, len);
  pos += len + 2;
  return true;
}

bool valid_key(std::string_view key) noexcept {
  return !key.empty() && std::none_of(key.begin(), key.end(), [](char c) { return is_ctl_or_space(c) || c == ':'; });
}

bool valid_value(std::string_view value) noexcept {
  return value.find_first_of("\r\n") == std::string_view::npos;
}

}  // namespace

error_code decode_headers(std::string_view block, headers& out) {
  out.clear();
  std::size_t pos = 0;
  std::string_view line;
  if (!next_line(block, pos, line)) return error::bad_header;
  if (line.substr(0, version_line.size()) != version_line) return error::bad_header;
  int code = 0;
  std::string_view description;
  if (!parse_status_line(line.substr(version_line.size()), code, description)) return error::bad_header;
  if (code != 0) out.set_status(code, description);

  while (true) {
    if (!next_line(block, pos, line)) return error::bad_header;  // no terminating empty line
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return error::bad_header;
    const auto key = line.substr(0, colon);
    if (!valid_key(key)) return error::bad_header;  // empty, or whitespace as in a folded line
    // Values are trimmed of surrounding blanks, as MIME readers do.
    out.add(key, trim(line.substr(colon + 1)));
  }
  if (pos != block.size()) return error::bad_header;  // bytes after the terminator
  return {};
}

std::size_t detail::encoded_headers_size(const headers& h) noexcept {
  if (h.status() != 0 && (h.status() < 100 || h.status() > 999)) return 0;
  if (!valid_value(h.description())) return 0;
  std::size_t n = version_line.size() + 2 + 2;
  if (h.status() != 0) n += 4 + (h.description().empty() ? 0 : 1 + h.description().size());
  for (const auto& [k, v] : h.entries()) {
    if (!valid_key(k) || !valid_value(v)) return 0;
    n += k.size() + 2 + v.size() + 2;
  }
  return n;
}

void detail::append_headers_unchecked(const headers& h, std::string& out) {
  out.append(version_line);
  if (h.status() != 0) {
    char code[3] = {static_cast<char>('0' + h.status() / 100), static_cast<char>('0' + h.status() / 10 % 10),
                    static_cast<char>('0' + h.status() % 10)};
    out.push_back(' ');
    out.append(code, 3);
    if (!h.description().empty()) {
      out.push_back(' ');
      out.append(h.description());
    }
  }
  out.append("\r\n");
  for (const auto& [k, v] : h.entries()) {
    out.append(k);
    out.append(": ");
    out.append(v);
    out.append("\r\n");
  }
  out.append("\r\n");
}

error_code encode_headers(const headers& h, std::string& out) {
  const std::size_t n = detail::encoded_headers_size(h);
  if (n == 0) return error::invalid_argument;
  out.reserve(out.size() + n);
  detail::append_headers_unchecked(h, out);
  return {};
}

int peek_status(std::string_view block) noexcept {
  if (block.substr(0, version_line.size()) != version_line) return 0;
  auto rest = block.substr(version_line.size());
  std::size_t i = 0;
  if (i >= rest.size() || !is_blank(rest[i])) return 0;
  while (i < rest.size() && is_blank(rest[i])) ++i;
  if (rest.size() - i < 4) return 0;  // three digits and what ends them
  if (rest[i] < '1' || rest[i] > '9' || !is_digit(rest[i + 1]) || !is_digit(rest[i + 2])) return 0;
  const char end = rest[i + 3];
  if (!is_blank(end) && end != '\r') return 0;
  return (rest[i] - '0') * 100 + (rest[i + 1] - '0') * 10 + (rest[i + 2] - '0');
}

}  // namespace protocol
namespace protocol {
namespace {
void append_field(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}
}  // namespace

error_code encode_publish_headers(const headers* caller, const publish_expectations& x, std::string& out) {
  out.clear();
  for (std::string_view v : {x.msg_id, x.expected_stream, x.expected_last_msg_id})
    if (v.find_first_of("\r\n") != std::string_view::npos) return error::invalid_argument;
  bool open = caller && !caller->empty();
  if (open) {
    if (auto ec = encode_headers(*caller, out)) {
      out.clear();
      return ec;
    }
    out.resize(out.size() - 2);  // reopen the block for the JetStream keys
  }
  auto field = [&](std::string_view key, std::string_view value) {
    if (!open) out.append("NATS/1.0\r\n");
    open = true;
    append_field(out, key, value);
  };
  auto number = [&](std::string_view key, std::uint64_t value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    (void)ec;
    field(key, std::string_view(buf, static_cast<std::size_t>(end - buf)));
  };
  if (!x.msg_id.empty()) field(jetstream_header::msg_id, x.msg_id);
  if (!x.expected_stream.empty()) field(jetstream_header::expected_stream, x.expected_stream);
  if (x.expected_last_seq) number(jetstream_header::expected_last_seq, *x.expected_last_seq);
  if (!x.expected_last_msg_id.empty()) field(jetstream_header::expected_last_msg_id, x.expected_last_msg_id);
  if (x.expected_last_subject_seq) number(jetstream_header::expected_last_subject_seq, *x.expected_last_subject_seq);
  if (open) out.append("\r\n");
  return {};
}
}  // namespace protocol

}  // namespace natsbus
