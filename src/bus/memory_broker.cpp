// The memory backend's broker: streams, consumers, acks and core subscriptions in process, answering as a
// JetStream server does (see memory_broker.hpp).
#include "bus/memory_broker.hpp"

#include "connection/subscriptions.hpp"

#include <natsbus/protocol/consumer.hpp>
#include <natsbus/protocol/headers.hpp>
#include <natsbus/protocol/jetstream.hpp>
#include <natsbus/protocol/subject.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <ctime>

namespace natsbus::detail {

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() % 1000000000;
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns));
  return buf;
}

// Whether two subject patterns can match a common subject ('*' one token, '>' one or more).
bool patterns_overlap(std::string_view a, std::string_view b) {
  for (;;) {
    const auto ea = a.find('.'), eb = b.find('.');
    const auto ta = a.substr(0, ea), tb = b.substr(0, eb);
    if (ta == ">" || tb == ">") return true;
    if (ta != "*" && tb != "*" && ta != tb) return false;
    const bool more_a = ea != std::string_view::npos, more_b = eb != std::string_view::npos;
    if (!more_a || !more_b) return more_a == more_b;
    a.remove_prefix(ea + 1);
    b.remove_prefix(eb + 1);
  }
}

// The delay of "-NAK {"delay":ns}", 0 when there is none (or it cannot be read: a plain nak).
std::chrono::nanoseconds nak_delay(std::string_view body) {
  const auto brace = body.find('{');
  if (brace == std::string_view::npos) return {};
  boost::system::error_code ec;
  const auto v = boost::json::parse(body.substr(brace), ec);
  if (ec || !v.is_object()) return {};
  const auto* d = v.as_object().if_contains("delay");
  if (!d || !d->is_int64()) return {};
  return std::chrono::nanoseconds(std::max<std::int64_t>(0, d->as_int64()));
}

}  // namespace

memory_broker::memory_broker(asio::any_io_executor ex) : ex_(std::move(ex)) {}

error_code memory_broker::fail(api_error& err, int status, int code, std::string text) {
  err.code = status;
  err.err_code = code;
  err.description = std::move(text);
  return make_jetstream_error(code);
}

memory_broker::stream_state_* memory_broker::find_stream(std::string_view name) {
  auto it = streams_.find(name);
  return it == streams_.end() ? nullptr : &it->second;
}

memory_broker::stream_state_* memory_broker::stream_for_subject(std::string_view subject) {
  for (auto& [name, s] : streams_)
    for (const auto& p : s.cfg.subjects)
      if (protocol::subject_matches(p, subject)) return &s;
  return nullptr;
}

error_code memory_broker::check_stream(const stream_config& c, const std::string& name, api_error& err,
                                       const stream_state_* self) {
  if (c.name != name) return fail(err, 400, 10056, "stream name in subject does not match request");
  if (c.num_replicas > 1) return fail(err, 500, 10074, "replicas > 1 not supported in non-clustered mode");
  for (const auto& p : c.subjects)
    if (!protocol::is_valid_subscription_subject(p)) return fail(err, 400, 10052, "invalid subject '" + p + "'");
  for (const auto& [other, s] : streams_) {
    if (&s == self) continue;
    for (const auto& mine : c.subjects)
      for (const auto& theirs : s.cfg.subjects)
        if (patterns_overlap(mine, theirs))
          return fail(err, 400, jetstream_errc::stream_subjects_overlap, "subjects overlap with an existing stream");
  }
  return {};
}

void memory_broker::fill(const stream_state_& s, stream_info& out) const {
  out.config = s.cfg;
  out.created = s.created;
  out.state.messages = s.msgs.size();
  out.state.bytes = s.bytes;
  out.state.first_seq = s.msgs.empty() ? s.last_seq + 1 : s.msgs.front().seq;
  out.state.last_seq = s.last_seq;
  out.state.consumer_count = static_cast<std::int64_t>(s.consumers.size());
}

