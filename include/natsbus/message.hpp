#pragma once

#include <natsbus/protocol/headers.hpp>

#include <cstdint>
#include <string>

namespace natsbus {

// A message delivered to a subscription or as a reply. It owns its bytes.
struct message {
  std::string subject;
  std::string reply;
  natsbus::headers headers;
  std::string payload;
  std::uint64_t sid = 0;

  [[nodiscard]] bool has_headers() const noexcept { return !headers.empty(); }
  // Status code from the header block (503 no responders, 408, 409, 100); 0 when none.
  [[nodiscard]] int status() const noexcept { return headers.status(); }
};

}  // namespace natsbus
