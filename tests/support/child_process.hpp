// Test support: a server process the fixtures start (nats-server, prometheus), killed with the test process, with
// its stderr appended to a log file; and its stop, bounded in time.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace natsbus::test {

// Runs args[0] (a name with a slash as is, else found on PATH) with the rest as its arguments; stderr appended to
// `log`, stdout to /dev/null. Returns the process id; throws when fork fails.
int spawn_child(const std::vector<std::string>& args, const std::string& log);

// SIGTERM, then SIGKILL once `grace` has passed; returns once the process is reaped.
void stop_child(int pid, std::chrono::milliseconds grace);

}  // namespace natsbus::test
