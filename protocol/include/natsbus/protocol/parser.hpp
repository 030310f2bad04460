// Incremental, zero-copy parser for the server-to-client side of the NATS protocol.
//
// The caller owns the bytes. It offers everything it has not consumed yet; the parser returns at most one
// event per call, whose views point into those bytes, and says how many bytes the event used. When the input
// holds no complete frame the parser returns nothing and consumes nothing: the caller reads more, appends, and
// offers the same bytes again. So any split of the input gives the same events.
//
// Limits are checked on the bytes seen so far, before the caller would have to buffer more: a control line
// with no CRLF within max_control_line, or a frame whose declared size is over max_payload + payload_slack,
// is an error at once. INFO, whose JSON grows with the cluster (connect_urls), is bounded by
// max(max_control_line, max_payload) instead. After an error the parser stays failed.
#pragma once

#include <natsbus/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace natsbus::protocol {

enum class op : std::uint8_t { info, msg, hmsg, ping, pong, ok, err };

struct event {
  op kind{};
  std::string_view subject;   // MSG/HMSG
  std::string_view reply;     // MSG/HMSG, empty when absent
  std::uint64_t sid = 0;      // MSG/HMSG
  std::string_view headers;   // HMSG: the raw header block (NATS/1.0 ... CRLF CRLF); empty for MSG
  std::string_view payload;   // MSG/HMSG: the body after the headers; INFO: the JSON; -ERR: the text unquoted
};

struct parser_limits {
  std::size_t max_control_line = 4096;
  std::size_t max_payload = 1024 * 1024;  // the server's max_payload, updated from INFO
  std::size_t payload_slack = 64 * 1024;  // headers and JetStream overhead above max_payload
};

class parser {
 public:
  parser() = default;
  explicit parser(parser_limits limits) : limits_(limits) {}

  // Returns the next event in `input`, or nothing when `input` holds no complete frame (then consumed() is 0)
  // or on error (then ec is set and the parser is failed).
  [[nodiscard]] std::optional<event> next(std::string_view input, error_code& ec);

  // Bytes used by the event last returned by next().
  [[nodiscard]] std::size_t consumed() const noexcept { return consumed_; }

  // The largest frame a caller may have to buffer: control line, payload limit and CRLF.
  [[nodiscard]] std::size_t max_frame_size() const noexcept {
    return limits_.max_control_line + limits_.max_payload + limits_.payload_slack + 2;
  }

  void set_max_payload(std::size_t n) noexcept { limits_.max_payload = n; }
  [[nodiscard]] const parser_limits& limits() const noexcept { return limits_; }
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  void reset() noexcept;  // for a new connection

 private:
  parser_limits limits_{};
  std::size_t consumed_ = 0;
  bool failed_ = false;
  error_code error_{};
  // When a MSG/HMSG control line has been parsed but its payload is incomplete, its parse is kept so a large
  // payload arriving in many reads does not rescan the line each time.
  struct pending_frame {
    std::size_t line_len = 0;  // control line including CRLF
    event ev{};
    std::size_t header_len = 0;
    std::size_t total_len = 0;
    std::size_t subject_off = 0, subject_len = 0, reply_off = 0, reply_len = 0;
  };
  std::optional<pending_frame> pending_{};
};

// What an -ERR's text means: permissions_violation (the connection stays up), authorization_violation,
// authentication_expired, stale_connection, max_payload_exceeded, or server_error for any other text (after which
// the server closes the connection). Case-insensitive on the text's start, as servers have varied its case.
[[nodiscard]] error_code classify_server_error(std::string_view text) noexcept;

}  // namespace natsbus::protocol
