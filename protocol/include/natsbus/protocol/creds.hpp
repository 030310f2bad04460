// The text of a NATS .creds file (what `nsc generate creds` writes): a user JWT and the user's NKey seed, each in
// an armored block,
//
//   -----BEGIN NATS USER JWT-----
//   eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJqdGkiOi...
//   ------END NATS USER JWT------
//   (comment text)
//   -----BEGIN USER NKEY SEED-----
//   SUAM...
//   ------END USER NKEY SEED------
//
// Parsed without I/O; the client reads the file and signs with the seed.
#pragma once

#include <natsbus/error.hpp>

#include <string>
#include <string_view>

namespace natsbus::protocol {

struct credentials {
  std::string jwt;
  std::string seed;  // secret: wiped on destruction

  credentials() = default;
  credentials(const credentials&) = default;
  credentials(credentials&&) noexcept = default;
  credentials& operator=(const credentials&) = default;
  credentials& operator=(credentials&&) noexcept = default;
  ~credentials();
};

// Parses and checks a .creds text. A marker line is a run of 3 or more '-', text, and 3 or more '-'; the text
// starts with BEGIN or END. The JWT block is the one whose BEGIN label ends in "JWT", the seed block the one whose
// label ends in "SEED"; other text around them is ignored. Lines may end in CRLF and carry spaces at either end;
// blank lines inside a block are skipped, and a block's other lines are joined. The JWT must be three non-empty
// base64url parts (the same alphabet and lengths Go's decoder takes; its claims are not read), and the seed a
// valid user seed.
//
// Errors: error::invalid_nkey_seed when the seed block's text is not a valid seed (bad base32, length, checksum,
// prefix); error::invalid_credentials for everything else (a missing block or END line, a malformed JWT, a seed of
// another key type). `problem` then says what is wrong in a few words, never quoting the file, so it is safe to log.
// On failure `out` is left empty (the seed wiped).
error_code parse_creds(std::string_view text, credentials& out, std::string& problem);

// Whether a JWT is three non-empty, dot-separated base64url parts (no padding).
[[nodiscard]] bool looks_like_jwt(std::string_view jwt) noexcept;

}  // namespace natsbus::protocol
