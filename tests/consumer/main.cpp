// A consumer of the installed package: proves find_package(natsbus) gives usable targets.
#include <natsbus/protocol/encoder.hpp>
#include <natsbus/connection.hpp>

#include <iostream>
#include <string>

int main() {
  std::string out;
  natsbus::protocol::encode_ping(out);
  natsbus::connection_options opts;
  std::cout << (out == "PING\r\n" && !opts.name.empty() ? "ok" : "bad") << '\n';
  return out == "PING\r\n" ? 0 : 1;
}
