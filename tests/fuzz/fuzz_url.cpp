// Server URLs on arbitrary text (protocol/url.hpp): no crash; a URL that parses names a known scheme, a host
// and a port, keeps its credentials out of the redacted form, and that redacted form parses back to the same
// server. Every prefix of the input is parsed too, each in a buffer of its own exact size. The inbox prefix and
// stream name rules get the same text.
#include <natsbus/protocol/names.hpp>
#include <natsbus/protocol/subject.hpp>
#include <natsbus/protocol/url.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace np = natsbus::protocol;

constexpr std::size_t max_prefix_input = 4096;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_url(std::string_view text) {
  np::server_address a;
  if (np::parse_server_url(text, a)) return;
  check(a.scheme == "nats" || a.scheme == "tls" || a.scheme == "ws" || a.scheme == "wss");
  check(!a.host.empty() && a.port != 0);
  // Credentials come as a user with a password or as a token, never both.
  check(a.token.empty() || (a.user.empty() && a.password.empty()));
  const bool has_credentials = !a.user.empty() || !a.password.empty() || !a.token.empty();
  const std::string head = a.scheme + "://";
  check(a.redacted.starts_with(head));
  check(a.redacted.ends_with(":" + std::to_string(a.port)));
  if (has_credentials) check(a.redacted.compare(head.size(), 4, "***@") == 0);

  // The redacted form is itself a URL of the same server, with "***" for a token when there were credentials.
  np::server_address b;
  check(!np::parse_server_url(a.redacted, b));
  check(b.scheme == a.scheme && b.host == a.host && b.port == a.port && b.redacted == a.redacted);
  check(b.user.empty() && b.password.empty());
  check(b.token == (a.redacted.compare(head.size(), 4, "***@") == 0 ? "***" : ""));
}

void check_text(std::string_view text) {
  check_url(text);
  // A valid inbox prefix is a short publish subject; a valid stream name is one subject token.
  if (np::valid_inbox_prefix(text)) check(text.size() <= np::max_inbox_prefix && np::is_valid_publish_subject(text));
  if (np::is_valid_stream_name(text)) {
    check(text.size() <= np::max_stream_name && np::is_valid_publish_subject(text));
    check(text.find_first_of("./\\*>") == std::string_view::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_text(std::string_view(reinterpret_cast<const char*>(data), size));
  if (size > max_prefix_input) return 0;
  for (std::size_t n = 0; n < size; ++n) {
    std::vector<char> prefix(data, data + n);
    check_text(std::string_view(prefix.data(), n));
  }
  return 0;
}
