// Keys of a RainStorm cluster (CurveZMQ, Curve25519; keys are Z85 text, 40 characters) and the
// keyring: which public keys may talk to a node, and in what role. Pure values and file IO; no
// sockets. Formats: shared/security/README.md.
//
// Who holds what:
//   - every node: the cluster key (one secret shared by all nodes: it proves to a caller that it
//     reached a node of this cluster), its own member key, and the keyring;
//   - every client (rainctl, rainsource): its own client key file, which also names the cluster's
//     public key to trust.
// Thread-compatible values; the functions are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"

namespace rs::security {

// What a key may do. Ordered: a higher role may do everything a lower one may.
enum class Role : uint8_t {
  kNone = 0,    // not on the keyring, or revoked: refused
  kRead = 1,    // client: list, get, cat, grep, status
  kAdmin = 2,   // client: everything a client can do (writes, jobs, keys, config)
  kMember = 3,  // a node of the cluster
};
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};
Result<KeyPair> GenerateKeyPair();
bool IsKeyText(std::string_view z85);  // 40 characters of the Z85 alphabet that decode

// A key file: one identity (`kind` "cluster", "member" or a client role), its key pair, and for
// members and clients the cluster's public key. Text, `name = value` lines, mode 0600.
struct KeyFile {
  std::string kind;  // "cluster", "member", "admin", "read"
  std::string name;
  KeyPair keys;
  std::string cluster_public;  // the server key to trust (members and clients)
};
// Writes `file` at `path` with mode 0600 (created exclusively unless `overwrite`).
Status WriteKeyFile(const std::string& path, const KeyFile& file, bool overwrite = false);
// Reads a key file; FailedPrecondition when it is readable or writable by group or others.
Result<KeyFile> ReadKeyFile(const std::string& path);

// One keyring entry. `stamp` orders changes to the same key (a later stamp wins; at equal
// stamps a revocation wins), so keyrings merge the same way in any order.
struct KeyEntry {
  std::string public_key;
  Role role = Role::kNone;  // kMember, kAdmin or kRead
  bool revoked = false;
  uint64_t stamp = 0;
  std::string name;
};

class Keyring {
 public:
  // Parses the text form; a bad line is an error naming its number.
  static Result<Keyring> Parse(std::string_view text);
  static Result<Keyring> Load(const std::string& path);
  std::string Serialize() const;
  // Writes atomically (temp file + rename), mode 0644 (public keys only).
  Status Save(const std::string& path) const;

  // The role of an active key; kNone when unknown or revoked.
  Role RoleOf(const std::string& public_key) const;
  // Adds or replaces an entry with stamp max(now_ms, last stamp of the key + 1).
  void Put(const std::string& public_key, Role role, const std::string& name, uint64_t now_ms);
  // Revokes a key given by its public key or its name; false when neither is on the ring.
  bool Revoke(const std::string& key_or_name, uint64_t now_ms);
  // Takes every entry of `other` that is newer than ours; true when anything changed.
  bool Merge(const Keyring& other);

  const std::map<std::string, KeyEntry>& entries() const { return entries_; }

 private:
  std::map<std::string, KeyEntry> entries_;  // by public key
};

// Makes a new cluster's keys in `dir` (mode 0700): cluster.key, node.key (a member key: every
// node of a local cluster may share it), admin.key (a client) and a keyring listing the last two.
// AlreadyExists when dir holds a cluster key and not `overwrite`.
Status MakeClusterKeys(const std::string& dir, uint64_t now_ms, bool overwrite = false);

}  // namespace rs::security
