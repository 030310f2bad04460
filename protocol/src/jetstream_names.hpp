// Internal: the names the server uses for the JetStream enums, both ways. (to_string for retention, storage
// and discard is public, in <natsbus/protocol/jetstream.hpp>.)
#pragma once

#include <natsbus/protocol/jetstream.hpp>

#include <string_view>

namespace natsbus::protocol {

std::string_view to_string(deliver_policy p) noexcept;
std::string_view to_string(ack_policy p) noexcept;
std::string_view to_string(replay_policy p) noexcept;

// False, leaving `out` alone, for a name the server does not use.
bool from_string(std::string_view s, retention_policy& out) noexcept;
bool from_string(std::string_view s, storage_type& out) noexcept;
bool from_string(std::string_view s, discard_policy& out) noexcept;
bool from_string(std::string_view s, deliver_policy& out) noexcept;
bool from_string(std::string_view s, ack_policy& out) noexcept;
bool from_string(std::string_view s, replay_policy& out) noexcept;

}  // namespace natsbus::protocol
