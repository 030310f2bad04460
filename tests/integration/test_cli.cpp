// The natsbus command-line tool against a real nats-server: each command's output and exit code, --json for
// scripts, bus plan and apply from a YAML file, and the bad input a shell user gives (an unknown command or flag,
// a missing argument, an unreachable server, a broken config file).
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include "http_probe.hpp"
#include "nats_server.hpp"

#include <boost/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

using natsbus::test::nats_server;
using namespace std::chrono_literals;

namespace {

// The tool as a child process: its stdout and stderr read through pipes, its exit awaited with a deadline (a
// child still running then is killed, and the test fails).
class tool {
 public:
  explicit tool(std::vector<std::string> args, std::vector<std::string> env = {}) {
    int out[2], err[2];
    BOOST_REQUIRE(::pipe(out) == 0 && ::pipe(err) == 0);
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::close(out[0]);
      ::close(err[0]);
      ::unsetenv("NATS_URL");
      ::unsetenv("NATS_CREDS");
      for (auto& e : env) ::putenv(e.data());
      std::vector<char*> argv;
      std::string path = NATSBUS_CLI_PATH;
      argv.push_back(path.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(path.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~tool() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  tool(const tool&) = delete;
  tool& operator=(const tool&) = delete;

  // Reads until stderr holds `text` or the deadline passes; whether it does.
  bool wait_stderr(const std::string& text, std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (err.find(text) == std::string::npos) {
      if (!pump(until)) return false;
    }
    return true;
  }
  // The exit code, once the child has exited and both pipes are drained; -1 after the deadline.
  int wait(std::chrono::milliseconds limit = 20s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (pump(until)) {
    }
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > until) return -1;
      ::poll(nullptr, 0, 10);
    }
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string out, err;

 private:
  // One poll of both pipes until `until`; false once both are closed (or the deadline passed).
  bool pump(std::chrono::steady_clock::time_point until) {
    pollfd fds[2] = {{out_open_ ? out_ : -1, POLLIN, 0}, {err_open_ ? err_ : -1, POLLIN, 0}};
    if (!out_open_ && !err_open_) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      const auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) (i == 0 ? out : err).append(buf, static_cast<std::size_t>(n));
      else (i == 0 ? out_open_ : err_open_) = false;
    }
    return true;
  }
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  bool out_open_ = true, err_open_ = true, exited_ = false;
};

struct result {
  int code;
  std::string out, err;
};

result run(std::vector<std::string> args, std::vector<std::string> env = {}) {
  tool t(std::move(args), std::move(env));
  const int code = t.wait();
  return {code, t.out, t.err};
}

struct fixture {
  nats_server server;
  std::string url = server.url();
};

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/natsbus-cli-test-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli, fixture)

