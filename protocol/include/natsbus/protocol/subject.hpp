// Subject validation. Tokens are separated by '.', may not be empty, and hold no whitespace or control
// characters. Publish subjects have no wildcards; subscription patterns allow '*' as a whole token and '>'
// as the whole last token.
#pragma once

#include <string_view>

namespace natsbus::protocol {

[[nodiscard]] bool is_valid_publish_subject(std::string_view subject) noexcept;
[[nodiscard]] bool is_valid_subscription_subject(std::string_view pattern) noexcept;
[[nodiscard]] bool is_valid_queue_group(std::string_view group) noexcept;
// Whether a concrete subject matches a pattern with wildcards.
[[nodiscard]] bool subject_matches(std::string_view pattern, std::string_view subject) noexcept;

}  // namespace natsbus::protocol
