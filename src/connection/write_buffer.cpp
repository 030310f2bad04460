#include "connection/write_buffer.hpp"

#include <charconv>

namespace natsbus::detail {

std::string write_buffer::publishes_and_pings(std::string_view held) {
  std::string out;
  out.reserve(held.size());
  while (!held.empty()) {
    const auto eol = held.find("\r\n");
    if (eol == std::string_view::npos) break;  // not a whole frame: cannot happen for our own frames
    const std::string_view line = held.substr(0, eol);
    std::size_t frame = eol + 2;
    const bool pub = line.starts_with("PUB ") || line.starts_with("HPUB ");
    if (pub) {
      const auto sp = line.rfind(' ');
      std::size_t size = 0;
      std::from_chars(line.data() + sp + 1, line.data() + line.size(), size);
      frame += size + 2;
    }
    if (frame > held.size()) break;
    if (pub || line == "PING") out.append(held.substr(0, frame));
    held.remove_prefix(frame);
  }
  return out;
}

}  // namespace natsbus::detail
