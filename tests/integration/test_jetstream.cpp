#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "nats_server.hpp"
#include "run.hpp"

#include <natsbus/jetstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <set>
#include <vector>

namespace asio = boost::asio;
using natsbus::error;
using natsbus::error_code;
using natsbus::test::nats_server;
using natsbus::test::run_coro;
using namespace std::chrono_literals;
constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);

namespace {

natsbus::connection_options options_for(const nats_server& s) {
  natsbus::connection_options o;
  o.servers = {s.url()};
  return o;
}

// Plain functions build configs: GCC 12 rejects braced lists of string literals inside coroutines.
natsbus::stream_config stream(const char* name, const char* subject,
                              natsbus::storage_type st = natsbus::storage_type::memory) {
  natsbus::stream_config c;
  c.name = name;
  c.subjects = {subject};
  c.storage = st;
  return c;
}

struct js_fixture {
  nats_server server;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(jetstream_management, js_fixture)

BOOST_AUTO_TEST_CASE(stream_round_trips) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);

    auto cfg = stream("ORDERS", "orders.>", natsbus::storage_type::file);
    cfg.max_msgs = 1000;
    cfg.max_age = std::chrono::hours(24);
    cfg.description = "orders";
    cfg.duplicate_window = std::chrono::seconds(30);
    auto created = co_await js.create_stream(cfg);
    BOOST_TEST(created.config.name == "ORDERS");
    BOOST_TEST(created.config.max_msgs == 1000);
    BOOST_TEST((created.config.max_age == std::chrono::hours(24)));
    BOOST_TEST((created.config.storage == natsbus::storage_type::file));
    BOOST_TEST(created.config.subjects.size() == 1u);
    BOOST_TEST(created.state.messages == 0u);

    // Creating again with the same config is idempotent.
    auto again = co_await js.create_stream(cfg);
    BOOST_TEST(again.config.name == "ORDERS");

    for (int i = 0; i < 5; ++i) co_await js.publish("orders.new", "o" + std::to_string(i));
    for (int i = 0; i < 3; ++i) co_await js.publish("orders.old", "x");
    auto info = co_await js.get_stream_info("ORDERS");
    BOOST_TEST(info.state.messages == 8u);
    BOOST_TEST(info.state.first_seq == 1u);
    BOOST_TEST(info.state.last_seq == 8u);

    cfg.max_msgs = 2000;
    cfg.subjects.push_back("returns.>");
    auto updated = co_await js.update_stream(cfg);
    BOOST_TEST(updated.config.max_msgs == 2000);
    BOOST_TEST(updated.config.subjects.size() == 2u);

    auto last = co_await js.get_last_message("ORDERS", "orders.new");
    BOOST_TEST(last.data == "o4");
    BOOST_TEST(last.seq == 5u);
    auto first = co_await js.get_message("ORDERS", 1);
    BOOST_TEST(first.data == "o0");

    // Messages 1-5 are orders.new, 6-8 orders.old. Keep counts from the last sequence.
    natsbus::purge_options keep_four;
    keep_four.keep = 4;
    auto kept = co_await js.purge_stream("ORDERS", keep_four);
    BOOST_TEST(kept == 4u);
    natsbus::purge_options by_subject;
    by_subject.subject = "orders.old";
    auto purged = co_await js.purge_stream("ORDERS", by_subject);
    BOOST_TEST(purged == 3u);
    info = co_await js.get_stream_info("ORDERS");
    BOOST_TEST(info.state.messages == 1u);
    BOOST_TEST(info.state.first_seq == 5u);

    co_await js.create_stream(stream("OTHER", "other.>"));
    auto names = co_await js.stream_names();
    std::sort(names.begin(), names.end());
    BOOST_REQUIRE(names.size() == 2u);
    BOOST_TEST(names[0] == "ORDERS");
    BOOST_TEST(names[1] == "OTHER");
    auto holding = co_await js.stream_names("other.x");
    BOOST_REQUIRE(holding.size() == 1u);
    BOOST_TEST(holding[0] == "OTHER");
    auto list = co_await js.list_streams();
    BOOST_TEST(list.size() == 2u);

    auto acct = co_await js.get_account_info();
    BOOST_TEST(acct.streams == 2);

