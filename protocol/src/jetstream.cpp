// JSON models of INFO and the JetStream API, on Boost.JSON. Every accessor checks the type it finds, so a
// field of the wrong type is invalid_json and never an exception; unknown fields are ignored and a JSON null
// counts as an absent field (the server writes nil slices as null, e.g. "streams":null).
#include <natsbus/protocol/jetstream.hpp>

#include "jetstream_names.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <array>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

namespace natsbus::protocol {

namespace json = boost::json;

namespace {

// ---- base64 (standard alphabet, as Go's encoding/base64.StdEncoding writes it) ----

constexpr std::array<std::int8_t, 256> make_base64_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (std::size_t i = 0; i < alphabet.size(); ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto base64_table = make_base64_table();

// Accepts padded input and, leniently, input without its padding. Anything else (bad characters, padding in
// the middle, a lone trailing character) is rejected.
bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  std::size_t pad = 0;
  if (in.size() % 4 == 0 && !in.empty()) {
    if (in.back() == '=') ++pad;
    if (in.size() >= 2 && in[in.size() - 2] == '=') ++pad;
    if (pad == 1 && in.back() != '=') return false;
  }
  in.remove_suffix(pad);
  if (in.size() % 4 == 1) return false;
  if (pad != 0 && in.size() % 4 != 4 - pad) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const std::int8_t v = base64_table[static_cast<unsigned char>(c)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// ---- field access ----

bool to_i64(const json::value& v, std::int64_t& out) noexcept {
  if (const auto* p = v.if_int64()) {
    out = *p;
    return true;
  }
  if (const auto* p = v.if_uint64()) {
    if (*p > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    out = static_cast<std::int64_t>(*p);
    return true;
  }
  return false;
}

bool to_u64(const json::value& v, std::uint64_t& out) noexcept {
  if (const auto* p = v.if_uint64()) {
    out = *p;
    return true;
  }
  if (const auto* p = v.if_int64()) {
    if (*p < 0) return false;
    out = static_cast<std::uint64_t>(*p);
    return true;
  }
  return false;
}

// Reads the fields of one JSON object; the first wrong type turns ok() false and later reads are no-ops.
class fields {
 public:
  explicit fields(const json::object& o) noexcept : o_(o) {}

  [[nodiscard]] bool ok() const noexcept { return ok_; }
  void fail() noexcept { ok_ = false; }

  // The field, or nullptr when absent or null.
  [[nodiscard]] const json::value* get(std::string_view key) const noexcept {
    if (!ok_) return nullptr;
    const json::value* v = o_.if_contains(key);
    if (v == nullptr || v->is_null()) return nullptr;
    return v;
  }

  void str(std::string_view key, std::string& out) {
    if (const auto* v = get(key)) {
      if (const auto* s = v->if_string()) out.assign(s->data(), s->size());
      else fail();
    }
  }

  void boolean(std::string_view key, bool& out) {
    if (const auto* v = get(key)) {
      if (const auto* b = v->if_bool()) out = *b;
      else fail();
    }
  }

  template <class T>
  void integer(std::string_view key, T& out) {
    static_assert(std::is_integral_v<T>);
    const auto* v = get(key);
    if (v == nullptr) return;
    if constexpr (std::is_signed_v<T>) {
      std::int64_t n = 0;
      if (!to_i64(*v, n) || n < std::numeric_limits<T>::min() || n > std::numeric_limits<T>::max()) return fail();
      out = static_cast<T>(n);
    } else {
      std::uint64_t n = 0;
      if (!to_u64(*v, n) || n > std::numeric_limits<T>::max()) return fail();
      out = static_cast<T>(n);
    }
  }

  void duration(std::string_view key, std::chrono::nanoseconds& out) {
    std::int64_t n = out.count();
    integer(key, n);
    out = std::chrono::nanoseconds{n};
  }

  template <class E>
  void enumeration(std::string_view key, E& out) {
    if (const auto* v = get(key)) {
      const auto* s = v->if_string();
      if (s == nullptr || !from_string(std::string_view{s->data(), s->size()}, out)) fail();
    }
  }

  void strings(std::string_view key, std::vector<std::string>& out) {
    const auto* a = array(key);
    if (a == nullptr) return;
    out.clear();
    out.reserve(a->size());
    for (const auto& e : *a) {
      const auto* s = e.if_string();
      if (s == nullptr) return fail();
      out.emplace_back(s->data(), s->size());
    }
  }

  const json::object* object(std::string_view key) noexcept {
    const auto* v = get(key);
    if (v == nullptr) return nullptr;
    if (const auto* o = v->if_object()) return o;
    fail();
    return nullptr;
  }

  const json::array* array(std::string_view key) noexcept {
    const auto* v = get(key);
    if (v == nullptr) return nullptr;
    if (const auto* a = v->if_array()) return a;
    fail();
    return nullptr;
  }

 private:
  const json::object& o_;
  bool ok_ = true;
};

const error_code& invalid_json() noexcept {
  static const error_code ec = make_error_code(error::invalid_json);
  return ec;
}

// Parses `text` into a value using a stack buffer first, and hands the root object to f. A root that is not
// an object is invalid_json.
template <class F>
error_code with_root(std::string_view text, F&& f) {
  alignas(std::max_align_t) unsigned char buffer[4096];
  json::monotonic_resource mr(buffer, sizeof buffer);
  json::error_code jec;
  json::value root = json::parse(json::string_view{text.data(), text.size()}, jec, &mr);
  if (jec) return invalid_json();
  const json::object* o = root.if_object();
  if (o == nullptr) return invalid_json();
  return std::forward<F>(f)(*o);
}

bool read_api_error(const json::object& o, api_error& err) {
  fields f(o);
  api_error e;
  f.integer("code", e.code);
  f.integer("err_code", e.err_code);
  f.str("description", e.description);
  if (!f.ok()) return false;
  err = std::move(e);
  return true;
}

// For decoders of API responses: a response carrying an error object is that JetStream error. Returns
// nothing when there is no error.
// The response's error, if it carries one; its text goes to `text` when given.
std::optional<error_code> response_error(const json::object& root, api_error* text = nullptr) {
  fields f(root);
  const json::object* e = f.object("error");
  if (!f.ok()) return invalid_json();
  if (e == nullptr) return std::nullopt;
  api_error err;
  if (!read_api_error(*e, err)) return invalid_json();
  error_code ec = err.err_code > 0 ? make_jetstream_error(err.err_code) : make_error_code(error::server_error);
  if (text) *text = std::move(err);
  return ec;
}

// ---- object readers ----

bool read(const json::object& o, server_info& out) {
  fields f(o);
  f.str("server_id", out.server_id);
  f.str("server_name", out.server_name);
  f.str("version", out.version);
  f.str("go", out.go);
  f.str("host", out.host);
  f.integer("port", out.port);
  f.boolean("headers", out.headers);
  f.integer("max_payload", out.max_payload);
  f.integer("proto", out.proto);
  f.integer("client_id", out.client_id);
  f.str("client_ip", out.client_ip);
  f.boolean("auth_required", out.auth_required);
  f.boolean("tls_required", out.tls_required);
  f.boolean("tls_available", out.tls_available);
  f.boolean("tls_verify", out.tls_verify);
  f.boolean("jetstream", out.jetstream);
  f.boolean("ldm", out.lame_duck_mode);
  f.str("nonce", out.nonce);
  f.str("cluster", out.cluster);
  f.str("domain", out.domain);
  f.strings("connect_urls", out.connect_urls);
  f.strings("ws_connect_urls", out.ws_connect_urls);
  return f.ok();
}

bool read(const json::object& o, stream_config& out) {
  fields f(o);
  f.str("name", out.name);
  f.str("description", out.description);
  f.strings("subjects", out.subjects);
  f.enumeration("retention", out.retention);
  f.enumeration("storage", out.storage);
  f.integer("max_consumers", out.max_consumers);
  f.integer("max_msgs", out.max_msgs);
  f.integer("max_bytes", out.max_bytes);
  f.duration("max_age", out.max_age);
  f.integer("max_msgs_per_subject", out.max_msgs_per_subject);
  f.integer("max_msg_size", out.max_msg_size);
  f.enumeration("discard", out.discard);
  f.integer("num_replicas", out.num_replicas);
  f.duration("duplicate_window", out.duplicate_window);
  f.boolean("allow_rollup_hdrs", out.allow_rollup_hdrs);
  f.boolean("deny_delete", out.deny_delete);
  f.boolean("deny_purge", out.deny_purge);
  return f.ok();
}

bool read(const json::object& o, cluster_info& out) {
  fields f(o);
  f.str("name", out.name);
  f.str("leader", out.leader);
  if (const json::array* a = f.array("replicas")) {
    out.replicas.reserve(a->size());
    for (const auto& e : *a) {
      const json::object* r = e.if_object();
      if (r == nullptr) return false;
      fields rf(*r);
      peer_info p;
      rf.str("name", p.name);
      rf.boolean("current", p.current);
      rf.boolean("offline", p.offline);
      if (!rf.ok()) return false;
      out.replicas.push_back(std::move(p));
    }
  }
  return f.ok();
}

bool read_cluster(fields& f, std::optional<cluster_info>& out) {
  if (const json::object* c = f.object("cluster")) {
    cluster_info ci;
    if (!read(*c, ci)) return false;
    out = std::move(ci);
  }
  return f.ok();
}

bool read(const json::object& o, stream_info& out) {
  fields f(o);
  const json::object* cfg = f.object("config");
  if (!f.ok() || cfg == nullptr || !read(*cfg, out.config)) return false;
  if (const json::object* s = f.object("state")) {
    fields sf(*s);
    sf.integer("messages", out.state.messages);
    sf.integer("bytes", out.state.bytes);
    sf.integer("first_seq", out.state.first_seq);
    sf.integer("last_seq", out.state.last_seq);
    sf.integer("consumer_count", out.state.consumer_count);
    if (!sf.ok()) return false;
  }
  f.str("created", out.created);
  f.boolean("did_create", out.did_create);
  return read_cluster(f, out.cluster);
}

bool read(const json::object& o, consumer_config& out) {
  fields f(o);
  f.str("name", out.name);
  f.str("durable_name", out.durable_name);
  f.str("description", out.description);
  f.enumeration("deliver_policy", out.deliver);
  f.integer("opt_start_seq", out.opt_start_seq);
  f.enumeration("ack_policy", out.ack);
  f.duration("ack_wait", out.ack_wait);
  f.integer("max_deliver", out.max_deliver);
  f.str("filter_subject", out.filter_subject);
  f.strings("filter_subjects", out.filter_subjects);
  f.enumeration("replay_policy", out.replay);
  f.integer("max_ack_pending", out.max_ack_pending);
  f.integer("max_waiting", out.max_waiting);
  f.str("deliver_subject", out.deliver_subject);
  f.str("deliver_group", out.deliver_group);
  f.boolean("flow_control", out.flow_control);
  f.duration("idle_heartbeat", out.idle_heartbeat);
  f.boolean("headers_only", out.headers_only);
  f.duration("inactive_threshold", out.inactive_threshold);
  f.integer("num_replicas", out.num_replicas);
  f.boolean("mem_storage", out.mem_storage);
  if (const json::object* md = f.object("metadata")) {
    out.metadata.clear();
    for (const auto& kv : *md) {
      if (const auto* v = kv.value().if_string())
        out.metadata.emplace_back(std::string(kv.key()), std::string(v->data(), v->size()));
      else
        f.fail();
    }
  }
  return f.ok();
}

bool read_sequence(fields& f, std::string_view key, sequence_info& out) {
  if (const json::object* s = f.object(key)) {
    fields sf(*s);
    sf.integer("consumer_seq", out.consumer_seq);
    sf.integer("stream_seq", out.stream_seq);
    if (!sf.ok()) f.fail();
  }
  return f.ok();
}

bool read(const json::object& o, consumer_info& out) {
  fields f(o);
  const json::object* cfg = f.object("config");
  if (!f.ok() || cfg == nullptr || !read(*cfg, out.config)) return false;
  f.str("stream_name", out.stream_name);
  f.str("name", out.name);
  f.str("created", out.created);
  read_sequence(f, "delivered", out.delivered);
  read_sequence(f, "ack_floor", out.ack_floor);
  f.integer("num_ack_pending", out.num_ack_pending);
  f.integer("num_redelivered", out.num_redelivered);
  f.integer("num_waiting", out.num_waiting);
  f.integer("num_pending", out.num_pending);
  return read_cluster(f, out.cluster);
}

bool read(const json::object& o, account_info& out) {
  fields f(o);
  f.integer("memory", out.memory);
  f.integer("storage", out.storage);
  f.integer("streams", out.streams);
  f.integer("consumers", out.consumers);
  f.str("domain", out.domain);
  if (const json::object* l = f.object("limits")) {
    fields lf(*l);
    lf.integer("max_memory", out.limits.max_memory);
    lf.integer("max_storage", out.limits.max_storage);
    lf.integer("max_streams", out.limits.max_streams);
    lf.integer("max_consumers", out.limits.max_consumers);
    if (!lf.ok()) return false;
  }
  return f.ok();
}

bool read(const json::object& o, stored_message& out) {
  fields f(o);
  const json::object* m = f.object("message");
  if (!f.ok() || m == nullptr) return false;
  fields mf(*m);
  mf.str("subject", out.subject);
  mf.integer("seq", out.seq);
  mf.str("time", out.time);
  for (auto [key, target] : {std::pair{std::string_view{"hdrs"}, &out.headers}, std::pair{std::string_view{"data"}, &out.data}}) {
    if (const json::value* v = mf.get(key)) {
      const json::string* s = v->if_string();
      if (s == nullptr || !base64_decode(std::string_view{s->data(), s->size()}, *target)) return false;
    }
  }
  return mf.ok();
}

bool read_page(fields& f, page_info& page) {
  f.integer("total", page.total);
  f.integer("offset", page.offset);
  f.integer("limit", page.limit);
  return f.ok();
}

template <class Info>
error_code decode_list(std::string_view text, std::string_view field, std::vector<Info>& out, page_info& page) {
  return with_root(text, [&](const json::object& root) -> error_code {
    if (auto e = response_error(root)) return *e;
    fields f(root);
    page_info p;
    if (!read_page(f, p)) return invalid_json();
    std::vector<Info> items;
    if (const json::array* a = f.array(field)) {
      items.reserve(a->size());
      for (const auto& e : *a) {
        const json::object* o = e.if_object();
        Info info;
        if (o == nullptr || !read(*o, info)) return invalid_json();
        items.push_back(std::move(info));
      }
    }
    if (!f.ok()) return invalid_json();
    out = std::move(items);
    page = p;
    return {};
  });
}

// Decodes a standalone object (no error check), or a response object (error object => JetStream error, its
// text to `err` when given).
template <class T>
error_code decode_object(std::string_view text, T& out, bool response, api_error* err = nullptr) {
  return with_root(text, [&](const json::object& root) -> error_code {
    if (response) {
      if (auto e = response_error(root, err)) return *e;
    }
    T value;
    if (!read(root, value)) return invalid_json();
    out = std::move(value);
    return {};
  });
}

}  // namespace

// Test hooks (not part of the API): the two halves of decode_pub_ack, for parity tests and fuzzing.
namespace detail {

// In pub_ack_scan.cpp: the scanner for the shapes the server writes.
bool decode_pub_ack_fast(std::string_view text, pub_ack& out, api_error& err);

error_code decode_pub_ack_full(std::string_view text, pub_ack& out, api_error& err) {
  return with_root(text, [&](const json::object& root) -> error_code {
    fields f(root);
    if (const json::object* e = f.object("error")) {
      api_error parsed;
      if (!read_api_error(*e, parsed)) return invalid_json();
      err = std::move(parsed);
      out.stream.clear();
      out.seq = 0;
      out.duplicate = false;
      out.domain.clear();
      f.str("stream", out.stream);
      f.integer("seq", out.seq);
      f.str("domain", out.domain);
      return {};
    }
    if (!f.ok() || f.get("stream") == nullptr || f.get("seq") == nullptr) return invalid_json();
    std::uint64_t seq = 0;
    bool dup = false;
    f.integer("seq", seq);
    f.boolean("duplicate", dup);
    const json::value* stream = f.get("stream");
    const json::value* domain = f.get("domain");
    if (!f.ok() || !stream->is_string() || (domain != nullptr && !domain->is_string())) return invalid_json();
    const json::string& s = stream->get_string();
    out.stream.assign(s.data(), s.size());
    if (domain != nullptr) out.domain.assign(domain->get_string().data(), domain->get_string().size());
    else out.domain.clear();
    out.seq = seq;
    out.duplicate = dup;
    err = api_error{};
    return {};
  });
}

}  // namespace detail

// ---- public API ----

error_code decode(std::string_view json, server_info& out) { return decode_object(json, out, false); }
error_code decode(std::string_view json, stream_config& out) { return decode_object(json, out, false); }
error_code decode(std::string_view json, stream_info& out) { return decode_object(json, out, true); }
error_code decode(std::string_view json, consumer_config& out) { return decode_object(json, out, false); }
error_code decode(std::string_view json, consumer_info& out) { return decode_object(json, out, true); }
error_code decode(std::string_view json, account_info& out) { return decode_object(json, out, true); }
error_code decode(std::string_view json, stored_message& out) { return decode_object(json, out, true); }
error_code decode(std::string_view json, stream_info& out, api_error& err) {
  return decode_object(json, out, true, &err);
}
error_code decode(std::string_view json, consumer_info& out, api_error& err) {
  return decode_object(json, out, true, &err);
}
error_code decode(std::string_view json, account_info& out, api_error& err) {
  return decode_object(json, out, true, &err);
}
error_code decode(std::string_view json, stored_message& out, api_error& err) {
  return decode_object(json, out, true, &err);
}

error_code decode_pub_ack(std::string_view json, pub_ack& out, api_error& err) {
  if (detail::decode_pub_ack_fast(json, out, err)) return {};
  return detail::decode_pub_ack_full(json, out, err);
}

bool extract_api_error(std::string_view json, api_error& err, error_code& ec) {
  bool found = false;
  ec = with_root(json, [&](const json::object& root) -> error_code {
    fields f(root);
    const json::object* e = f.object("error");
    if (!f.ok()) return invalid_json();
    if (e == nullptr) return {};
    if (!read_api_error(*e, err)) return invalid_json();
    found = true;
    return {};
  });
  return found;
}

error_code decode_names(std::string_view json, std::string_view field, std::vector<std::string>& names,
                        page_info& page) {
  return with_root(json, [&](const json::object& root) -> error_code {
    if (auto e = response_error(root)) return *e;
    fields f(root);
    page_info p;
    std::vector<std::string> list;
    read_page(f, p);
    f.strings(field, list);
    if (!f.ok()) return invalid_json();
    names = std::move(list);
    page = p;
    return {};
  });
}

error_code decode_stream_list(std::string_view json, std::vector<stream_info>& out, page_info& page) {
  return decode_list(json, "streams", out, page);
}

error_code decode_consumer_list(std::string_view json, std::vector<consumer_info>& out, page_info& page) {
  return decode_list(json, "consumers", out, page);
}


}  // namespace natsbus::protocol
