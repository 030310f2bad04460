#include "script_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

namespace natsbus::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using error_code = boost::system::error_code;
using namespace asio::experimental::awaitable_operators;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto use_ec = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_client_line = 64 * 1024;

// Shows control characters, so that a transcript stays one line per frame.
std::string printable(std::string_view s, std::size_t limit = 300) {
  std::string out;
  for (char ch : s.substr(0, std::min(s.size(), limit))) {
    if (ch == '\r') out += "\\r";
    else if (ch == '\n') out += "\\n";
    else if (static_cast<unsigned char>(ch) < 0x20) out += '?';
    else out += ch;
  }
  if (s.size() > limit) out += "...";
  return out;
}

std::string regex_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      if (std::string_view("\\^$.|?*+()[]{}/").find(ch) != std::string_view::npos) out += '\\';
      out += ch;
    }
  }
  return out;
}

// Splits a template into literal text and ${name} references; calls lit(text) and ref(name) in order.
template <class Lit, class Ref>
void walk_template(std::string_view t, Lit&& lit, Ref&& ref) {
  std::size_t at = 0;
  while (at < t.size()) {
    auto open = t.find("${", at);
    if (open == std::string_view::npos) break;
    auto close = t.find('}', open + 2);
    if (close == std::string_view::npos) break;
    if (open > at) lit(t.substr(at, open - at));
    ref(std::string(t.substr(open + 2, close - open - 2)));
    at = close + 1;
  }
  if (at < t.size()) lit(t.substr(at));
}

std::vector<std::string> split_ws(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.emplace_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// One whole client frame from the front of `in`: 1 and the frame (control line, and for PUB/HPUB "\r\n" and
// the payload), 0 when more bytes are needed, -1 on a malformed frame (text in `out`).
int take_frame(std::string& in, std::string& out) {
  auto pos = in.find("\r\n");
  if (pos == std::string::npos) {
    if (in.size() > max_client_line) {
      out = "control line longer than " + std::to_string(max_client_line);
      return -1;
    }
    return 0;
  }
  std::string line = in.substr(0, pos);
  auto tokens = split_ws(line);
  std::string op = tokens.empty() ? std::string() : upper(tokens[0]);
  if (op == "PUB" || op == "HPUB") {
    std::size_t n = 0;
    try {
      n = static_cast<std::size_t>(std::stoull(tokens.back()));
    } catch (...) {
      out = "bad size in '" + printable(line) + "'";
      return -1;
    }
    if (in.size() < pos + 2 + n + 2) return 0;
    if (in.compare(pos + 2 + n, 2, "\r\n") != 0) {
      out = "payload not followed by CRLF in '" + printable(line) + "'";
      return -1;
    }
    out = line + "\r\n" + in.substr(pos + 2, n);
    in.erase(0, pos + 2 + n + 2);
    return 1;
  }
  out = std::move(line);
  in.erase(0, pos + 2);
  return 1;
}

}  // namespace

// ---- script ----

std::string frame_pattern::describe() const {
  switch (how) {
    case kind::exact: return "'" + printable(text) + "'";
    case kind::prefix: return "prefix '" + printable(text) + "'";
    case kind::regex: return "regex '" + printable(text) + "'";
  }
  return "?";
}

std::string script_step::describe() const {
  switch (what) {
    case op::send: return "send '" + printable(text) + "'";
    case op::send_msg: return "send MSG " + subject + " " + sid + (reply.empty() ? "" : " " + reply) + " '" + printable(text) + "'";
    case op::expect:
      return std::string(optional ? "maybe " : skip_others ? "skip until " : "expect ") + patterns.at(0).describe();
    case op::expect_set: {
      std::string s = "expect in any order:";
      for (auto& p : patterns) s += " " + p.describe();
      return s;
    }
    case op::expect_eof: return "expect the client to close";
    case op::recall: return "recall " + patterns.at(0).describe();
    case op::wait_signal: return "wait for signal '" + text + "'";
    case op::close: return "close (FIN)";
    case op::reset: return "reset (RST)";
    case op::block: return "block the thread for " + std::to_string(timeout.count()) + " ms";
  }
  return "?";
}

