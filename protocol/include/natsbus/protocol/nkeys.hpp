// NKey text encodings, with no cryptography: the CRC-16 and base32 of NKey seeds and public keys, and the
// base64url of JWTs and nonce signatures. Signing lives in the client (src/auth/nkey.hpp, OpenSSL).
//
// An NKey is base32 (RFC 4648 alphabet, no padding) of: prefix byte(s), the 32 key bytes, and a CRC-16/XMODEM of
// everything before it, little-endian. A public key has one prefix byte (its type); a seed has two, packing the
// seed prefix 'S' and the type of the key it makes, so seeds read "SU...", "SA...", "SO...".
#pragma once

#include <natsbus/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus::protocol {

// CRC-16/XMODEM (polynomial 0x1021, initial value 0, no reflection): "123456789" gives 0x31C3.
[[nodiscard]] std::uint16_t crc16(std::span<const std::uint8_t> data) noexcept;

// RFC 4648 base32 (A-Z, 2-7), no padding. The decoder takes upper case only, refuses '=' and lengths no encoder
// makes (1, 3 or 6 characters past a multiple of 8), and requires the unused low bits of the last character to be
// zero, so every byte string has exactly one accepted text. On failure `out` is wiped and left empty.
[[nodiscard]] std::string base32_encode(std::span<const std::uint8_t> data);
[[nodiscard]] bool base32_decode(std::string_view text, std::vector<std::uint8_t>& out);

// RFC 4648 section 5 base64url (A-Z a-z 0-9 - _), no padding: JWT parts and the CONNECT "sig". The decoder is
// as strict as base32_decode (no '=', no length of 1 past a multiple of 4, unused bits zero).
[[nodiscard]] std::string base64url_encode(std::span<const std::uint8_t> data);
[[nodiscard]] bool base64url_decode(std::string_view text, std::vector<std::uint8_t>& out);

// The prefix byte of each public key type; its base32 gives the key's first letter.
enum class nkey_type : std::uint8_t {
  account = 0,          // 'A'
  cluster = 2 << 3,     // 'C'
  server = 13 << 3,     // 'N'
  operator_ = 14 << 3,  // 'O'
  user = 20 << 3,       // 'U'
};
inline constexpr std::uint8_t nkey_seed_prefix = 18 << 3;  // 'S'

[[nodiscard]] bool is_known_nkey_type(std::uint8_t prefix) noexcept;
[[nodiscard]] std::string_view to_string(nkey_type t) noexcept;  // "account", "user", ...

// Decodes a seed ("SU...") into its key type and the 32-byte Ed25519 seed. Any failure (base32, length, checksum,
// not a seed, unknown type) is error::invalid_nkey_seed; `problem` (the overload) says which in a few words that
// never quote the input. Intermediate copies are wiped; on failure `raw` is zeroed.
error_code decode_seed(std::string_view seed, nkey_type& type, std::array<std::uint8_t, 32>& raw);
error_code decode_seed(std::string_view seed, nkey_type& type, std::array<std::uint8_t, 32>& raw,
                       std::string_view& problem);

// Decodes a public key ("U...") into its type and 32 bytes; false on any failure.
[[nodiscard]] bool decode_public_key(std::string_view key, nkey_type& type, std::array<std::uint8_t, 32>& raw);

[[nodiscard]] std::string encode_public_key(nkey_type type, std::span<const std::uint8_t, 32> key);
// The returned string is a secret: the caller wipes it (secure_wipe) when done.
[[nodiscard]] std::string encode_seed(nkey_type type, std::span<const std::uint8_t, 32> seed);

// Overwrites memory in a way the optimizer may not drop (a plain memset before free can be removed).
void secure_wipe(void* data, std::size_t size) noexcept;
// Wipes a string's characters and clears it.
void secure_wipe(std::string& s) noexcept;

}  // namespace natsbus::protocol
