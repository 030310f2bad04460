#include <natsbus/protocol/envelope.hpp>

#include <charconv>

namespace natsbus::protocol {

namespace {

bool is_token(std::string_view s) noexcept {
  if (s.empty() || s.size() > 256) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) noexcept {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

int days_in(int year, int month) noexcept {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

error_code field_error(std::string& why, std::string_view field, std::string_view problem) {
  why = std::string(field) + ": " + std::string(problem);
  return error::invalid_argument;
}

}  // namespace

bool is_rfc3339(std::string_view s) noexcept {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo) || h > 23 || mi > 59 || se > 60) return false;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    const std::size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i == s.size()) return false;
  if (s[i] == 'Z' || s[i] == 'z') return i + 1 == s.size();
  if (s[i] != '+' && s[i] != '-') return false;
  int oh, om;
  return i + 6 == s.size() && digits(s, i + 1, 2, oh) && s[i + 3] == ':' && digits(s, i + 4, 2, om) && oh < 24 &&
         om < 60;
}

error_code check_envelope(const envelope_fields& e, std::string& why) {
  if (!is_token(e.event_id)) return field_error(why, "event_id", "required, 1-256 printable characters, no spaces");
  if (!is_token(e.event_type)) return field_error(why, "event_type", "required, 1-256 printable characters, no spaces");
  if (e.version < 1) return field_error(why, "version", "must be 1 or more");
  if (!is_rfc3339(e.time)) return field_error(why, "time", "must be an RFC 3339 date-time, got '" + e.time + "'");
  const std::pair<std::string_view, const std::string*> optional[] = {{"aggregate_id", &e.aggregate_id},
                                                                      {"trace_id", &e.trace_id},
                                                                      {"correlation_id", &e.correlation_id},
                                                                      {"tenant", &e.tenant}};
  for (const auto& [name, value] : optional)
    if (!value->empty() && !is_token(*value))
      return field_error(why, name, "1-256 printable characters, no spaces");
  return {};
}

error_code encode_envelope(const envelope_fields& e, headers& out, std::string& why) {
  if (auto ec = check_envelope(e, why)) return ec;
  out.set(envelope_id_header, e.event_id);
  out.set(envelope_type_header, e.event_type);
  out.set(envelope_version_header, std::to_string(e.version));
  out.set(envelope_time_header, e.time);
  if (!e.aggregate_id.empty()) out.set(envelope_aggregate_header, e.aggregate_id);
  if (!e.trace_id.empty()) out.set(envelope_trace_header, e.trace_id);
  if (!e.correlation_id.empty()) out.set(envelope_correlation_header, e.correlation_id);
  if (!e.tenant.empty()) out.set(envelope_tenant_header, e.tenant);
  return {};
}

error_code decode_envelope(const headers& in, envelope_fields& out, std::string& why) {
  out = envelope_fields{};
  auto get = [&](std::string_view name, std::string& to) {
    if (auto v = in.get(name)) to.assign(*v);
  };
  get(envelope_id_header, out.event_id);
  get(envelope_type_header, out.event_type);
  get(envelope_time_header, out.time);
  get(envelope_aggregate_header, out.aggregate_id);
  get(envelope_trace_header, out.trace_id);
  get(envelope_correlation_header, out.correlation_id);
  get(envelope_tenant_header, out.tenant);
  auto version = in.get(envelope_version_header);
  if (!version) return field_error(why, "version", "missing");
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(version->data(), version->data() + version->size(), v);
  if (ec != std::errc{} || p != version->data() + version->size() || version->empty())
    return field_error(why, "version", "not a number: '" + std::string(*version) + "'");
  out.version = v;
  return check_envelope(out, why);
}

}  // namespace natsbus::protocol
