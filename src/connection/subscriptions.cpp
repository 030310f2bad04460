#include "connection/subscriptions.hpp"

#include <natsbus/protocol/encoder.hpp>

namespace natsbus::detail {

subscription_table::delivery subscription_table::deliver(const std::shared_ptr<sub_state>& s,
                                                         const protocol::event& ev) {
  delivery d;
  if (s->closed) return d;
  auto n = s->delivered.load(std::memory_order_relaxed) + 1;
  s->delivered.store(n, std::memory_order_relaxed);
  const bool last = s->max_msgs != 0 && n >= s->max_msgs;
  if (s->waiter) {
    if ((d.bad = make_message(ev, d.msg))) {
      d.msg = {};
    } else {
      d.waiter.emplace(std::move(*s->waiter));  // constructed: see pings.hpp on assignment
      s->waiter.reset();
    }
  } else {
    const std::size_t size = ev.payload.size();
    if (s->queue_msgs.size() >= s->max_pending_msgs || s->queue_bytes + size > s->max_pending_bytes) {
      s->dropped.store(s->dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      d.dropped = true;
      d.dropped_first = !s->in_slow_state;
      s->in_slow_state = true;
    } else {
      s->in_slow_state = false;
      message m;
      if (!(d.bad = make_message(ev, m))) {
        s->queue_bytes += size;
        s->queue_msgs.push_back(std::move(m));
        s->pending.store(s->queue_msgs.size(), std::memory_order_relaxed);
      }
    }
  }
  if (last) {
    // `s` may refer to the table's own entry: keep the state alive past the erase.
    auto keep = s;
    subs_.erase(keep->sid);
    counted();
    if (auto w = finish(*keep)) d.closed_waiter.emplace(std::move(*w));
  }
  return d;
}

std::optional<message_handler> subscription_table::finish(sub_state& s) {
  s.closed = true;
  if (!s.waiter || !s.queue_msgs.empty()) return std::nullopt;
  std::optional<message_handler> w(std::move(*s.waiter));
  s.waiter.reset();
  return w;
}

void subscription_table::finish_all(std::vector<message_handler>& closed_waiters) {
  auto all = std::move(subs_);
  subs_.clear();
  counted();
  for (auto& [sid, s] : all)
    if (auto w = finish(*s)) closed_waiters.push_back(std::move(*w));
}

void subscription_table::replay(std::string& out) const {
  for (const auto& [sid, s] : subs_) {
    if (s->closed) continue;
    (void)protocol::encode_sub(out, s->subject, s->queue, sid);
    if (s->max_msgs != 0) {
      auto delivered = s->delivered.load(std::memory_order_relaxed);
      if (delivered < s->max_msgs) protocol::encode_unsub(out, sid, s->max_msgs - delivered);
    }
  }
}

}  // namespace natsbus::detail
