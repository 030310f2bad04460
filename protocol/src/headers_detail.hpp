// Shared by headers.cpp and encoder.cpp so HPUB can write its header block in place, without a temporary.
#pragma once

#include <natsbus/protocol/headers.hpp>

#include <cstddef>
#include <string>

namespace natsbus::protocol::detail {

// The size of the encoded block for h, or 0 when h cannot be encoded (a valid block is never empty).
[[nodiscard]] std::size_t encoded_headers_size(const headers& h) noexcept;
// Appends the block for h; h must have passed encoded_headers_size.
void append_headers_unchecked(const headers& h, std::string& out);

}  // namespace natsbus::protocol::detail