    co_await js.delete_stream("OTHER");
    names = co_await js.stream_names();
    BOOST_TEST(names.size() == 1u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(typed_api_errors) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await js.create_stream(stream("A", "a.>"));

    auto different = stream("A", "a.>");
    different.max_msgs = 5;
    auto [e1, i1] = co_await js.create_stream(different, use_ec);
    BOOST_TEST(e1 == natsbus::make_jetstream_error(natsbus::jetstream_errc::stream_name_in_use));
    BOOST_TEST((e1.category() == natsbus::jetstream_category()));
    BOOST_TEST(!natsbus::is_fatal(e1));
    BOOST_TEST(!js.last_api_error().description.empty());

    auto [e2, i2] = co_await js.get_stream_info("MISSING", use_ec);
    BOOST_TEST(e2.value() == natsbus::jetstream_errc::stream_not_found);
    BOOST_TEST(js.last_api_error().code == 404);

    auto [e3, i3] = co_await js.create_stream(stream("B", "a.b"), use_ec);
    BOOST_TEST(e3.value() == natsbus::jetstream_errc::stream_subjects_overlap);

    auto [e4] = co_await js.delete_stream("MISSING", use_ec);
    BOOST_TEST(e4.value() == natsbus::jetstream_errc::stream_not_found);

    auto [e5, i5] = co_await js.get_stream_info("bad.name", use_ec);
    BOOST_TEST(e5 == error::invalid_argument);

    // Awaited with the default token, a failure throws with the server's own description of it.
    std::string thrown;
    natsbus::error_code thrown_ec;
    try {
      co_await js.create_stream(different);
    } catch (const boost::system::system_error& e) {
      thrown = e.what();
      thrown_ec = e.code();
    }
    BOOST_TEST(thrown_ec == e1);
    BOOST_TEST(thrown.find(js.last_api_error().description) != std::string::npos, thrown);
    BOOST_TEST(thrown.find("already in use") != std::string::npos, thrown);
    thrown.clear();
    try {
      co_await js.delete_stream("MISSING");
    } catch (const boost::system::system_error& e) {
      thrown = e.what();
    }
    BOOST_TEST(thrown.find("not found") != std::string::npos, thrown);
    BOOST_TEST(c.is_connected());
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(consumer_round_trips) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await js.create_stream(stream("C", "c.>"));
    natsbus::consumer_config cc;
    cc.durable_name = "worker";
    cc.ack = natsbus::ack_policy::explicit_;
    cc.filter_subject = "c.x";
    auto ci = co_await js.create_consumer("C", cc);
    BOOST_TEST(ci.name == "worker");
    BOOST_TEST(ci.stream_name == "C");
    BOOST_TEST(ci.config.filter_subject == "c.x");
    natsbus::consumer_config eph;
    eph.ack = natsbus::ack_policy::none;
    eph.deliver_subject = "deliver.here";
    auto ei = co_await js.create_consumer("C", eph);
    BOOST_TEST(!ei.name.empty());
    auto names = co_await js.consumer_names("C");
    BOOST_TEST(names.size() == 2u);
    auto list = co_await js.list_consumers("C");
    BOOST_TEST(list.size() == 2u);
    auto info = co_await js.get_consumer_info("C", "worker");
    BOOST_TEST(info.config.durable_name == "worker");
    co_await js.delete_consumer("C", "worker");
    auto [ec, gone] = co_await js.get_consumer_info("C", "worker", use_ec);
    BOOST_TEST(ec.value() == natsbus::jetstream_errc::consumer_not_found);
    c.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(jetstream_publish, js_fixture)

BOOST_AUTO_TEST_CASE(publish_results) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await js.create_stream(stream("P", "p.>"));

    std::uint64_t last = 0;
    for (int i = 0; i < 10; ++i) {
      auto ack = co_await js.publish("p.seq", "x");
      BOOST_TEST(ack.stream == "P");
      BOOST_TEST(ack.seq == last + 1);
      BOOST_TEST(!ack.duplicate);
      last = ack.seq;
    }

    natsbus::publish_options o;
    o.msg_id = "order-42";
    auto a1 = co_await js.publish("p.dedupe", "one", o);
    auto a2 = co_await js.publish("p.dedupe", "one", o);
    BOOST_TEST(!a1.duplicate);
    BOOST_TEST(a2.duplicate);
    BOOST_TEST(a2.seq == a1.seq);
    auto info = co_await js.get_stream_info("P");
    BOOST_TEST(info.state.messages == 11u);

    natsbus::publish_options wrong;
    wrong.expected_last_seq = 3;
    auto [e1, x1] = co_await js.publish("p.seq", "x", wrong, use_ec);
    BOOST_TEST(e1.value() == natsbus::jetstream_errc::stream_wrong_last_sequence);
    BOOST_TEST((e1.category() == natsbus::jetstream_category()));

    natsbus::publish_options right;
    right.expected_last_seq = info.state.last_seq;
    right.expected_stream = "P";
    auto ok = co_await js.publish("p.seq", "x", right);
    BOOST_TEST(ok.seq == info.state.last_seq + 1);

    natsbus::headers h;
    h.add("Trace", "abc");
    natsbus::publish_options with_headers;
    with_headers.hdrs = &h;
    with_headers.msg_id = "hdr-1";
    auto hack = co_await js.publish("p.h", "body", with_headers);
    auto stored = co_await js.get_message("P", hack.seq);
    BOOST_TEST(stored.headers.find("Trace: abc") != std::string::npos);
    BOOST_TEST(stored.headers.find("Nats-Msg-Id: hdr-1") != std::string::npos);

    auto start = std::chrono::steady_clock::now();
    auto [e2, x2] = co_await js.publish("nostream.here", "x", use_ec);
    BOOST_TEST(e2 == error::no_responders);
    BOOST_TEST((std::chrono::steady_clock::now() - start) < 1s);
    BOOST_TEST(js.pending() == 0u);
    c.close();
  });
}

