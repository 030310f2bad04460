// Internal: what CONNECT carries to authenticate with an NKey or a user JWT, made afresh for every connect (files
// read again, callbacks asked again), so that rotated keys and renewed JWTs take effect on the next reconnect.
#pragma once

#include <natsbus/error.hpp>
#include <natsbus/options.hpp>
#include <natsbus/protocol/encoder.hpp>

#include <string>
#include <string_view>

namespace natsbus::detail {

// The options ask for at most one of: an NKey seed (inline or file), a public key with a signer, a .creds file,
// a JWT callback (which needs a signer or a seed). A bad combination is error::invalid_config, said in `problem`.
error_code check_auth_options(const connection_options& o, std::string& problem);

// Fills f.nkey / f.jwt and f.sig for the server's `nonce`. Nothing to do without NKey or JWT options. A failure
// (unreadable file, bad seed, bad .creds, a callback's error) is a typed error with `problem` naming the file and
// what is wrong, never a secret; the caller then sends nothing.
error_code sign_in(const connection_options& o, std::string_view nonce, protocol::connect_fields& f,
                   std::string& problem);

// Overwrites a string that held secrets (a CONNECT line, file contents), then clears it.
void wipe(std::string& s) noexcept;

}  // namespace natsbus::detail
