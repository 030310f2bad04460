#include "nats_server.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
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

// The ports file is JSON with "nats": ["nats://127.0.0.1:PORT"].
int read_port(const std::string& file) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto pos = text.find("\"nats\"");
  if (pos == std::string::npos) return -1;
  pos = text.find("127.0.0.1:", pos);
  if (pos == std::string::npos) return -1;
  return std::atoi(text.c_str() + pos + 10);
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
  start();
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
    std::ofstream(conf) << opts_.config;
    args.insert(args.end(), {"-c", conf});
  }
  args.insert(args.end(), opts_.args.begin(), opts_.args.end());
  std::string log = work_dir_ + "/server.log";

  std::fflush(nullptr);  // the child must not write our buffered output again
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The server must not outlive the test, nor hold the test's stdout open.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (FILE* f = std::freopen(log.c_str(), "a", stderr)) (void)f;
    if (FILE* f = std::freopen("/dev/null", "w", stdout)) (void)f;
    ::execvp(binary.c_str(), argv.data());  // a name with a slash is run as is, without the PATH search
    std::fprintf(stderr, "exec %s: %s\n", binary.c_str(), std::strerror(errno));
    std::_Exit(127);
  }
  pid_ = pid;
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
      int p = read_port(ports_file);
      if (p > 0) {
        port_ = p;
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
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill();
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