BOOST_AUTO_TEST_CASE(pipelined_hundred_thousand) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.max_pending = 1024;
    natsbus::jetstream js(c, jo);
    co_await js.create_stream(stream("PIPE", "pipe.>"));

    constexpr int n = 100000;
    int acks = 0, errors = 0;
    std::size_t max_seen = 0;
    std::vector<natsbus::ack_future> futures;
    futures.reserve(n);
    for (int i = 0; i < n; ++i) {
      futures.push_back(co_await js.publish_async("pipe.data", "0123456789abcdef"));
      max_seen = std::max(max_seen, js.pending());
    }
    co_await js.publish_async_complete();
    BOOST_TEST(js.pending() == 0u);
    std::vector<bool> seen(n + 1, false);
    for (auto& f : futures) {
      BOOST_REQUIRE(f.ready());
      auto [ec, ack] = co_await f.get(use_ec);
      if (ec) {
        ++errors;
        continue;
      }
      ++acks;
      if (ack.seq >= 1 && ack.seq <= static_cast<std::uint64_t>(n)) seen[ack.seq] = true;
    }
    BOOST_TEST(acks == n);
    BOOST_TEST(errors == 0);
    BOOST_TEST(std::count(seen.begin() + 1, seen.end(), true) == n);
    BOOST_TEST(max_seen <= 1024u);
    BOOST_TEST(js.max_pending_seen() <= 1024u);
    BOOST_TEST(js.max_pending_seen() > 1u);
    auto info = co_await js.get_stream_info("PIPE");
    BOOST_TEST(info.state.messages == static_cast<std::uint64_t>(n));
    BOOST_TEST(info.state.first_seq == 1u);
    BOOST_TEST(info.state.last_seq == static_cast<std::uint64_t>(n));
    c.close();
  }, 120s);
}

