#include <natsbus/protocol/nkeys.hpp>

#include <algorithm>

namespace natsbus::protocol {

namespace {

constexpr char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr char base64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::size_t public_key_bytes = 1 + 32 + 2;
constexpr std::size_t seed_bytes = 2 + 32 + 2;
constexpr std::size_t public_key_chars = (public_key_bytes * 8 + 4) / 5;  // 56
constexpr std::size_t seed_chars = (seed_bytes * 8 + 4) / 5;              // 58

int base32_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

int base64url_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// One encoder and decoder for both alphabets: `Bits` bits per character, most significant first.
template <int Bits>
std::string encode_bits(std::span<const std::uint8_t> data, const char* alphabet) {
  std::string out;
  out.reserve((data.size() * 8 + Bits - 1) / Bits);  // exact, so a seed's text is never reallocated and left behind
  std::uint32_t buf = 0;
  int bits = 0;
  for (const std::uint8_t b : data) {
    buf = (buf << 8) | b;
    bits += 8;
    while (bits >= Bits) {
      bits -= Bits;
      out.push_back(alphabet[(buf >> bits) & ((1u << Bits) - 1)]);
    }
    buf &= (1u << bits) - 1;
  }
  if (bits > 0) out.push_back(alphabet[(buf << (Bits - bits)) & ((1u << Bits) - 1)]);
  return out;
}

constexpr std::size_t decoded_size(std::size_t chars, int bits) noexcept { return chars * bits / 8; }

// Whether `chars` characters can be a complete unpadded encoding: the leftover bits must be fewer than a character.
constexpr bool valid_length(std::size_t chars, int bits) noexcept {
  return chars * bits - decoded_size(chars, bits) * 8 < static_cast<std::size_t>(bits);
}

// Decodes into out[0, decoded_size(text.size())); false on a bad character or non-zero unused bits.
template <int Bits, int (*Value)(char) noexcept>
bool decode_bits(std::string_view text, std::uint8_t* out) noexcept {
  if (!valid_length(text.size(), Bits)) return false;
  std::uint32_t buf = 0;
  int bits = 0;
  std::size_t n = 0;
  for (const char c : text) {
    const int v = Value(c);
    if (v < 0) return false;
    buf = (buf << Bits) | static_cast<std::uint32_t>(v);
    bits += Bits;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<std::uint8_t>(buf >> bits);
      buf &= (1u << bits) - 1;
    }
  }
  return buf == 0;  // what is left are the unused low bits of the last character
}

template <int Bits, int (*Value)(char) noexcept>
bool decode_to_vector(std::string_view text, std::vector<std::uint8_t>& out) {
  secure_wipe(out.data(), out.size());
  out.clear();
  if (!valid_length(text.size(), Bits)) return false;
  out.resize(decoded_size(text.size(), Bits));
  if (decode_bits<Bits, Value>(text, out.data())) return true;
  secure_wipe(out.data(), out.size());
  out.clear();
  return false;
}

void put_crc(std::uint8_t* data, std::size_t body) noexcept {
  const std::uint16_t crc = crc16({data, body});
  data[body] = static_cast<std::uint8_t>(crc & 0xff);  // little-endian, as the NKey format has it
  data[body + 1] = static_cast<std::uint8_t>(crc >> 8);
}

bool crc_ok(const std::uint8_t* data, std::size_t size) noexcept {
  const std::uint16_t crc = crc16({data, size - 2});
  return data[size - 2] == (crc & 0xff) && data[size - 1] == (crc >> 8);
}

}  // namespace

