// A bare JetStream publisher (and pull consumer, below) on a plain blocking socket: no Asio, no natsbus, no
// features (no reconnect, no deadlines, no headers sent, no retries). It is the floor a real client is measured
// against, with the one choice that decides the server's cost per acknowledgement made explicit:
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
//   natsbus-bare-bench --url nats://127.0.0.1:4222 --scenario consume --storage memory --size 1024 --msgs 100000
//                      --batch 100
//
// async (re)creates the stream BENCH on bench.> and prints one line in natsbus-bench's format. configure
// creates 1,000 streams (one subject each) with every request written at once and then one at a time, each
// awaited, and deletes them both ways: the floor for natsbus's configure_topics.
//
// fetch, consume and ordered are the ceiling for natsbus's consumers (natsbus-bench's scenarios of the same
// names): BENCH is filled with --msgs messages by the async path (untimed, every ack awaited), then read back:
//
//   fetch    a durable pull consumer BENCHC (ack explicit, max_ack_pending -1): one pull of --batch (default
//            100), read to its end, every message acked with +ACK; the acks go out with the next pull;
//   consume  the same consumer read continuously: up to --batch asked for, and a pull for what is missing once
//            half of it has come; the acks go out after every read;
//   ordered  an ephemeral consumer (ack none, memory, one replica) read as consume is, no acks; a gap in the
//            consumer sequence counts as an error; the consumer is deleted at the end.
//
// The clock covers the reading and acking only, up to a PING's PONG after the last ack. Pulls carry no
// heartbeat. The stream is deleted at the end unless --keep. Unknown flags are ignored (with the value after
// them, unless that starts with "--").
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
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
  std::size_t batch = 100;
  bool keep = false;
};

std::size_t to_size(std::string_view flag, const char* v) {
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') die(std::string(flag) + " needs a number, got '" + v + "'");
  return static_cast<std::size_t>(n);
}

args parse_args(int argc, char** argv) {
  args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view f = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    auto value = [&] {
      if (!next) die(std::string(f) + " needs a value");
      ++i;
      return next;
    };
    if (f == "--keep") a.keep = true;
    else if (f == "--url") a.url = value();
    else if (f == "--scenario") a.scenario = value();
    else if (f == "--storage") a.storage = value();
    else if (f == "--reply") a.reply = value();
    else if (f == "--size") a.size = to_size(f, value());
    else if (f == "--msgs") a.msgs = to_size(f, value());
    else if (f == "--max-pending") a.max_pending = to_size(f, value());
    else if (f == "--batch") a.batch = to_size(f, value());
    else if (next && std::string_view(next).substr(0, 2) != "--") ++i;  // --server-pid N ...: ignored
  }
  const std::string_view sc = a.scenario;
  if (sc != "async" && sc != "configure" && sc != "fetch" && sc != "consume" && sc != "ordered")
    die("--scenario is async, configure, fetch, consume or ordered");
  if (a.storage != "memory" && a.storage != "file") die("--storage is memory or file");
  if (a.reply != "fresh" && a.reply != "unique" && a.reply != "shared") die("--reply is fresh, unique or shared");
  if (a.msgs == 0 || a.max_pending == 0 || a.batch == 0) die("--msgs, --max-pending and --batch must be positive");
  return a;
}

bool to_number(std::string_view s, std::size_t& n) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc{} && end == s.data() + s.size();
}

