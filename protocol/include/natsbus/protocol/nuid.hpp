// NUID-style identifiers: 22 base-62 characters, a 12-character random prefix from the OS's entropy and a
// 10-character sequence that advances by a random increment. Fast (no syscall per id) and unique across
// processes. One generator per thread or per owner; it is not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace natsbus::protocol {

class nuid {
 public:
  static constexpr std::size_t prefix_length = 12;
  static constexpr std::size_t sequence_length = 10;
  static constexpr std::size_t length = prefix_length + sequence_length;

  nuid();
  // Writes the next id into out (length characters, not terminated).
  void next(char* out);
  [[nodiscard]] std::string next();
  void randomize_prefix();

 private:
  void reset_sequence();
  std::array<char, prefix_length> prefix_{};
  std::uint64_t seq_ = 0;
  std::uint64_t inc_ = 0;
};

// A new inbox "<prefix>.<nuid>": the first tokens of one owner's reply subjects (a connection's requests, a
// JetStream context's acknowledgements).
[[nodiscard]] std::string new_inbox(std::string_view prefix = "_INBOX");

}  // namespace natsbus::protocol
