// rainctl keys: make a cluster's keys, and list, add or revoke keys, either in a keys directory
// (--dir: offline, on the machine that holds the keys; nodes sharing the directory pick a change
// up within a second) or on the running cluster (the node spreads it to every member).
//   rainctl keys init DIR                   cluster.key, node.key, admin.key and keyring
//   rainctl keys new ROLE NAME --dir DIR    NAME.key (role member, admin or read), on the keyring
//   rainctl keys list [--dir DIR]
//   rainctl keys add ROLE PUBLIC NAME [--dir DIR]
//   rainctl keys revoke KEY_OR_NAME [--dir DIR]
#include <cstdio>
#include <filesystem>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "shared/clock.h"
#include "shared/security/keys.h"

namespace rs::ctl {
namespace {
namespace fs = std::filesystem;
using security::KeyFile;
using security::Keyring;
using security::Role;

int Usage(const Context& ctx, const std::string& why) {
  return Fail(ctx, Status::InvalidArgument(why), kExitUsage);
}

Status MakeKey(const fs::path& dir, const std::string& kind, const std::string& name,
               const std::string& cluster_public, KeyFile* out) {
  auto pair = security::GenerateKeyPair();
  if (!pair.ok()) return pair.status();
  *out = KeyFile{kind, name, *pair, cluster_public};
  return security::WriteKeyFile((dir / (name + ".key")).string(), *out);
}

Result<std::string> ClusterPublic(const fs::path& dir) {
  auto cluster = security::ReadKeyFile((dir / "cluster.key").string());
  if (!cluster.ok()) return cluster.status();
  return cluster->keys.public_key;
}

void PrintRing(const Context& ctx, const Keyring& ring) {
  if (ctx.json) {
    wire::Json docs = wire::Json::array();
    for (const auto& [key, e] : ring.entries()) {
      docs.push_back({{"public", key},
                      {"role", security::RoleName(e.role)},
                      {"state", e.revoked ? "revoked" : "active"},
                      {"stamp", e.stamp},
                      {"name", e.name}});
    }
    PrintJsonLine(docs);
    return;
  }
  std::printf("%-7s %-8s %-40s %s\n", "ROLE", "STATE", "PUBLIC KEY", "NAME");
  for (const auto& [key, e] : ring.entries()) {
    std::printf("%-7s %-8s %-40s %s\n", std::string(security::RoleName(e.role)).c_str(),
                e.revoked ? "revoked" : "active", key.c_str(), e.name.c_str());
  }
}

// Applies `change` to DIR/keyring (offline).
int EditRing(const Context& ctx, const fs::path& dir,
             const std::function<Status(Keyring*)>& change) {
  auto ring = Keyring::Load((dir / "keyring").string());
  if (!ring.ok()) return Fail(ctx, ring.status(), kExitUsage);
  Status st = change(&ring.value());
  if (st.ok()) st = ring->Save((dir / "keyring").string());
  if (!st.ok()) return Fail(ctx, st, st.code() == StatusCode::kNotFound ? 1 : kExitUsage);
  return kExitOk;
}

}  // namespace

void AddKeysCommands(CLI::App& app, Context& ctx, int* exit_code) {
  auto* keys = app.add_subcommand("keys", "make, list, add and revoke the cluster's keys");
  keys->require_subcommand(1);
  AddTokenCommand(keys, ctx, exit_code);
  static std::string dir, role, name, public_key;
  static bool force = false;

  auto* init = keys->add_subcommand("init", "make a new cluster's keys in DIR");
  init->add_option("dir", dir, "directory for the keys (made with mode 0700)")->required();
  init->add_flag("--force", force, "replace keys already in DIR");
  init->callback([&ctx, exit_code] {
    Status st = security::MakeClusterKeys(dir, WallMillis(), force);
    if (!st.ok()) {
      *exit_code = Fail(ctx, st, st.code() == StatusCode::kAlreadyExists ? kExitUsage : 1);
      return;
    }
    if (!ctx.json) {
      std::printf(
          "made %s: cluster.key (every node), node.key (a member key), admin.key (a "
          "client), keyring\n",
          dir.c_str());
    }
    *exit_code = kExitOk;
  });

  auto* make = keys->add_subcommand("new", "make a member or client key NAME.key in DIR");
  make->add_option("role", role, "member, admin or read")
      ->required()
      ->check(CLI::IsMember({"member", "admin", "read"}));
  make->add_option("name", name, "a name for the key (a host, a user)")->required();
  make->add_option("--dir", dir, "the keys directory (holds cluster.key and keyring)")->required();
  make->callback([&ctx, exit_code] {
    fs::path d(dir);
    auto cluster_public = ClusterPublic(d);
    if (!cluster_public.ok()) {
      *exit_code = Fail(ctx, cluster_public.status(), kExitUsage);
      return;
    }
    if (name.empty() || name.find_first_of("/ \t\n") != std::string::npos) {
      *exit_code = Usage(ctx, "a key name has no spaces or slashes");
      return;
    }
    KeyFile file;
    Status st = MakeKey(d, role == "member" ? "member" : role, name, *cluster_public, &file);
    if (!st.ok()) {
      *exit_code = Fail(ctx, st, st.code() == StatusCode::kIOError ? 1 : kExitUsage);
      return;
    }
    *exit_code = EditRing(ctx, d, [&](Keyring* ring) {
      ring->Put(file.keys.public_key, *security::ParseRole(role), name, WallMillis());
      return Status::Ok();
    });
    if (*exit_code == kExitOk) {
      std::printf("%s\n", file.keys.public_key.c_str());
      std::fprintf(stderr, "made %s; a running cluster takes it with: rainctl keys add %s %s %s\n",
                   (d / (name + ".key")).c_str(), role.c_str(), file.keys.public_key.c_str(),
                   name.c_str());
    }
  });

  auto* list = keys->add_subcommand("list", "list the keyring (of the cluster, or of --dir)");
  list->add_option("--dir", dir, "read DIR/keyring instead of asking the cluster");
  list->callback([&ctx, exit_code] {
    if (!dir.empty()) {
      auto ring = Keyring::Load((fs::path(dir) / "keyring").string());
      if (!ring.ok()) {
        *exit_code = Fail(ctx, ring.status(), kExitUsage);
        return;
      }
      PrintRing(ctx, *ring);
      *exit_code = kExitOk;
      return;
    }
    Outcome out = Command(ctx, "keys.list", {});
    if (!out.ok()) {
      *exit_code = Fail(ctx, out);
      return;
    }
    std::string text;
    if (out.reply.payload.type == msgpack::type::STR) out.reply.payload.convert(text);
    auto ring = Keyring::Parse(text);
    if (!ring.ok()) {
      *exit_code = Fail(ctx, ring.status(), kExitRemoteError);
      return;
    }
    PrintRing(ctx, *ring);
    *exit_code = kExitOk;
  });

  auto* add = keys->add_subcommand("add", "put a public key on the keyring, cluster-wide");
  add->add_option("role", role, "member, admin or read")
      ->required()
      ->check(CLI::IsMember({"member", "admin", "read"}));
  add->add_option("public", public_key, "the public key (40 characters of Z85)")->required();
  add->add_option("name", name, "a name for the key")->required();
  add->add_option("--dir", dir, "edit DIR/keyring instead of the running cluster");
  add->callback([&ctx, exit_code] {
    if (!security::IsKeyText(public_key)) {
      *exit_code = Usage(ctx, "'" + public_key + "' is not a public key (40 characters of Z85)");
      return;
    }
    if (!dir.empty()) {
      *exit_code = EditRing(ctx, dir, [&](Keyring* ring) {
        ring->Put(public_key, *security::ParseRole(role), name, WallMillis());
        return Status::Ok();
      });
      return;
    }
    *exit_code = Run(ctx, "keys.add", {{"role", role}, {"public", public_key}, {"name", name}},
                     [](const msgpack::object&) { std::printf("added %s\n", name.c_str()); });
  });

  auto* revoke = keys->add_subcommand("revoke", "revoke a key (by public key or name)");
  revoke->add_option("key", public_key, "the public key or the name of the key")->required();
  revoke->add_option("--dir", dir, "edit DIR/keyring instead of the running cluster");
  revoke->callback([&ctx, exit_code] {
    if (!dir.empty()) {
      *exit_code = EditRing(ctx, dir, [&](Keyring* ring) {
        if (ring->Revoke(public_key, WallMillis())) return Status::Ok();
        return Status::NotFound("no key '" + public_key + "' on the keyring");
      });
      return;
    }
    *exit_code = Run(ctx, "keys.revoke", {{"key", public_key}}, [](const msgpack::object&) {
      std::printf("revoked %s\n", public_key.c_str());
    });
  });
}

}  // namespace rs::ctl
