// Testing an application's handler with no server: the event bus's memory backend.
//
// The handler below keeps account balances from "deposit" and "withdraw" events keyed by account. It refuses a
// withdrawal that would overdraw (a reject: the event goes to the dead-letter topic with the reason) and fails
// once, on purpose, for one event (a retry: the bus tries it again after the backoff, and keyed order holds the
// account's later events back meanwhile). The same code runs over NATS by changing one setting (backend).
//
//   natsbus-example-memory      exits 0 when every expectation holds (registered as a test)
#include <natsbus/event_bus.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct ledger {
  std::map<std::string, long> balance;
  std::vector<std::string> dead;  // the dead letters' reasons
  bool failed_once = false;
};

asio::awaitable<int> run(ledger& book) {
  auto ex = co_await asio::this_coro::executor;
  natsbus::event_bus_config cfg;
  cfg.backend = natsbus::bus_backend::memory;  // natsbus::bus_backend::nats and a URL: the same, over a server
  cfg.strategy = natsbus::topic_strategy::create_or_update;
  natsbus::event_bus bus(ex, cfg);
  co_await bus.start();

  natsbus::event_handler_fn handler = [&](const natsbus::bus_event& e) -> asio::awaitable<natsbus::handle_result> {
    const std::string account(e.key);
    const auto kind = e.hdrs ? e.hdrs->get("Kind").value_or("") : std::string_view{};
    const long amount = std::stol(std::string(e.payload));
    if (amount == 7 && !book.failed_once) {  // a transient failure: retried, and the account waits for it
      book.failed_once = true;
      co_return natsbus::handle_result::retry("ledger store busy", 50ms);
    }
    if (kind == "withdraw") {
      if (book.balance[account] < amount) co_return natsbus::handle_result::reject("would overdraw " + account);
      book.balance[account] -= amount;
    } else {
      book.balance[account] += amount;
    }
    co_return natsbus::handle_result::ok();
  };
  natsbus::subscribe_options opts;
  opts.group = "ledger";
  opts.key_header = "Account";
  opts.max_concurrency = 4;
  opts.backoff = {50ms};
  auto sub = co_await bus.subscribe("bank.tx", handler, opts);

  natsbus::event_handler_fn on_dead = [&](const natsbus::bus_event& e) -> asio::awaitable<natsbus::handle_result> {
    book.dead.emplace_back(e.hdrs ? e.hdrs->get(natsbus::dlq_error_header).value_or("") : "");
    co_return natsbus::handle_result::ok();
  };
  natsbus::subscribe_options dead_opts;
  dead_opts.group = "audit";
  auto dlq = co_await bus.subscribe("bank.tx.dlq", on_dead, dead_opts);

  struct tx {
    const char* account;
    const char* kind;
    const char* amount;
  };
  const tx txs[] = {{"alice", "deposit", "100"}, {"bob", "deposit", "7"},    {"alice", "withdraw", "30"},
                    {"bob", "withdraw", "5"},    {"alice", "withdraw", "500"}, {"bob", "deposit", "1"}};
  for (const auto& t : txs) {
    natsbus::headers h;
    h.set("Account", t.account);
    h.set("Kind", t.kind);
    natsbus::bus_publish_options po;
    po.hdrs = &h;
    const std::string_view body = t.amount;
    co_await bus.publish("bank.tx", body, po);
  }

  // Wait (bounded) until all six are handled or dead-lettered.
  for (int i = 0; i < 300 && sub.stats().handled + sub.stats().dead_lettered < 6; ++i) {
    asio::steady_timer t(ex, 10ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  for (int i = 0; i < 300 && book.dead.empty(); ++i) {
    asio::steady_timer t(ex, 10ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  const auto st = sub.stats();
  sub.stop();
  dlq.stop();
  bus.close();

  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += ok ? 0 : 1;
  };
  expect(book.balance["alice"] == 70, "alice: 100 - 30 = 70 (the 500 withdrawal refused)");
  expect(book.balance["bob"] == 3, "bob: 7 - 5 + 1 = 3, in order although the 7 failed once");
  expect(st.handled == 5 && st.dead_lettered == 1 && st.retried == 1, "5 handled, 1 retried, 1 dead-lettered");
  expect(book.dead.size() == 1 && book.dead[0] == "would overdraw alice", "the dead letter carries its reason");
  co_return failures;
}

}  // namespace

int main() {
  asio::io_context io;
  ledger book;
  int failures = 1;
  asio::co_spawn(io, run(book), [&](std::exception_ptr e, int f) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::printf("FAIL %s\n", x.what());
      }
      return;
    }
    failures = f;
  });
  io.run_for(30s);
  return failures == 0 ? 0 : 1;
}