// stream add, info, ls (text and JSON), pub --js with its ack, consumer add, next (acks), info, purge, rm.
BOOST_AUTO_TEST_CASE(streams_consumers_and_acked_publishes) {
  auto r = run({"-s", url, "stream", "add", "ORDERS", "--subjects", "orders.>", "--storage", "memory"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "Stream ORDERS created\n");
  r = run({"-s", url, "pub", "--js", "orders.new", "{\"id\":1}", "-H", "Trace: t-1"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "Published to orders.new: stream ORDERS #1\n");
  r = run({"-s", url, "pub", "--js", "--json", "orders.new", "second"});
  BOOST_TEST(r.code == 0, r.err);
  auto ack = boost::json::parse(r.out).as_object();
  BOOST_TEST(ack.at("seq").as_int64() == 2);
  BOOST_TEST(ack.at("stream").as_string() == "ORDERS");
  r = run({"-s", url, "stream", "info", "ORDERS", "--json"});
  BOOST_TEST(r.code == 0, r.err);
  auto info = boost::json::parse(r.out).as_object();
  BOOST_TEST(info.at("messages").as_int64() == 2);
  BOOST_TEST(info.at("storage").as_string() == "memory");
  r = run({"--json", "-s", url, "stream", "ls"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(boost::json::parse(r.out).as_array().size() == 1u);
  r = run({"-s", url, "consumer", "add", "ORDERS", "audit", "--ack-wait", "10s"});
  BOOST_TEST(r.code == 0, r.err);
  r = run({"-s", url, "consumer", "next", "ORDERS", "audit", "--count", "2"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("[#1] orders.new (stream_seq 1)\nTrace: t-1\n{\"id\":1}\n") == 0u, r.out);
  BOOST_TEST(r.out.find("[#2] orders.new (stream_seq 2)") != std::string::npos, r.out);
  r = run({"-s", url, "consumer", "info", "ORDERS", "audit", "--json"});
  BOOST_TEST(r.code == 0, r.err);
  auto ci = boost::json::parse(r.out).as_object();
  BOOST_TEST(ci.at("ack_floor_stream_seq").as_int64() == 2);  // next acked both
  BOOST_TEST(ci.at("num_ack_pending").as_int64() == 0);
  r = run({"-s", url, "consumer", "next", "ORDERS", "audit", "--timeout", "300ms"});
  BOOST_TEST(r.code == 1);  // nothing left
  BOOST_TEST(r.err == "No messages\n");
  r = run({"-s", url, "stream", "purge", "ORDERS"});
  BOOST_TEST(r.out == "Stream ORDERS: 2 message(s) purged\n");
  r = run({"-s", url, "consumer", "rm", "ORDERS", "audit"});
  BOOST_TEST(r.code == 0, r.err);
  r = run({"-s", url, "stream", "rm", "ORDERS"});
  BOOST_TEST(r.code == 0, r.err);
  r = run({"-s", url, "stream", "info", "ORDERS"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err == "natsbus: stream info ORDERS: stream not found\n", r.err);
}

// sub prints what is published once it says it listens; --count ends it. NATS_URL is the default server.
BOOST_AUTO_TEST_CASE(sub_pub_and_req) {
  tool sub({"sub", "greet.*", "--count", "2", "--json"}, {"NATS_URL=" + url});
  BOOST_REQUIRE_MESSAGE(sub.wait_stderr("Listening on greet.*"), sub.err);
  auto r = run({"pub", "greet.a", "hello", "--count", "2"}, {"NATS_URL=" + url});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "Published 2 message(s) to greet.a\n");
  BOOST_TEST(sub.wait() == 0, sub.err);
  BOOST_TEST(sub.out == "{\"subject\":\"greet.a\",\"data\":\"hello\"}\n{\"subject\":\"greet.a\",\"data\":\"hello\"}\n");
  r = run({"-s", url, "req", "nobody.home", "hi", "--timeout", "500ms"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err == "natsbus: request to nobody.home: no responders\n", r.err);
}

// bus plan shows what pre-creation would do (create, then unchanged, then update with the difference) and
// changes nothing; bus apply does it, and the subscribers' consumers with it.
BOOST_AUTO_TEST_CASE(bus_plan_and_apply) {
  auto yaml = [&](int max) {
    return "eventbus:\n  nats:\n    urls: [" + url + "]\n    precreation:\n      enabled: true\n"
           "      strategy: create_or_update\n      topics:\n        - {name: shop.orders, max_messages: " +
           std::to_string(max) + ", storage: memory}\n        - {name: shop.payments, storage: memory}\n"
           "    subscribers:\n      - {topic: shop.orders, group: billing}\n";
  };
  const auto file = temp_file("bus.yaml", yaml(1000));
  auto r = run({"bus", "plan", file});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out == "create     shop.orders -> shop_orders\ncreate     shop.payments -> shop_payments\n", r.out);
  r = run({"bus", "plan", file});
  BOOST_TEST(r.out.find("create     shop.orders") == 0u, r.out);  // the plan changed nothing
  r = run({"bus", "apply", file});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("created    shop.orders -> shop_orders\ncreated    shop.payments -> shop_payments\n") == 0u,
             r.out);
  BOOST_TEST(r.out.find("ensured    1 subscriber consumer(s)") != std::string::npos, r.out);
  r = run({"-s", url, "consumer", "ls", "shop_orders"});
  BOOST_TEST(r.out.find("billing__shop_orders") == 0u, r.out);
  std::ofstream(file) << yaml(2000);
  r = run({"bus", "plan", file, "--json"});
  BOOST_TEST(r.code == 0, r.err);
  auto plan = boost::json::parse(r.out).as_array();
  BOOST_REQUIRE(plan.size() == 2u);
  BOOST_TEST(plan[0].at("action").as_string() == "update");
  BOOST_TEST(plan[0].at("differences").as_array()[0].as_string() == "max_msgs: server 1000, wanted 2000");
  BOOST_TEST(plan[1].at("action").as_string() == "unchanged");
  r = run({"bus", "apply", file});
  BOOST_TEST(r.out.find("updated    shop.orders -> shop_orders\n") == 0u, r.out);
  std::remove(file.c_str());
}

// What a shell user gets wrong: each a clear message on stderr and exit code 2 (usage) or 1 (failure).
BOOST_AUTO_TEST_CASE(bad_input) {
  auto r = run({"bogus"});
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("natsbus: unknown command 'bogus'") == 0u, r.err);
  r = run({"--json", "--timeout", "1s", "-s", url, "bogus"});  // option values are not taken for the command
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("natsbus: unknown command 'bogus'") == 0u, r.err);
  r = run({"stream", "ls", "--no-such-flag"});
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--no-such-flag") != std::string::npos, r.err);
  r = run({"-s", url, "stream", "info"});
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err == "natsbus: stream: a stream name is needed\n", r.err);
  r = run({"pub"});
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("subject is required") != std::string::npos, r.err);
  r = run({"-s", url, "--timeout", "soon", "stream", "ls"});
  BOOST_TEST(r.code == 2);
  BOOST_TEST(r.err.find("--timeout: 'soon' is not a duration") != std::string::npos, r.err);
  // A port nothing listens on.
  r = run({"-s", "nats://127.0.0.1:1", "stream", "ls", "--timeout", "1s"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("natsbus: cannot connect to nats://127.0.0.1:") == 0u, r.err);
  const auto broken = temp_file("broken.yaml", "eventbus: [\n");
  r = run({"bus", "plan", broken});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("natsbus: line 2: YAML syntax error") == 0u, r.err);
  const auto unknown = temp_file("unknown.yaml", "eventbus:\n  nats:\n    urlz: [x]\n");
  r = run({"bus", "plan", unknown});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("eventbus.nats.urlz") != std::string::npos, r.err);
  r = run({"bus", "plan", "/nonexistent/bus.yaml"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err.find("No such file") != std::string::npos, r.err);
  std::remove(broken.c_str());
  std::remove(unknown.c_str());
}

