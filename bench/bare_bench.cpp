// A bare JetStream publisher on a plain blocking socket: no Asio, no natsbus, no features (no reconnect, no
// deadlines, no headers, no retries). It is the floor a real client is measured against, with the one choice
// that decides the server's cost per acknowledgement made explicit:
//
//   --reply fresh   every publish has a reply subject never used before (a counter), and an ack is matched by
//                   its subject, as natsbus does;
//   --reply unique  every publish in flight has a reply subject of its own, but a window slot's subject is
//                   used again once its ack is in (the server's subject caches then hit now and then). Not safe
//                   for a real client: in a cluster, a new stream leader acks again the entries it applies
//                   after its election, and such an ack would reach the slot's next publish;
//   --reply shared  every publish uses one reply subject and acks are counted in arrival order. This is cheaper
//                   for the server (its subject caches always hit), and unsafe for a real client: a 503, an
//                   error from another stream or a stream deleted mid-flight puts answers out of order, so an
//                   ack could be credited to a publish that was never stored.
//
//   natsbus-bare-bench --url nats://127.0.0.1:4222 --scenario async --storage memory --size 16 --msgs 300000
//                      --max-pending 4000 --reply fresh
//
// async (re)creates the stream BENCH on bench.> and prints one line in natsbus-bench's format. configure
// creates 1,000 streams (one subject each) with every request written at once and then one at a time, each
// awaited, and deletes them both ways: the floor for natsbus's configure_topics. Unknown flags are ignored.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "natsbus-bare-bench: %s\n", what.c_str());
  std::exit(1);
}

struct args {
  std::string url = "nats://127.0.0.1:4222";
  std::string scenario = "async";
  std::string storage = "memory";
  std::string reply = "fresh";
  std::size_t size = 16;
  std::size_t msgs = 100000;
  std::size_t max_pending = 4000;
};

std::size_t to_size(const char* flag, const char* v) {
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') die(std::string(flag) + " needs a number, got '" + v + "'");
  return static_cast<std::size_t>(n);
}

args parse_args(int argc, char** argv) {
  args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view f = argv[i];
    const char* v = argv[i + 1];
    if (f == "--url") a.url = v;
    else if (f == "--scenario") a.scenario = v;
    else if (f == "--storage") a.storage = v;
    else if (f == "--reply") a.reply = v;
    else if (f == "--size") a.size = to_size(argv[i], v);
    else if (f == "--msgs") a.msgs = to_size(argv[i], v);
    else if (f == "--max-pending") a.max_pending = to_size(argv[i], v);
    // anything else (--server-pid N, --keep ...) is ignored
  }
  if (a.scenario != "async" && a.scenario != "configure") die("--scenario is async or configure");
  if (a.storage != "memory" && a.storage != "file") die("--storage is memory or file");
  if (a.reply != "fresh" && a.reply != "unique" && a.reply != "shared") die("--reply is fresh, unique or shared");
  if (a.msgs == 0 || a.max_pending == 0) die("--msgs and --max-pending must be positive");
  return a;
}

// One NATS connection: a blocking socket, an input buffer parsed in place, and the frames waiting to be sent.
class bare_conn {
 public:
  explicit bare_conn(const std::string& url) {
    std::string_view u = url;
    if (u.substr(0, 7) == "nats://") u.remove_prefix(7);
    auto colon = u.rfind(':');
    if (colon == std::string_view::npos) die("url needs host:port: " + url);
    std::string host(u.substr(0, colon)), port(u.substr(colon + 1));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) die("cannot resolve " + url);
    fd_ = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd_ < 0 || connect(fd_, res->ai_addr, res->ai_addrlen) != 0) die("cannot connect to " + url);
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~bare_conn() { close(fd_); }
  bare_conn(const bare_conn&) = delete;
  bare_conn& operator=(const bare_conn&) = delete;

  std::string out;

  void flush() {
    std::size_t off = 0;
    while (off < out.size()) {
      ssize_t n = send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) die("send failed");
      off += static_cast<std::size_t>(n);
    }
    out.clear();
  }

  // Reads once (blocking) and hands every complete message to on_msg(subject, payload, is_status); answers
  // PINGs, stops at -ERR.
  template <class F>
  void read_some(F&& on_msg) {
    if (in_.size() - len_ < 65536) in_.resize(len_ + 65536);
    ssize_t n = recv(fd_, in_.data() + len_, in_.size() - len_, 0);
    if (n <= 0) die("connection closed by the server");
    len_ += static_cast<std::size_t>(n);
    std::size_t pos = 0;
    for (;;) {
      std::string_view rest(in_.data() + pos, len_ - pos);
      auto eol = rest.find("\r\n");
      if (eol == std::string_view::npos) break;
      std::string_view line = rest.substr(0, eol);
      if (line.substr(0, 4) == "MSG " || line.substr(0, 5) == "HMSG ") {
        bool hmsg = line[0] == 'H';
        // MSG <subject> <sid> [reply] <size> / HMSG <subject> <sid> [reply] <hdr size> <total size>
        std::string_view tok[6];
        std::size_t nt = 0, i = 0;
        while (i < line.size() && nt < 6) {
          auto sp = line.find(' ', i);
          if (sp == std::string_view::npos) sp = line.size();
          if (sp > i) tok[nt++] = line.substr(i, sp - i);
          i = sp + 1;
        }
        if (nt < (hmsg ? 5u : 4u)) die("malformed line from the server: " + std::string(line));
        std::size_t total = std::strtoull(std::string(tok[nt - 1]).c_str(), nullptr, 10);
        std::size_t hdr = hmsg ? std::strtoull(std::string(tok[nt - 2]).c_str(), nullptr, 10) : 0;
        if (hdr > total) die("malformed line from the server: " + std::string(line));
        if (rest.size() < eol + 2 + total + 2) break;
        std::string_view body = rest.substr(eol + 2, total);
        on_msg(tok[1], body.substr(hdr), hmsg);
        pos += eol + 2 + total + 2;
        continue;
      }
      if (line == "PING") out.append("PONG\r\n"), flush();
      else if (line.substr(0, 4) == "-ERR") die("server error: " + std::string(line));
      else if (line.substr(0, 4) == "INFO") got_info = true;
      else if (line == "PONG") got_pong = true;
      pos += eol + 2;
    }
    std::memmove(in_.data(), in_.data() + pos, len_ - pos);
    len_ -= pos;
  }

  bool got_info = false;
  bool got_pong = false;

 private:
  int fd_ = -1;
  std::vector<char> in_;
  std::size_t len_ = 0;
};

