#include <natsbus/protocol/encoder.hpp>
#include <natsbus/protocol/subject.hpp>

#include "headers_detail.hpp"
#include "json_text.hpp"

#include <charconv>
#include <cstring>

namespace natsbus::protocol {
namespace {

constexpr std::string_view crlf = "\r\n";

// A decimal number in a small stack buffer; the hot path formats sizes with this and appends the view.
struct decimal {
  char buf[20];
  std::size_t len;
  explicit decimal(std::uint64_t v) noexcept {
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    len = static_cast<std::size_t>(r.ptr - buf);
  }
  [[nodiscard]] std::string_view view() const noexcept { return {buf, len}; }
};

error_code check_pub_subjects(std::string_view subject, std::string_view reply) noexcept {
  if (!is_valid_publish_subject(subject)) return error::invalid_subject;
  if (!reply.empty() && !is_valid_publish_subject(reply)) return error::invalid_subject;
  return {};
}

// "<op> subject [reply] " — the caller appends the sizes.
void append_pub_prefix(std::string& out, std::string_view op, std::string_view subject, std::string_view reply) {
  out.append(op);
  out.append(subject);
  out.push_back(' ');
  if (!reply.empty()) {
    out.append(reply);
    out.push_back(' ');
  }
}

void append_json_field(std::string& out, std::string_view key, std::string_view value) {
  out.push_back(',');
  append_json_string(out, key);
  out.push_back(':');
  append_json_string(out, value);
}

void append_json_field(std::string& out, std::string_view key, bool value) {
  out.push_back(',');
  append_json_string(out, key);
  out.append(value ? ":true" : ":false");
}

}  // namespace

void encode_connect(std::string& out, const connect_fields& f) {
  out.append("CONNECT {\"verbose\":");
  out.append(f.verbose ? "true" : "false");
  append_json_field(out, "pedantic", f.pedantic);
  append_json_field(out, "tls_required", f.tls_required);
  if (!f.name.empty()) append_json_field(out, "name", f.name);
  append_json_field(out, "lang", f.lang);
  append_json_field(out, "version", f.version);
  out.append(",\"protocol\":");
  out.append(decimal(static_cast<std::uint64_t>(f.protocol < 0 ? 0 : f.protocol)).view());
  append_json_field(out, "echo", f.echo);
  append_json_field(out, "headers", f.headers);
  append_json_field(out, "no_responders", f.no_responders);
  // Credentials only when set: the server treats a present but empty field as an attempt to use it.
  if (f.user) append_json_field(out, "user", *f.user);
  if (f.pass) append_json_field(out, "pass", *f.pass);
  if (f.auth_token) append_json_field(out, "auth_token", *f.auth_token);
  if (f.jwt) append_json_field(out, "jwt", *f.jwt);
  if (f.nkey) append_json_field(out, "nkey", *f.nkey);
  if (f.sig) append_json_field(out, "sig", *f.sig);
  out.append("}\r\n");
}

error_code encode_pub(std::string& out, std::string_view subject, std::string_view reply, std::string_view payload) {
  if (auto ec = check_pub_subjects(subject, reply)) return ec;
  return encode_pub(out, subject, reply, payload, prechecked);
}

error_code encode_pub(std::string& out, std::string_view subject, std::string_view reply, std::string_view payload,
                      prechecked_t) {
  // The hot path of every publish: one size computation, one resize, then plain copies.
  const decimal size(payload.size());
  const std::size_t at = out.size();
  out.resize(at + 4 + subject.size() + 1 + (reply.empty() ? 0 : reply.size() + 1) + size.len + 2 + payload.size() + 2);
  char* p = out.data() + at;
  auto put = [&p](std::string_view v) noexcept {
    if (v.empty()) return;  // an empty view may have no data pointer, which memcpy must not get
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  };
  put("PUB ");
  put(subject);
  *p++ = ' ';
  if (!reply.empty()) {
    put(reply);
    *p++ = ' ';
  }
  put(size.view());
  put(crlf);
  put(payload);
  put(crlf);
  return {};
}

error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply,
                       std::string_view header_block, std::string_view payload) {
  if (auto ec = check_pub_subjects(subject, reply)) return ec;
  return encode_hpub(out, subject, reply, header_block, payload, prechecked);
}

error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply,
                       std::string_view header_block, std::string_view payload, prechecked_t) {
  // Cheap framing check: the server parses the block, and a bad one costs the connection.
  if (header_block.size() < 12 || header_block.substr(0, 8) != "NATS/1.0" ||
      header_block.substr(header_block.size() - 4) != "\r\n\r\n") {
    return error::invalid_argument;
  }
  const decimal hdr(header_block.size());
  const decimal total(header_block.size() + payload.size());
  out.reserve(out.size() + 5 + subject.size() + 1 + (reply.empty() ? 0 : reply.size() + 1) + hdr.len + 1 +
              total.len + 2 + header_block.size() + payload.size() + 2);
  append_pub_prefix(out, "HPUB ", subject, reply);
  out.append(hdr.view());
  out.push_back(' ');
  out.append(total.view());
  out.append(crlf);
  out.append(header_block);
  out.append(payload);
  out.append(crlf);
  return {};
}

error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply, const headers& h,
                       std::string_view payload) {
  if (auto ec = check_pub_subjects(subject, reply)) return ec;
  return encode_hpub(out, subject, reply, h, payload, prechecked);
}

error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply, const headers& h,
                       std::string_view payload, prechecked_t) {
  const std::size_t block_size = detail::encoded_headers_size(h);
  if (block_size == 0) return error::invalid_argument;
  const decimal hdr(block_size);
  const decimal total(block_size + payload.size());
  out.reserve(out.size() + 5 + subject.size() + 1 + (reply.empty() ? 0 : reply.size() + 1) + hdr.len + 1 +
              total.len + 2 + block_size + payload.size() + 2);
  append_pub_prefix(out, "HPUB ", subject, reply);
  out.append(hdr.view());
  out.push_back(' ');
  out.append(total.view());
  out.append(crlf);
  detail::append_headers_unchecked(h, out);
  out.append(payload);
  out.append(crlf);
  return {};
}

error_code encode_publish(std::string& out, std::string_view subject, std::string_view reply, const headers* h,
                          std::string_view payload, prechecked_t) {
  return h && !h->empty() ? encode_hpub(out, subject, reply, *h, payload, prechecked)
                          : encode_pub(out, subject, reply, payload, prechecked);
}

error_code encode_sub(std::string& out, std::string_view subject, std::string_view queue_group, std::uint64_t sid) {
  if (!is_valid_subscription_subject(subject)) return error::invalid_subject;
  if (!queue_group.empty() && !is_valid_queue_group(queue_group)) return error::invalid_queue_group;
  append_pub_prefix(out, "SUB ", subject, queue_group);
  out.append(decimal(sid).view());
  out.append(crlf);
  return {};
}

void encode_unsub(std::string& out, std::uint64_t sid, std::optional<std::uint64_t> max_msgs) {
  out.append("UNSUB ");
  out.append(decimal(sid).view());
  if (max_msgs) {
    out.push_back(' ');
    out.append(decimal(*max_msgs).view());
  }
  out.append(crlf);
}

void encode_ping(std::string& out) { out.append("PING\r\n"); }
void encode_pong(std::string& out) { out.append("PONG\r\n"); }

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

}  // namespace natsbus::protocol