std::uint16_t crc16(std::span<const std::uint8_t> data) noexcept {
  std::uint16_t crc = 0;
  for (const std::uint8_t b : data) {
    crc ^= static_cast<std::uint16_t>(b << 8);
    for (int i = 0; i < 8; ++i)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

std::string base32_encode(std::span<const std::uint8_t> data) { return encode_bits<5>(data, base32_alphabet); }

bool base32_decode(std::string_view text, std::vector<std::uint8_t>& out) {
  return decode_to_vector<5, base32_value>(text, out);
}

std::string base64url_encode(std::span<const std::uint8_t> data) {
  return encode_bits<6>(data, base64url_alphabet);
}

bool base64url_decode(std::string_view text, std::vector<std::uint8_t>& out) {
  return decode_to_vector<6, base64url_value>(text, out);
}

bool is_known_nkey_type(std::uint8_t prefix) noexcept {
  switch (static_cast<nkey_type>(prefix)) {
    case nkey_type::account:
    case nkey_type::cluster:
    case nkey_type::server:
    case nkey_type::operator_:
    case nkey_type::user:
      return true;
  }
  return false;
}

std::string_view to_string(nkey_type t) noexcept {
  switch (t) {
    case nkey_type::account: return "account";
    case nkey_type::cluster: return "cluster";
    case nkey_type::server: return "server";
    case nkey_type::operator_: return "operator";
    case nkey_type::user: return "user";
  }
  return "unknown";
}

error_code decode_seed(std::string_view seed, nkey_type& type, std::array<std::uint8_t, 32>& raw,
                       std::string_view& problem) {
  std::array<std::uint8_t, seed_bytes> buf{};
  const auto fail = [&](std::string_view why) {
    secure_wipe(buf.data(), buf.size());
    secure_wipe(raw.data(), raw.size());
    problem = why;
    return error_code(error::invalid_nkey_seed);
  };
  if (seed.size() != seed_chars) return fail("wrong length");
  if (!decode_bits<5, base32_value>(seed, buf.data())) return fail("bad base32");
  if (!crc_ok(buf.data(), buf.size())) return fail("bad checksum");
  if ((buf[0] & 0xf8) != nkey_seed_prefix) return fail("not a seed");
  // The type's 8 bits straddle the two prefix bytes: the low 3 bits of the first, the top 5 of the second.
  const auto prefix = static_cast<std::uint8_t>(((buf[0] & 0x07) << 5) | (buf[1] >> 3));
  if (!is_known_nkey_type(prefix)) return fail("unknown key type");
  type = static_cast<nkey_type>(prefix);
  std::copy_n(buf.begin() + 2, raw.size(), raw.begin());
  secure_wipe(buf.data(), buf.size());
  problem = {};
  return {};
}

error_code decode_seed(std::string_view seed, nkey_type& type, std::array<std::uint8_t, 32>& raw) {
  std::string_view problem;
  return decode_seed(seed, type, raw, problem);
}

bool decode_public_key(std::string_view key, nkey_type& type, std::array<std::uint8_t, 32>& raw) {
  std::array<std::uint8_t, public_key_bytes> buf{};
  if (key.size() != public_key_chars || !decode_bits<5, base32_value>(key, buf.data()) ||
      !crc_ok(buf.data(), buf.size()) || !is_known_nkey_type(buf[0]))
    return false;
  type = static_cast<nkey_type>(buf[0]);
  std::copy_n(buf.begin() + 1, raw.size(), raw.begin());
  return true;
}

std::string encode_public_key(nkey_type type, std::span<const std::uint8_t, 32> key) {
  std::array<std::uint8_t, public_key_bytes> buf{};
  buf[0] = static_cast<std::uint8_t>(type);
  std::copy(key.begin(), key.end(), buf.begin() + 1);
  put_crc(buf.data(), buf.size() - 2);
  return base32_encode(buf);
}

std::string encode_seed(nkey_type type, std::span<const std::uint8_t, 32> seed) {
  std::array<std::uint8_t, seed_bytes> buf{};
  const auto t = static_cast<std::uint8_t>(type);
  buf[0] = static_cast<std::uint8_t>(nkey_seed_prefix | (t >> 5));
  buf[1] = static_cast<std::uint8_t>((t & 0x1f) << 3);
  std::copy(seed.begin(), seed.end(), buf.begin() + 2);
  put_crc(buf.data(), buf.size() - 2);
  std::string out = base32_encode(buf);
  secure_wipe(buf.data(), buf.size());
  return out;
}

void secure_wipe(void* data, std::size_t size) noexcept {
  // Stores through a volatile pointer are observable behaviour, so they stay even just before a free.
  volatile auto* p = static_cast<volatile std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) p[i] = 0;
}

void secure_wipe(std::string& s) noexcept {
  secure_wipe(s.data(), s.size());
  s.clear();
}

}  // namespace natsbus::protocol
