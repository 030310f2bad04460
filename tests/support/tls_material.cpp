#include "tls_material.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace natsbus::test {
namespace {

template <auto Free>
struct deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509_free>>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, deleter<X509_EXTENSION_free>>;
using bn_ptr = std::unique_ptr<BIGNUM, deleter<BN_free>>;
struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

// Throws with the text of OpenSSL's error queue (emptied on the way), so a failing test says what broke.
[[noreturn]] void fail(const std::string& what) {
  std::string text = "tls_material: " + what;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += "; ";
    text += buf;
  }
  throw std::runtime_error(text);
}

void check(int ok, const char* what) {
  if (ok != 1) fail(what);
}

pkey_ptr make_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  if (!key) fail("EVP_EC_gen(P-256)");
  return key;
}

enum class kind { ca, server, client };

struct spec {
  std::string cn;
  kind what = kind::server;
  std::string san;            // subjectAltName value, e.g. "DNS:localhost,IP:127.0.0.1"; empty: none
  long valid_from_s = -3600;  // relative to now; an hour back, so clocks a little apart still agree
  long valid_to_s = 7 * 24 * 3600;
};

void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) fail("extension " + std::string(OBJ_nid2sn(nid)) + " = " + value);
  check(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

// A certificate for `key`, signed by issuer_key; issuer null means self-signed (a CA's own certificate).
x509_ptr make_cert(const spec& s, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  x509_ptr cert(X509_new());
  if (!cert) fail("X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");

  // Random serials: two tls_material objects in one process make CAs with the same name, and a verifier that
  // caches by issuer and serial must not mix their leaves up.
  bn_ptr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) fail("BN_rand");
  if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) fail("BN_to_ASN1_INTEGER");

  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), s.valid_from_s) ||
      !X509_gmtime_adj(X509_getm_notAfter(cert.get()), s.valid_to_s))
    fail("X509_gmtime_adj");

  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("natsbus tests"), -1, -1, 0),
        "subject O");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0),
        "subject CN");
  X509* signer = issuer ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)), "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), key), "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, signer, cert.get(), nullptr, nullptr, 0);
  add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  // The key identifier of the signer: it must come after this certificate's own one when self-signed.
  add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  switch (s.what) {
    case kind::ca:
      add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
      add_ext(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case kind::server:
    case kind::client:
      add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
      // ECDHE with an ECDSA key signs; nothing is enciphered with the certificate's key.
      add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
      add_ext(cert.get(), &ctx, NID_ext_key_usage, s.what == kind::server ? "serverAuth" : "clientAuth");
      break;
  }
  if (!s.san.empty()) add_ext(cert.get(), &ctx, NID_subject_alt_name, s.san);

  if (X509_sign(cert.get(), issuer ? issuer_key : key, EVP_sha256()) <= 0) fail("X509_sign " + s.cn);
  return cert;
}

file_ptr open_file(const std::string& path) {
  file_ptr f(std::fopen(path.c_str(), "w"));
  if (!f) fail("cannot write " + path);
  return f;
}

void write_cert(const std::string& path, X509* cert) {
  auto f = open_file(path);
  check(PEM_write_X509(f.get(), cert), "PEM_write_X509");
}

void write_key(const std::string& path, EVP_PKEY* key) {
  auto f = open_file(path);
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);  // as a real key file would be
  check(PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr), "PEM_write_PrivateKey");
}

struct authority {
  pkey_ptr key;
  x509_ptr cert;
};

authority make_ca(const std::string& cn) {
  authority a;
  a.key = make_key();
  a.cert = make_cert({.cn = cn, .what = kind::ca, .valid_to_s = 30 * 24 * 3600}, a.key.get(), nullptr, nullptr);
  return a;
}

// A fresh key and its certificate signed by `ca`, both written.
void make_leaf(const std::string& cert_path, const std::string& key_path, const spec& s, const authority& ca) {
  pkey_ptr key = make_key();
  x509_ptr cert = make_cert(s, key.get(), ca.cert.get(), ca.key.get());
  write_cert(cert_path, cert.get());
  write_key(key_path, key.get());
}

}  // namespace

tls_material::tls_material() {
  std::string tmpl = (fs::temp_directory_path() / "natsbus-tls-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  dir_ = tmpl;
  try {
    const std::string both_ips = "DNS:localhost,IP:127.0.0.1,IP:::1";
    authority ca = make_ca("natsbus test CA");
    authority foreign = make_ca("natsbus foreign test CA");
    write_cert(ca_cert(), ca.cert.get());
    write_cert(foreign_ca_cert(), foreign.cert.get());

    make_leaf(server_cert(), server_key(), {.cn = "localhost", .san = both_ips}, ca);
    make_leaf(server_dns_only_cert(), server_dns_only_key(), {.cn = "localhost", .san = "DNS:localhost"}, ca);
    make_leaf(server_expired_cert(), server_expired_key(),
              {.cn = "localhost", .san = both_ips, .valid_from_s = -2 * 24 * 3600, .valid_to_s = -24 * 3600}, ca);
    make_leaf(server_foreign_cert(), server_foreign_key(), {.cn = "localhost", .san = both_ips}, foreign);
    make_leaf(client_cert(), client_key(), {.cn = "natsbus-test-client", .what = kind::client}, ca);
    make_leaf(foreign_client_cert(), foreign_client_key(),
              {.cn = "natsbus-foreign-client", .what = kind::client}, foreign);

    // Armour that looks like a certificate, so a loader gets past "no PEM found" and fails on the contents.
    std::ofstream(garbage_pem()) << "-----BEGIN CERTIFICATE-----\n"
                                    "this is not a certificate, nor base64 DER!\n"
                                    "-----END CERTIFICATE-----\n";
    std::ofstream{empty_file()};
  } catch (...) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    throw;
  }
}

tls_material::~tls_material() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string tls_material::nats_tls_block(const std::string& cert, const std::string& key, bool verify_clients,
                                         int timeout_s) const {
  std::string b = "tls {\n";
  b += "  cert_file: \"" + cert + "\"\n";
  b += "  key_file: \"" + key + "\"\n";
  if (verify_clients) {
    b += "  ca_file: \"" + ca_cert() + "\"\n";
    b += "  verify: true\n";
  }
  b += "  timeout: " + std::to_string(timeout_s) + "\n";
  b += "}\n";
  return b;
}

}  // namespace natsbus::test