// The synchronous forms: try_publish_async starts a publish while the window has room and says "not now",
// without an error, when it is full; try_get reads a resolved future without waiting, as often as asked.
BOOST_AUTO_TEST_CASE(try_publish_async_and_try_get) {
  run_coro([&]() -> asio::awaitable<void> {
    natsbus::connection c(co_await asio::this_coro::executor, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.max_pending = 2;
    natsbus::jetstream js(c, jo);
    co_await js.create_stream(stream("TRY", "try.>"));

    natsbus::error_code ec;
    natsbus::pub_ack ack;
    natsbus::ack_future empty;
    BOOST_TEST(empty.try_get(ec, ack));
    BOOST_TEST((ec == natsbus::error::invalid_argument));

    natsbus::ack_future f1, f2, f3;
    BOOST_TEST(js.try_publish_async("try.a", "one", f1, ec));
    BOOST_TEST(!ec);
    BOOST_TEST(f1.valid());
    BOOST_TEST(!f1.try_get(ec, ack));  // nothing can have been answered yet: the frame has not left
    BOOST_TEST(js.try_publish_async("try.a", "two", f2, ec));
    // The window (2) is full: not now, and no error.
    BOOST_TEST(!js.try_publish_async("try.a", "three", f3, ec));
    BOOST_TEST(!ec);
    BOOST_TEST(!f3.valid());
    BOOST_TEST(js.pending() == 2u);

    co_await js.publish_async_complete();
    // With room, a bad subject fails at once.
    BOOST_TEST(!js.try_publish_async("bad subject", "x", f3, ec));
    BOOST_TEST((ec == natsbus::error::invalid_subject));
    BOOST_TEST(!f3.valid());
    BOOST_TEST(f1.try_get(ec, ack));
    BOOST_TEST(!ec);
    BOOST_TEST(ack.stream == "TRY");
    BOOST_TEST(ack.seq == 1u);
    BOOST_TEST(f2.try_get(ec, ack));
    BOOST_TEST(ack.seq == 2u);
    BOOST_TEST(f1.try_get(ec, ack));  // again, the same outcome
    BOOST_TEST(ack.seq == 1u);
    auto [gec, gack] = co_await f2.get(use_ec);
    BOOST_TEST(!gec);
    BOOST_TEST(gack.seq == 2u);

    // Room again; a publish to a subject no stream holds resolves with no_responders, read by try_get.
    BOOST_TEST(js.try_publish_async("try.b", "three", f3, ec));
    BOOST_TEST(js.try_publish_async("nostream.x", "four", f1, ec));
    co_await js.publish_async_complete();
    BOOST_TEST(f3.try_get(ec, ack));
    BOOST_TEST(!ec);
    BOOST_TEST(ack.seq == 3u);
    BOOST_TEST(f1.try_get(ec, ack));
    BOOST_TEST((ec == natsbus::error::no_responders));
    BOOST_TEST(ack.seq == 0u);
    c.close();
  }, 30s);
}

// Every publish has a reply subject never used before, even when the one before it was answered: a stream
// leader elected while acks were on their way answers again the entries it applies, and such an answer must
// find no publish. A core subscriber beside the stream sees every frame's reply subject.
BOOST_AUTO_TEST_CASE(every_publish_has_a_reply_subject_of_its_own) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection watcher(ex, options_for(server));
    co_await watcher.connect();
    auto sub = co_await watcher.subscribe("reuse.>");
    co_await watcher.flush();
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.max_pending = 32;
    natsbus::jetstream js(c, jo);
    co_await js.create_stream(stream("REUSE", "reuse.>"));

    // One publisher awaiting each ack, then a window of 32.
    constexpr int sequential = 200, windowed = 3000;
    for (int i = 0; i < sequential; ++i) co_await js.publish("reuse.one", "x");
    std::vector<natsbus::ack_future> futures;
    futures.reserve(windowed);
    for (int i = 0; i < windowed; ++i) futures.push_back(co_await js.publish_async("reuse.many", "y"));
    co_await js.publish_async_complete();
    int acked = 0;
    for (auto& f : futures) {
      auto [ec, ack] = co_await f.get(use_ec);
      if (!ec) ++acked;
    }
    BOOST_TEST(acked == windowed);
    std::set<std::string> replies;
    for (int i = 0; i < sequential + windowed; ++i) {
      auto m = co_await sub.next();
      replies.insert(m.reply);
    }
    BOOST_TEST(replies.size() == static_cast<std::size_t>(sequential + windowed));
    auto info = co_await js.get_stream_info("REUSE");
    BOOST_TEST(info.state.messages == static_cast<std::uint64_t>(sequential + windowed));
    c.close();
    watcher.close();
  }, 60s);
}