error_code memory_broker::stream_request(std::string_view verb, const std::string& name, std::string_view body,
                                         stream_info& out, api_error& err) {
  out = stream_info{};
  auto* s = find_stream(name);
  if (verb == "INFO") {
    if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
    fill(*s, out);
    return {};
  }
  if (verb == "DELETE") {
    if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
    for (auto& [cn, c] : s->consumers) {
      c->deleted = true;
      wake(*c);
    }
    streams_.erase(streams_.find(name));
    return {};
  }
  stream_config c;
  if (auto ec = protocol::decode(body, c)) return fail(err, 400, 10025, "bad request: " + ec.message());
  if (c.subjects.empty()) c.subjects.push_back(name);
  if (c.duplicate_window.count() == 0) c.duplicate_window = std::chrono::minutes(2);
  if (verb == "CREATE") {
    if (s) {
      if (s->cfg == c) {
        fill(*s, out);
        return {};
      }
      return fail(err, 400, jetstream_errc::stream_name_in_use, "stream name already in use with a different configuration");
    }
    if (auto ec = check_stream(c, name, err, nullptr)) return ec;
    auto& fresh = streams_[name];
    fresh.cfg = std::move(c);
    fresh.created = now_rfc3339();
    fill(fresh, out);
    out.did_create = true;
    return {};
  }
  if (verb == "UPDATE") {
    if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
    if (c.storage != s->cfg.storage) return fail(err, 500, 10052, "stream configuration update can not change storage type");
    if (auto ec = check_stream(c, name, err, s)) return ec;
    s->cfg = std::move(c);
    enforce_limits(*s);
    fill(*s, out);
    return {};
  }
  return fail(err, 400, 10025, "bad request: unknown verb " + std::string(verb));
}

// ---- messages ----

const memory_broker::stored* memory_broker::message_at(const stream_state_& s, std::uint64_t seq) const {
  if (s.msgs.empty() || seq < s.msgs.front().seq || seq > s.last_seq) return nullptr;
  return &s.msgs[seq - s.msgs.front().seq];  // sequences are contiguous: only the oldest are ever dropped
}

void memory_broker::drop_front(stream_state_& s) {
  const auto& m = s.msgs.front();
  for (auto& [cn, c] : s.consumers)
    if (m.seq >= c->next_seq && filter_matches(c->cfg, m.subject) && c->matching > 0) --c->matching;
  s.bytes -= m.subject.size() + m.header_block.size() + m.payload.size();
  s.msgs.pop_front();
}

void memory_broker::enforce_limits(stream_state_& s) {
  const auto now = clock::now();
  while (!s.msgs.empty() &&
         ((s.cfg.max_msgs > 0 && s.msgs.size() > static_cast<std::uint64_t>(s.cfg.max_msgs)) ||
          (s.cfg.max_bytes > 0 && s.bytes > static_cast<std::uint64_t>(s.cfg.max_bytes)) ||
          (s.cfg.max_age.count() > 0 && now - s.msgs.front().at > s.cfg.max_age)))
    drop_front(s);
}

void memory_broker::forget_ids(stream_state_& s, clock::time_point now) {
  while (!s.id_order.empty() && now - s.id_order.front().first > s.cfg.duplicate_window) {
    s.ids.erase(s.id_order.front().second);
    s.id_order.pop_front();
  }
}

error_code memory_broker::publish(std::string_view subject, std::string_view payload, const headers* hdrs,
                                  std::string_view msg_id, pub_ack& out, api_error& err) {
  out = pub_ack{};
  if (closed_) return error::connection_closed;
  auto* s = stream_for_subject(subject);
  if (!s) return error::no_responders;  // what a server answers for a subject no stream holds
  const auto now = clock::now();
  forget_ids(*s, now);
  if (!msg_id.empty()) {
    if (auto it = s->ids.find(std::string(msg_id)); it != s->ids.end()) {
      out.stream = s->cfg.name;
      out.seq = it->second;
      out.duplicate = true;
      return {};
    }
  }
  std::string block;
  headers with_id;
  const headers* h = hdrs;
  if (!msg_id.empty()) {
    if (hdrs) with_id = *hdrs;
    with_id.set(protocol::jetstream_header::msg_id, msg_id);
    h = &with_id;
  }
  if (h && !h->empty())
    if (auto ec = protocol::encode_headers(*h, block)) return ec;
  const std::size_t size = subject.size() + block.size() + payload.size();
  if (s->cfg.max_msg_size >= 0 && payload.size() + block.size() > static_cast<std::size_t>(s->cfg.max_msg_size))
    return fail(err, 400, 10054, "message size exceeds maximum allowed");
  if (s->cfg.discard == discard_policy::new_ &&
      ((s->cfg.max_msgs > 0 && s->msgs.size() >= static_cast<std::uint64_t>(s->cfg.max_msgs)) ||
       (s->cfg.max_bytes > 0 && s->bytes + size > static_cast<std::uint64_t>(s->cfg.max_bytes))))
    return fail(err, 503, 10077, "maximum messages exceeded");
  stored m;
  m.seq = ++s->last_seq;
  m.subject.assign(subject);
  m.header_block = std::move(block);
  m.payload.assign(payload);
  m.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
  m.at = now;
  s->bytes += size;
  if (!msg_id.empty()) {
    s->ids.emplace(std::string(msg_id), m.seq);
    s->id_order.emplace_back(now, std::string(msg_id));
  }
  out.stream = s->cfg.name;
  out.seq = m.seq;
  for (auto& [cn, c] : s->consumers)
    if (filter_matches(c->cfg, m.subject) && m.seq >= c->next_seq) {
      ++c->matching;
      wake(*c);
    }
  s->msgs.push_back(std::move(m));
  enforce_limits(*s);
  deliver_core(subject, payload, h);
  return {};
}