namespace steps {

script_step send(std::string tmpl) {
  script_step s;
  s.what = script_step::op::send;
  s.text = std::move(tmpl);
  return s;
}

script_step msg(std::string subject, std::string sid, std::string payload, std::string reply) {
  script_step s;
  s.what = script_step::op::send_msg;
  s.subject = std::move(subject);
  s.sid = std::move(sid);
  s.reply = std::move(reply);
  s.text = std::move(payload);
  return s;
}

script_step msg_if_known(std::string subject, std::string sid, std::string payload) {
  auto s = msg(std::move(subject), std::move(sid), std::move(payload));
  s.if_defined = true;
  return s;
}

script_step expect(std::string tmpl) {
  script_step s;
  s.what = script_step::op::expect;
  s.patterns.push_back({frame_pattern::kind::exact, std::move(tmpl), {}});
  return s;
}

script_step expect_prefix(std::string prefix) {
  script_step s;
  s.what = script_step::op::expect;
  s.patterns.push_back({frame_pattern::kind::prefix, std::move(prefix), {}});
  return s;
}

script_step expect_regex(std::string re, std::vector<std::string> names) {
  script_step s;
  s.what = script_step::op::expect;
  s.patterns.push_back({frame_pattern::kind::regex, std::move(re), std::move(names)});
  return s;
}

script_step expect_any_order(std::vector<std::string> tmpls) {
  script_step s;
  s.what = script_step::op::expect_set;
  for (auto& t : tmpls) s.patterns.push_back({frame_pattern::kind::exact, std::move(t), {}});
  return s;
}

script_step skip_until(std::string tmpl) {
  auto s = expect(std::move(tmpl));
  s.skip_others = true;
  return s;
}

script_step maybe(script_step s, std::chrono::milliseconds wait) {
  s.skip_others = true;
  s.optional = true;
  s.timeout = wait;
  return s;
}

script_step maybe(std::string tmpl, std::chrono::milliseconds wait) { return maybe(expect(std::move(tmpl)), wait); }

script_step recall(std::string tmpl) {
  auto s = expect(std::move(tmpl));
  s.what = script_step::op::recall;
  return s;
}

script_step expect_eof() {
  script_step s;
  s.what = script_step::op::expect_eof;
  return s;
}

script_step wait_for(std::string signal) {
  script_step s;
  s.what = script_step::op::wait_signal;
  s.text = std::move(signal);
  return s;
}

script_step close() {
  script_step s;
  s.what = script_step::op::close;
  return s;
}

script_step reset() {
  script_step s;
  s.what = script_step::op::reset;
  return s;
}

script_step block_thread(std::chrono::milliseconds d) {
  script_step s;
  s.what = script_step::op::block;
  s.timeout = d;
  return s;
}

std::string info(bool jetstream, std::string_view extra) {
  std::string s =
      "INFO {\"server_id\":\"SCRIPT\",\"server_name\":\"script\",\"version\":\"2.9.10\",\"proto\":1,"
      "\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576";
  if (jetstream) s += ",\"jetstream\":true";
  s += extra;
  s += "}\r\n";
  return s;
}

conn_script handshake(std::string info_line) {
  return {send(std::move(info_line)), expect_prefix("CONNECT {"), expect("PING"), send("PONG\r\n")};
}

}  // namespace steps

const char* fault_name(fault_kind k) noexcept {
  switch (k) {
    case fault_kind::refuse: return "refuse";
    case fault_kind::reset: return "reset";
    case fault_kind::eof: return "eof";
    case fault_kind::stall: return "stall";
    case fault_kind::partial: return "partial";
  }
  return "?";
}

std::string fault::describe() const {
  std::string s = std::string(fault_name(kind)) + " on connection " + std::to_string(conn);
  if (kind == fault_kind::refuse) {
    if (reopen_after.count() > 0) s += " (reopened after " + std::to_string(reopen_after.count()) + " ms)";
  } else {
    s += " at step " + std::to_string(step);
  }
  return s;
}

// ---- server ----

namespace {

struct live_conn {
  live_conn(tcp::socket s, const asio::any_io_executor& ex) : sock(std::move(s)), timer(ex) {}
  tcp::socket sock;
  asio::steady_timer timer;
  std::string in;
  void abort() {
    error_code ignored;
    sock.close(ignored);
    timer.cancel();
  }
};

// A read's end: a frame, the client's EOF, the step's deadline, a malformed frame (a client bug), a socket error
// (the client reset), or the server closing.
enum class rd { frame, eof, timeout, malformed, gone, closed };

}  // namespace

