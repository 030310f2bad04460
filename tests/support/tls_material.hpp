// Test support: TLS certificates and keys made at run time (OpenSSL 3, EC P-256, SHA-256 signatures), written as
// PEM files into a fresh temporary directory that the destructor removes. Nothing is checked in, so nothing
// expires in the repository and every test run has its own CA.
//
// Two unrelated CAs: "the CA" (trusted by the tests) and "the foreign CA" (trusted by nobody), with these leaves:
//  - server_*:            signed by the CA, serverAuth, SAN DNS:localhost, IP:127.0.0.1, IP:::1
//  - server_dns_only_*:   signed by the CA, serverAuth, SAN DNS:localhost only (so 127.0.0.1 does not match)
//  - server_expired_*:    signed by the CA, serverAuth, SAN as server_*, notAfter a day in the past
//  - server_foreign_*:    signed by the foreign CA, serverAuth, SAN as server_*
//  - client_*:            signed by the CA, clientAuth, CN natsbus-test-client
//  - foreign_client_*:    signed by the foreign CA, clientAuth
// Keys are unencrypted PKCS#8 ("BEGIN PRIVATE KEY"); certificate files hold the leaf only (no chain).
// garbage_pem() is PEM armour around bytes that are not base64 DER; empty_file() is zero bytes.
#pragma once

#include <string>

namespace natsbus::test {

class tls_material {
 public:
  tls_material();  // throws std::runtime_error (with OpenSSL's error text) when anything fails
  ~tls_material();
  tls_material(const tls_material&) = delete;
  tls_material& operator=(const tls_material&) = delete;

  [[nodiscard]] std::string dir() const { return dir_; }

  [[nodiscard]] std::string ca_cert() const { return file("ca.pem"); }
  [[nodiscard]] std::string server_cert() const { return file("server.pem"); }
  [[nodiscard]] std::string server_key() const { return file("server-key.pem"); }
  [[nodiscard]] std::string server_dns_only_cert() const { return file("server-dns-only.pem"); }
  [[nodiscard]] std::string server_dns_only_key() const { return file("server-dns-only-key.pem"); }
  [[nodiscard]] std::string server_expired_cert() const { return file("server-expired.pem"); }
  [[nodiscard]] std::string server_expired_key() const { return file("server-expired-key.pem"); }
  [[nodiscard]] std::string server_foreign_cert() const { return file("server-foreign.pem"); }
  [[nodiscard]] std::string server_foreign_key() const { return file("server-foreign-key.pem"); }
  [[nodiscard]] std::string client_cert() const { return file("client.pem"); }
  [[nodiscard]] std::string client_key() const { return file("client-key.pem"); }
  [[nodiscard]] std::string foreign_ca_cert() const { return file("foreign-ca.pem"); }
  [[nodiscard]] std::string foreign_client_cert() const { return file("foreign-client.pem"); }
  [[nodiscard]] std::string foreign_client_key() const { return file("foreign-client-key.pem"); }
  [[nodiscard]] std::string garbage_pem() const { return file("garbage.pem"); }
  [[nodiscard]] std::string empty_file() const { return file("empty.pem"); }

  // A nats-server config block for the client port:
  //   tls { cert_file: "<cert>", key_file: "<key>", ca_file: "<ca_cert()>", verify: true, timeout: 2 }
  // ca_file and verify only when verify_clients (then clients must present a certificate signed by the CA).
  // timeout_s bounds the server's TLS handshake; set explicitly so a test on a busy machine does not depend on
  // the server version's default.
  [[nodiscard]] std::string nats_tls_block(const std::string& cert, const std::string& key, bool verify_clients,
                                           int timeout_s = 2) const;

 private:
  [[nodiscard]] std::string file(const char* name) const { return dir_ + "/" + name; }
  std::string dir_;
};

}  // namespace natsbus::test
