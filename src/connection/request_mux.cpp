#include "connection/request_mux.hpp"

#include <natsbus/protocol/headers.hpp>

namespace natsbus::detail {

error_code make_message(const protocol::event& ev, message& out) {
  out.subject.assign(ev.subject);
  out.reply.assign(ev.reply);
  out.payload.assign(ev.payload);
  out.sid = ev.sid;
  out.headers = headers{};
  if (ev.kind == protocol::op::hmsg && !ev.headers.empty()) return protocol::decode_headers(ev.headers, out.headers);
  return {};
}

void request_mux::add(std::uint64_t token, message_handler h, clock::time_point deadline) {
  pending_.emplace(token, entry{deadline, std::move(h), nullptr});
}

void request_mux::add_stream(std::uint64_t token, std::shared_ptr<reply_stream> s, clock::time_point deadline) {
  pending_.emplace(token, entry{deadline, {}, std::move(s)});
}

void request_mux::extend(std::uint64_t token, clock::time_point deadline) {
  if (auto it = pending_.find(token); it != pending_.end()) it->second.deadline = deadline;
}

void request_mux::cancel(std::uint64_t token) { pending_.erase(token); }

std::optional<request_mux::completion> request_mux::on_reply(std::uint64_t token, const protocol::event& ev) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return std::nullopt;  // a late reply to an abandoned request
  const bool no_responders = ev.kind == protocol::op::hmsg && ev.payload.empty() &&
                             protocol::peek_status(ev.headers) == status::no_responders;
  if (it->second.stream) {
    // The entry goes first: the stream may start another request from its callback.
    if (no_responders) {
      auto s = std::move(it->second.stream);
      pending_.erase(it);
      s->on_end(error::no_responders);
      return std::nullopt;
    }
    auto s = it->second.stream;
    if (s->on_reply(ev)) pending_.erase(token);
    return std::nullopt;
  }
  completion c{std::move(it->second.handler), {}, {}};
  pending_.erase(it);
  if (no_responders) c.ec = error::no_responders;
  else c.ec = make_message(ev, c.msg);
  return c;
}

request_mux::clock::time_point request_mux::earliest() const noexcept {
  auto next = clock::time_point::max();
  for (const auto& [tok, e] : pending_) next = std::min(next, e.deadline);
  return next;
}

request_mux::clock::time_point request_mux::expire(clock::time_point now, std::vector<completion>& out) {
  std::vector<std::shared_ptr<reply_stream>> ended;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    if (it->second.stream) ended.push_back(std::move(it->second.stream));
    else out.push_back(completion{std::move(it->second.handler), error::timeout, {}});
    it = pending_.erase(it);
  }
  for (auto& s : ended) s->on_end(error::timeout);
  return earliest();
}

void request_mux::fail_all(error_code ec, std::vector<completion>& out) {
  auto all = std::move(pending_);
  pending_.clear();
  for (auto& [tok, e] : all) {
    if (e.stream) e.stream->on_end(ec);
    else out.push_back(completion{std::move(e.handler), ec, {}});
  }
}

}  // namespace natsbus::detail
