// NATS/1.0 header blocks: "NATS/1.0[ <status>[ <description>]]\r\n(Key: Value\r\n)*\r\n".
// Keys keep the case they were written in and are looked up case-insensitively; a key may repeat.
// Header bytes come end to end from any publisher, so decoding treats them as hostile.
#pragma once

#include <natsbus/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace natsbus {

namespace status {
inline constexpr int control = 100;       // idle heartbeat, flow control
inline constexpr int bad_request = 400;
inline constexpr int not_found = 404;
inline constexpr int request_timeout = 408;
inline constexpr int conflict = 409;
inline constexpr int no_responders = 503;
}  // namespace status

class headers {
 public:
  headers() = default;

  // Appends a value; an existing key keeps its values.
  headers& add(std::string_view key, std::string_view value);
  // Replaces every value of key with one.
  headers& set(std::string_view key, std::string_view value);
  // Removes every value of key. Returns how many were removed.
  std::size_t erase(std::string_view key);
  // Removes every entry and the status, keeping the storage for the next use.
  void clear() noexcept {
    entries_.clear();
    status_ = 0;
    description_.clear();
  }

  // The first value of key, compared case-insensitively.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const;
  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view key) const;
  [[nodiscard]] bool contains(std::string_view key) const { return get(key).has_value(); }

  [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& entries() const noexcept { return entries_; }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty() && status_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  // Status line: 0 when absent.
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] std::string_view description() const noexcept { return description_; }
  void set_status(int code, std::string_view description = {});

  friend bool operator==(const headers&, const headers&) = default;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  int status_ = 0;
  std::string description_;
};

namespace protocol {

// Decodes a whole header block (as found in an HMSG). An error leaves `out` unspecified.
error_code decode_headers(std::string_view block, headers& out);

// Appends the block for `h` (with the terminating empty line) to out. Keys and values with CR, LF or, for
// keys, ':' or whitespace are rejected with invalid_argument and nothing is appended.
error_code encode_headers(const headers& h, std::string& out);

// The headers JetStream reads on a publish: deduplication and optimistic-concurrency expectations.
namespace jetstream_header {
inline constexpr std::string_view msg_id = "Nats-Msg-Id";
inline constexpr std::string_view expected_stream = "Nats-Expected-Stream";
inline constexpr std::string_view expected_last_seq = "Nats-Expected-Last-Sequence";
inline constexpr std::string_view expected_last_msg_id = "Nats-Expected-Last-Msg-Id";
inline constexpr std::string_view expected_last_subject_seq = "Nats-Expected-Last-Subject-Sequence";
}  // namespace jetstream_header

struct publish_expectations {
  std::string_view msg_id;
  std::string_view expected_stream;
  std::optional<std::uint64_t> expected_last_seq;
  std::string_view expected_last_msg_id;
  std::optional<std::uint64_t> expected_last_subject_seq;
};

// The header block of a JetStream publish, written into `out` (cleared first): the caller's headers, then
// Nats-Msg-Id and the Nats-Expected-* keys that are set. `out` stays empty when there is nothing to send (a
// PUB, not an HPUB). A value with CR or LF is invalid_argument, and a bad caller header is bad_header.
error_code encode_publish_headers(const headers* caller, const publish_expectations& x, std::string& out);

// Only the status code and description of a header block, without building a map: the fast path for
// JetStream acks and 503 replies. Returns 0 when there is no status.
[[nodiscard]] int peek_status(std::string_view block) noexcept;

}  // namespace protocol
}  // namespace natsbus