error_code memory_broker::publish_core(std::string_view subject, std::string_view payload, const headers* hdrs) {
  if (closed_) return error::connection_closed;
  deliver_core(subject, payload, hdrs);
  return {};
}

// Core subscribers get their own copy, from a job of their own: a publish never runs a handler inside it.
void memory_broker::deliver_core(std::string_view subject, std::string_view payload, const headers* hdrs) {
  std::erase_if(core_, [](const core_sub& c) { return c.state->closed || c.state->unsubscribed.load(); });
  for (const auto& c : core_) {
    if (!protocol::subject_matches(c.pattern, subject)) continue;
    message m;
    m.subject.assign(subject);
    m.payload.assign(payload);
    if (hdrs) m.headers = *hdrs;
    m.sid = c.state->sid;
    asio::post(ex_, [fn = c.fn, st = c.state, m = std::move(m)] {
      if (st->closed || st->unsubscribed.load()) return;
      st->delivered.fetch_add(1, std::memory_order_relaxed);
      fn(m);
    });
  }
}

subscription memory_broker::subscribe_core(std::string pattern, std::function<void(const message&)> fn) {
  auto st = std::make_shared<sub_state>();
  st->sid = next_sid_++;
  st->subject = pattern;
  st->closed = closed_;
  core_.push_back({std::move(pattern), std::move(fn), st});
  return subscription(std::move(st));
}

// ---- consumers ----

bool memory_broker::filter_matches(const consumer_config& c, std::string_view subject) {
  if (c.filter_subject.empty() && c.filter_subjects.empty()) return true;
  if (!c.filter_subject.empty() && protocol::subject_matches(c.filter_subject, subject)) return true;
  return std::any_of(c.filter_subjects.begin(), c.filter_subjects.end(),
                     [&](const std::string& f) { return protocol::subject_matches(f, subject); });
}

void memory_broker::start_position(stream_state_& s, consumer_state& c) {
  const std::uint64_t first = s.msgs.empty() ? s.last_seq + 1 : s.msgs.front().seq;
  switch (c.cfg.deliver) {
    case deliver_policy::new_: c.next_seq = s.last_seq + 1; break;
    case deliver_policy::last: c.next_seq = s.last_seq == 0 ? 1 : s.last_seq; break;
    case deliver_policy::by_start_sequence: c.next_seq = std::max<std::uint64_t>(c.cfg.opt_start_seq, first); break;
    default: c.next_seq = first; break;
  }
  c.matching = 0;
  for (const auto& m : s.msgs)
    if (m.seq >= c.next_seq && filter_matches(c.cfg, m.subject)) ++c.matching;
}

void memory_broker::fill(const consumer_state& c, natsbus::consumer_info& out) const {
  out = natsbus::consumer_info{};
  out.stream_name = c.stream;
  out.name = c.cfg.durable_name.empty() ? c.cfg.name : c.cfg.durable_name;
  out.created = c.created;
  out.config = c.cfg;
  out.delivered.consumer_seq = c.consumer_seq;
  out.delivered.stream_seq = c.next_seq - 1;
  out.ack_floor.stream_seq = c.pending.empty() ? c.next_seq - 1 : c.pending.begin()->first - 1;
  out.ack_floor.consumer_seq = c.consumer_seq - std::min<std::uint64_t>(c.consumer_seq, c.pending.size());
  out.num_ack_pending = static_cast<std::int64_t>(c.pending.size());
  out.num_redelivered = static_cast<std::int64_t>(c.redelivered);
  out.num_waiting = static_cast<std::int64_t>(c.consumes.size());
  out.num_pending = c.matching;
}

error_code memory_broker::consumer_info(std::string_view stream, std::string_view name, natsbus::consumer_info& out,
                                        api_error& err) {
  auto* s = find_stream(stream);
  if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
  auto it = s->consumers.find(name);
  if (it == s->consumers.end()) return fail(err, 404, jetstream_errc::consumer_not_found, "consumer not found");
  fill(*it->second, out);
  return {};
}

