// Every JSON decoder of jetstream.hpp on arbitrary bytes: no crash, no exception, errors only of the expected
// kinds, the pub ack fast path agreeing with the full parse, and stream configs surviving encode -> decode.
// Every prefix of the input (up to max_prefix_input bytes), each in a buffer of its own exact size so that a
// read past the end of a cut document is caught, goes through the publish ack decoders and extract_api_error:
// the code that scans the bytes by hand (pub_ack_scan.cpp) and the full parse it must agree with. (The other
// decoders parse with Boost.JSON first; all of them on every prefix would make each run hundreds of times
// slower.)
#include <natsbus/protocol/jetstream.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace natsbus::protocol::detail {
// Test hooks defined in jetstream.cpp: the two halves of decode_pub_ack.
bool decode_pub_ack_fast(std::string_view text, pub_ack& out, api_error& err);
error_code decode_pub_ack_full(std::string_view text, pub_ack& out, api_error& err);
}  // namespace natsbus::protocol::detail

namespace {

using namespace natsbus;
namespace np = natsbus::protocol;

constexpr std::size_t max_prefix_input = 4096;

void check(bool ok) {
  if (!ok) std::abort();
}

// A decoder fails with invalid_json, or, for API responses, with the JetStream error the response carries.
void expected_error(const error_code& ec, bool response) {
  if (!ec || ec == make_error_code(error::invalid_json)) return;
  check(response && (ec.category() == jetstream_category() || ec == make_error_code(error::server_error)));
}

consumer_config normalized(consumer_config c) {
  for (std::int64_t* v : {&c.max_deliver, &c.max_ack_pending, &c.max_waiting}) {
    if (*v <= 0) *v = -1;
  }
  if (c.num_replicas < 0) c.num_replicas = 0;
  return c;
}

bool same(const pub_ack& a, const pub_ack& b) {
  return a.stream == b.stream && a.seq == b.seq && a.duplicate == b.duplicate && a.domain == b.domain;
}

bool same(const api_error& a, const api_error& b) {
  return a.code == b.code && a.err_code == b.err_code && a.description == b.description;
}

void check_decoders(std::string_view text) {
  server_info info;
  expected_error(np::decode(text, info), false);

  stream_config sc;
  if (const error_code ec = np::decode(text, sc); !ec) {
    stream_config back;
    check(!np::decode(np::encode(sc), back));
    check(back == sc);
  } else {
    expected_error(ec, false);
  }

  stream_info si;
  expected_error(np::decode(text, si), true);

  consumer_config cc;
  if (const error_code ec = np::decode(text, cc); !ec) {
    // The request body's config decodes to the same consumer, up to limits <= 0 that are sent as absent.
    const boost::json::value body = boost::json::parse(np::encode_consumer_create("S", cc));
    check(body.at("stream_name").as_string() == "S");
    consumer_config back;
    check(!np::decode(boost::json::serialize(body.at("config")), back));
    check(normalized(back) == normalized(cc));
  } else {
    expected_error(ec, false);
  }

  consumer_info ci;
  expected_error(np::decode(text, ci), true);
  account_info ai;
  expected_error(np::decode(text, ai), true);
  stored_message sm;
  expected_error(np::decode(text, sm), true);

  std::vector<std::string> names;
  page_info page;
  expected_error(np::decode_names(text, "streams", names, page), true);
  expected_error(np::decode_names(text, "consumers", names, page), true);
  std::vector<stream_info> streams;
  expected_error(np::decode_stream_list(text, streams, page), true);
  std::vector<consumer_info> consumers;
  expected_error(np::decode_consumer_list(text, consumers, page), true);
}

void check_pub_ack(std::string_view text) {
  api_error err;
  error_code ec;
  const bool has_error = np::extract_api_error(text, err, ec);
  check(!has_error || !ec);
  expected_error(ec, false);

  // Publish acks: whatever the fast path accepts, the full parse accepts with the same result.
  pub_ack fast, full, ack;
  api_error fast_err, full_err, ack_err;
  const bool took_fast = np::detail::decode_pub_ack_fast(text, fast, fast_err);
  const error_code full_ec = np::detail::decode_pub_ack_full(text, full, full_err);
  const error_code ack_ec = np::decode_pub_ack(text, ack, ack_err);
  expected_error(full_ec, false);
  check(ack_ec == full_ec);
  if (took_fast) {
    check(!full_ec);
    check(same(fast, full) && same(fast_err, full_err));
  }
  if (!full_ec) {
    check(same(ack, full) && same(ack_err, full_err));
    if (!has_error) check(full_err.code == 0 && full_err.err_code == 0 && full_err.description.empty());
  }
  // An ack carrying an error object is exactly what extract_api_error finds.
  if (has_error) check(!full_ec && same(full_err, err));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_decoders(text);
  check_pub_ack(text);
  if (size > max_prefix_input) return 0;
  for (std::size_t n = 0; n < size; ++n) {
    std::vector<char> prefix(data, data + n);
    check_pub_ack(std::string_view(prefix.data(), n));
  }
  return 0;
}
