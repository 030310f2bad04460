// JetStream consumers on the wire, without I/O: the metadata in a delivered message's ack subject, the statuses
// a pull subscription receives, the bodies of pull requests and acks, the consumer create API subject, and the
// server versions that consumer features need. The wire facts come from nats-server (server/consumer.go,
// server/jetstream_api.go, 2.9.10 to 2.10.x) and nats.go (internal/parser, jetstream/); the .cpp cites them.
#pragma once

#include <natsbus/error.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace natsbus::protocol {

// ---- Ack subjects ----

// What the server writes into the reply subject of each message it delivers from a consumer. The views point
// into the parsed subject, so they live as long as the caller's buffer.
struct message_metadata {
  std::string_view domain;        // empty: none (the 9-token form, or "_" in the long form)
  std::string_view account_hash;  // empty in the 9-token form; never empty in the long form
  std::string_view stream;
  std::string_view consumer;
  std::uint64_t num_delivered = 0;  // 1 on first delivery
  std::uint64_t stream_sequence = 0;
  std::uint64_t consumer_sequence = 0;
  std::int64_t timestamp_ns = 0;  // when the server stored the message, ns since the Unix epoch
  std::uint64_t num_pending = 0;  // messages left for the consumer after this one
  std::string_view tail;          // long form: the tokens after <pending>, without the leading '.'; else empty
};

// Parses either form:
//   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>                      (9 tokens)
//   $JS.ACK.<domain>.<acc hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>...]
//                                                                                         (11 or more tokens)
// nats-server writes the first; 2.14 can write the second (11 tokens) behind its feature flag js_ack_fc_v2, and
// nats.go reads both, ignoring tokens after <pending>.
// Anything else is protocol_violation: another token count, another prefix, an empty token, a number token that
// is empty, holds a non-digit or overflows (uint64, int64 for the timestamp). Leading zeros are accepted, as by
// nats.go. One pass over the bytes, no allocation; `out` is written only on success.
error_code parse_ack_subject(std::string_view reply, message_metadata& out) noexcept;

// Appends the subject `m` describes: the long form when m.account_hash is set (domain "_" when m.domain is
// empty, then m.tail if set), else the 9-token form. parse_ack_subject's inverse for subjects without leading
// zeros; tests and fake servers use it.
void encode_ack_subject(std::string& out, const message_metadata& m);

// ---- Statuses a pull subscription receives ----

enum class pull_status {
  message,         // no status: a message from the stream
  idle_heartbeat,  // 100 Idle Heartbeat
  flow_control,    // 100 FlowControl Request (push consumers; answer with an empty publish to its reply)
  no_messages,     // 404 No Messages (no_wait request and nothing pending)
  request_timeout,  // 408 Request Timeout, Interest Expired, Requests Pending (any 408)
  no_responders,    // 503: no JetStream responder (the server has none for the account, or no leader)
  exceeded_max_waiting,            // 409 Exceeded MaxWaiting
  message_size_exceeds_max_bytes,  // 409 Message Size Exceeds MaxBytes (the next message is larger than the rest)
  consumer_deleted,                // 409 Consumer Deleted
  consumer_is_push_based,          // 409 Consumer is push based
  leadership_change,               // 409 Leadership Change (the waiting requests were dropped)
  exceeded_max_request_batch,      // 409 Exceeded MaxRequestBatch of <n>
  exceeded_max_request_expires,    // 409 Exceeded MaxRequestExpires of <duration>
  exceeded_max_request_max_bytes,  // 409 Exceeded MaxRequestMaxBytes of <n>
  batch_completed,                 // 409 Batch Completed (2.10+: max_bytes left over after the last message)
  server_shutdown,                 // 409 Server Shutdown (the server is stopping; requests were dropped)
  other_409,                       // a 409 with another description
  bad_request,                     // 400 Bad Request - <why> (a request the server could not read)
  unknown,                         // any other status, or a 100 with another description
};

struct pull_status_info {
  pull_status kind = pull_status::message;
  int code = 0;                   // 0 without a status
  std::string_view description;   // the status line's text, trimmed
  std::uint64_t pending_messages = 0;  // Nats-Pending-Messages: what the ended request had still to receive
  std::uint64_t pending_bytes = 0;     // Nats-Pending-Bytes
  std::string_view last_consumer;      // Nats-Last-Consumer (heartbeats): the last consumer sequence delivered
  std::string_view last_stream;        // Nats-Last-Stream (heartbeats): the last stream sequence delivered
  std::string_view consumer_stalled;   // Nats-Consumer-Stalled (heartbeats): the flow control subject to answer
};

// Classifies a message by its header block (as carried in HMSG, "" for MSG). The views in `out` point into
// `header_block`. A block without a status costs a few compares and is not validated further (decode_headers
// does that when someone reads the headers). A status line with junk, or a status block with a malformed line
// or a pending count that is not a number, is bad_header; `out` then says `message` with code 0.
// Statuses come with no payload and no $JS.ACK reply: a message with an ack reply is a stored message
// whatever its headers say (a publisher can store a status line), and nats.go treats any message with a
// payload as a user message (jetstream/message.go checkMsg). Callers check those first.
error_code classify_pull_status(std::string_view header_block, pull_status_info& out) noexcept;