error_code memory_broker::add_consumer(std::string_view stream, const consumer_config& cfg, bool update,
                                       natsbus::consumer_info& out, api_error& err) {
  auto* s = find_stream(stream);
  if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
  const std::string name = cfg.durable_name.empty() ? cfg.name : cfg.durable_name;
  if (name.empty()) return fail(err, 400, 10025, "bad request: the memory backend keeps durable consumers only");
  if (!cfg.deliver_subject.empty()) return fail(err, 400, 10025, "bad request: the memory backend has no push consumers");
  consumer_config c = cfg;
  if (c.ack_wait.count() == 0) c.ack_wait = std::chrono::seconds(30);
  if (c.max_ack_pending == 0) c.max_ack_pending = 1000;
  auto it = s->consumers.find(name);
  if (it != s->consumers.end()) {
    auto& have = *it->second;
    if (have.cfg == c) {
      fill(have, out);
      return {};
    }
    if (!update) return fail(err, 400, jetstream_errc::consumer_name_exists, "consumer name already in use");
    if (have.cfg.deliver != c.deliver || have.cfg.filter_subject != c.filter_subject)
      return fail(err, 400, 10012, "consumer deliver policy or filter can not be updated");
    have.cfg = std::move(c);
    wake(have);
    fill(have, out);
    return {};
  }
  if (update) return fail(err, 404, jetstream_errc::consumer_not_found, "consumer not found");
  auto fresh = std::make_shared<consumer_state>();
  fresh->cfg = std::move(c);
  fresh->stream = std::string(stream);
  fresh->created = now_rfc3339();
  start_position(*s, *fresh);
  fill(*fresh, out);
  s->consumers.emplace(name, std::move(fresh));
  return {};
}

error_code memory_broker::delete_consumer(std::string_view stream, std::string_view name, api_error& err) {
  auto* s = find_stream(stream);
  if (!s) return fail(err, 404, jetstream_errc::stream_not_found, "stream not found");
  auto it = s->consumers.find(name);
  if (it == s->consumers.end()) return fail(err, 404, jetstream_errc::consumer_not_found, "consumer not found");
  it->second->deleted = true;
  wake(*it->second);
  s->consumers.erase(it);
  return {};
}

void memory_broker::reschedule(consumer_state& c, std::uint64_t seq, pending_entry& p, clock::time_point due) {
  c.timeline.erase({p.due, seq});
  p.due = due;
  c.timeline.emplace(due, seq);
}

void memory_broker::settle(consumer_state& c, std::map<std::uint64_t, pending_entry>::iterator it) {
  c.timeline.erase({it->second.due, it->first});
  c.pending.erase(it);
}

bool memory_broker::take(consumer_state& c, memory_delivery& out) {
  auto* s = find_stream(c.stream);
  if (!s || c.deleted) return false;
  if (s->cfg.max_age.count() > 0) enforce_limits(*s);  // what aged out since the last publish goes now
  const auto now = clock::now();
  const stored* m = nullptr;
  std::uint64_t deliveries = 1;
  // A redelivery that is due comes first.
  while (!c.timeline.empty() && c.timeline.begin()->first <= now) {
    const auto seq = c.timeline.begin()->second;
    auto it = c.pending.find(seq);
    m = message_at(*s, seq);
    const bool exhausted = c.cfg.max_deliver > 0 && it->second.deliveries >= static_cast<std::uint64_t>(c.cfg.max_deliver);
    if (!m || exhausted) {  // gone from the stream, or delivered max_deliver times: the server stops too
      settle(c, it);
      m = nullptr;
      continue;
    }
    deliveries = ++it->second.deliveries;
    reschedule(c, seq, it->second, now + c.cfg.ack_wait);
    ++c.redelivered;
    break;
  }
  if (!m) {
    if (c.cfg.max_ack_pending > 0 && c.pending.size() >= static_cast<std::uint64_t>(c.cfg.max_ack_pending)) return false;
    const std::uint64_t first = s->msgs.empty() ? s->last_seq + 1 : s->msgs.front().seq;
    if (c.next_seq < first) c.next_seq = first;
    while (c.next_seq <= s->last_seq) {
      const stored* cand = message_at(*s, c.next_seq++);
      if (cand && filter_matches(c.cfg, cand->subject)) {
        m = cand;
        break;
      }
    }
    if (!m) return false;
    if (c.matching > 0) --c.matching;
    if (c.cfg.ack != ack_policy::none) {
      auto& p = c.pending[m->seq];
      p.deliveries = 1;
      p.due = now + c.cfg.ack_wait;
      c.timeline.emplace(p.due, m->seq);
    }
  }
  ++c.consumer_seq;
  out.subject = m->subject;
  out.header_block = m->header_block;
  out.payload = m->payload;
  protocol::message_metadata md;
  md.stream = c.stream;
  md.consumer = c.cfg.durable_name.empty() ? c.cfg.name : c.cfg.durable_name;
  md.num_delivered = deliveries;
  md.stream_sequence = m->seq;
  md.consumer_sequence = c.consumer_seq;
  md.timestamp_ns = m->time_ns;
  md.num_pending = c.matching;
  out.reply.clear();
  protocol::encode_ack_subject(out.reply, md);
  out.info.stream.assign(md.stream);
  out.info.consumer.assign(md.consumer);
  out.info.num_delivered = deliveries;
  out.info.stream_sequence = m->seq;
  out.info.consumer_sequence = c.consumer_seq;
  out.info.timestamp_ns = m->time_ns;
  out.info.num_pending = c.matching;
  return true;
}