// A late answer (after a timeout), a second answer, or a foreign one never resolves a later publish. No stream
// here; a core responder answers by hand.
BOOST_AUTO_TEST_CASE(late_or_foreign_answers_never_reach_a_later_publish) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection responder(ex, options_for(server));
    co_await responder.connect();
    auto sub = co_await responder.subscribe("late.x");
    co_await responder.flush();
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);
    natsbus::publish_options quick;
    quick.timeout = 200ms;

    // 1: unanswered, times out.
    auto [e1, a1] = co_await js.publish("late.x", "one", quick, use_ec);
    BOOST_TEST(e1 == error::timeout);
    auto m1 = co_await sub.next();

    // 2: a new subject. The late answer to 1 arrives first and must be ignored.
    auto f2 = co_await js.publish_async("late.x", "two");
    auto m2 = co_await sub.next();
    BOOST_TEST(m2.reply != m1.reply);
    co_await responder.publish(m1.reply, R"({"stream":"FAKE","seq":1})");
    co_await responder.publish(m2.reply, R"({"stream":"FAKE","seq":2})");
    auto [e2, a2] = co_await f2.get(use_ec);
    BOOST_TEST(!e2);
    BOOST_TEST(a2.seq == 2u);

    // 3: 2 was answered, and yet its subject is not used again: in a cluster, a stream leader elected while
    // acks were on their way answers again the entries it applies. That second answer to 2 arrives first and
    // must be ignored.
    auto f3 = co_await js.publish_async("late.x", "three");
    auto m3 = co_await sub.next();
    BOOST_TEST(m3.reply != m2.reply);
    co_await responder.publish(m2.reply, R"({"stream":"FAKE","seq":2})");
    co_await responder.publish(m3.reply, R"({"stream":"FAKE","seq":3})");
    auto [e3, a3] = co_await f3.get(use_ec);
    BOOST_TEST(!e3);
    BOOST_TEST(a3.seq == 3u);

    // 4: a foreign answer fails the publish it reaches; the next publish has a new subject again.
    auto f4 = co_await js.publish_async("late.x", "four");
    auto m4 = co_await sub.next();
    BOOST_TEST(m4.reply != m3.reply);
    co_await responder.publish(m4.reply, "not a publish ack");
    auto [e4, a4] = co_await f4.get(use_ec);
    BOOST_TEST(e4 == error::invalid_json);
    auto f5 = co_await js.publish_async("late.x", "five");
    auto m5 = co_await sub.next();
    BOOST_TEST(m5.reply != m4.reply);
    co_await responder.publish(m5.reply, R"({"stream":"FAKE","seq":5})");
    auto [e5, a5] = co_await f5.get(use_ec);
    BOOST_TEST(!e5);
    BOOST_TEST(a5.seq == 5u);
    BOOST_TEST(js.pending() == 0u);
    c.close();
    responder.close();
  }, 30s);
}

// A publish whose frame went out twice (here: unacknowledged past resend_unacked_after) can be answered twice,
// so its slot's next publish takes a new subject, and the second answer is dropped.
BOOST_AUTO_TEST_CASE(resent_publish_gives_its_slot_a_new_subject) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection responder(ex, options_for(server));
    co_await responder.connect();
    auto sub = co_await responder.subscribe("resend.x");
    co_await responder.flush();
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.resend_unacked_after = 50ms;
    natsbus::jetstream js(c, jo);
    natsbus::publish_options with_id;
    with_id.msg_id = "r-1";

    auto f1 = co_await js.publish_async("resend.x", "one", with_id);
    auto m1 = co_await sub.next();
    auto m1_again = co_await sub.next();  // the resend, same subject
    BOOST_TEST(m1_again.reply == m1.reply);
    co_await responder.publish(m1.reply, R"({"stream":"FAKE","seq":1})");
    auto [e1, a1] = co_await f1.get(use_ec);
    BOOST_TEST(!e1);
    BOOST_TEST(a1.seq == 1u);

    with_id.msg_id = "r-2";
    auto f2 = co_await js.publish_async("resend.x", "two", with_id);
    auto m2 = co_await sub.next();
    while (m2.payload != "two") m2 = co_await sub.next();  // skip any later resend of the first
    BOOST_TEST(m2.reply != m1.reply);
    co_await responder.publish(m1.reply, R"({"stream":"FAKE","seq":1,"duplicate":true})");  // the resend's answer
    co_await responder.publish(m2.reply, R"({"stream":"FAKE","seq":2})");
    auto [e2, a2] = co_await f2.get(use_ec);
    BOOST_TEST(!e2);
    BOOST_TEST(a2.seq == 2u);
    BOOST_TEST(!a2.duplicate);
    c.close();
    responder.close();
  }, 30s);
}

