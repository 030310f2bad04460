#include <natsbus/protocol/subject.hpp>
#include <natsbus/protocol/url.hpp>

#include <boost/url/parse.hpp>

#include <charconv>

namespace natsbus::protocol {

error_code parse_server_url(std::string_view url, server_address& out) {
  std::string text(url);
  if (text.find("://") == std::string::npos) text = "nats://" + text;
  auto r = boost::urls::parse_uri(text);
  if (!r) return error::invalid_url;
  const auto& u = *r;
  out = server_address{};
  out.scheme = std::string(u.scheme());
  if (out.scheme != "nats" && out.scheme != "tls" && out.scheme != "ws" && out.scheme != "wss")
    return error::invalid_url;
  out.host = std::string(u.encoded_host());
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  if (out.host.empty()) return error::invalid_url;
  if (u.has_port()) {
    auto p = u.port();
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc{} || ptr != p.data() + p.size() || v == 0 || v > 65535) return error::invalid_url;
    out.port = static_cast<std::uint16_t>(v);
  } else {
    out.port = (out.scheme == "ws") ? 80 : (out.scheme == "wss") ? 443 : 4222;
  }
  if (u.has_userinfo()) {
    if (u.has_password()) {
      out.user = std::string(u.user());
      out.password = std::string(u.password());
    } else {
      out.token = std::string(u.user());  // nats://token@host
    }
  }
  if (!u.encoded_path().empty()) out.path = std::string(u.encoded_path());
  if (u.has_query()) out.path += "?" + std::string(u.encoded_query());
  if (out.path.front() != '/') return error::invalid_url;
  out.redacted = out.scheme + "://" + (u.has_userinfo() ? "***@" : "") + std::string(u.encoded_host()) + ":" +
                 std::to_string(out.port);
  return {};
}

bool is_ip_literal(std::string_view host) noexcept {
  if (host.find(':') != std::string_view::npos) return true;  // only IPv6 literals have colons in a host
  int parts = 0, digits = 0;
  for (char c : host) {
    if (c == '.') {
      if (digits == 0) return false;
      ++parts;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return digits > 0 && parts == 3;
}

bool valid_inbox_prefix(std::string_view prefix) noexcept {
  return prefix.size() <= max_inbox_prefix && is_valid_publish_subject(prefix);
}

}  // namespace natsbus::protocol
