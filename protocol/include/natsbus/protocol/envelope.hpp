// Event envelopes, sans I/O: an event's identity and context carried in message headers (the payload stays the
// message body, as bytes), in the manner of CloudEvents' binary mode. The event id becomes the Nats-Msg-Id, so a
// re-published event (an outbox relay retrying) is stored once within the stream's duplicate window.
//
//   Natsbus-Event-Id          required; 1-256 printable ASCII characters, no spaces
//   Natsbus-Event-Type        required; the same rule
//   Natsbus-Event-Version     required; a decimal integer from 1
//   Natsbus-Event-Time        required; RFC 3339, e.g. 2026-12-04T21:50:00.123Z or ...+01:00
//   Natsbus-Aggregate-Id      optional; the ordering key (the same rule when present)
//   Natsbus-Trace-Id, Natsbus-Correlation-Id, Natsbus-Tenant   optional; the same rule when present
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/protocol/headers.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace natsbus::protocol {

inline constexpr std::string_view envelope_id_header = "Natsbus-Event-Id";
inline constexpr std::string_view envelope_type_header = "Natsbus-Event-Type";
inline constexpr std::string_view envelope_version_header = "Natsbus-Event-Version";
inline constexpr std::string_view envelope_time_header = "Natsbus-Event-Time";
inline constexpr std::string_view envelope_aggregate_header = "Natsbus-Aggregate-Id";
inline constexpr std::string_view envelope_trace_header = "Natsbus-Trace-Id";
inline constexpr std::string_view envelope_correlation_header = "Natsbus-Correlation-Id";
inline constexpr std::string_view envelope_tenant_header = "Natsbus-Tenant";

struct envelope_fields {
  std::string event_id;
  std::string event_type;
  std::uint32_t version = 1;
  std::string time;  // RFC 3339; empty when encoding: the caller's clock fills it (see now_rfc3339)
  std::string aggregate_id;
  std::string trace_id;
  std::string correlation_id;
  std::string tenant;
};

// Whether `s` is an RFC 3339 date-time (with a 'T' or 't', seconds, an optional fraction, and 'Z' or an offset),
// with field ranges checked (month 1-12, day within its month, hour < 24, minute < 60, second <= 60).
[[nodiscard]] bool is_rfc3339(std::string_view s) noexcept;

// invalid_argument and the reason (naming the field) when a field breaks the rules above.
error_code check_envelope(const envelope_fields& e, std::string& why);

// Adds the envelope's headers to `out` (after check_envelope).
error_code encode_envelope(const envelope_fields& e, headers& out, std::string& why);

// Reads an envelope from a message's headers; invalid_argument and the reason when one is missing or broken.
error_code decode_envelope(const headers& in, envelope_fields& out, std::string& why);

}  // namespace natsbus::protocol
