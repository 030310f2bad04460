#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/subject.hpp>

#include <string>
#include <vector>

using namespace natsbus::protocol;

BOOST_AUTO_TEST_SUITE(subject_tests)

BOOST_AUTO_TEST_CASE(publish_subjects) {
  for (std::string_view s : {"a", "foo.bar", "$JS.API.STREAM.INFO.S", "_INBOX.abc.1", "a-b_c.d~e", "caf\xc3\xa9.x",
                             "a*b", "a>.b", "x.*y.>z", "1.2.3"}) {
    BOOST_TEST(is_valid_publish_subject(s), s);
  }
  const std::vector<std::string> bad = {"", ".", "..", "a.", ".a", "a..b", "a b", " a", "a ", "a\tb", "a\rb",
                                        "a\nb", std::string("a\0b", 3), "a\x01", "a\x7f", "*", ">", "a.*", "a.>",
                                        "*.a", "a.*.b", ">.a"};
  for (const auto& s : bad) BOOST_TEST(!is_valid_publish_subject(s), s);
}

BOOST_AUTO_TEST_CASE(subscription_patterns) {
  for (std::string_view s : {"a", "foo.bar", "*", ">", "a.*", "a.>", "*.*", "*.>", "a.*.b.>", "$JS.ACK.>", "a*b.c>"}) {
    BOOST_TEST(is_valid_subscription_subject(s), s);
  }
  for (std::string_view s : {"", ".", "a.", ".a", "a..b", "a.>.b", ">.a", ">.>", "a b", "a.\t", "a\x7f.b", "*."}) {
    BOOST_TEST(!is_valid_subscription_subject(s), s);
  }
}

BOOST_AUTO_TEST_CASE(queue_groups) {
  for (std::string_view q : {"q", "workers", "a.b", "a-b_c", "*", ">"}) BOOST_TEST(is_valid_queue_group(q), q);
  for (std::string_view q : {"", " ", "a b", "a\tb", "a\r", "a\n", "a\x7f", "\x01"}) {
    BOOST_TEST(!is_valid_queue_group(q), q);
  }
}

BOOST_AUTO_TEST_CASE(matching) {
  struct row {
    std::string_view pattern, subject;
    bool match;
  };
  const row rows[] = {
      {"foo", "foo", true},          {"foo", "bar", false},         {"foo", "foo.bar", false},
      {"foo.bar", "foo", false},     {"*", "foo", true},            {"*", "foo.bar", false},
      {"foo.*", "foo.bar", true},    {"foo.*", "foo", false},       {"foo.*", "foo.bar.baz", false},
      {"*.bar", "foo.bar", true},    {"*.bar", "foo.baz", false},   {">", "foo", true},
      {">", "foo.bar.baz", true},    {"foo.>", "foo", false},       {"foo.>", "foo.bar", true},
      {"foo.>", "foo.bar.baz", true}, {"foo.*.>", "foo.a.b", true}, {"foo.*.>", "foo.a", false},
      {"foo.*.baz", "foo.x.baz", true}, {"a*b", "a*b", true},       {"a*b", "axb", false},
      {"", "", false},               {"foo", "", false},            {"", "foo", false},
      {"a.>.b", "a.x.b", false},
  };
  for (const auto& r : rows) {
    BOOST_TEST(subject_matches(r.pattern, r.subject) == r.match, r.pattern << " ~ " << r.subject);
  }
}

BOOST_AUTO_TEST_SUITE_END()
