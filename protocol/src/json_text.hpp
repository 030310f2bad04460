// Internal: JSON text helpers shared by the protocol's encoders.
#pragma once

#include <string>
#include <string_view>

namespace natsbus::protocol {

// Appends s as a JSON string: quotes, with quote, backslash and control characters escaped (RFC 8259); other
// bytes (UTF-8) pass through.
void append_json_string(std::string& out, std::string_view s);

}  // namespace natsbus::protocol
