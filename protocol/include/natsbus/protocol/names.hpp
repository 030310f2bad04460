// JetStream stream and consumer names. A name is the last token of its API subjects (STREAM.INFO.<name>) and
// the server's directory for it, so it is not empty, holds no subject separator or wildcard ('.', '*', '>'),
// no whitespace or control character (nor DEL), no path separator ('/', '\'), and is at most 255 bytes long,
// the server's limit. Other bytes, UTF-8 included, are allowed.
#pragma once

#include <cstddef>
#include <string_view>

namespace natsbus::protocol {

inline constexpr std::size_t max_stream_name = 255;
[[nodiscard]] bool is_valid_stream_name(std::string_view name) noexcept;
// The rule in words, for the errors that refuse a name.
inline constexpr std::string_view stream_name_rule =
    "must be non-empty, at most 255 bytes, without '.', '*', '>', '/', '\\', whitespace or control characters";
static_assert(max_stream_name == 255, "stream_name_rule names the limit");

}  // namespace natsbus::protocol
