// The wire parser on arbitrary bytes, offered whole, split in two at a point taken from the input (the way a
// reader appends what each read brings), and one byte at a time to a fresh parser. All must give the same
// events and fail the same way, and every event must stay inside the bytes it was offered.
#include <natsbus/protocol/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace natsbus;
namespace np = natsbus::protocol;

void check(bool ok) {
  if (!ok) std::abort();
}

struct owned_event {
  np::op kind;
  std::string subject, reply, headers, payload;
  std::uint64_t sid;
  bool operator==(const owned_event&) const = default;
};

struct outcome {
  std::vector<owned_event> events;
  error_code ec;
};

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

// Drains every complete frame from buf, erasing what the parser consumed. Returns false once it failed.
bool drain(np::parser& p, std::string& buf, outcome& out) {
  while (true) {
    const std::string_view input(buf);
    error_code ec;
    const auto ev = p.next(input, ec);
    if (ec) {
      check(!ev && p.failed());
      out.ec = ec;
      return false;
    }
    if (!ev) return true;
    const std::size_t used = p.consumed();
    check(used > 0 && used <= input.size());
    const std::string_view frame = input.substr(0, used);
    check(inside(ev->subject, frame) && inside(ev->reply, frame) && inside(ev->headers, frame) &&
          inside(ev->payload, frame));
    out.events.push_back({ev->kind, std::string(ev->subject), std::string(ev->reply), std::string(ev->headers),
                          std::string(ev->payload), ev->sid});
    buf.erase(0, used);
  }
}

// Small limits so that short inputs reach the limit checks.
constexpr np::parser_limits limits{.max_control_line = 128, .max_payload = 512, .payload_slack = 64};

outcome run(std::string_view input, std::size_t split) {
  np::parser p(limits);
  outcome out;
  std::string buf(input.substr(0, split));
  if (drain(p, buf, out)) {
    buf.append(input.substr(split));
    drain(p, buf, out);
  }
  return out;
}

// Each byte appended on its own, with every complete frame drained after each.
outcome run_bytewise(std::string_view input) {
  np::parser p(limits);
  outcome out;
  std::string buf;
  for (const char c : input) {
    buf.push_back(c);
    if (!drain(p, buf, out)) break;
  }
  return out;
}

// The same failure, or a line over the limit that a shorter input shows first. A line longer than
// max_control_line whose first LF lies one byte past the limit without a CR before it is protocol_violation when
// that LF is in view and control_line_too_long when it is not yet.
bool same_failure(const error_code& whole, const error_code& part) {
  if (whole == part) return true;
  return whole == natsbus::error::protocol_violation && part == natsbus::error::control_line_too_long;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t where = (static_cast<std::size_t>(data[0]) << 8) | data[1];
  const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  const outcome whole = run(input, input.size());
  const outcome split = run(input, where % (input.size() + 1));
  check(whole.events == split.events);
  check(same_failure(whole.ec, split.ec));
  const outcome bytewise = run_bytewise(input);
  check(whole.events == bytewise.events);
  check(same_failure(whole.ec, bytewise.ec));
  return 0;
}
