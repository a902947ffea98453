// The node's side of transport security: reads <keys_dir>/{cluster.key,node.key,keyring} and
// installs CurveZMQ (shared/transport/security.h) before the node makes any socket.
#include <filesystem>

#include "daemon/node.h"
#include "shared/logging.h"
#include "shared/transport/security.h"

namespace rs {
namespace fs = std::filesystem;

Status InstallNodeSecurity(const NodeOptions& options) {
  transport::SecuritySettings s;
  s.node = true;
  if (options.insecure) {
    s.insecure = true;
    Logger("security")
        ->warn(
            "event=insecure message=\"--insecure: no keys; anyone who can reach this node's ports "
            "can read, change and run code on the cluster\"");
    return transport::InstallSecurity(std::move(s));
  }
  fs::path dir =
      options.keys_dir.empty() ? fs::path(options.data_dir) / "keys" : fs::path(options.keys_dir);
  auto hint = [&](const Status& st) {
    return Status::FailedPrecondition(
        st.message() + " (a node needs cluster.key, node.key and keyring in " + dir.string() +
        ": `rainctl keys init` makes them; `--insecure` runs without keys)");
  };
  auto cluster = security::ReadKeyFile((dir / "cluster.key").string());
  if (!cluster.ok()) return hint(cluster.status());
  auto self = security::ReadKeyFile((dir / "node.key").string());
  if (!self.ok()) return hint(self.status());
  if (cluster->kind != "cluster") {
    return Status::FailedPrecondition((dir / "cluster.key").string() + " holds a " + cluster->kind +
                                      " key, not the cluster key");
  }
  if (self->kind != "member") {
    return Status::FailedPrecondition((dir / "node.key").string() + " holds a " + self->kind +
                                      " key, not a member key");
  }
  s.self = self->keys;
  s.cluster_public = cluster->keys.public_key;
  s.cluster_secret = cluster->keys.secret_key;
  s.keyring_path = (dir / "keyring").string();
  if (!fs::exists(s.keyring_path)) return hint(Status::NotFound("no keyring " + s.keyring_path));
  Status st = transport::InstallSecurity(std::move(s));
  if (!st.ok()) return st;
  auto ring = transport::CurrentKeyring();
  if (ring->RoleOf(self->keys.public_key) != security::Role::kMember) {
    Logger("security")
        ->warn(
            "event=own_key_not_on_keyring key={} message=\"other nodes will "
            "refuse this node until its key is added (rainctl keys add)\"",
            self->keys.public_key);
  }
  Logger("security")
      ->info("event=curve_on keys_dir={} keyring_keys={}", dir.string(), ring->entries().size());
  return Status::Ok();
}

}  // namespace rs