void append_pub(std::string& out, std::string_view subject, std::string_view reply, std::string_view payload) {
  out.append("PUB ").append(subject).append(" ").append(reply).append(" ");
  out.append(std::to_string(payload.size())).append("\r\n").append(payload).append("\r\n");
}

// One JetStream API request, awaited: the response's payload.
std::string api(bare_conn& c, std::string_view subject, std::string_view body) {
  append_pub(c.out, subject, "_INBOX.bare.api", body);
  c.flush();
  std::string answer;
  bool done = false;
  while (!done)
    c.read_some([&](std::string_view subj, std::string_view payload, bool status) {
      if (subj != "_INBOX.bare.api") return;
      if (status) die(std::string(subject) + ": no JetStream responder");
      answer.assign(payload);
      done = true;
    });
  return answer;
}

// The configure scenario: every request of a round written at once, then the responses counted; or one request
// at a time, each awaited. Returns the seconds the round took; errors are counted.
double streams_round(bare_conn& c, std::size_t n, bool pipelined, bool create, const std::string& storage,
                     std::size_t& errors) {
  auto body = [&](std::size_t i) {
    return create ? R"({"name":"BARECFG_)" + std::to_string(i) + R"(","subjects":["barecfg.t)" + std::to_string(i) +
                        R"("],"storage":")" + storage + R"("})"
                  : std::string();
  };
  auto subject = [&](std::size_t i) {
    return std::string(create ? "$JS.API.STREAM.CREATE.BARECFG_" : "$JS.API.STREAM.DELETE.BARECFG_") +
           std::to_string(i);
  };
  auto failed = [](std::string_view answer) { return answer.find("\"error\"") != std::string_view::npos; };
  const auto t0 = std::chrono::steady_clock::now();
  if (pipelined) {
    for (std::size_t i = 0; i < n; ++i) append_pub(c.out, subject(i), "_INBOX.bare.r." + std::to_string(i), body(i));
    c.flush();
    std::size_t answered = 0;
    while (answered < n)
      c.read_some([&](std::string_view subj, std::string_view payload, bool status) {
        if (subj.substr(0, 14) != "_INBOX.bare.r.") return;
        ++answered;
        if (status || failed(payload)) ++errors;
      });
  } else {
    for (std::size_t i = 0; i < n; ++i)
      if (failed(api(c, subject(i), body(i)))) ++errors;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double cpu_seconds(bool user) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const timeval& t = user ? ru.ru_utime : ru.ru_stime;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  args a = parse_args(argc, argv);
  bare_conn c(a.url);
  while (!c.got_info) c.read_some([](auto, auto, bool) {});
  c.out.append(R"(CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"bare"})"
               "\r\nSUB _INBOX.bare.api 1\r\nSUB _INBOX.bare.a.* 2\r\nSUB _INBOX.bare.r.* 3\r\nPING\r\n");
  c.flush();
  while (!c.got_pong) c.read_some([](auto, auto, bool) {});

  if (a.scenario == "configure") {
    const std::size_t n = 1000;
    std::size_t ignored = 0, errors = 0;
    (void)streams_round(c, n, true, false, a.storage, ignored);  // leftovers of an interrupted run, untimed
    auto cpu = [] { return cpu_seconds(true) + cpu_seconds(false); };
    double c0 = cpu();
    double cp = streams_round(c, n, true, true, a.storage, errors);
    double cp_cpu = (cpu() - c0) / static_cast<double>(n) * 1e6;
    double dp = streams_round(c, n, true, false, a.storage, errors);
    c0 = cpu();
    double cs = streams_round(c, n, false, true, a.storage, errors);
    double cs_cpu = (cpu() - c0) / static_cast<double>(n) * 1e6;
    double ds = streams_round(c, n, false, false, a.storage, errors);
    std::printf("configure %zu streams (storage=%s): pipelined %.3f s, one by one %.3f s, %.2fx; delete pipelined "
                "%.3f s, one by one %.3f s, %.2fx\n",
                n, a.storage.c_str(), cp, cs, cs / cp, dp, ds, ds / dp);
    std::printf("client=bare scenario=configure storage=%s topics=%zu create_pipelined_s=%.6f create_one_by_one_s=%.6f "
                "delete_pipelined_s=%.6f delete_one_by_one_s=%.6f create_pipelined_cpu_us=%.1f "
                "create_one_by_one_cpu_us=%.1f errors=%zu\n",
                a.storage.c_str(), n, cp, cs, dp, ds, cp_cpu, cs_cpu, errors);
    return errors ? 1 : 0;
  }

  (void)api(c, "$JS.API.STREAM.DELETE.BENCH", "");  // "not found" is fine
  std::string created = api(c, "$JS.API.STREAM.CREATE.BENCH",
                            R"({"name":"BENCH","subjects":["bench.>"],"storage":")" + a.storage + R"("})");
  if (created.find("\"error\"") != std::string::npos) die("stream create: " + created);

  const bool shared = a.reply == "shared", fresh = a.reply == "fresh";
  const std::string payload(a.size, 'x');
  std::vector<std::string> replies(shared ? 1 : a.max_pending);
  for (std::size_t i = 0; i < replies.size(); ++i) replies[i] = "_INBOX.bare.a." + std::to_string(i);
  std::vector<std::size_t> free_slots;
  for (std::size_t i = a.max_pending; i-- > 0;) free_slots.push_back(i);
  std::vector<char> busy(replies.size(), 0);
  // fresh: publish number n (from 1) is in flight while in_ring[n % size] == n; a window's numbers never collide.
  std::vector<std::size_t> in_ring(fresh ? 2 * a.max_pending : 0, 0);
  std::string reply;

  std::size_t sent = 0, acks = 0, errors = 0, in_flight = 0;
  auto on_ack = [&](std::string_view subject, std::string_view body, bool status) {
    if (subject.substr(0, 14) != "_INBOX.bare.a.") return;
    if (fresh) {
      std::size_t n = std::strtoull(std::string(subject.substr(14)).c_str(), nullptr, 10);
      if (n == 0 || in_ring[n % in_ring.size()] != n) return;  // not ours, or answered already
      in_ring[n % in_ring.size()] = 0;
    } else if (!shared) {
      std::size_t slot = std::strtoull(std::string(subject.substr(14)).c_str(), nullptr, 10);
      if (slot >= busy.size() || !busy[slot]) return;  // not ours, or answered already
      busy[slot] = 0;
      free_slots.push_back(slot);
    }
    --in_flight;
    if (status || body.find("\"error\"") != std::string_view::npos) ++errors;
    else ++acks;
  };

  const double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
  const auto t0 = std::chrono::steady_clock::now();
  while (acks + errors < a.msgs) {
    // Fill the window, then send it in one go.
    while (sent < a.msgs && in_flight < a.max_pending) {
      if (fresh) {
        // One stream acks in order, so the numbers in flight span less than the ring.
        std::size_t n = sent + 1;
        if (in_ring[n % in_ring.size()] != 0) die("an ack overtaken by more than the window");
        in_ring[n % in_ring.size()] = n;
        reply.assign("_INBOX.bare.a.").append(std::to_string(n));
        append_pub(c.out, "bench.data", reply, payload);
      } else {
        std::size_t slot = 0;
        if (!shared) {
          slot = free_slots.back();
          free_slots.pop_back();
          busy[slot] = 1;
        }
        append_pub(c.out, "bench.data", replies[slot], payload);
      }
      ++sent;
      ++in_flight;
    }
    if (!c.out.empty()) c.flush();
    c.read_some(on_ack);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("client=bare-%s scenario=async storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f "
              "acks=%zu errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=-1\n",
              a.reply.c_str(), a.storage.c_str(), a.size, a.msgs, a.size * a.msgs, seconds,
              static_cast<double>(a.msgs) / seconds, acks, errors, cpu_seconds(true) - u0, cpu_seconds(false) - s0);
  (void)api(c, "$JS.API.STREAM.DELETE.BENCH", "");
  return errors ? 1 : 0;
}