// One message from the server, viewed in the input buffer (valid during the callback only).
struct frame {
  std::string_view subject, reply, headers, payload;
  bool hmsg = false;
};

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

  // Reads once (blocking) and hands every complete message to on_msg(const frame&); answers PINGs, stops at
  // -ERR.
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
        const bool hmsg = line[0] == 'H';
        // MSG <subject> <sid> [reply] <size> / HMSG <subject> <sid> [reply] <hdr size> <total size>
        std::string_view tok[7];
        std::size_t nt = 0, i = 0;
        while (i < line.size() && nt < 7) {
          auto sp = line.find(' ', i);
          if (sp == std::string_view::npos) sp = line.size();
          if (sp > i) tok[nt++] = line.substr(i, sp - i);
          i = sp + 1;
        }
        const std::size_t bare = hmsg ? 5 : 4;  // the tokens without a reply subject
        std::size_t total = 0, hdr = 0;
        if ((nt != bare && nt != bare + 1) || !to_number(tok[nt - 1], total) ||
            (hmsg && !to_number(tok[nt - 2], hdr)) || hdr > total)
          die("malformed line from the server: " + std::string(line));
        if (rest.size() < eol + 2 + total + 2) break;
        std::string_view body = rest.substr(eol + 2, total);
        on_msg(frame{tok[1], nt > bare ? tok[3] : std::string_view{}, body.substr(0, hdr), body.substr(hdr), hmsg});
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
    c.read_some([&](const frame& f) {
      if (f.subject != "_INBOX.bare.api") return;
      if (f.hmsg) die(std::string(subject) + ": no JetStream responder");
      answer.assign(f.payload);
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
      c.read_some([&](const frame& f) {
        if (f.subject.substr(0, 14) != "_INBOX.bare.r.") return;
        ++answered;
        if (f.hmsg || failed(f.payload)) ++errors;
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

// Publishes --msgs messages of --size bytes to bench.data within the --max-pending window, every ack awaited
// (--reply decides the reply subjects).
struct pub_counts {
  std::size_t acks = 0, errors = 0;
};

pub_counts publish_all(bare_conn& c, const args& a) {
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

  pub_counts r;
  std::size_t sent = 0, in_flight = 0;
  auto on_ack = [&](const frame& f) {
    const std::string_view subject = f.subject;
    if (subject.substr(0, 14) != "_INBOX.bare.a.") return;
    if (fresh) {
      std::size_t n = 0;
      // not ours, or answered already
      if (!to_number(subject.substr(14), n) || n == 0 || in_ring[n % in_ring.size()] != n) return;
      in_ring[n % in_ring.size()] = 0;
    } else if (!shared) {
      std::size_t slot = 0;
      // not ours, or answered already
      if (!to_number(subject.substr(14), slot) || slot >= busy.size() || !busy[slot]) return;
      busy[slot] = 0;
      free_slots.push_back(slot);
    }
    --in_flight;
    if (f.hmsg || f.payload.find("\"error\"") != std::string_view::npos) ++r.errors;
    else ++r.acks;
  };

  while (r.acks + r.errors < a.msgs) {
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
  return r;
}

// The pulls a consumer has open: each with a reply subject of its own (_INBOX.bare.p.<id>), so that a status
// names the pull it ends. A message cannot name its pull (its subject is the stream's); the oldest delivers first.
class pulls {
 public:
  static constexpr std::string_view prefix = "_INBOX.bare.p.";

  explicit pulls(std::string_view consumer) : next_subject_("$JS.API.CONSUMER.MSG.NEXT.BENCH.") {
    next_subject_.append(consumer);
  }

  std::size_t outstanding() const { return outstanding_; }
  bool open() const { return !open_.empty(); }

  // Asks for `batch` more messages (appended to `out`).
  void pull(std::string& out, std::size_t batch) {
    char digits[24];
    auto id_end = std::to_chars(digits, digits + sizeof digits, next_id_).ptr;
    reply_.assign(prefix).append(digits, id_end);
    auto batch_end = std::to_chars(digits, digits + sizeof digits, batch).ptr;
    body_.assign(R"({"batch":)").append(digits, batch_end).append(R"(,"expires":5000000000})");
    append_pub(out, next_subject_, reply_, body_);
    open_.push_back({next_id_++, batch});
    outstanding_ += batch;
  }

  // One message came (from the oldest pull).
  void delivered() {
    if (open_.empty()) return;
    --outstanding_;
    if (--open_.front().remaining == 0) open_.erase(open_.begin());
  }

  // A status to `subject` ended its pull: what it did not deliver is asked for no more. False when the subject
  // names no open pull.
  bool ended(std::string_view subject) {
    std::size_t id = 0;
    if (subject.substr(0, prefix.size()) != prefix || !to_number(subject.substr(prefix.size()), id)) return false;
    for (auto it = open_.begin(); it != open_.end(); ++it) {
      if (it->id != id) continue;
      outstanding_ -= it->remaining;
      open_.erase(it);
      return true;
    }
    return false;
  }

 private:
  struct open_pull {
    std::size_t id, remaining;
  };
  std::string next_subject_, reply_, body_;
  std::vector<open_pull> open_;  // oldest first; two or three at most
  std::size_t next_id_ = 1, outstanding_ = 0;
};

// A JetStream status (the end of a pull, a heartbeat): headers, no payload, and a reply that is no ack subject.
bool is_status(const frame& f) {
  return !f.headers.empty() && f.payload.empty() && f.reply.substr(0, 8) != "$JS.ACK.";
}

// The code of a status ("NATS/1.0 408 Request Timeout..."); 0 when there is none.
int status_code(std::string_view headers) {
  if (headers.substr(0, 9) != "NATS/1.0 " || headers.size() < 12) return 0;
  int code = 0;
  auto [end, ec] = std::from_chars(headers.data() + 9, headers.data() + 12, code);
  return ec == std::errc{} && end == headers.data() + 12 ? code : 0;
}

// The consumer sequence in an ack subject: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
// (9 tokens), or $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
// [.<token>] (11 or more). 0 when malformed.
std::size_t consumer_sequence(std::string_view reply) {
  std::string_view tok[9];
  std::size_t n = 0, i = 0;
  for (;;) {
    auto dot = reply.find('.', i);
    if (n < 9) tok[n] = reply.substr(i, dot == std::string_view::npos ? std::string_view::npos : dot - i);
    ++n;
    if (dot == std::string_view::npos) break;
    i = dot + 1;
  }
  std::size_t seq = 0;
  if (n == 9 ? to_number(tok[6], seq) : n >= 11 && to_number(tok[8], seq)) return seq;
  return 0;
}

// The value of the first "key":"..." in a JSON answer (no escapes expected); empty when absent.
std::string json_string(std::string_view json, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  auto at = json.find(needle);
  if (at == std::string_view::npos) return {};
  at += needle.size();
  auto end = json.find('"', at);
  return end == std::string_view::npos ? std::string() : std::string(json.substr(at, end - at));
}

// fetch, consume, ordered on a filled BENCH (see the top); prints the result line. Returns the exit status.
int run_consume(bare_conn& c, const args& a) {
  const bool fetch = a.scenario == "fetch", ordered = a.scenario == "ordered";
  std::string consumer = "BENCHC";
  if (ordered) {
    const std::string created = api(c, "$JS.API.CONSUMER.CREATE.BENCH",
                                    R"({"stream_name":"BENCH","config":{"deliver_policy":"all","ack_policy":"none",)"
                                    R"("mem_storage":true,"num_replicas":1,"inactive_threshold":300000000000}})");
    consumer = json_string(created, "name");
    if (consumer.empty() || created.find("\"error\"") != std::string::npos) die("consumer create: " + created);
  } else {
    const std::string created = api(c, "$JS.API.CONSUMER.DURABLE.CREATE.BENCH.BENCHC",
                                    R"({"stream_name":"BENCH","config":{"durable_name":"BENCHC",)"
                                    R"("deliver_policy":"all","ack_policy":"explicit","max_ack_pending":-1}})");
    if (created.find("\"error\"") != std::string::npos) die("consumer create: " + created);
  }

  pulls p(consumer);
  std::size_t got = 0, acks = 0, errors = 0, last_cseq = 0;
  bool stop = false;
  std::string first_error;
  auto on_frame = [&](const frame& f) {
    if (f.reply.substr(0, 8) == "$JS.ACK.") {
      ++got;
      p.delivered();
      if (ordered) {
        const std::size_t cseq = consumer_sequence(f.reply);
        if (cseq != last_cseq + 1 && !errors++)
          first_error = "consumer sequence " + std::to_string(cseq) + " after " + std::to_string(last_cseq);
        last_cseq = cseq;
      } else {
        c.out.append("PUB ").append(f.reply).append(" 4\r\n+ACK\r\n");
        ++acks;
      }
      return;
    }
    if (!is_status(f)) return;
    const int code = status_code(f.headers);
    if (code == 100 || !p.ended(f.subject)) return;  // a heartbeat (none asked for), or no pull of ours
    if (code != 404 && code != 408) {                // 409 (consumer deleted, limits ...) and the rest
      if (!errors++) first_error = std::string(f.headers.substr(0, f.headers.find('\r')));
      stop = true;
    }
  };

  const double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
  const auto t0 = std::chrono::steady_clock::now();
  if (fetch) {
    // One pull at a time, read to its end; the batch's acks go out with the next pull.
    while (got < a.msgs && !stop) {
      p.pull(c.out, std::min(a.batch, a.msgs - got));
      c.flush();
      const std::size_t before = got;
      while (p.open() && !stop) c.read_some(on_frame);
      if (got == before) break;  // an empty batch: nothing more to come
    }
  } else {
    // Up to --batch asked for; a pull for what is missing once half of it has come (natsbus's threshold 0.5).
    p.pull(c.out, a.batch);
    c.flush();
    while (got < a.msgs && !stop) {
      c.read_some(on_frame);
      if (p.outstanding() <= a.batch / 2) p.pull(c.out, a.batch - p.outstanding());
      if (!c.out.empty()) c.flush();
    }
  }
  // The last acks have reached the server once a PING written after them is answered.
  c.got_pong = false;
  c.out.append("PING\r\n");
  c.flush();
  while (!c.got_pong) c.read_some(on_frame);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double user = cpu_seconds(true) - u0, sys = cpu_seconds(false) - s0;

  if (got < a.msgs && !errors++) first_error = "got " + std::to_string(got) + " of " + std::to_string(a.msgs);
  if (ordered) (void)api(c, "$JS.API.CONSUMER.DELETE.BENCH." + consumer, "");
  // The timed loop allocates nothing per message (its buffers are reused); not counted.
  std::printf("client=bare scenario=%s storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f acks=%zu "
              "errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=0.000 server_cpu_s=0 batch=%zu\n",
              a.scenario.c_str(), a.storage.c_str(), a.size, got, a.size * got, seconds,
              static_cast<double>(got) / seconds, acks, errors, user, sys, a.batch);
  if (errors) std::fprintf(stderr, "first error: %s\n", first_error.c_str());
  return errors ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  args a = parse_args(argc, argv);
  bare_conn c(a.url);
  while (!c.got_info) c.read_some([](const frame&) {});
  c.out.append(R"(CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"name":"bare"})"
               "\r\nSUB _INBOX.bare.api 1\r\nSUB _INBOX.bare.a.* 2\r\nSUB _INBOX.bare.r.* 3\r\n"
               "SUB _INBOX.bare.p.* 4\r\nPING\r\n");
  c.flush();
  while (!c.got_pong) c.read_some([](const frame&) {});

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

  int rc = 0;
  if (a.scenario == "async") {
    const double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
    const auto t0 = std::chrono::steady_clock::now();
    const pub_counts r = publish_all(c, a);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("client=bare-%s scenario=async storage=%s size=%zu msgs=%zu bytes=%zu seconds=%.6f msgs_per_s=%.0f "
                "acks=%zu errors=%zu client_user_s=%.6f client_sys_s=%.6f allocs_per_msg=-1\n",
                a.reply.c_str(), a.storage.c_str(), a.size, a.msgs, a.size * a.msgs, seconds,
                static_cast<double>(a.msgs) / seconds, r.acks, r.errors, cpu_seconds(true) - u0,
                cpu_seconds(false) - s0);
    rc = r.errors ? 1 : 0;
  } else {
    const pub_counts fill = publish_all(c, a);  // untimed
    if (fill.errors) die("filling BENCH: " + std::to_string(fill.errors) + " publishes failed");
    rc = run_consume(c, a);
  }
  if (!a.keep) (void)api(c, "$JS.API.STREAM.DELETE.BENCH", "");
  return rc;
}