// Whether the status ends the pull request it answers: every status but 100 (and a plain message) does.
[[nodiscard]] bool ends_pull_request(const pull_status_info& s) noexcept;
// Whether a continuous consume must stop rather than send its next request: the consumer is gone or is push
// based, the server could not read the request, or the request exceeds one of the consumer's MaxRequest*
// limits (resending it is refused the same way every time). Everything else is retried.
[[nodiscard]] bool is_fatal_for_consume(const pull_status_info& s) noexcept;
struct pull_request;
// The same, knowing the request the status ended. "Message Size Exceeds MaxBytes" is routine when a partly
// filled request meets a message larger than its remaining bytes (nats-server consumer.go nextWaiting), but
// when the request had received nothing (Nats-Pending-Bytes equals its whole max_bytes) the next message is
// larger than any request of that size, and pulling again would meet it again.
[[nodiscard]] bool is_fatal_for_consume(const pull_status_info& s, const pull_request& sent) noexcept;
[[nodiscard]] std::string_view to_string(pull_status s) noexcept;

// ---- Request and ack bodies ----

// A request for messages (JSApiConsumerGetNextRequest), published to
// <api prefix>.CONSUMER.MSG.NEXT.<stream>.<consumer> with the subscription's inbox as reply.
struct pull_request {
  std::int64_t batch = 1;
  std::int64_t max_bytes = 0;                // 0: no byte limit
  std::chrono::nanoseconds expires{0};       // 0: the request waits until filled
  bool no_wait = false;                      // answer 404 at once when nothing is pending
  std::chrono::nanoseconds idle_heartbeat{0};  // 0: no heartbeats
};

// Appends {"batch":N[,"max_bytes":M][,"expires":ns][,"no_wait":true][,"idle_heartbeat":ns]}: batch always,
// the others only when set (positive, or true).
void encode_pull_request(std::string& out, const pull_request& r);

// Refuses what the server would refuse or misread: batch < 1, a negative max_bytes, expires or idle_heartbeat,
// or an idle_heartbeat over half of expires (or without expires): nats-server answers that with
// "400 Bad Request - heartbeat value too large". `problem` names the rule; it is empty on success.
error_code check_pull_request(const pull_request& r, std::string_view& problem) noexcept;

enum class ack_kind { ack, nak, in_progress, term };
// "+ACK", "-NAK", "+WPI", "+TERM".
[[nodiscard]] std::string_view ack_body(ack_kind k) noexcept;
// Appends -NAK {"delay":ns}: redeliver after the delay instead of now. A delay <= 0 appends a plain -NAK.
void encode_nak_with_delay(std::string& out, std::chrono::nanoseconds delay);
// Appends "+TERM <reason>" (plain "+TERM" for an empty reason). Servers before 2.10.4 compare the whole body
// with "+TERM" and silently ignore this one (the message is then redelivered): see term_reason_version.
void encode_term_with_reason(std::string& out, std::string_view reason);
// Appends "+NXT <pull request>": acks the message and asks for more. Publish it to the message's ack subject
// with the pull subscription's inbox as reply; the server sends no ack reply for it.
void encode_ack_next(std::string& out, const pull_request& r);

// ---- Consumer create API subject ----

// <prefix>.CONSUMER.CREATE.<stream>                  name empty: the server names an ephemeral consumer
// <prefix>.CONSUMER.CREATE.<stream>.<name>           2.9.0+, durable or named ephemeral
// <prefix>.CONSUMER.CREATE.<stream>.<name>.<filter>  2.9.0+, when the config has one filter_subject
// `prefix` is "$JS.API" or a domain's "$JS.<domain>.API", or empty for a subject that starts at CONSUMER. Pass the config's single filter_subject as `filter`,
// and "" when it uses filter_subjects: the server refuses a filter in the subject next to filter_subjects. A
// filter that is not a valid subject is left out (the server then judges the config's filter itself), so the
// result is always a well-formed subject for valid stream and consumer names. A durable's config must carry
// the same name as durable_name.
[[nodiscard]] std::string consumer_create_subject(std::string_view prefix, std::string_view stream,
                                                  std::string_view name, std::string_view filter);
// <prefix>.CONSUMER.DURABLE.CREATE.<stream>.<durable>: durables on servers before 2.9.0 (which have no named
// form; nats.go uses it only there, or when asked). The config's durable_name must equal `durable`, and the
// subject cannot carry a filter.
[[nodiscard]] std::string consumer_durable_create_subject(std::string_view prefix, std::string_view stream,
                                                          std::string_view durable);

// ---- Server versions ----

// "2.10.27", "v2.10.27", "2.11.0-beta.1", "2.10.0+build": three decimal components, each at most 9 digits,
// then nothing or a '-' or '+' suffix. false (outputs untouched) for anything else.
bool parse_server_version(std::string_view v, int& major, int& minor, int& patch) noexcept;

[[nodiscard]] constexpr bool version_at_least(int major, int minor, int patch, int want_major, int want_minor,
                                              int want_patch) noexcept {
  if (major != want_major) return major > want_major;
  if (minor != want_minor) return minor > want_minor;
  return patch >= want_patch;
}

// The first versions with a feature, for version_at_least.
struct server_version_req {
  int major, minor, patch;
};
inline constexpr server_version_req named_consumer_create_version{2, 9, 0};  // CONSUMER.CREATE.<stream>.<name>
inline constexpr server_version_req consumer_fields_2_10_version{2, 10, 0};  // filter_subjects, metadata, action
inline constexpr server_version_req term_reason_version{2, 10, 4};           // "+TERM <reason>"

// Refuses, on a server older than 2.10.0, the consumer create fields it would silently drop (Go's JSON decoding
// ignores unknown fields): filter_subjects (the consumer would get every subject), metadata, and the create
// request's action (create-only or update-only would become create-or-update). not_supported_by_server with a
// problem like "filter_subjects and metadata need nats-server 2.10.0 or later; the server is 2.9.25, which
// would ignore them"; success clears it.
error_code check_consumer_fields_for_server(int major, int minor, int patch, bool has_filter_subjects,
                                            bool has_metadata, bool has_action, std::string& problem);

}  // namespace natsbus::protocol
