// Test support: a fake NATS server that plays a script on 127.0.0.1 (a port the OS picks).
//
// Each accepted connection plays one connection script: a list of steps, each bounded in time. A step sends
// bytes to the client, or expects the client's next frame (a whole frame: the control line, and for PUB/HPUB
// the payload after "\r\n"), or waits for the client to close, or for a signal from the test. Frames are
// matched against templates in which ${name} stands for one token: the first time a name is seen it captures
// the client's token (a reply inbox, a sid), afterwards it must equal what was captured. Variables belong to
// the server, not to one connection: a script for the connection after a reconnect can require the same sid
// or the same reply subject as the first connection used. The same ${name} references fill in what a step
// sends.
//
// Steps for the connection after a failure, where what the client sends depends on where it failed: maybe()
// waits a bounded time for a frame that may not come, recall() takes variables from a frame already received
// (a replayed SUB's sid), msg_if_known() answers only when its variables are known.
//
// Connection i plays scripts[i]; connections past the list play the fallback script (for a client that
// reconnects again after an injected failure), or are closed at once when there is none.
//
// One failure can be injected per server (inject(), before the client connects), replacing step k of
// connection c:
//  - refuse:  the listener is closed before connection c connects (at once for c = 0, otherwise as soon as
//             connection c - 1 is accepted); optionally reopened on the same port after a delay;
//  - reset:   the connection is aborted with an RST (SO_LINGER 0);
//  - eof:     a clean close: FIN, then whatever the client sends is read and thrown away until it closes;
//  - stall:   nothing more is read or sent on the connection, which stays open until the server closes;
//  - partial: the first half of step k's bytes (step k should be a send), then as eof.
//
// Everything the client sends is recorded per connection (its frames, in order). A PING the script does not
// expect is answered with PONG and recorded (auto_pong), so the client's keepalive never breaks a script.
// Once a connection's script is done the server keeps reading (recording, answering PINGs) until the client
// closes. Mismatches, step timeouts and undefined variables are errors, listed by errors(); such a connection
// is then reset.
//
// Everything runs on the given executor, which must be single-threaded (the test's io_context). close() (also
// run by the destructor) ends every connection and coroutine promptly.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace natsbus::test {

// ---- the script ----

struct frame_pattern {
  enum class kind { exact, prefix, regex };
  kind how = kind::exact;
  std::string text;                // exact: a template with ${name}; prefix: literal; regex: ECMAScript, whole frame
  std::vector<std::string> names;  // regex: the variables its groups set, in order
  [[nodiscard]] std::string describe() const;
};

struct script_step {
  enum class op {
    send,         // text: a template (${name} filled in)
    send_msg,     // MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n, the size computed
    expect,       // the next frame matches patterns[0]
    expect_set,   // the next patterns.size() frames match the patterns, in any order
    expect_eof,   // the client closes its end (frames before are recorded and skipped)
    recall,       // the latest frame already received on this connection that matches patterns[0] sets its
                  // variables; none matching is not an error
    wait_signal,  // until the test calls release(text)
    close,        // a scripted clean close (FIN), as the eof failure
    reset,        // a scripted RST
    block,        // the shared thread sleeps for `timeout`: an event loop held up by other work, so that what
                  // fell due meanwhile (the client's reads, its timers) completes in one turn
  };
  op what = op::send;
  std::string text;
  std::string subject, sid, reply;  // send_msg templates
  std::vector<frame_pattern> patterns;
  bool skip_others = false;  // expect: frames that do not match are recorded and skipped
  bool if_defined = false;   // send: skipped (not an error) when a variable it uses is not defined yet
  bool optional = false;     // expect: a timeout ends the step instead of failing the script
  std::chrono::milliseconds timeout{0};  // 0: the server's step_timeout
  [[nodiscard]] bool sends() const noexcept { return what == op::send || what == op::send_msg; }
  [[nodiscard]] std::string describe() const;
};

using conn_script = std::vector<script_step>;