BOOST_AUTO_TEST_CASE(concurrent_awaiting_publishers_pipeline) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.max_pending = 64;
    natsbus::jetstream js(c, jo);
    co_await js.create_stream(stream("CONC", "conc.>"));
    constexpr int workers = 200, each = 50;
    int ok = 0, done = 0;
    natsbus::test::signal all(ex);
    for (int w = 0; w < workers; ++w) {
      asio::co_spawn(c.get_executor(), [&]() -> asio::awaitable<void> {
        for (int i = 0; i < each; ++i) {
          auto [ec, ack] = co_await js.publish("conc.x", "m", use_ec);
          if (!ec) ++ok;
        }
        if (++done == workers) all.notify();
      }, asio::detached);
    }
    co_await all.wait();
    BOOST_TEST(ok == workers * each);
    BOOST_TEST(js.max_pending_seen() <= 64u);
    BOOST_TEST(js.max_pending_seen() > 1u);  // they pipelined
    c.close();
  }, 60s);
}

// Awaiting coroutines on the connection's executor are resumed straight from the reader's batch. One of them
// closing the connection mid-batch must leave every other publisher resolved exactly once.
BOOST_AUTO_TEST_CASE(close_from_a_resumed_publisher) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream js(c);
    co_await js.create_stream(stream("CLOSING", "closing.>"));
    constexpr int workers = 50;
    int acked = 0, closed = 0, other = 0, done = 0;
    natsbus::test::signal all(c.get_executor());
    for (int w = 0; w < workers; ++w) {
      asio::co_spawn(c.get_executor(), [&, w]() -> asio::awaitable<void> {
        for (int i = 0;; ++i) {
          auto [ec, ack] = co_await js.publish("closing.x", "m", use_ec);
          if (!ec) ++acked;
          else if (ec == error::connection_closed) ++closed;
          else ++other;
          if (ec) break;
          if (w == 0 && i == 20) c.close();
        }
        if (++done == workers) all.notify();
      }, asio::detached);
    }
    co_await all.wait();
    BOOST_TEST(acked >= 21);
    BOOST_TEST(closed == workers);  // every worker ends on its first error, which is the close
    BOOST_TEST(other == 0);
  }, 30s);
}

// On a single-threaded io_context a lone publish is busy-polled for: the thread keeps polling instead of
// sleeping. Timers and other coroutines must still run meanwhile, and every publish still resolves.
BOOST_AUTO_TEST_CASE(busy_polling_starves_nothing) {
  for (auto poll : {std::chrono::microseconds(0), std::chrono::microseconds(1000)}) {
    asio::io_context io(1);
    int acked = 0, ticks = 0;
    bool publisher_done = false, ticker_done = false;
    auto o = options_for(server);
    o.busy_poll = poll;
    natsbus::connection c(io.get_executor(), o);
    natsbus::jetstream js(c);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await c.connect();
      natsbus::stream_config cfg = stream("POLL", "poll.>");
      auto [cec, info] = co_await js.create_stream(cfg, use_ec);
      BOOST_TEST(!cec);
      // A ticker that must keep its pace while the publisher round-trips.
      asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io);
        for (ticks = 0; ticks < 20; ++ticks) {
          t.expires_after(2ms);
          co_await t.async_wait(asio::use_awaitable);
        }
        ticker_done = true;
      }, asio::detached);
      for (int i = 0; i < 2000; ++i) {
        auto [ec, ack] = co_await js.publish("poll.x", "m", use_ec);
        if (!ec && ack.seq == static_cast<std::uint64_t>(i + 1)) ++acked;
        if (ticker_done && i >= 100) break;
      }
      publisher_done = true;
      co_await js.delete_stream("POLL");
      c.close();
    }, asio::detached);
    io.run_for(20s);
    BOOST_TEST(publisher_done);
    BOOST_TEST(ticker_done);  // 20 ticks of 2 ms came while the publisher kept the thread busy
    BOOST_TEST(acked > 100);
  }
}

