// HTTP tokens (the web console and /metrics off loopback, daemon/http/README.md): a bearer token
// a client makes from its own client key, which every node can check without a table of
// tokens. The token names the client's public key and an expiry, and carries an HMAC-SHA256 of
// both under a key only that client and the cluster's nodes can compute: the Curve25519 shared
// secret of the client's key pair and the cluster key pair (libsodium, the library under
// CurveZMQ). A node takes the role from its keyring, so a token has the role of its key, and
// revoking or removing the key voids every token made from it at once. Pure; thread-safe.
//
// Text: "rs1_" HEX(client public key, 32 bytes) "_" EXPIRY (Unix seconds, decimal) "_"
// HEX(HMAC, 32 bytes). Only [0-9a-z_], so it goes in a header or a URL as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shared/security/keys.h"
#include "shared/status.h"

namespace rs::security {

// The token of client key pair `client` (Z85) for the cluster whose public key is
// `cluster_public`, valid until `expires_s`.
Result<std::string> MakeHttpToken(const KeyPair& client, const std::string& cluster_public,
                                  uint64_t expires_s);

struct HttpTokenClaims {
  std::string public_key;  // Z85, as the keyring names it
  Role role = Role::kNone;
  uint64_t expires_s = 0;
};

// Checks `token` with the cluster's secret key: well formed, not expired at `now_s`, the MAC
// right, and the key active on `keyring` with a client role (read or admin). Unauthenticated
// with the reason otherwise (never which part of the MAC failed).
Result<HttpTokenClaims> CheckHttpToken(std::string_view token, const std::string& cluster_secret,
                                       const Keyring& keyring, uint64_t now_s);

}  // namespace rs::security