// --metrics-listen serves the tool's figures while a long command runs; a bad address is refused.
BOOST_AUTO_TEST_CASE(metrics_while_a_command_runs) {
  tool sub({"-s", url, "--metrics-listen", "127.0.0.1:0", "sub", "watch.>", "--count", "1"});
  BOOST_REQUIRE_MESSAGE(sub.wait_stderr("Listening on watch.>"), sub.err);
  const auto at = sub.err.find("Metrics on http://127.0.0.1:");
  BOOST_REQUIRE_MESSAGE(at != std::string::npos, sub.err);
  const auto port = static_cast<unsigned short>(std::stoi(sub.err.substr(at + std::string("Metrics on http://127.0.0.1:").size())));
  auto reply = natsbus::test::http_get(port, "/metrics");
  BOOST_TEST(reply.status == 200);
  BOOST_TEST(reply.body.find("natsbus_") != std::string::npos, reply.body.substr(0, 400));
  BOOST_TEST(reply.body.find("client=\"natsbus-cli\"") != std::string::npos);
  auto r = run({"-s", url, "pub", "watch.it", "x"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(sub.wait() == 0, sub.err);
  r = run({"-s", url, "--metrics-listen", "nowhere", "stream", "ls"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err == "natsbus: --metrics-listen: 'nowhere' is not ADDR:PORT\n", r.err);
}

// bench: the final table on stdout, plain progress lines on stderr when it is not a terminal.
BOOST_AUTO_TEST_CASE(bench_table_and_progress) {
  auto r = run({"-s", url, "bench", "--scenario", "js", "--msgs", "2000", "--size", "16"});
  BOOST_TEST(r.code == 0, r.err);
  BOOST_TEST(r.out.find("scenario         msgs     size") == 0u, r.out);
  BOOST_TEST(r.out.find("js               2000       16") != std::string::npos, r.out);
  BOOST_TEST(r.err.find("progress 100% 2000/2000") != std::string::npos, r.err);
  r = run({"-s", url, "bench", "--scenario", "consume", "--msgs", "3000", "--json"});
  BOOST_TEST(r.code == 0, r.err);
  auto row = boost::json::parse(r.out).as_object();
  BOOST_TEST(row.at("scenario").as_string() == "consume");
  BOOST_TEST(row.at("errors").as_int64() == 0);
  BOOST_TEST(r.err.find("filling NATSBUS_CLI_BENCH with 3000 messages") != std::string::npos, r.err);
  r = run({"-s", url, "bench", "--scenario", "nope"});
  BOOST_TEST(r.code == 1);
  BOOST_TEST(r.err == "natsbus: --scenario must be pub, js or consume, not 'nope'\n", r.err);
}

BOOST_AUTO_TEST_SUITE_END()
