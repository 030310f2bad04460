// JSON models of the server's INFO and of the JetStream API ($JS.API.*). Decoding ignores unknown fields and
// turns wrong types into invalid_json, never a crash. Durations are std::chrono::nanoseconds as on the wire.
#pragma once

#include <natsbus/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus {

// ---- INFO ----
struct server_info {
  std::string server_id;
  std::string server_name;
  std::string version;
  std::string go;
  std::string host;
  int port = 0;
  bool headers = false;
  std::int64_t max_payload = 1024 * 1024;
  int proto = 0;
  std::uint64_t client_id = 0;
  std::string client_ip;
  bool auth_required = false;
  bool tls_required = false;
  bool tls_available = false;
  bool tls_verify = false;  // the server requires client certificates
  bool jetstream = false;
  bool lame_duck_mode = false;  // "ldm"
  std::string nonce;
  std::string cluster;
  std::string domain;
  std::vector<std::string> connect_urls;
  std::vector<std::string> ws_connect_urls;
};

// ---- JetStream ----
enum class retention_policy { limits, interest, workqueue };
enum class storage_type { file, memory };
enum class discard_policy { old, new_ };

struct stream_config {
  std::string name;
  std::string description;
  std::vector<std::string> subjects;
  retention_policy retention = retention_policy::limits;
  storage_type storage = storage_type::file;
  std::int64_t max_consumers = -1;
  std::int64_t max_msgs = -1;
  std::int64_t max_bytes = -1;
  std::chrono::nanoseconds max_age{0};
  std::int64_t max_msgs_per_subject = -1;
  std::int32_t max_msg_size = -1;
  discard_policy discard = discard_policy::old;
  int num_replicas = 1;
  std::chrono::nanoseconds duplicate_window{0};  // 0: the server's default (2 minutes)
  bool allow_rollup_hdrs = false;
  bool deny_delete = false;
  bool deny_purge = false;

  friend bool operator==(const stream_config&, const stream_config&) = default;
};

struct stream_state {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::int64_t consumer_count = 0;
};

struct peer_info {
  std::string name;
  bool current = false;
  bool offline = false;
};

struct cluster_info {
  std::string name;
  std::string leader;
  std::vector<peer_info> replicas;
};

struct stream_info {
  stream_config config;
  stream_state state;
  std::string created;  // RFC 3339 as sent by the server
  std::optional<cluster_info> cluster;
  bool did_create = false;  // STREAM.CREATE: false when an identical stream existed already
};

struct pub_ack {
  std::string stream;
  std::uint64_t seq = 0;
  bool duplicate = false;
  std::string domain;
};

struct api_error {
  int code = 0;      // HTTP-like status
  int err_code = 0;  // JetStream's error code (10059, ...)
  std::string description;
};

enum class deliver_policy { all, last, new_, by_start_sequence, by_start_time, last_per_subject };
enum class ack_policy { none, all, explicit_ };
enum class replay_policy { instant, original };

struct consumer_config {
  std::string name;
  std::string durable_name;
  std::string description;
  deliver_policy deliver = deliver_policy::all;
  std::uint64_t opt_start_seq = 0;
  ack_policy ack = ack_policy::explicit_;
  std::chrono::nanoseconds ack_wait{0};
  std::int64_t max_deliver = -1;
  std::string filter_subject;
  std::vector<std::string> filter_subjects;  // nats-server 2.10+: a 2.9 server would drop it (refused client-side)
  replay_policy replay = replay_policy::instant;
  std::int64_t max_ack_pending = -1;
  std::int64_t max_waiting = -1;
  std::string deliver_subject;  // push consumers
  std::string deliver_group;
  bool flow_control = false;
  std::chrono::nanoseconds idle_heartbeat{0};
  bool headers_only = false;
  std::chrono::nanoseconds inactive_threshold{0};
  int num_replicas = 0;
  bool mem_storage = false;
  std::vector<std::pair<std::string, std::string>> metadata;  // nats-server 2.10+ (refused client-side before)

