// Header blocks on arbitrary bytes: decoding never crashes, and a block that decodes encodes to one that
// decodes to the same headers; peek_status agrees with the full decode. Every prefix of the input (up to
// max_prefix_input bytes) is checked too, each in a buffer of its own exact size, so that a decoder reading past
// the end of a cut block is caught.
#include <natsbus/protocol/headers.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace np = natsbus::protocol;

constexpr std::size_t max_prefix_input = 4096;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_block(std::string_view block) {
  const int peeked = np::peek_status(block);
  natsbus::headers h;
  if (np::decode_headers(block, h)) return;
  check(peeked == h.status());

  std::string encoded;
  check(!np::encode_headers(h, encoded));
  natsbus::headers again;
  check(!np::decode_headers(encoded, again));
  check(again == h);
  check(np::peek_status(encoded) == h.status());

  // Encoding appends: a second block after the first leaves the first untouched.
  std::string twice = encoded;
  check(!np::encode_headers(again, twice));
  check(twice == encoded + encoded);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_block(std::string_view(reinterpret_cast<const char*>(data), size));
  if (size > max_prefix_input) return 0;
  for (std::size_t n = 0; n < size; ++n) {
    std::vector<char> prefix(data, data + n);
    check_block(std::string_view(prefix.data(), n));
  }
  return 0;
}
