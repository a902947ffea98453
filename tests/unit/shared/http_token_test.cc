// HTTP tokens (shared/security/http_token.h): made from a client key, checked with the cluster
// key against the keyring.
#include "shared/security/http_token.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace rs::security {
namespace {

struct Keys {
  KeyPair cluster, admin, reader, member, stranger;
  Keyring ring;
  Keys() {
    for (KeyPair* k : {&cluster, &admin, &reader, &member, &stranger}) {
      auto g = GenerateKeyPair();
      REQUIRE(g.ok());
      *k = *g;
    }
    ring.Put(admin.public_key, Role::kAdmin, "admin", 1);
    ring.Put(reader.public_key, Role::kRead, "reader", 1);
    ring.Put(member.public_key, Role::kMember, "node", 1);
  }
  std::string Token(const KeyPair& k, uint64_t expires) {
    auto t = MakeHttpToken(k, cluster.public_key, expires);
    REQUIRE(t.ok());
    return *t;
  }
};

TEST_CASE("a client's token carries its key's role until it expires", "[security][token]") {
  Keys k;
  std::string t = k.Token(k.admin, 2000);
  CHECK(t.rfind("rs1_", 0) == 0);
  CHECK(t.find_first_not_of("0123456789abcdefrs_") == std::string::npos);
  auto c = CheckHttpToken(t, k.cluster.secret_key, k.ring, 1000);
  REQUIRE(c.ok());
  CHECK(c->role == Role::kAdmin);
  CHECK(c->public_key == k.admin.public_key);
  CHECK(c->expires_s == 2000);
  auto r = CheckHttpToken(k.Token(k.reader, 2000), k.cluster.secret_key, k.ring, 1000);
  REQUIRE(r.ok());
  CHECK(r->role == Role::kRead);
  // Expired.
  auto late = CheckHttpToken(t, k.cluster.secret_key, k.ring, 2000);
  REQUIRE_FALSE(late.ok());
  CHECK(late.status().message().find("expired") != std::string::npos);
}

TEST_CASE("tokens are refused when forged, altered, foreign, revoked or not a client's",
          "[security][token]") {
  Keys k;
  std::string t = k.Token(k.admin, 2000);
  auto refused = [&](const std::string& token, const std::string& why) {
    auto c = CheckHttpToken(token, k.cluster.secret_key, k.ring, 1000);
    INFO(token << " -> " << (c.ok() ? std::string("accepted") : c.status().ToString()));
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == StatusCode::kPermissionDenied);
    CHECK(c.status().message().find(why) != std::string::npos);
  };
  // A later expiry with the old MAC.
  std::string longer = t;
  longer.replace(longer.find("_2000_"), 6, "_9000_");
  refused(longer, "not made with a key of this cluster");
  // One MAC digit changed.
  std::string flipped = t;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  refused(flipped, "not made with a key of this cluster");
  // A stranger's key (not on the keyring), and another cluster's token.
  refused(k.Token(k.stranger, 2000), "not an active client key");
  auto other = GenerateKeyPair();
  REQUIRE(other.ok());
  auto foreign = MakeHttpToken(k.admin, other->public_key, 2000);
  REQUIRE(foreign.ok());
  refused(*foreign, "not made with a key of this cluster");
  // A member key is no client's.
  refused(k.Token(k.member, 2000), "not an active client key");
  // Revoked: every token of the key stops at once.
  k.ring.Revoke("admin", 2);
  refused(t, "not an active client key");
  // Malformed.
  const std::vector<std::string> malformed = {
      "",
      "rs1_",
      "Bearer x",
      "rs1_zz_1_zz",
      "rs1_" + std::string(64, 'a') + "__" + std::string(64, 'a'),
      std::string(500, 'a')};
  for (const std::string& bad : malformed) {
    auto c = CheckHttpToken(bad, k.cluster.secret_key, k.ring, 1000);
    CHECK_FALSE(c.ok());
  }
  CHECK_FALSE(MakeHttpToken({"short", "short"}, k.cluster.public_key, 1).ok());
}

}  // namespace
}  // namespace rs::security
