// Internal, sans-I/O: requests awaiting replies on the connection's one inbox subscription ("<inbox>.<token>").
// A single request ends with its first reply; a streaming request (a JetStream pull: many messages, then a status)
// takes every reply to its token until its listener says it is over. Replies are matched by token, never by order;
// a reply whose token is no longer pending (abandoned, timed out) is dropped.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/message.hpp>
#include <natsbus/protocol/parser.hpp>

#include <boost/asio/any_completion_handler.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace natsbus::detail {

using message_handler = boost::asio::any_completion_handler<void(error_code, message)>;

// Receives the replies of a streaming request, inline in the reader (the event's bytes are valid for the call only).
class reply_stream {
 public:
  // A reply to the request; returns true when it was the last (a terminal status, or everything asked for).
  virtual bool on_reply(const protocol::event& ev) = 0;
  // The request ended without a terminal reply: timeout, disconnected, connection_closed, or cancelled.
  virtual void on_end(error_code ec) = 0;

 protected:
  ~reply_stream() = default;
};

class request_mux {
 public:
  using clock = std::chrono::steady_clock;

  // A handler with the outcome it is to be completed with (the connection completes it on its executor).
  struct completion {
    message_handler handler;
    error_code ec;
    message msg;
  };

  [[nodiscard]] std::uint64_t next_token() noexcept { return next_token_++; }
  void add(std::uint64_t token, message_handler h, clock::time_point deadline);
  void add_stream(std::uint64_t token, std::shared_ptr<reply_stream> s, clock::time_point deadline);
  // A streaming request's silence bound moves on (a heartbeat, a message): its deadline is now `deadline`.
  void extend(std::uint64_t token, clock::time_point deadline);
  // The requester gives up: nothing more is delivered; on_end is not called.
  void cancel(std::uint64_t token);

  // A reply for `token`. A single request's completion is returned; a stream's reply is handed to it here.
  // A 503 status with no payload (no responders) ends either kind with error::no_responders.
  std::optional<completion> on_reply(std::uint64_t token, const protocol::event& ev);

  // Ends what is past its deadline with error::timeout; returns the next deadline (max when none).
  clock::time_point expire(clock::time_point now, std::vector<completion>& out);
  // Ends everything with `ec`.
  void fail_all(error_code ec, std::vector<completion>& out);

  [[nodiscard]] std::size_t size() const noexcept { return pending_.size(); }
  [[nodiscard]] bool empty() const noexcept { return pending_.empty(); }
  [[nodiscard]] clock::time_point earliest() const noexcept;

 private:
  struct entry {
    clock::time_point deadline;
    message_handler handler;           // a single request
    std::shared_ptr<reply_stream> stream;  // or a streaming one
  };
  std::unordered_map<std::uint64_t, entry> pending_;
  std::uint64_t next_token_ = 1;
};

// Builds a message (copying the bytes) from a parser event; bad header bytes give bad_header.
error_code make_message(const protocol::event& ev, message& out);

}  // namespace natsbus::detail
