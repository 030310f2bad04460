#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/nuid.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

using natsbus::protocol::new_inbox;
using natsbus::protocol::nuid;

namespace {

bool is_base62(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nuid_tests)

BOOST_AUTO_TEST_CASE(length_and_charset) {
  nuid gen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = gen.next();
    BOOST_TEST(id.size() == 22u);
    BOOST_TEST(is_base62(id), id);
  }
  static_assert(nuid::length == 22 && nuid::prefix_length == 12 && nuid::sequence_length == 10);
}

BOOST_AUTO_TEST_CASE(million_unique_ids) {
  nuid gen;
  std::vector<std::array<char, nuid::length>> ids(1'000'000);
  for (auto& id : ids) gen.next(id.data());
  // One generator keeps its prefix and moves its sequence forward (the digits sort in ASCII order).
  const std::string_view first(ids.front().data(), nuid::prefix_length);
  const std::string_view last(ids.back().data(), nuid::prefix_length);
  BOOST_TEST(first == last);
  BOOST_TEST(std::is_sorted(ids.begin(), ids.end()));
  std::sort(ids.begin(), ids.end());
  BOOST_TEST((std::adjacent_find(ids.begin(), ids.end()) == ids.end()));
  BOOST_TEST(is_base62(std::string_view(ids[12345].data(), nuid::length)));
}

BOOST_AUTO_TEST_CASE(generators_have_different_prefixes) {
  nuid a, b;
  const auto x = a.next(), y = b.next();
  BOOST_TEST(x.substr(0, 12) != y.substr(0, 12));
  const auto before = a.next();
  a.randomize_prefix();
  const auto after = a.next();
  BOOST_TEST(before.substr(0, 12) != after.substr(0, 12));
  BOOST_TEST(is_base62(after));
}

BOOST_AUTO_TEST_CASE(inboxes) {
  const auto a = new_inbox();
  const auto b = new_inbox();
  BOOST_TEST(a.size() == 7u + 22u);
  BOOST_TEST(a.rfind("_INBOX.", 0) == 0u);
  BOOST_TEST(is_base62(std::string_view(a).substr(7)));
  BOOST_TEST(a != b);
  const auto c = new_inbox("_SVC.orders");
  BOOST_TEST(c.size() == 11u + 1u + 22u);
  BOOST_TEST(c.rfind("_SVC.orders.", 0) == 0u);
  BOOST_TEST(is_base62(std::string_view(c).substr(12)));
}

BOOST_AUTO_TEST_SUITE_END()