struct script_server::state {
  state(asio::any_io_executor e, std::vector<conn_script> s, conn_script fb, options o)
      : ex(std::move(e)), acceptor(ex), changed(ex, clock_type::time_point::max()), reopen_timer(ex),
        scripts(std::move(s)), fallback(std::move(fb)), opts(o) {}

  asio::any_io_executor ex;
  tcp::acceptor acceptor;
  asio::steady_timer changed;  // every wait for progress waits on it; notify() wakes them all
  asio::steady_timer reopen_timer;
  std::uint16_t port = 0;
  std::vector<conn_script> scripts;
  conn_script fallback;
  options opts;
  std::optional<fault> planned;
  bool fired = false;
  bool closed = false;
  std::map<std::string, std::string> vars;
  std::set<std::string> signals;
  std::vector<std::shared_ptr<live_conn>> live;
  std::vector<connection_record> records;
  std::vector<std::string> errors;

  void notify() { changed.cancel(); }

  void open_listener() {
    tcp::endpoint local(asio::ip::address_v4::loopback(), port);
    acceptor.open(local.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(local);
    acceptor.listen();
    port = acceptor.local_endpoint().port();
  }

  void error_at(std::size_t conn, std::size_t step, const std::string& what) {
    errors.push_back("connection " + std::to_string(conn) + " step " + std::to_string(step) + ": " + what);
  }

  // Fills ${name} from the variables; false (and an error) when one is undefined.
  bool fill(std::string_view tmpl, std::string& out, std::size_t conn, std::size_t step) {
    bool ok = true;
    out.clear();
    walk_template(
        tmpl, [&](std::string_view lit) { out.append(lit); },
        [&](const std::string& name) {
          auto it = vars.find(name);
          if (it == vars.end()) {
            error_at(conn, step, "variable ${" + name + "} is not defined");
            ok = false;
          } else {
            out += it->second;
          }
        });
    return ok;
  }

  // Matches a frame; on success the captured variables are stored.
  bool matches(const frame_pattern& p, const std::string& frame) {
    switch (p.how) {
      case frame_pattern::kind::prefix: return frame.compare(0, p.text.size(), p.text) == 0;
      case frame_pattern::kind::regex: {
        std::smatch m;
        if (!std::regex_match(frame, m, std::regex(p.text))) return false;
        for (std::size_t i = 0; i < p.names.size() && i + 1 < m.size(); ++i)
          if (!vars.count(p.names[i])) vars[p.names[i]] = m[i + 1].str();
        return true;
      }
      case frame_pattern::kind::exact: {
        std::string re;
        std::vector<std::string> fresh;  // names captured by this pattern, in group order
        walk_template(
            p.text, [&](std::string_view lit) { re += regex_escape(lit); },
            [&](const std::string& name) {
              if (auto it = vars.find(name); it != vars.end()) {
                re += regex_escape(it->second);
              } else if (auto f = std::find(fresh.begin(), fresh.end(), name); f != fresh.end()) {
                re += "\\" + std::to_string(f - fresh.begin() + 1);
              } else {
                fresh.push_back(name);
                re += "(\\S+)";
              }
            });
        std::smatch m;
        if (!std::regex_match(frame, m, std::regex(re))) return false;
        for (std::size_t i = 0; i < fresh.size(); ++i) vars[fresh[i]] = m[i + 1].str();
        return true;
      }
    }
    return false;
  }

  // Reads the next whole frame, until `deadline`.
  asio::awaitable<rd> read_frame(live_conn& c, clock_type::time_point deadline, std::string& frame) {
    char buf[4096];
    for (;;) {
      int got = take_frame(c.in, frame);
      if (got == 1) co_return rd::frame;
      if (got < 0) co_return rd::malformed;
      if (closed) co_return rd::closed;
      if (clock_type::now() >= deadline) co_return rd::timeout;
      c.timer.expires_at(deadline);
      auto r = co_await (c.sock.async_read_some(asio::buffer(buf), use_ec) || c.timer.async_wait(use_ec));
      if (closed) co_return rd::closed;
      if (r.index() == 1) co_return rd::timeout;
      auto [ec, n] = std::get<0>(r);
      if (ec == asio::error::eof) co_return rd::eof;
      if (ec) {
        frame = ec.message();
        co_return rd::gone;
      }
      c.in.append(buf, n);
    }
  }

  asio::awaitable<bool> write(live_conn& c, std::string_view bytes, clock_type::time_point deadline) {
    c.timer.expires_at(deadline);
    auto r = co_await (asio::async_write(c.sock, asio::buffer(bytes.data(), bytes.size()), use_ec) ||
                       c.timer.async_wait(use_ec));
    co_return !closed && r.index() == 0 && !std::get<0>(std::get<0>(r));
  }

  bool defined(std::string_view tmpl) const {
    bool ok = true;
    walk_template(tmpl, [](std::string_view) {}, [&](const std::string& name) { ok = ok && vars.count(name) > 0; });
    return ok;
  }

  // The bytes a send step puts on the wire.
  bool bytes_of(const script_step& s, std::string& out, std::size_t conn, std::size_t step) {
    if (s.what == script_step::op::send) return fill(s.text, out, conn, step);
    std::string subject, sid, reply;
    if (!fill(s.subject, subject, conn, step) || !fill(s.sid, sid, conn, step) || !fill(s.reply, reply, conn, step))
      return false;
    out = "MSG " + subject + " " + sid + " " + (reply.empty() ? "" : reply + " ") + std::to_string(s.text.size()) +
          "\r\n" + s.text + "\r\n";
    return true;
  }

  // A clean close: FIN, then the client's bytes are read and dropped until it closes (so that the close is
  // never turned into an RST by unread data).
  asio::awaitable<void> half_close(live_conn& c, std::size_t idx) {
    error_code ignored;
    c.sock.shutdown(tcp::socket::shutdown_send, ignored);
    char buf[4096];
    for (;;) {
      auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(buf), use_ec);
      if (closed) co_return;
      if (ec) {
        records[idx].client_closed = true;
        break;
      }
    }
    c.sock.close(ignored);
  }

