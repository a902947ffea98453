#include "ctl/security.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "shared/local_cluster.h"
#include "shared/transport/security.h"

namespace rs::ctl {
namespace fs = std::filesystem;

Result<std::string> FindClientKey(const std::string& given) {
  if (!given.empty()) return std::string(given);
  std::vector<std::string> looked;
  if (const char* env = std::getenv("RAIN_KEY"); env != nullptr && *env != 0)
    return std::string(env);
  looked.push_back("$RAIN_KEY");
  std::string local = DefaultClusterDir() + "/keys/admin.key";
  if (fs::exists(local)) return local;
  looked.push_back(local);
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    std::string user = std::string(home) + "/.config/rainstorm/client.key";
    if (fs::exists(user)) return user;
    looked.push_back(user);
  }
  std::string where;
  for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
  return Status::NotFound("no client key (looked at --key, " + where +
                          "); make one with `rainctl keys new admin NAME --dir DIR`, or use "
                          "--insecure with a plain-text cluster");
}

Status SetUpClientSecurity(const std::string& key_file, bool insecure) {
  transport::SecuritySettings s;
  if (insecure) {
    std::fprintf(stderr,
                 "rainctl: warning: --insecure: plain text, no keys; only for a cluster started "
                 "with --insecure\n");
    s.insecure = true;
    return transport::InstallSecurity(std::move(s));
  }
  auto path = FindClientKey(key_file);
  if (!path.ok()) return path.status();
  auto file = security::ReadKeyFile(*path);
  if (!file.ok()) return file.status();
  if (file->cluster_public.empty()) {
    return Status::FailedPrecondition(*path + " names no cluster key: it is not a client key file");
  }
  if (file->kind == "cluster") {
    return Status::FailedPrecondition(*path + " is the cluster key, not a client key");
  }
  s.self = file->keys;
  s.cluster_public = file->cluster_public;
  return transport::InstallSecurity(std::move(s));
}

void AddSecurityOptions(CLI::App& app, Context& ctx) {
  app.add_option("--key", ctx.key_file,
                 "client key file (default: $RAIN_KEY, the local cluster's admin key, "
                 "~/.config/rainstorm/client.key)");
  app.add_flag("--insecure", ctx.insecure, "talk plain text to a cluster started with --insecure");
  app.parse_complete_callback(
      [&ctx] { ctx.security = SetUpClientSecurity(ctx.key_file, ctx.insecure); });
}

}  // namespace rs::ctl