  friend bool operator==(const consumer_config&, const consumer_config&) = default;
};

struct sequence_info {
  std::uint64_t consumer_seq = 0;
  std::uint64_t stream_seq = 0;
};

struct consumer_info {
  std::string stream_name;
  std::string name;
  std::string created;
  consumer_config config;
  sequence_info delivered;
  sequence_info ack_floor;
  std::int64_t num_ack_pending = 0;
  std::int64_t num_redelivered = 0;
  std::int64_t num_waiting = 0;
  std::uint64_t num_pending = 0;
  std::optional<cluster_info> cluster;
};

struct account_limits {
  std::int64_t max_memory = -1;
  std::int64_t max_storage = -1;
  std::int64_t max_streams = -1;
  std::int64_t max_consumers = -1;
};

struct account_info {
  std::uint64_t memory = 0;
  std::uint64_t storage = 0;
  std::int64_t streams = 0;
  std::int64_t consumers = 0;
  account_limits limits;
  std::string domain;
};

// A stored message as returned by $JS.API.STREAM.MSG.GET (data and hdrs are decoded from base64).
struct stored_message {
  std::string subject;
  std::uint64_t seq = 0;
  std::string data;
  std::string headers;  // raw header block, empty when none
  std::string time;
};

// A page of names or infos ($JS.API.STREAM.NAMES / LIST, CONSUMER.NAMES / LIST).
struct page_info {
  std::int64_t total = 0;
  std::int64_t offset = 0;
  std::int64_t limit = 0;
};

namespace protocol {

error_code decode(std::string_view json, server_info& out);
error_code decode(std::string_view json, stream_config& out);
error_code decode(std::string_view json, stream_info& out);
error_code decode(std::string_view json, consumer_config& out);
error_code decode(std::string_view json, consumer_info& out);
error_code decode(std::string_view json, account_info& out);
error_code decode(std::string_view json, stored_message& out);  // the whole response {"message":{...}}
// The same responses in one parse, keeping an error's text: a response carrying {"error":{...}} fills `err`
// and returns its error code (a JetStream error, or server_error without an err_code).
error_code decode(std::string_view json, stream_info& out, api_error& err);
error_code decode(std::string_view json, consumer_info& out, api_error& err);
error_code decode(std::string_view json, account_info& out, api_error& err);
error_code decode(std::string_view json, stored_message& out, api_error& err);

// Decodes a publish ack. Tries a fast scanner for the common shape {"stream":"S","seq":N[,"duplicate":true]
// [,"domain":"D"]} and falls back to a full JSON parse for anything else. A response carrying {"error":{...}}
// sets `err` and returns no error code; callers check err.err_code / err.code.
error_code decode_pub_ack(std::string_view json, pub_ack& out, api_error& err);

// If the response carries an "error" object, fills `err` and returns true. Invalid JSON returns false and
// sets ec.
bool extract_api_error(std::string_view json, api_error& err, error_code& ec);

// Names or list responses: {"total":..,"offset":..,"limit":..,"streams":[...]} / "consumers".
error_code decode_names(std::string_view json, std::string_view field, std::vector<std::string>& names,
                        page_info& page);
error_code decode_stream_list(std::string_view json, std::vector<stream_info>& out, page_info& page);
error_code decode_consumer_list(std::string_view json, std::vector<consumer_info>& out, page_info& page);

// Request bodies.
[[nodiscard]] std::string encode(const stream_config& cfg);
// action: "" (create or update, as 2.9 does), "create" or "update" (nats-server 2.10+).
[[nodiscard]] std::string encode_consumer_create(std::string_view stream, const consumer_config& cfg,
                                                 std::string_view action = {});

// Human-readable names used in configs and error messages.
[[nodiscard]] std::string_view to_string(retention_policy) noexcept;
[[nodiscard]] std::string_view to_string(storage_type) noexcept;
[[nodiscard]] std::string_view to_string(discard_policy) noexcept;

}  // namespace protocol
}  // namespace natsbus
