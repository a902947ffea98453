// The keyring and key files (shared/security/keys.h): parsing, merging in any order, stamps,
// revocations, and the refusal of a secret key file others can read.
#include "shared/security/keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace rs::security {
namespace {

std::string NewKey() {
  auto pair = GenerateKeyPair();
  REQUIRE(pair.ok());
  return pair->public_key;
}

TEST_CASE("a keyring survives its text form and names a bad line", "[keys]") {
  std::string a = NewKey(), b = NewKey();
  Keyring ring;
  ring.Put(a, Role::kMember, "node 1", 100);
  ring.Put(b, Role::kRead, "alice", 100);
  REQUIRE(ring.Revoke("alice", 150));
  auto back = Keyring::Parse(ring.Serialize());
  REQUIRE(back.ok());
  CHECK(back->Serialize() == ring.Serialize());
  CHECK(back->RoleOf(a) == Role::kMember);
  CHECK(back->RoleOf(b) == Role::kNone);  // revoked
  CHECK(back->entries().at(a).name == "node 1");

  auto bad = Keyring::Parse("# comment\nadmin active 1 " + a + " ok\nroot active 1 " + b + " x\n");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("line 3") != std::string::npos);
  CHECK_FALSE(Keyring::Parse("admin active 1 not-a-key x\n").ok());
  CHECK_FALSE(Keyring::Parse("admin maybe 1 " + a + " x\n").ok());
  CHECK_FALSE(Keyring::Parse("admin active -1 " + a + " x\n").ok());
}

TEST_CASE("keyrings merge to the same result in any order; a revocation is never undone",
          "[keys]") {
  std::string k = NewKey(), other = NewKey();
  Keyring added, revoked, readded, unrelated;
  added.Put(k, Role::kAdmin, "bob", 100);
  revoked = added;
  REQUIRE(revoked.Revoke(k, 200));
  readded = revoked;
  readded.Put(k, Role::kRead, "bob", 150);  // a later Put stamps past the revocation
  CHECK(readded.entries().at(k).stamp == 201);
  unrelated.Put(other, Role::kMember, "n2", 50);

  std::vector<const Keyring*> rings = {&added, &revoked, &unrelated};
  std::vector<int> order = {0, 1, 2};
  std::string first;
  do {
    Keyring m;
    for (int i : order) m.Merge(*rings[i]);
    if (first.empty()) first = m.Serialize();
    CHECK(m.Serialize() == first);
    CHECK(m.RoleOf(k) == Role::kNone);
    CHECK(m.RoleOf(other) == Role::kMember);
  } while (std::next_permutation(order.begin(), order.end()));

  // A revocation stamps past the entry it revokes; at equal stamps it wins too.
  Keyring x, y;
  x.Put(k, Role::kAdmin, "bob", 300);
  y = x;
  REQUIRE(y.Revoke(k, 0));  // stamp 301
  Keyring z = x;
  z.Merge(y);
  CHECK(z.RoleOf(k) == Role::kNone);
  CHECK_FALSE(y.Merge(x));  // nothing newer
  auto tie = Keyring::Parse("admin active 5 " + k + " a\nadmin revoked 5 " + k + " a\n");
  REQUIRE(tie.ok());
  CHECK(tie->RoleOf(k) == Role::kNone);
}

TEST_CASE("a secret key file must be private to its owner", "[keys]") {
  char tmpl[] = "/tmp/keys_test.XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::string dir = tmpl;
  REQUIRE(MakeClusterKeys(dir, 1000).ok());
  CHECK(MakeClusterKeys(dir, 1000).code() == StatusCode::kAlreadyExists);
  auto admin = ReadKeyFile(dir + "/admin.key");
  REQUIRE(admin.ok());
  auto cluster = ReadKeyFile(dir + "/cluster.key");
  REQUIRE(cluster.ok());
  CHECK(admin->kind == "admin");
  CHECK(admin->cluster_public == cluster->keys.public_key);
  auto ring = Keyring::Load(dir + "/keyring");
  REQUIRE(ring.ok());
  CHECK(ring->RoleOf(admin->keys.public_key) == Role::kAdmin);
  CHECK(ring->RoleOf(ReadKeyFile(dir + "/node.key")->keys.public_key) == Role::kMember);
  CHECK(ring->RoleOf(cluster->keys.public_key) == Role::kNone);  // the cluster key is no caller

  REQUIRE(::chmod((dir + "/admin.key").c_str(), 0640) == 0);
  auto loose = ReadKeyFile(dir + "/admin.key");
  REQUIRE_FALSE(loose.ok());
  CHECK(loose.status().code() == StatusCode::kFailedPrecondition);
  CHECK(loose.status().message().find("mode 0640") != std::string::npos);
  { std::ofstream(dir + "/junk.key") << "public = x\n"; }
  ::chmod((dir + "/junk.key").c_str(), 0600);
  CHECK(ReadKeyFile(dir + "/junk.key").status().code() == StatusCode::kCorruption);
  CHECK(ReadKeyFile(dir + "/missing.key").status().code() == StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rs::security

TEST_CASE("a made public key never starts with '-' (it is typed as a command-line argument)",
          "[keys]") {
  // 1 key in 85 would: `rainctl keys add read -KEY... NAME` then reads it as an option.
  for (int i = 0; i < 2000; ++i) {
    auto pair = rs::security::GenerateKeyPair();
    REQUIRE(pair.ok());
    REQUIRE(pair->public_key.size() == 40);
    CHECK(pair->public_key[0] != '-');
    CHECK(rs::security::IsKeyText(pair->public_key));
  }
}