namespace steps {
script_step send(std::string tmpl);
script_step msg(std::string subject, std::string sid, std::string payload, std::string reply = {});
// As msg, but only when its variables are known (a reply to a request the server may never have read).
script_step msg_if_known(std::string subject, std::string sid, std::string payload);
script_step expect(std::string tmpl);  // the whole frame, e.g. "SUB foo ${sid}" or "PUB a 5\r\nhello"
script_step expect_prefix(std::string prefix);
script_step expect_regex(std::string re, std::vector<std::string> names = {});
script_step expect_any_order(std::vector<std::string> tmpls);
script_step skip_until(std::string tmpl);  // expect, skipping (and recording) frames that do not match
// skip_until, but the frame may never come: after `wait` the script goes on.
script_step maybe(std::string tmpl, std::chrono::milliseconds wait);
// The same for any expect step (expect_regex, ...).
script_step maybe(script_step expect_step, std::chrono::milliseconds wait);
// Looks back at what the client sent on this connection (see script_step::op::recall).
script_step recall(std::string tmpl);
script_step expect_eof();
script_step wait_for(std::string signal);
script_step close();
script_step reset();
script_step block_thread(std::chrono::milliseconds d);
// An INFO line; `extra` is appended inside the object (",\"ldm\":true").
std::string info(bool jetstream = true, std::string_view extra = {});
// INFO, then CONNECT and PING from the client, then PONG: 4 steps.
conn_script handshake(std::string info_line);
inline constexpr std::size_t handshake_steps = 4;
}  // namespace steps

// ---- failures ----

enum class fault_kind { refuse, reset, eof, stall, partial };
[[nodiscard]] const char* fault_name(fault_kind k) noexcept;

struct fault {
  fault_kind kind = fault_kind::reset;
  std::size_t conn = 0;  // the accepted connection's index (0: the first)
  std::size_t step = 0;  // the step it replaces (refuse: unused)
  std::chrono::milliseconds reopen_after{0};  // refuse: reopen the listener after this; 0: never
  [[nodiscard]] std::string describe() const;
};

// ---- the server ----

class script_server {
 public:
  struct options {
    std::chrono::milliseconds step_timeout{1500};
    bool auto_pong = true;
  };

  struct connection_record {
    std::vector<std::string> frames;  // everything the client sent, whole frames, in order
    std::size_t steps_done = 0;
    bool script_done = false;  // every step played
    bool client_closed = false;
    std::string end;  // how it ended: "client closed", "fault reset at step 3", "mismatch at step 2", ...
  };

  script_server(boost::asio::any_io_executor ex, std::vector<conn_script> scripts, conn_script fallback = {});
  script_server(boost::asio::any_io_executor ex, std::vector<conn_script> scripts, conn_script fallback,
                options opts);
  ~script_server();
  script_server(const script_server&) = delete;
  script_server& operator=(const script_server&) = delete;

  // Before the client connects.
  void inject(const fault& f);

  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] std::string url() const;  // nats://127.0.0.1:<port>

  // Signals for wait_for steps; they stay set.
  void release(const std::string& signal);

  [[nodiscard]] std::size_t accepted() const noexcept;
  [[nodiscard]] bool fault_fired() const noexcept;
  [[nodiscard]] const std::vector<std::string>& errors() const noexcept;
  [[nodiscard]] const std::vector<connection_record>& connections() const noexcept;
  [[nodiscard]] std::optional<std::string> var(const std::string& name) const;
  // Frames over every connection that start with `prefix`.
  [[nodiscard]] std::size_t count_frames(std::string_view prefix) const;
  // Each connection's frames and end, for a failure message.
  [[nodiscard]] std::string transcript() const;

  // Completes once connection `conn` has played step `step` (that many steps done), or has ended, or the
  // server has closed.
  boost::asio::awaitable<void> wait_steps(std::size_t conn, std::size_t steps);

  // Stops listening and closes every connection. Idempotent.
  void close();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace natsbus::test
