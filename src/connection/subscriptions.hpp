// Internal, sans-I/O: the connection's subscriptions, their bounded queues, and what a delivered message does.
#pragma once

#include "connection/request_mux.hpp"
#include "connection/write_buffer.hpp"

#include <natsbus/error.hpp>
#include <natsbus/message.hpp>
#include <natsbus/protocol/parser.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace natsbus::detail {

class connection_impl;

// An internal subscription's receiver (JetStream acks, pull replies): frames go to it inline in the reader, with no
// copy and no queue. The event's bytes are valid for the call only.
class frame_listener {
 public:
  virtual void on_frame(const protocol::event& ev) = 0;

 protected:
  ~frame_listener() = default;
};

struct sub_state {
  std::weak_ptr<connection_impl> conn;
  std::uint64_t sid = 0;
  std::string subject;
  std::string queue;
  std::deque<message> queue_msgs;
  std::size_t queue_bytes = 0;
  std::size_t max_pending_msgs = 0;
  std::size_t max_pending_bytes = 0;
  std::optional<message_handler> waiter;
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::size_t> pending{0};
  std::uint64_t max_msgs = 0;  // auto-unsubscribe limit, 0 = none
  frame_listener* raw = nullptr;  // an internal subscription
  bool closed = false;            // no more messages will arrive
  std::atomic<bool> unsubscribed{false};  // a connection-less (memory backend) subscription was unsubscribed
  bool in_slow_state = false;     // reported once per overflow episode

  // The next queued message, if any.
  bool pop(message& out) {
    if (queue_msgs.empty()) return false;
    out = std::move(queue_msgs.front());
    queue_msgs.pop_front();
    queue_bytes -= out.payload.size();
    pending.store(queue_msgs.size(), std::memory_order_relaxed);
    return true;
  }
};

class subscription_table {
 public:
  [[nodiscard]] std::uint64_t next_sid() noexcept { return next_sid_++; }
  void add(std::shared_ptr<sub_state> s) {
    subs_.emplace(s->sid, std::move(s));
    counted();
  }
  [[nodiscard]] sub_state* find(std::uint64_t sid) const noexcept {
    auto it = subs_.find(sid);
    return it == subs_.end() ? nullptr : it->second.get();
  }
  [[nodiscard]] std::shared_ptr<sub_state> get(std::uint64_t sid) const {
    auto it = subs_.find(sid);
    return it == subs_.end() ? nullptr : it->second;
  }
  void erase(std::uint64_t sid) {
    subs_.erase(sid);
    counted();
  }
  [[nodiscard]] std::size_t size() const noexcept { return subs_.size(); }
  // The number of live subscriptions, readable from any thread.
  [[nodiscard]] std::size_t live() const noexcept { return live_.load(std::memory_order_relaxed); }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [sid, s] : subs_) f(*s);
  }

  // What a delivered message did.
  struct delivery {
    std::optional<message_handler> waiter;  // to complete with `msg`
    message msg;
    bool dropped = false;        // the subscription's queue was full: the message was dropped (counted)
    bool dropped_first = false;  // ... and it was the first drop of an overflow episode (report it)
    error_code bad;              // the message could not be read (bad header block): report it
    std::optional<message_handler> closed_waiter;  // the subscription ended: complete with subscription_closed
  };
  // A message for s: to its waiter, into its queue, or dropped (counted) when the queue is full. The message that
  // reaches max_msgs ends the subscription and removes it from the table.
  delivery deliver(const std::shared_ptr<sub_state>& s, const protocol::event& ev);

  // The subscription ends: no more messages; a waiter with nothing queued is returned to complete.
  static std::optional<message_handler> finish(sub_state& s);
  // Ends every subscription (the connection closed).
  void finish_all(std::vector<message_handler>& closed_waiters);

  // SUB (and UNSUB for what is left of an auto-unsubscribe limit) for every live subscription, for a new session.
  void replay(std::string& out) const;

 private:
  void counted() noexcept { live_.store(subs_.size(), std::memory_order_relaxed); }
  std::unordered_map<std::uint64_t, std::shared_ptr<sub_state>> subs_;
  std::atomic<std::size_t> live_{0};
  std::uint64_t next_sid_ = 1;
};

}  // namespace natsbus::detail
