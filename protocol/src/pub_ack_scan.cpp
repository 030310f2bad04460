// The fast path of decode_pub_ack: a scanner over the few shapes the server writes for a publish ack, with no
// allocation beyond the strings it fills. Anything else falls back to the full parser in jetstream.cpp.
#include <natsbus/protocol/jetstream.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

namespace natsbus::protocol {
namespace {

// Fast scanner over the shapes the server writes: {"stream":"S", "seq":N}, {"stream":"S", "domain":"D",
// "seq":N}, each optionally followed by ,"duplicate": true (also without the spaces, and with domain after seq).
// Returns false, having possibly touched `out`, whenever the input is anything else; the caller then parses
// in full.
class ack_scanner {
 public:
  explicit ack_scanner(std::string_view s) noexcept : p_(s.data()), end_(s.data() + s.size()) {}

  bool run(pub_ack& out) {
    if (!lit("{\"stream\":")) return false;
    space();
    std::string_view stream;
    if (!string(stream)) return false;
    bool have_seq = false, have_dup = false, have_domain = false;
    std::string_view domain;
    std::uint64_t seq = 0;
    bool dup = false;
    while (p_ != end_ && *p_ == ',') {
      ++p_;
      space();
      if (lit("\"seq\":")) {
        space();
        if (have_seq || !number(seq)) return false;
        have_seq = true;
      } else if (lit("\"domain\":")) {
        space();
        if (have_domain || !string(domain)) return false;
        have_domain = true;
      } else if (lit("\"duplicate\":")) {
        space();
        if (have_dup) return false;
        if (lit("true")) dup = true;
        else if (lit("false")) dup = false;
        else return false;
        have_dup = true;
      } else {
        return false;
      }
    }
    if (!have_seq || !lit("}") || p_ != end_) return false;
    out.stream.assign(stream.data(), stream.size());
    out.seq = seq;
    out.duplicate = dup;
    out.domain.assign(domain.data(), domain.size());
    return true;
  }

 private:
  bool lit(std::string_view s) noexcept {
    if (static_cast<std::size_t>(end_ - p_) < s.size() || std::memcmp(p_, s.data(), s.size()) != 0) return false;
    p_ += s.size();
    return true;
  }
  // At most one space, as the server writes after some commas and colons.
  void space() noexcept {
    if (p_ != end_ && *p_ == ' ') ++p_;
  }
  // Printable ASCII without escapes only: anything else needs the full parser (escapes, UTF-8 validation).
  bool string(std::string_view& out) noexcept {
    if (p_ == end_ || *p_ != '"') return false;
    const char* start = ++p_;
    while (p_ != end_) {
      const char c = *p_;
      if (c == '"') {
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c == '\\' || c < 0x20 || c > 0x7E) return false;
      ++p_;
    }
    return false;
  }
  bool number(std::uint64_t& out) noexcept {
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    if (*p_ == '0') {
      ++p_;
      out = 0;
    } else {
      std::uint64_t n = 0;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
        const auto d = static_cast<std::uint64_t>(*p_ - '0');
        if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
        n = n * 10 + d;
        ++p_;
      }
      out = n;
    }
    // A fraction or exponent is not an integer: leave it to the full parser.
    return p_ != end_ && (*p_ == ',' || *p_ == '}');
  }

  const char* p_;
  const char* end_;
};

}  // namespace

namespace detail {

bool decode_pub_ack_fast(std::string_view text, pub_ack& out, api_error& err) {
  if (!ack_scanner(text).run(out)) return false;
  err.code = 0;
  err.err_code = 0;
  err.description.clear();
  return true;
}

}  // namespace detail
}  // namespace natsbus::protocol
