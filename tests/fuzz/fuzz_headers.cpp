// Header blocks on arbitrary bytes: decoding never crashes, and a block that decodes encodes to one that
// decodes to the same headers; peek_status agrees with the full decode.
#include <natsbus/protocol/headers.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace np = natsbus::protocol;
  const std::string_view block(reinterpret_cast<const char*>(data), size);
  const int peeked = np::peek_status(block);
  natsbus::headers h;
  if (np::decode_headers(block, h)) return 0;
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
  return 0;
}