  void rst(live_conn& c) {
    error_code ignored;
    c.sock.set_option(asio::socket_base::linger(true, 0), ignored);
    c.sock.close(ignored);
  }

  void end(std::size_t idx, std::string how) {
    if (records[idx].end.empty()) records[idx].end = std::move(how);
    notify();
  }

  // Records the frame, and answers a PING the step did not ask for. False: the frame is unexpected.
  asio::awaitable<bool> stray(live_conn& c, const std::string& frame, clock_type::time_point deadline) {
    if (opts.auto_pong && frame == "PING") {
      co_await write(c, "PONG\r\n", deadline);
      co_return true;
    }
    co_return false;
  }

  // Plays one step: true to go on.
  asio::awaitable<bool> play(live_conn& c, std::size_t idx, std::size_t k, const script_step& s) {
    auto deadline = clock_type::now() + (s.timeout.count() > 0 ? s.timeout : opts.step_timeout);
    auto fail = [&](const std::string& what) {
      error_at(idx, k, s.describe() + ": " + what);
      end(idx, "error at step " + std::to_string(k));
      rst(c);
      return false;
    };
    using op = script_step::op;
    switch (s.what) {
      case op::send:
      case op::send_msg: {
        if (s.if_defined && !(defined(s.text) && defined(s.subject) && defined(s.sid) && defined(s.reply)))
          co_return true;
        std::string bytes;
        if (!bytes_of(s, bytes, idx, k)) {
          end(idx, "error at step " + std::to_string(k));
          rst(c);
          co_return false;
        }
        if (!co_await write(c, bytes, deadline)) {
          if (closed) co_return false;
          end(idx, "write failed at step " + std::to_string(k));
          co_return false;
        }
        co_return true;
      }
      case op::expect:
      case op::expect_set: {
        std::vector<bool> used(s.patterns.size(), false);
        std::size_t left = s.patterns.size();
        while (left > 0) {
          std::string frame;
          auto r = co_await read_frame(c, deadline, frame);
          if (r == rd::closed) co_return false;
          if (r == rd::timeout && s.optional) co_return true;
          if (r == rd::timeout) co_return fail("timed out");
          if (r == rd::eof) {
            records[idx].client_closed = true;
            end(idx, "client closed at step " + std::to_string(k));
            co_return false;
          }
          if (r == rd::malformed) co_return fail("malformed frame: " + frame);
          if (r == rd::gone) {
            records[idx].client_closed = true;
            end(idx, "client gone at step " + std::to_string(k) + " (" + frame + ")");
            co_return false;
          }
          records[idx].frames.push_back(frame);
          bool hit = false;
          for (std::size_t i = 0; i < s.patterns.size() && !hit; ++i) {
            if (used[i] || !matches(s.patterns[i], frame)) continue;
            used[i] = true;
            --left;
            hit = true;
          }
          if (hit) continue;
          if (co_await stray(c, frame, deadline)) continue;
          if (closed) co_return false;
          if (s.skip_others) continue;
          co_return fail("unexpected frame '" + printable(frame) + "'");
        }
        co_return true;
      }
      case op::expect_eof: {
        for (;;) {
          std::string frame;
          auto r = co_await read_frame(c, deadline, frame);
          if (r == rd::closed) co_return false;
          if (r == rd::timeout) co_return fail("timed out");
          if (r == rd::malformed) co_return fail("malformed frame: " + frame);
          if (r == rd::eof || r == rd::gone) {
            records[idx].client_closed = true;
            co_return true;
          }
          records[idx].frames.push_back(frame);
          co_await stray(c, frame, deadline);
          if (closed) co_return false;
        }
      }
      case op::recall: {
        auto& frames = records[idx].frames;
        for (auto it = frames.rbegin(); it != frames.rend(); ++it)
          if (matches(s.patterns[0], *it)) break;
        co_return true;
      }
      case op::wait_signal: {
        while (!signals.count(s.text)) {
          if (closed) co_return false;
          if (clock_type::now() >= deadline) co_return fail("timed out");
          c.timer.expires_at(deadline);
          co_await (changed.async_wait(use_ec) || c.timer.async_wait(use_ec));
        }
        co_return !closed;
      }
      case op::close:
        end(idx, "scripted close at step " + std::to_string(k));
        co_await half_close(c, idx);
        co_return false;
      case op::reset:
        end(idx, "scripted reset at step " + std::to_string(k));
        rst(c);
        co_return false;
      case op::block:
        std::this_thread::sleep_for(s.timeout);  // the fault itself: nothing here could be awaited instead
        co_return true;
    }
    co_return false;
  }