void memory_broker::ack(std::string_view reply, std::string_view body) {
  protocol::message_metadata md;
  if (protocol::parse_ack_subject(reply, md)) return;
  auto* s = find_stream(md.stream);
  if (!s) return;
  auto ci = s->consumers.find(md.consumer);
  if (ci == s->consumers.end()) return;
  auto& c = *ci->second;
  auto it = c.pending.find(md.stream_sequence);
  if (it == c.pending.end()) return;  // acked already, or terminated: ignored, as by the server
  const auto now = clock::now();
  if (body.starts_with("+WPI")) {
    reschedule(c, it->first, it->second, now + c.cfg.ack_wait);
    return;
  }
  if (body.starts_with("-NAK")) {
    reschedule(c, it->first, it->second, now + nak_delay(body));
  } else {  // +ACK, +NXT, +TERM (and anything else the server would take as an ack)
    settle(c, it);
  }
  wake(c);
}

// ---- consumes ----

std::shared_ptr<memory_consume> memory_broker::consume(std::string_view stream, std::string_view consumer,
                                                       error_code& ec) {
  auto* s = find_stream(stream);
  auto it = s ? s->consumers.find(consumer) : decltype(s->consumers.end()){};
  if (!s || it == s->consumers.end()) {
    ec = make_jetstream_error(jetstream_errc::consumer_not_found);
    return nullptr;
  }
  auto mc = std::make_shared<memory_consume>(shared_from_this(), it->second);
  std::erase_if(it->second->consumes, [](const auto& w) { return w.expired(); });
  it->second->consumes.push_back(mc);
  return mc;
}

void memory_broker::wake(consumer_state& c) {
  for (const auto& w : c.consumes)
    if (auto mc = w.lock()) mc->wake_.cancel();
}

void memory_broker::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& [sn, s] : streams_)
    for (auto& [cn, c] : s.consumers) wake(*c);
  for (auto& c : core_) c.state->closed = true;
  core_.clear();
}

memory_consume::memory_consume(std::shared_ptr<memory_broker> broker, std::shared_ptr<memory_broker::consumer_state> c)
    : broker_(std::move(broker)), c_(std::move(c)), wake_(broker_->executor()) {}

error_code memory_consume::ended() const {
  if (stopped_) return error::subscription_closed;
  if (broker_->closed()) return error::connection_closed;
  if (c_->deleted) return error::consumer_deleted;
  return {};
}

const memory_delivery* memory_consume::try_next() {
  if (ended()) return nullptr;
  return broker_->take(*c_, current_) ? &current_ : nullptr;
}

asio::awaitable<std::tuple<error_code, const memory_delivery*>> memory_consume::next() {
  auto self = shared_from_this();
  for (;;) {
    if (auto ec = ended()) co_return std::tuple<error_code, const memory_delivery*>{ec, nullptr};
    if (broker_->take(*c_, current_)) co_return std::tuple<error_code, const memory_delivery*>{error_code{}, &current_};
    // Nothing now: wait for a publish, an ack or nak (room, or a delay to run out), or the next redelivery due.
    wake_.expires_at(c_->timeline.empty() ? asio::steady_timer::time_point::max() : c_->timeline.begin()->first);
    co_await wake_.async_wait(use_ec);
  }
}

void memory_consume::stop() {
  stopped_ = true;
  wake_.cancel();
}

}  // namespace natsbus::detail
