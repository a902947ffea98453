#include "shared/security/http_token.h"

#include <sodium.h>
#include <zmq.h>

#include <array>
#include <charconv>

namespace rs::security {
namespace {

using Key32 = std::array<unsigned char, 32>;
constexpr std::string_view kPrefix = "rs1_";
constexpr std::string_view kContext = "rainstorm http token v1";

bool DecodeZ85(const std::string& z85, Key32* out) {
  return z85.size() == 40 && zmq_z85_decode(out->data(), z85.c_str()) != nullptr;
}

std::string EncodeZ85(const Key32& raw) {
  char text[41];
  zmq_z85_encode(text, raw.data(), raw.size());
  return text;
}

std::string Hex(const unsigned char* p, size_t n) {
  std::string out(2 * n + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

bool FromHex(std::string_view hex, Key32* out) {
  size_t len = 0;
  return hex.size() == 64 &&
         sodium_hex2bin(out->data(), out->size(), hex.data(), hex.size(), nullptr, &len, nullptr) ==
             0 &&
         len == out->size();
}

// The MAC key: a hash of the Curve25519 shared secret (as crypto_box does, never the raw
// point) and of what it is for.
bool MacKey(const Key32& secret, const Key32& peer_public, Key32* key) {
  Key32 shared;
  if (crypto_scalarmult(shared.data(), secret.data(), peer_public.data()) != 0) return false;
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, key->size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kContext.data()),
                            kContext.size());
  crypto_generichash_update(&st, shared.data(), shared.size());
  crypto_generichash_final(&st, key->data(), key->size());
  sodium_memzero(shared.data(), shared.size());
  return true;
}

Key32 Mac(const Key32& key, std::string_view signed_part) {
  Key32 mac;
  crypto_auth_hmacsha256(mac.data(), reinterpret_cast<const unsigned char*>(signed_part.data()),
                         signed_part.size(), key.data());
  return mac;
}

Status Refused(const std::string& why) { return Status::PermissionDenied("token refused: " + why); }

}  // namespace

Result<std::string> MakeHttpToken(const KeyPair& client, const std::string& cluster_public,
                                  uint64_t expires_s) {
  if (sodium_init() < 0) return Status::Internal("libsodium did not initialise");
  Key32 secret, pub, cluster;
  if (!DecodeZ85(client.secret_key, &secret) || !DecodeZ85(client.public_key, &pub) ||
      !DecodeZ85(cluster_public, &cluster)) {
    return Status::InvalidArgument("a key is not 40 characters of Z85");
  }
  Key32 key;
  if (!MacKey(secret, cluster, &key)) return Status::InvalidArgument("the cluster key is unusable");
  std::string signed_part =
      std::string(kPrefix) + Hex(pub.data(), pub.size()) + "_" + std::to_string(expires_s);
  Key32 mac = Mac(key, signed_part);
  sodium_memzero(secret.data(), secret.size());
  sodium_memzero(key.data(), key.size());
  return signed_part + "_" + Hex(mac.data(), mac.size());
}

Result<HttpTokenClaims> CheckHttpToken(std::string_view token, const std::string& cluster_secret,
                                       const Keyring& keyring, uint64_t now_s) {
  if (sodium_init() < 0) return Status::Internal("libsodium did not initialise");
  // rs1_ + 64 hex + _ + digits + _ + 64 hex
  if (token.size() > 200 || token.substr(0, kPrefix.size()) != kPrefix) {
    return Refused("not a RainStorm token (rs1_...)");
  }
  std::string_view rest = token.substr(kPrefix.size());
  size_t a = rest.find('_');
  size_t b = a == std::string_view::npos ? a : rest.find('_', a + 1);
  if (b == std::string_view::npos) return Refused("malformed");
  Key32 pub, mac;
  uint64_t expires = 0;
  std::string_view exp_text = rest.substr(a + 1, b - a - 1);
  auto [end, ec] = std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), expires);
  if (!FromHex(rest.substr(0, a), &pub) || !FromHex(rest.substr(b + 1), &mac) ||
      ec != std::errc() || end != exp_text.data() + exp_text.size() || exp_text.empty()) {
    return Refused("malformed");
  }
  Key32 secret, key;
  if (!DecodeZ85(cluster_secret, &secret)) return Status::Internal("the cluster key is unusable");
  bool keyed = MacKey(secret, pub, &key);
  sodium_memzero(secret.data(), secret.size());
  if (!keyed) return Refused("its key is unusable");
  Key32 want = Mac(key, token.substr(0, kPrefix.size() + b));
  sodium_memzero(key.data(), key.size());
  if (sodium_memcmp(want.data(), mac.data(), mac.size()) != 0) {
    return Refused("it was not made with a key of this cluster");
  }
  if (expires <= now_s) return Refused("expired");
  HttpTokenClaims c;
  c.public_key = EncodeZ85(pub);
  c.expires_s = expires;
  c.role = keyring.RoleOf(c.public_key);
  if (c.role != Role::kRead && c.role != Role::kAdmin) {
    return Refused("its key is not an active client key on the keyring");
  }
  return c;
}

}  // namespace rs::security