  // The injected failure, in place of step k.
  asio::awaitable<void> inject_here(live_conn& c, std::size_t idx, std::size_t k, const script_step* s) {
    fired = true;
    end(idx, planned->describe());
    switch (planned->kind) {
      case fault_kind::reset: rst(c); co_return;
      case fault_kind::eof: co_await half_close(c, idx); co_return;
      case fault_kind::partial: {
        std::string bytes;
        if (s && s->sends() && bytes_of(*s, bytes, idx, k) && !bytes.empty()) {
          auto half = std::max<std::size_t>(1, bytes.size() / 2);
          co_await write(c, std::string_view(bytes).substr(0, half), clock_type::now() + opts.step_timeout);
          if (closed) co_return;
        }
        co_await half_close(c, idx);
        co_return;
      }
      case fault_kind::stall:
        while (!closed) co_await changed.async_wait(use_ec);
        co_return;
      case fault_kind::refuse: co_return;
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<state> self, std::shared_ptr<live_conn> c, std::size_t idx) {
    (void)self;
    const conn_script& script = idx < scripts.size() ? scripts[idx] : fallback;
    if (script.empty()) {
      end(idx, "no script: closed at once");
      co_await half_close(*c, idx);
      co_return;
    }
    for (std::size_t k = 0; k < script.size(); ++k) {
      if (closed) co_return;
      if (planned && planned->kind != fault_kind::refuse && planned->conn == idx && planned->step == k) {
        co_await inject_here(*c, idx, k, &script[k]);
        co_return;
      }
      if (!co_await play(*c, idx, k, script[k])) co_return;
      ++records[idx].steps_done;
      notify();
    }
    records[idx].script_done = true;
    notify();
    if (planned && planned->kind != fault_kind::refuse && planned->conn == idx && planned->step >= script.size()) {
      co_await inject_here(*c, idx, script.size(), nullptr);
      co_return;
    }
    // Done: keep the connection, record what comes, answer PINGs, until the client closes.
    for (;;) {
      std::string frame;
      auto r = co_await read_frame(*c, clock_type::time_point::max(), frame);
      if (r == rd::closed) co_return;
      if (r == rd::malformed) {
        error_at(idx, script.size(), "after the script: malformed frame: " + frame);
        end(idx, "malformed frame after the script");
        rst(*c);
        co_return;
      }
      if (r != rd::frame) {
        records[idx].client_closed = true;
        end(idx, "client closed after the script");
        co_return;
      }
      records[idx].frames.push_back(frame);
      co_await stray(*c, frame, clock_type::now() + opts.step_timeout);
    }
  }

  void stop_listening() {
    error_code ignored;
    acceptor.close(ignored);
  }

  void refuse_now(std::shared_ptr<state> self) {
    fired = true;
    stop_listening();
    if (planned->reopen_after.count() <= 0) return;
    reopen_timer.expires_after(planned->reopen_after);
    reopen_timer.async_wait([self](error_code ec) {
      if (ec || self->closed) return;
      try {
        self->open_listener();
      } catch (const std::exception& e) {
        self->errors.push_back(std::string("reopening the listener: ") + e.what());
        return;
      }
      asio::co_spawn(self->ex, self->accept_loop(self), asio::detached);
    });
  }

  asio::awaitable<void> accept_loop(std::shared_ptr<state> self) {
    for (;;) {
      tcp::socket s(ex);
      auto [ec] = co_await acceptor.async_accept(s, use_ec);
      if (closed || !acceptor.is_open()) co_return;
      if (ec) {
        if (ec == asio::error::connection_aborted) continue;
        co_return;
      }
      error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      std::size_t idx = records.size();
      records.emplace_back();
      auto c = std::make_shared<live_conn>(std::move(s), ex);
      live.push_back(c);
      if (planned && planned->kind == fault_kind::refuse && planned->conn == idx + 1) refuse_now(self);
      asio::co_spawn(ex, serve(self, c, idx), asio::detached);
      notify();
      if (!acceptor.is_open()) co_return;
    }
  }
};

script_server::script_server(asio::any_io_executor ex, std::vector<conn_script> scripts, conn_script fallback)
    : script_server(std::move(ex), std::move(scripts), std::move(fallback), options{}) {}

script_server::script_server(asio::any_io_executor ex, std::vector<conn_script> scripts, conn_script fallback,
                             options opts)
    : state_(std::make_shared<state>(std::move(ex), std::move(scripts), std::move(fallback), opts)) {
  state_->open_listener();
  asio::co_spawn(state_->ex, state_->accept_loop(state_), asio::detached);
}

script_server::~script_server() { close(); }

void script_server::inject(const fault& f) {
  state_->planned = f;
  if (f.kind == fault_kind::refuse && f.conn <= state_->records.size()) {
    if (f.conn == state_->records.size()) state_->refuse_now(state_);
  }
}

std::uint16_t script_server::port() const noexcept { return state_->port; }
std::string script_server::url() const { return "nats://127.0.0.1:" + std::to_string(state_->port); }

void script_server::release(const std::string& signal) {
  state_->signals.insert(signal);
  state_->notify();
}

std::size_t script_server::accepted() const noexcept { return state_->records.size(); }
bool script_server::fault_fired() const noexcept { return state_->fired; }
const std::vector<std::string>& script_server::errors() const noexcept { return state_->errors; }
const std::vector<script_server::connection_record>& script_server::connections() const noexcept {
  return state_->records;
}

std::optional<std::string> script_server::var(const std::string& name) const {
  auto it = state_->vars.find(name);
  if (it == state_->vars.end()) return std::nullopt;
  return it->second;
}

std::size_t script_server::count_frames(std::string_view prefix) const {
  std::size_t n = 0;
  for (auto& r : state_->records)
    for (auto& f : r.frames)
      if (f.compare(0, prefix.size(), prefix) == 0) ++n;
  return n;
}

std::string script_server::transcript() const {
  std::ostringstream os;
  for (std::size_t i = 0; i < state_->records.size(); ++i) {
    auto& r = state_->records[i];
    os << "  connection " << i << " (" << r.steps_done << " steps" << (r.script_done ? ", script done" : "")
       << (r.end.empty() ? "" : ", " + r.end) << "):\n";
    for (auto& f : r.frames) os << "    " << printable(f) << "\n";
  }
  for (auto& e : state_->errors) os << "  error: " << e << "\n";
  return os.str();
}

asio::awaitable<void> script_server::wait_steps(std::size_t conn, std::size_t steps) {
  auto st = state_;
  for (;;) {
    if (st->closed) co_return;
    if (conn < st->records.size()) {
      auto& r = st->records[conn];
      if (r.steps_done >= steps || !r.end.empty()) co_return;
    }
    co_await st->changed.async_wait(use_ec);
  }
}

void script_server::close() {
  auto& st = *state_;
  if (st.closed) return;
  st.closed = true;
  st.stop_listening();
  st.reopen_timer.cancel();
  for (auto& c : st.live) c->abort();
  st.live.clear();
  st.notify();
}

}  // namespace natsbus::test
