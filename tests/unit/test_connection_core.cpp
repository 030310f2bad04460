// The connection's sans-I/O core (src/connection/): driven with frames and calls, read back as bytes and
// outcomes, with no socket and no executor.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include "connection/core.hpp"

#include <natsbus/protocol/headers.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using natsbus::error;
using natsbus::error_code;
using namespace natsbus::detail;
using namespace std::chrono_literals;
namespace protocol = natsbus::protocol;

namespace {

using clock_type = std::chrono::steady_clock;

protocol::event msg_event(std::string_view subject, std::uint64_t sid, std::string_view payload,
                          std::string_view headers = {}) {
  protocol::event ev;
  ev.kind = headers.empty() ? protocol::op::msg : protocol::op::hmsg;
  ev.subject = subject;
  ev.sid = sid;
  ev.payload = payload;
  ev.headers = headers;
  return ev;
}

// A reply stream that takes replies until a status header says the request is over.
struct recording_stream final : reply_stream {
  std::vector<std::string> payloads;
  std::vector<error_code> ends;
  bool on_reply(const protocol::event& ev) override {
    if (ev.kind == protocol::op::hmsg && protocol::peek_status(ev.headers) == 404) return true;
    payloads.emplace_back(ev.payload);
    return false;
  }
  void on_end(error_code ec) override { ends.push_back(ec); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(write_buffer_tests)

BOOST_AUTO_TEST_CASE(frames_leave_in_order_as_one_batch) {
  write_buffer out;
  BOOST_TEST(!out.append_publish("a", "", static_cast<const natsbus::headers*>(nullptr), "hi"));
  BOOST_TEST(!out.append_sub("b.>", "q", 7));
  out.append_unsub(7, 3);
  out.append_ping();
  BOOST_TEST(out.pings_pending() == 1u);
  const auto g = out.generation();
  BOOST_TEST(out.take() == "PUB a 2\r\nhi\r\nSUB b.> q 7\r\nUNSUB 7 3\r\nPING\r\n");
  BOOST_TEST(out.generation() == g + 1);
  BOOST_TEST(out.pings_pending() == 0u);
  BOOST_TEST(out.size() == 0u);  // appended frames now wait for the next batch
  out.append_pong();
  out.wrote(5);  // a partial write: the rest of the batch goes first
  BOOST_TEST(out.take() == " 2\r\nhi\r\nSUB b.> q 7\r\nUNSUB 7 3\r\nPING\r\n");
  out.wrote(1000);
  BOOST_TEST(out.take() == "PONG\r\n");
  out.wrote(6);
  BOOST_TEST(out.idle());
}

BOOST_AUTO_TEST_CASE(a_frame_that_overflows_the_reconnect_buffer_is_refused_whole) {
  write_buffer out;
  out.set_bound(30);
  BOOST_TEST(!out.append_publish("a", "", std::string_view(), "0123456789"));  // 20 bytes
  std::size_t at = out.size();
  BOOST_TEST(out.append_publish("a", "", std::string_view(), "0123456789") == error::reconnect_buffer_full);
  BOOST_TEST(out.size() == at);
  BOOST_TEST(out.append_frame("PUB a 10\r\n0123456789\r\n") == error::reconnect_buffer_full);
  BOOST_TEST(out.pending() == "PUB a 10\r\n0123456789\r\n");
  out.clear_bound();
  BOOST_TEST(!out.append_publish("a", "r", std::string_view("NATS/1.0\r\n\r\n"), "x"));
  BOOST_TEST(out.since(at) == "HPUB a r 12 13\r\nNATS/1.0\r\n\r\nx\r\n");
}

BOOST_AUTO_TEST_CASE(after_a_reconnect_the_replay_goes_before_what_never_left) {
  write_buffer out;
  (void)out.append_frame("PUB a 1\r\nx\r\n");
  out.take();
  out.lost();  // the batch on the wire may have arrived in part: dropped
  (void)out.append_frame("PUB b 1\r\ny\r\n");  // buffered while reconnecting
  auto held = out.set_aside();
  (void)out.append_sub("s", "", 1);
  (void)out.append_frame("PUB js 1\r\nz\r\n");  // a resend
  out.put_back(held);
  BOOST_TEST(out.take() == "SUB s 1\r\nPUB js 1\r\nz\r\nPUB b 1\r\ny\r\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(request_mux_tests)

BOOST_AUTO_TEST_CASE(a_single_request_ends_with_its_first_reply) {
  request_mux mux;
  int calls = 0;
  auto t = mux.next_token();
  mux.add(t, message_handler([&](error_code, natsbus::message) { ++calls; }), clock_type::now() + 1s);
  auto c = mux.on_reply(t, msg_event("_INBOX.x.1", 1, "pong"));
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(!c->ec);
  BOOST_TEST(c->msg.payload == "pong");
  BOOST_TEST(mux.empty());
  BOOST_TEST(!mux.on_reply(t, msg_event("_INBOX.x.1", 1, "late")).has_value());  // a second answer finds nothing
  std::move(c->handler)(c->ec, std::move(c->msg));
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(no_responders_fails_a_request) {
  request_mux mux;
  auto t = mux.next_token();
  mux.add(t, message_handler([](error_code, natsbus::message) {}), clock_type::now() + 1s);
  auto c = mux.on_reply(t, msg_event("_INBOX.x.1", 1, "", "NATS/1.0 503\r\n\r\n"));
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(c->ec == error::no_responders);
}

BOOST_AUTO_TEST_CASE(deadlines_expire_with_timeout_and_name_the_next) {
  request_mux mux;
  auto now = clock_type::now();
  auto a = mux.next_token(), b = mux.next_token();
  mux.add(a, message_handler([](error_code, natsbus::message) {}), now + 1s);
  mux.add(b, message_handler([](error_code, natsbus::message) {}), now + 3s);
  std::vector<request_mux::completion> out;
  auto next = mux.expire(now + 2s, out);
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST(out[0].ec == error::timeout);
  BOOST_TEST((next == now + 3s));
  BOOST_TEST(mux.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_streaming_request_takes_replies_until_its_terminal_status) {
  request_mux mux;
  auto s = std::make_shared<recording_stream>();
  auto t = mux.next_token();
  auto other = mux.next_token();
  mux.add_stream(t, s, clock_type::now() + 1s);
  mux.add_stream(other, std::make_shared<recording_stream>(), clock_type::now() + 1s);
  BOOST_TEST(!mux.on_reply(t, msg_event("_INBOX.x.1", 1, "m1")).has_value());
  BOOST_TEST(!mux.on_reply(t, msg_event("_INBOX.x.1", 1, "m2")).has_value());
  BOOST_TEST(mux.size() == 2u);
  // Another request's status ends that one only.
  (void)mux.on_reply(other, msg_event("_INBOX.x.2", 1, "", "NATS/1.0 404 No Messages\r\n\r\n"));
  BOOST_TEST(mux.size() == 1u);
  (void)mux.on_reply(t, msg_event("_INBOX.x.1", 1, "", "NATS/1.0 404 No Messages\r\n\r\n"));
  BOOST_TEST(mux.empty());
  BOOST_TEST((s->payloads == std::vector<std::string>{"m1", "m2"}));
  BOOST_TEST(s->ends.empty());
  (void)mux.on_reply(t, msg_event("_INBOX.x.1", 1, "m3"));  // after the end: dropped
  BOOST_TEST(s->payloads.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_streaming_request_ends_once_on_timeout_loss_or_no_responders) {
  request_mux mux;
  auto now = clock_type::now();
  auto a = std::make_shared<recording_stream>(), b = std::make_shared<recording_stream>(),
       c = std::make_shared<recording_stream>();
  auto ta = mux.next_token(), tb = mux.next_token(), tc = mux.next_token();
  mux.add_stream(ta, a, now + 1s);
  mux.add_stream(tb, b, now + 5s);
  mux.add_stream(tc, c, now + 5s);
  mux.extend(tb, now + 10s);
  std::vector<request_mux::completion> out;
  (void)mux.expire(now + 6s, out);  // a and c time out; b was extended
  BOOST_TEST(out.empty());
  BOOST_TEST((a->ends == std::vector<error_code>{error::timeout}));
  BOOST_TEST((c->ends == std::vector<error_code>{error::timeout}));
  BOOST_TEST(b->ends.empty());
  mux.fail_all(error::disconnected, out);
  BOOST_TEST((b->ends == std::vector<error_code>{error::disconnected}));
  auto d = std::make_shared<recording_stream>();
  auto td = mux.next_token();
  mux.add_stream(td, d, now + 1s);
  (void)mux.on_reply(td, msg_event("_INBOX.x.4", 1, "", "NATS/1.0 503\r\n\r\n"));
  BOOST_TEST((d->ends == std::vector<error_code>{error::no_responders}));
  auto e = std::make_shared<recording_stream>();
  auto te = mux.next_token();
  mux.add_stream(te, e, now + 1s);
  mux.cancel(te);
  (void)mux.on_reply(te, msg_event("_INBOX.x.5", 1, "m"));
  BOOST_TEST(e->payloads.empty());
  BOOST_TEST(e->ends.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server_pool_tests)

BOOST_AUTO_TEST_CASE(seeds_are_checked_and_kept_in_order) {
  server_pool pool(pool_policy{}, 1);
  std::string bad;
  BOOST_TEST(pool.seed({"nats://a:1", "ftp://b"}, false, bad) == error::invalid_url);
  BOOST_TEST(bad == "ftp://b");
  BOOST_TEST(pool.seed({}, false, bad) == error::no_servers);
  BOOST_TEST(!pool.seed({"nats://a:1", "b:2", "nats://c:3"}, false, bad));
  BOOST_TEST(pool[1].addr.host == "b");
  BOOST_TEST(pool[1].addr.port == 2);
}

BOOST_AUTO_TEST_CASE(attempts_wait_their_turn_and_skip_lame_ducks) {
  pool_policy policy;
  policy.reconnect_wait = 100ms;
  policy.reconnect_jitter = 0ms;
  server_pool pool(policy, 1);
  std::string bad;
  BOOST_REQUIRE(!pool.seed({"nats://a:1", "nats://b:2", "nats://c:3"}, false, bad));
  auto t0 = clock_type::now();
  pool.attempting(0, t0);
  pool.connected(0);
  pool.lame_duck();  // a announced lame duck mode
  pool.lost(t0);
  auto n = pool.next_attempt();
  BOOST_REQUIRE(n.has_value());
  BOOST_TEST(n->index == 1u);
  BOOST_TEST((n->due == clock_type::time_point{}));  // never tried: at once
  pool.attempting(1, t0);
  BOOST_TEST(!pool.failed(1, error::connect_timeout));
  n = pool.next_attempt();
  BOOST_TEST(n->index == 2u);
  pool.attempting(2, t0);
  n = pool.next_attempt();
  BOOST_TEST(n->index == 1u);  // a is skipped while others are left
  BOOST_TEST((n->due == t0 + 100ms));
}

BOOST_AUTO_TEST_CASE(a_server_leaves_after_two_auth_errors_or_too_many_attempts) {
  pool_policy policy;
  policy.max_reconnects = 2;
  server_pool pool(policy, 1);
  std::string bad;
  BOOST_REQUIRE(!pool.seed({"nats://a:1", "nats://b:2"}, false, bad));
  BOOST_TEST(!pool.failed(0, error::authorization_violation));
  BOOST_TEST(pool.failed(0, error::authorization_violation));
  BOOST_TEST(pool.size() == 1u);
  BOOST_TEST(pool[0].addr.host == "b");
  BOOST_TEST(!pool.failed(0, error::connect_timeout));
  BOOST_TEST(!pool.failed(0, error::connect_timeout));
  BOOST_TEST(pool.failed(0, error::connect_timeout));
  BOOST_TEST(pool.empty());
  BOOST_TEST(!pool.next_attempt().has_value());
}

BOOST_AUTO_TEST_CASE(discovered_servers_take_the_seed_credentials_once) {
  server_pool pool(pool_policy{}, 1);
  std::string bad;
  BOOST_REQUIRE(!pool.seed({"nats://u:p@a:1"}, false, bad));
  BOOST_TEST(pool.add_discovered({"a:1", "10.0.0.2:4222", "10.0.0.2:4222", "bad url with spaces"}) == 1u);
  BOOST_TEST(pool.size() == 2u);
  BOOST_TEST(pool[1].discovered);
  BOOST_TEST(pool[1].addr.user == "u");
  BOOST_TEST(pool[1].addr.password == "p");
  BOOST_TEST(pool.add_discovered({"10.0.0.2:4222"}) == 0u);
  pool_policy ignore;
  ignore.ignore_discovered = true;
  server_pool quiet(ignore, 1);
  BOOST_REQUIRE(!quiet.seed({"nats://a:1"}, false, bad));
  BOOST_TEST(quiet.add_discovered({"b:2"}) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ping_tracker_tests)

BOOST_AUTO_TEST_CASE(keepalive_goes_stale_after_max_pings_out) {
  ping_tracker pings(2);
  BOOST_TEST(pings.keepalive());
  BOOST_TEST(pings.keepalive());
  BOOST_TEST(!pings.keepalive());  // two unanswered: stale
  BOOST_TEST(!pings.pong().has_value());  // the keepalive's own PONG: no waiter, and alive again
  BOOST_TEST(pings.outstanding() == 0);
  BOOST_TEST(pings.keepalive());
}

BOOST_AUTO_TEST_CASE(pongs_complete_flushes_in_order_and_a_loss_fails_those_that_left) {
  ping_tracker pings(2);
  std::vector<int> order;
  pings.flush(void_handler([&](error_code) { order.push_back(1); }));
  BOOST_TEST(pings.keepalive());
  pings.flush(void_handler([&](error_code) { order.push_back(2); }));
  pings.flush(void_handler([&](error_code) { order.push_back(3); }));
  auto w = pings.pong();
  BOOST_REQUIRE(w.has_value());
  std::move (*w)(error_code{});
  BOOST_TEST(!pings.pong().has_value());  // the keepalive's
  // The connection is lost with one PING still pending (it never left): flush 2 left and fails; 3 stays.
  std::vector<void_handler> fail;
  pings.lost(1, fail);
  BOOST_REQUIRE(fail.size() == 1u);
  std::move(fail[0])(error::disconnected);
  // (A new variable: Boost 1.81's any_completion_handler cannot be move-assigned; see pings.hpp.)
  auto w3 = pings.pong();
  BOOST_REQUIRE(w3.has_value());
  std::move (*w3)(error_code{});
  BOOST_TEST((order == std::vector<int>{1, 2, 3}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(subscription_table_tests)

BOOST_AUTO_TEST_CASE(a_full_queue_drops_and_reports_once_per_episode) {
  subscription_table subs;
  auto s = std::make_shared<sub_state>();
  s->sid = subs.next_sid();
  s->subject = "a";
  s->max_pending_msgs = 2;
  s->max_pending_bytes = 1024;
  subs.add(s);
  auto ev = msg_event("a", s->sid, "x");
  BOOST_TEST(!subs.deliver(s, ev).dropped);
  BOOST_TEST(!subs.deliver(s, ev).dropped);
  auto d = subs.deliver(s, ev);
  BOOST_TEST(d.dropped);
  BOOST_TEST(d.dropped_first);
  d = subs.deliver(s, ev);
  BOOST_TEST(d.dropped);
  BOOST_TEST(!d.dropped_first);
  natsbus::message m;
  BOOST_TEST(s->pop(m));
  BOOST_TEST(!subs.deliver(s, ev).dropped);  // room again: the episode is over
  BOOST_TEST(s->dropped.load() == 2u);
  BOOST_TEST(s->pending.load() == 2u);
}

BOOST_AUTO_TEST_CASE(the_last_message_of_a_limit_ends_the_subscription_in_the_table) {
  subscription_table subs;
  auto s = std::make_shared<sub_state>();
  s->sid = subs.next_sid();
  s->subject = "a";
  s->max_pending_msgs = 10;
  s->max_pending_bytes = 1024;
  s->max_msgs = 1;
  subs.add(s);
  std::weak_ptr<sub_state> weak = s;
  const std::uint64_t sid = s->sid;
  s.reset();  // the table holds the only reference, as when the caller dropped its subscription
  auto d = subs.deliver(subs.get(sid), msg_event("a", sid, "x"));
  BOOST_TEST(subs.find(sid) == nullptr);
  BOOST_TEST(weak.expired());
  BOOST_TEST(!d.closed_waiter.has_value());
}

BOOST_AUTO_TEST_CASE(replay_resubscribes_with_what_is_left_of_a_limit) {
  subscription_table subs;
  auto s = std::make_shared<sub_state>();
  s->sid = subs.next_sid();
  s->subject = "a.*";
  s->queue = "q";
  s->max_msgs = 5;
  s->delivered = 2;
  subs.add(s);
  std::string out;
  subs.replay(out);
  BOOST_TEST(out == "SUB a.* q 1\r\nUNSUB 1 3\r\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(server_error_tests)

BOOST_AUTO_TEST_CASE(err_texts_are_classified) {
  BOOST_TEST(protocol::classify_server_error("Permissions Violation for Publish to \"x\"") == error::permissions_violation);
  BOOST_TEST(protocol::classify_server_error("authorization violation") == error::authorization_violation);
  BOOST_TEST(protocol::classify_server_error("User Authentication Expired") == error::authentication_expired);
  BOOST_TEST(protocol::classify_server_error("Stale Connection") == error::stale_connection);
  BOOST_TEST(protocol::classify_server_error("Maximum Payload Violation") == error::max_payload_exceeded);
  BOOST_TEST(protocol::classify_server_error("Unknown Protocol Operation") == error::server_error);
  BOOST_TEST(protocol::classify_server_error("") == error::server_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(held_frames_tests)

BOOST_AUTO_TEST_CASE(only_publishes_and_pings_are_kept_for_the_next_session) {
  const std::string held =
      "SUB a 1\r\nPUB x 3\r\nSUB\r\nUNSUB 1\r\nHPUB y r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\nPONG\r\n"
      "UNSUB 2 5\r\nPUB z 0\r\n\r\n";
  BOOST_TEST(write_buffer::publishes_and_pings(held) ==
             "PUB x 3\r\nSUB\r\nHPUB y r 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\nPUB z 0\r\n\r\n");
  BOOST_TEST(write_buffer::publishes_and_pings("").empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(direct_write_tests)

BOOST_AUTO_TEST_CASE(a_direct_write_takes_the_pending_frames_in_place) {
  write_buffer out;
  (void)out.append_frame("PUB a 1\r\nx\r\n");
  const auto g = out.generation();
  BOOST_TEST(out.direct() == "PUB a 1\r\nx\r\n");
  out.wrote_direct(4);  // partial: the rest waits on the wire side, and goes first
  BOOST_TEST(out.generation() == g + 1);
  BOOST_TEST(out.size() == 0u);
  (void)out.append_frame("PUB b 1\r\ny\r\n");
  BOOST_TEST(out.direct() == "a 1\r\nx\r\n");
  out.wrote_direct(100);
  BOOST_TEST(out.direct() == "PUB b 1\r\ny\r\n");
  out.wrote_direct(13);
  BOOST_TEST(out.idle());
  BOOST_TEST(out.generation() == g + 2);
}

BOOST_AUTO_TEST_SUITE_END()
