// Envelope headers: the rules each field follows, encoding, decoding, RFC 3339 times.
#define BOOST_TEST_DYN_LINK
#include <boost/test/unit_test.hpp>

#include <natsbus/protocol/envelope.hpp>

using namespace natsbus::protocol;
using natsbus::error;

namespace {
envelope_fields good() {
  envelope_fields e;
  e.event_id = "evt-1";
  e.event_type = "order.created";
  e.version = 2;
  e.time = "2026-12-04T21:50:00.123Z";
  e.aggregate_id = "order-7";
  e.trace_id = "4bf92f3577b34da6";
  e.tenant = "acme";
  return e;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(envelope)

BOOST_AUTO_TEST_CASE(round_trip) {
  natsbus::headers h;
  std::string why;
  BOOST_REQUIRE(!encode_envelope(good(), h, why));
  BOOST_TEST(*h.get(envelope_id_header) == "evt-1");
  BOOST_TEST(*h.get(envelope_version_header) == "2");
  BOOST_TEST(!h.contains(envelope_correlation_header));  // empty optional fields are left out
  envelope_fields back;
  BOOST_REQUIRE(!decode_envelope(h, back, why));
  BOOST_TEST(back.event_id == "evt-1");
  BOOST_TEST(back.event_type == "order.created");
  BOOST_TEST(back.version == 2u);
  BOOST_TEST(back.time == "2026-12-04T21:50:00.123Z");
  BOOST_TEST(back.aggregate_id == "order-7");
  BOOST_TEST(back.trace_id == "4bf92f3577b34da6");
  BOOST_TEST(back.tenant == "acme");
}

BOOST_AUTO_TEST_CASE(each_rule_names_its_field) {
  std::string why;
  auto e = good();
  e.event_id.clear();
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
  BOOST_TEST(why.find("event_id") == 0u);
  e = good();
  e.event_type = "has space";
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
  BOOST_TEST(why.find("event_type") == 0u);
  e = good();
  e.version = 0;
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
  BOOST_TEST(why.find("version") == 0u);
  e = good();
  e.time = "yesterday";
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
  BOOST_TEST(why.find("time") == 0u);
  e = good();
  e.tenant = std::string(300, 'x');
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
  BOOST_TEST(why.find("tenant") == 0u);
  e = good();
  e.correlation_id = "bad\x01";
  BOOST_TEST(check_envelope(e, why) == error::invalid_argument);
}

BOOST_AUTO_TEST_CASE(decoding_refuses_missing_and_broken_fields) {
  std::string why;
  envelope_fields out;
  natsbus::headers none;
  BOOST_TEST(decode_envelope(none, out, why) == error::invalid_argument);
  natsbus::headers h;
  BOOST_REQUIRE(!encode_envelope(good(), h, why));
  h.set(envelope_version_header, "2x");
  BOOST_TEST(decode_envelope(h, out, why) == error::invalid_argument);
  BOOST_TEST(why.find("version") == 0u);
  h.set(envelope_version_header, "99999999999");  // out of range
  BOOST_TEST(decode_envelope(h, out, why) == error::invalid_argument);
  h.set(envelope_version_header, "3");
  h.erase(envelope_type_header);
  BOOST_TEST(decode_envelope(h, out, why) == error::invalid_argument);
  BOOST_TEST(why.find("event_type") == 0u);
}

BOOST_AUTO_TEST_CASE(rfc3339_times) {
  for (auto ok : {"2026-12-04T21:50:00Z", "2026-12-04t21:50:00.5z", "2024-02-29T00:00:00+01:00",
                  "2026-12-31T23:59:60-05:30", "2026-01-01T00:00:00.123456789Z"})
    BOOST_TEST(is_rfc3339(ok), ok);
  for (auto bad : {"", "2026-12-04", "2026-12-04 21:50:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                   "2026-04-31T00:00:00Z", "2026-12-04T24:00:00Z", "2026-12-04T21:60:00Z", "2026-12-04T21:50:00",
                   "2026-12-04T21:50:00.Z", "2026-12-04T21:50:00+1:00", "2026-12-04T21:50:00Zjunk",
                   "2026-12-04T21:50:00+24:00", "x026-12-04T21:50:00Z"})
    BOOST_TEST(!is_rfc3339(bad), bad);
}

BOOST_AUTO_TEST_SUITE_END()
