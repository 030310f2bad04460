// The event bus's YAML configuration loader on arbitrary text: no crash and no exception. A failure is
// invalid_config with a message naming what was wrong; a success leaves a configuration that passed validation.
#include <natsbus/bus_config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  natsbus::event_bus_config cfg;
  std::string message;
  natsbus::error_code ec = natsbus::parse_event_bus_config(text, cfg, message);
  if (ec && (ec != natsbus::error::invalid_config || message.empty())) std::abort();
  if (!ec && cfg.connection.servers.empty()) std::abort();  // a loaded config always names a server
  return 0;
}
