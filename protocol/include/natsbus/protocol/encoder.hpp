// Encoders append whole client-to-server frames to a buffer the caller owns. A frame is either appended whole
// or not at all: on a validation error nothing is written.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/protocol/headers.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace natsbus::protocol {

struct connect_fields {
  bool verbose = false;
  bool pedantic = false;
  bool tls_required = false;
  std::string name;
  std::string lang = "cpp";
  std::string version;
  int protocol = 1;
  bool headers = true;
  bool no_responders = true;
  bool echo = true;
  std::optional<std::string> user;
  std::optional<std::string> pass;
  std::optional<std::string> auth_token;
  std::optional<std::string> nkey;
  std::optional<std::string> sig;
  std::optional<std::string> jwt;
};

void encode_connect(std::string& out, const connect_fields& fields);

// Marks a call whose subject and reply the caller has already validated (or built itself): the encoder skips
// the subject checks, which otherwise run on every frame.
struct prechecked_t {
  explicit prechecked_t() = default;
};
inline constexpr prechecked_t prechecked{};

// PUB subject [reply] n\r\npayload\r\n
error_code encode_pub(std::string& out, std::string_view subject, std::string_view reply,
                      std::string_view payload);
// HPUB subject [reply] hdr_len total_len\r\nheader_block payload\r\n. header_block is an encoded block.
error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply,
                       std::string_view header_block, std::string_view payload);
// Same, encoding the headers.
error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply, const headers& h,
                       std::string_view payload);
// The same three, without the subject checks.
error_code encode_pub(std::string& out, std::string_view subject, std::string_view reply, std::string_view payload,
                      prechecked_t);
error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply,
                       std::string_view header_block, std::string_view payload, prechecked_t);
error_code encode_hpub(std::string& out, std::string_view subject, std::string_view reply, const headers& h,
                       std::string_view payload, prechecked_t);
// PUB, or HPUB when `h` holds headers: the frame of a publish (subjects already checked).
error_code encode_publish(std::string& out, std::string_view subject, std::string_view reply, const headers* h,
                          std::string_view payload, prechecked_t);
// SUB subject [queue] sid\r\n
error_code encode_sub(std::string& out, std::string_view subject, std::string_view queue_group,
                      std::uint64_t sid);
// UNSUB sid [max]\r\n
void encode_unsub(std::string& out, std::uint64_t sid, std::optional<std::uint64_t> max_msgs = std::nullopt);
void encode_ping(std::string& out);
void encode_pong(std::string& out);

}  // namespace natsbus::protocol
