// Parser micro-benchmark: MSG frames per second and MB/s for small and 1 KiB payloads.
//
// mode=whole parses one large pre-built buffer from start to end, over and over: the parser's own cost.
// mode=reads64k copies the same bytes into a 64 KiB read buffer a chunk at a time, drains it and moves the
// partial frame at the end to the front, as the connection's reader does: frames split across reads included.
//
// Prints one key=value line per case. Usage: parser_bench [seconds_per_case] (default 0.3).
#include <natsbus/protocol/parser.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using natsbus::error_code;
using natsbus::protocol::parser;

std::string build_buffer(std::size_t payload_size, std::size_t target_bytes, std::size_t& frames) {
  const std::string payload(payload_size, 'p');
  std::string buf;
  buf.reserve(target_bytes + 1024);
  frames = 0;
  while (buf.size() < target_bytes) {
    // A JetStream-ack-like subject with a reply token, and sids that vary in width.
    buf += "MSG _INBOX.Zq4kXbD2wAyTzE1bN8sV3y.";
    buf += std::to_string(frames % 100000);
    buf += ' ';
    buf += std::to_string(1 + frames % 7);
    buf += " reply.subject ";
    buf += std::to_string(payload.size());
    buf += "\r\n";
    buf += payload;
    buf += "\r\n";
    ++frames;
  }
  return buf;
}

struct totals {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t checksum = 0;  // keeps the compiler from discarding the parse
};

bool parse_whole(const std::string& buf, totals& t) {
  parser p;
  std::string_view in = buf;
  error_code ec;
  while (auto ev = p.next(in, ec)) {
    t.checksum += ev->sid + ev->payload.size() + ev->subject.size();
    ++t.frames;
    in.remove_prefix(p.consumed());
  }
  t.bytes += buf.size() - in.size();
  return !ec && in.empty();
}

bool parse_reads(const std::string& src, std::size_t read_size, std::vector<char>& rb, totals& t) {
  parser p;
  std::size_t have = 0;
  std::size_t pos = 0;
  error_code ec;
  while (pos < src.size()) {
    const std::size_t n = std::min(read_size, src.size() - pos);
    if (have + n > rb.size()) rb.resize(have + n);
    std::memcpy(rb.data() + have, src.data() + pos, n);
    pos += n;
    have += n;
    std::string_view in(rb.data(), have);
    while (auto ev = p.next(in, ec)) {
      t.checksum += ev->sid + ev->payload.size() + ev->subject.size();
      ++t.frames;
      in.remove_prefix(p.consumed());
    }
    if (ec) return false;
    // Keep the partial frame: move it to the front.
    std::memmove(rb.data(), in.data(), in.size());
    t.bytes += have - in.size();
    have = in.size();
  }
  return have == 0;
}

void run_case(const char* mode, std::size_t payload_size, double seconds) {
  std::size_t frames_per_pass = 0;
  const std::string buf = build_buffer(payload_size, 8 * 1024 * 1024, frames_per_pass);
  std::vector<char> rb(64 * 1024);
  const bool reads = std::strcmp(mode, "reads64k") == 0;

  totals t;
  const auto start = clock_type::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  do {
    const bool ok = reads ? parse_reads(buf, 64 * 1024, rb, t) : parse_whole(buf, t);
    if (!ok) {
      std::fprintf(stderr, "parse failed: mode=%s size=%zu\n", mode, payload_size);
      std::exit(1);
    }
  } while (clock_type::now() < deadline);
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();

  std::printf("bench=parser mode=%s size=%zu frames=%llu bytes=%llu seconds=%.3f frames_per_s=%.0f "
              "mb_per_s=%.1f ns_per_frame=%.1f checksum=%llu\n",
              mode, payload_size, static_cast<unsigned long long>(t.frames), static_cast<unsigned long long>(t.bytes),
              secs, static_cast<double>(t.frames) / secs, static_cast<double>(t.bytes) / secs / 1e6,
              secs * 1e9 / static_cast<double>(t.frames), static_cast<unsigned long long>(t.checksum));
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.3;
  for (const char* mode : {"whole", "reads64k"}) {
    for (std::size_t size : {std::size_t{16}, std::size_t{1024}}) run_case(mode, size, seconds);
  }
  return 0;
}
