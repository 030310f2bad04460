#include "nats_server.hpp"
#include "child_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace natsbus::test {
namespace {

std::string make_temp_dir(const char* tag) {
  std::string tmpl = (fs::temp_directory_path() / (std::string("natsbus-") + tag + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// The port of the first URL listed under `key` in a ports file, -1 when the key is not there. The file is JSON,
// one array of URLs per listener: {"nats":["nats://127.0.0.1:P"],"websocket":["ws://127.0.0.1:W"]} (tls:// and
// wss:// with TLS; a listener on every interface lists each address, all with the same port).
int listed_port(std::string_view text, std::string_view key) {
  constexpr auto npos = std::string_view::npos;
  auto pos = text.find("\"" + std::string(key) + "\"");
  if (pos == npos) return -1;
  auto open = text.find('[', pos);
  if (open == npos) return -1;
  auto close = text.find(']', open);
  auto first = text.find('"', open);
  if (close == npos || first > close) return -1;  // an empty list
  auto last = text.find('"', first + 1);
  if (last == npos) return -1;
  std::string_view url = text.substr(first + 1, last - first - 1);
  auto colon = url.rfind(':');
  if (colon == npos) return -1;
  return std::atoi(std::string(url.substr(colon + 1)).c_str());
}

struct listener_ports {
  int nats = -1;
  int websocket = -1;
};

// Empty until the file is complete: the server writes it in one go, but a read can fall between its creation
// and that write.
std::optional<listener_ports> read_ports(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos || text[end] != '}') return std::nullopt;
  listener_ports p{listed_port(text, "nats"), listed_port(text, "websocket")};
  if (p.nats <= 0) return std::nullopt;
  return p;
}

// The config with the ephemeral port of its websocket block ("listen: host:-1" or "port: -1") replaced by `port`,
// so a restarted server listens where the clients already point. Only that block is touched: cluster, leafnode
// or monitoring ports of -1 stay ephemeral. A fixed port, or no websocket block, leaves the config as it is.
std::string pin_websocket_port(const std::string& conf, int port) {
  static const std::regex block_start(R"((^|[\s{;,])(websocket|ws)\s*[:=]?\s*\{)");
  std::smatch m;
  if (!std::regex_search(conf, m, block_start)) return conf;
  auto open = static_cast<std::size_t>(m.position(0) + m.length(0)) - 1;
  // Its closing brace; the nested tls block has no port to pin, quoted strings no braces that count.
  std::size_t close = open;
  int depth = 0;
  bool quoted = false;
  for (; close < conf.size(); ++close) {
    char c = conf[close];
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == '{') ++depth;
    if (c == '}' && --depth == 0) break;
  }
  if (close >= conf.size()) return conf;
  static const std::regex ephemeral(R"(((^|[\s{;,])(listen|port)\s*[:=]?\s*"?([^"\s]*:)?)-1\b)");
  const std::string block = conf.substr(open, close - open);
  // By hand rather than regex_replace: "$1" followed by the port's digits would read as a two-digit group.
  std::string out = conf.substr(0, open);
  std::size_t done = 0;
  for (std::sregex_iterator it(block.begin(), block.end(), ephemeral), end; it != end; ++it) {
    out.append(block, done, static_cast<std::size_t>(it->position(0)) - done);
    out += (*it)[1].str() + std::to_string(port);
    done = static_cast<std::size_t>(it->position(0) + it->length(0));
  }
  out.append(block, done);
  return out + conf.substr(close);
}

// $NATSBUS_NATS_SERVER (the path of a nats-server binary, e.g. the 2.10 one of scripts/nats-server-2.10.sh) when
// set, else nats-server on PATH.
const char* server_env() {
  const char* env = std::getenv("NATSBUS_NATS_SERVER");
  return env && *env ? env : nullptr;
}

}  // namespace

std::string nats_server_binary() {
  const char* env = server_env();
  return env ? env : "nats-server";
}

bool nats_server_available() {
  if (const char* env = server_env()) return ::access(env, X_OK) == 0;
  return std::system("command -v nats-server >/dev/null 2>&1") == 0;
}

nats_server::nats_server(server_options opts) : opts_(std::move(opts)) {
  work_dir_ = make_temp_dir("server");
  if (opts_.store_dir.empty()) {
    store_dir_ = work_dir_ + "/store";
    own_store_ = true;
  } else {
    store_dir_ = opts_.store_dir;
  }
  ports_dir_ = work_dir_ + "/ports";
  fs::create_directories(ports_dir_);
  port_ = opts_.port;
  // A server that does not start (a test feeding it a bad certificate on purpose) throws from here, and no
  // destructor runs: its folder must go now.
  try {
    start();
  } catch (...) {
    std::error_code ec;
    fs::remove_all(work_dir_, ec);
    throw;
  }
}

nats_server::~nats_server() {
  stop();
  std::error_code ec;
  fs::remove_all(work_dir_, ec);
}

void nats_server::start() {
  for (auto& e : fs::directory_iterator(ports_dir_)) fs::remove(e.path());
  const std::string binary = nats_server_binary();
  std::vector<std::string> args{binary, "-a", "127.0.0.1", "-p", std::to_string(port_),
                                "--ports_file_dir", ports_dir_};
  if (opts_.jetstream) {
    args.insert(args.end(), {"-js", "-sd", store_dir_});
  }
  if (!opts_.config.empty()) {
    std::string conf = work_dir_ + "/server.conf";
    std::ofstream(conf) << (ws_port_ > 0 ? pin_websocket_port(opts_.config, ws_port_) : opts_.config);
    args.insert(args.end(), {"-c", conf});
  }
  args.insert(args.end(), opts_.args.begin(), opts_.args.end());
  std::string log = work_dir_ + "/server.log";

  pid_ = spawn_child(args, log);
  std::string ports_file = ports_dir_ + "/nats-server_" + std::to_string(pid_) + ".ports";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(log);
      std::stringstream ss;
      ss << in.rdbuf();
      throw std::runtime_error("nats-server exited at start: " + ss.str());
    }
    if (fs::exists(ports_file)) {
      if (auto p = read_ports(ports_file)) {
        port_ = p->nats;
        ws_port_ = p->websocket;
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a file the server writes
  }
  kill();
  throw std::runtime_error("nats-server did not start within 20 s");
}

void nats_server::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

void nats_server::stop() {
  stop_child(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

void nats_server::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void nats_server::restart() {
  stop();
  start();
}

}  // namespace natsbus::test
