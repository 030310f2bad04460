#include <natsbus/protocol/names.hpp>

namespace natsbus::protocol {

bool is_valid_stream_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_stream_name) return false;
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\') return false;
  }
  return true;
}

}  // namespace natsbus::protocol
