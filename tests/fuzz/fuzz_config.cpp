// The event bus's YAML configuration loader on arbitrary text: no crash and no exception. A failure is
// invalid_config with a message naming what was wrong; a success leaves a configuration that passed validation.
// Every prefix of the input (up to max_prefix_input bytes) is loaded too: a document cut anywhere.
#include <natsbus/bus_config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr std::size_t max_prefix_input = 512;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_document(std::string_view text) {
  natsbus::event_bus_config cfg;
  std::string message;
  const natsbus::error_code ec = natsbus::parse_event_bus_config(text, cfg, message);
  check(!ec || (ec == natsbus::error::invalid_config && !message.empty()));
  if (!ec) check(!cfg.connection.servers.empty());  // a loaded config always names a server
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_document(text);
  if (size > max_prefix_input) return 0;
  for (std::size_t n = 0; n < size; ++n) check_document(text.substr(0, n));
  return 0;
}
