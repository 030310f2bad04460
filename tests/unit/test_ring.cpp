// The ring behind consumers' buffers and the bus's held events (src/jetstream/ring.hpp): every operation checked
// against std::deque over random sequences that wrap around and grow, with the middle inserts and erases that
// move the shorter side.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include "jetstream/ring.hpp"

#include <deque>
#include <memory>
#include <random>

using natsbus::detail::ring;

namespace {

template <class T>
bool same(ring<T>& r, const std::deque<T>& d) {
  if (r.size() != d.size() || r.empty() != d.empty()) return false;
  if (!d.empty() && (r.front() != d.front() || r.back() != d.back())) return false;
  for (std::size_t i = 0; i < d.size(); ++i)
    if (r[i] != d[i]) return false;
  return true;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ring_buffer)

BOOST_AUTO_TEST_CASE(insert_and_erase_anywhere_keep_order) {
  std::mt19937 rng(20261205);
  ring<int> r;
  std::deque<int> d;
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto op = rng() % 6;
    if (op == 0 || d.empty()) {
      r.push_back(next);
      d.push_back(next++);
    } else if (op == 1) {
      r.push_front(next);
      d.push_front(next++);
    } else if (op == 2) {
      r.pop_front();
      d.pop_front();
    } else if (op == 3) {
      const std::size_t i = rng() % (d.size() + 1);  // size(): an append
      r.insert(i, next);
      d.insert(d.begin() + static_cast<std::ptrdiff_t>(i), next++);
    } else {
      const std::size_t i = rng() % d.size();
      r.erase(i);
      d.erase(d.begin() + static_cast<std::ptrdiff_t>(i));
    }
    BOOST_REQUIRE_MESSAGE(same(r, d), "differs after step " << step << " (op " << op << ")");
  }
  r.clear();
  BOOST_TEST(r.empty());
}

BOOST_AUTO_TEST_CASE(erase_releases_what_it_held) {
  // Removed slots are reset: a shared_ptr erased from either side, or popped, is released at once.
  ring<std::shared_ptr<int>> r;
  std::vector<std::weak_ptr<int>> watch;
  for (int i = 0; i < 40; ++i) {
    auto p = std::make_shared<int>(i);
    watch.push_back(p);
    r.push_back(std::move(p));
  }
  r.erase(3);        // front half: the front moves up
  r.erase(30);       // back half: the back moves down
  r.pop_front();
  BOOST_TEST(watch[3].expired());
  BOOST_TEST(watch[31].expired());
  BOOST_TEST(watch[0].expired());
  BOOST_TEST(r.size() == 37u);
  BOOST_TEST(*r[0] == 1);
  BOOST_TEST(*r[1] == 2);
  BOOST_TEST(*r[2] == 4);
  std::size_t alive = 0;
  for (auto& w : watch) alive += w.expired() ? 0 : 1;
  BOOST_TEST(alive == 37u);
}

BOOST_AUTO_TEST_SUITE_END()
