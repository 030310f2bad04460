// Envelope decoding from a header block: any input gives an envelope or a clear error, never a crash.
#include <natsbus/protocol/envelope.hpp>
#include <natsbus/protocol/headers.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  natsbus::headers h;
  if (natsbus::protocol::decode_headers(text, h)) {
    (void)natsbus::protocol::is_rfc3339(text);
    return 0;
  }
  natsbus::protocol::envelope_fields e;
  std::string why;
  if (!natsbus::protocol::decode_envelope(h, e, why)) {
    natsbus::headers again;
    std::string why2;
    if (natsbus::protocol::encode_envelope(e, again, why2)) __builtin_trap();  // what decodes must encode
  }
  return 0;
}