BOOST_AUTO_TEST_CASE(deadlines_when_the_server_stops) {
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    natsbus::connection c(ex, options_for(server));
    co_await c.connect();
    natsbus::jetstream_options jo;
    jo.timeout = 1s;
    jo.max_pending = 256;
    natsbus::jetstream js(c, jo);
    co_await js.create_stream(stream("D", "d.>", natsbus::storage_type::file));
    std::vector<natsbus::ack_future> futures;
    for (int i = 0; i < 2000; ++i) {
      if (i == 500) server.stop();
      auto [ec, f] = co_await js.publish_async("d.x", "m", use_ec);
      if (ec) break;  // the connection is gone: later publishes fail at once
      futures.push_back(std::move(f));
    }
    auto start = std::chrono::steady_clock::now();
    int resolved = 0, failed = 0;
    for (auto& f : futures) {
      auto [ec, ack] = co_await f.get(use_ec);
      ++resolved;
      if (ec) ++failed;
    }
    BOOST_TEST(resolved == static_cast<int>(futures.size()));
    BOOST_TEST((std::chrono::steady_clock::now() - start) < 3s);
    BOOST_TEST(js.pending() == 0u);
    auto [ec, ack] = co_await js.publish("d.x", "late", use_ec);
    BOOST_TEST(ec);
  }, 30s);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jetstream_inbox_prefix)

asio::awaitable<void> answer_with_reply_subject(natsbus::connection& c, natsbus::subscription sub) {
  auto [ec, m] = co_await sub.next(use_ec);
  if (ec) co_return;
  auto [pec] = co_await c.publish(m.reply, m.reply, use_ec);
  (void)pec;
}

// Connects c with its error events going to `errors`, and answers one request on svc.whoami with the request's
// own reply subject.
asio::awaitable<void> connect_answering_whoami(natsbus::connection& c, std::vector<natsbus::connection_event>& errors) {
  c.set_event_handler([&errors](const natsbus::connection_event& e) {
    if (e.kind == natsbus::event_kind::error) errors.push_back(e);
  });
  co_await c.connect();
  auto sub = co_await c.subscribe("svc.whoami");
  co_await c.flush();
  asio::co_spawn(co_await asio::this_coro::executor, answer_with_reply_subject(c, sub), asio::detached);
}

// An account allowed to subscribe under _SVC and svc only: requests, JetStream API calls and publish acks all
// come back under options::inbox_prefix. With the default _INBOX the same account gets no reply.
BOOST_AUTO_TEST_CASE(replies_and_acks_come_under_the_inbox_prefix) {
  natsbus::test::server_options so;
  so.config = R"(authorization {
    users = [
      { user: "svc", password: "pw", permissions: { subscribe: { allow: ["_SVC.>", "svc.>"] } } },
      { user: "admin", password: "pw" }
    ]
  })";
  nats_server server(so);
  run_coro([&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto ao = options_for(server);
    ao.user = "admin";
    ao.password = "pw";
    natsbus::connection admin(ex, ao);
    co_await admin.connect();
    auto watch = co_await admin.subscribe("orders.>");
    co_await admin.flush();

    auto o = options_for(server);
    o.user = "svc";
    o.password = "pw";
    {
      // The default prefix: the inbox subscription is refused, and the request gets no reply.
      natsbus::connection c(ex, o);
      std::vector<natsbus::connection_event> errors;
      co_await connect_answering_whoami(c, errors);
      auto [ec, r] = co_await c.request("svc.whoami", "", 300ms, use_ec);
      BOOST_TEST(ec == error::timeout);
      BOOST_TEST_REQUIRE(!errors.empty());
      BOOST_TEST(errors[0].ec == error::permissions_violation);
      BOOST_TEST(errors[0].text.find("_INBOX.") != std::string::npos, errors[0].text);
      c.close();
    }
    o.inbox_prefix = "_SVC.orders";
    natsbus::connection c(ex, o);
    std::vector<natsbus::connection_event> errors;
    co_await connect_answering_whoami(c, errors);
    auto r = co_await c.request("svc.whoami", "", 5s);
    BOOST_TEST(r.payload.rfind("_SVC.orders.", 0) == 0u, r.payload);

    natsbus::jetstream js(c);
    auto cfg = stream("ORDERS", "orders.>");
    auto created = co_await js.create_stream(cfg);
    BOOST_TEST(created.config.name == "ORDERS");
    auto ack = co_await js.publish("orders.new", "o1");
    BOOST_TEST(ack.stream == "ORDERS");
    BOOST_TEST(ack.seq == 1u);
    auto seen = co_await watch.next();
    BOOST_TEST(seen.reply.rfind("_SVC.orders.", 0) == 0u, seen.reply);
    BOOST_TEST(errors.empty());
    c.close();
    admin.close();
  });
}

BOOST_AUTO_TEST_SUITE_END()
