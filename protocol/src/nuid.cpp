#include <natsbus/protocol/nuid.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <string_view>

#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define NATSBUS_HAVE_GETRANDOM 1
#endif

namespace natsbus::protocol {
namespace {

constexpr char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::uint64_t base = 62;
constexpr std::uint64_t max_seq = 839'299'365'868'340'224ULL;  // 62^10
constexpr std::uint64_t min_inc = 33;
constexpr std::uint64_t max_inc = 333;

static_assert(sizeof(digits) - 1 == base);
static_assert([] {
  std::uint64_t v = 1;
  for (std::size_t i = 0; i < nuid::sequence_length; ++i) v *= base;
  return v == max_seq;
}());

// OS entropy. Called at construction and when the sequence runs out, never per id.
void fill_random(void* out, std::size_t n) {
  auto* p = static_cast<unsigned char*>(out);
#ifdef NATSBUS_HAVE_GETRANDOM
  while (n > 0) {
    const ssize_t r = ::getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;  // ENOSYS and the like: fall back below
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
#endif
  if (n > 0) {
    std::random_device rd;
    while (n > 0) {
      const auto v = rd();
      const std::size_t k = std::min(n, sizeof v);
      std::memcpy(p, &v, k);
      p += k;
      n -= k;
    }
  }
}

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  fill_random(&v, sizeof v);
  return v;
}

}  // namespace

nuid::nuid() {
  randomize_prefix();
  reset_sequence();
}

void nuid::randomize_prefix() {
  std::uint64_t r[prefix_length];
  fill_random(r, sizeof r);
  // 64 random bits per character: the bias of the modulo is below 2^-57.
  for (std::size_t i = 0; i < prefix_length; ++i) prefix_[i] = digits[r[i] % base];
}

void nuid::reset_sequence() {
  seq_ = random_u64() % max_seq;
  inc_ = min_inc + random_u64() % (max_inc - min_inc);
}

void nuid::next(char* out) {
  seq_ += inc_;
  if (seq_ >= max_seq) {
    randomize_prefix();
    reset_sequence();
  }
  std::memcpy(out, prefix_.data(), prefix_length);
  std::uint64_t s = seq_;
  for (std::size_t i = length; i > prefix_length; --i) {
    out[i - 1] = digits[s % base];
    s /= base;
  }
}

std::string nuid::next() {
  std::string s(length, '\0');
  next(s.data());
  return s;
}

std::string new_inbox(std::string_view prefix) {
  thread_local nuid gen;
  std::string s(prefix.size() + 1 + nuid::length, '\0');
  std::memcpy(s.data(), prefix.data(), prefix.size());
  s[prefix.size()] = '.';
  gen.next(s.data() + prefix.size() + 1);
  return s;
}

}  // namespace natsbus::protocol
