// rainctl keys token: an HTTP token for the web console and /metrics (shared/security/
// http_token.h), made from the client key (--key, $RAIN_KEY, ...) without asking any node: the
// token carries the key's role on the keyring, and dies with the key.
#include <cstdio>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/security.h"
#include "shared/clock.h"
#include "shared/security/http_token.h"
#include "shared/wire/json.h"

namespace rs::ctl {

void AddTokenCommand(CLI::App* keys, Context& ctx, int* exit_code) {
  static uint64_t hours = 12;
  auto* token = keys->add_subcommand(
      "token", "print an HTTP token of the client key, for the web console and /metrics");
  token->add_option("--hours", hours, "hours it stays valid")
      ->check(CLI::Range(1, 24 * 366))
      ->capture_default_str();
  token->callback([&ctx, exit_code] {
    auto path = FindClientKey(ctx.key_file);
    if (!path.ok()) {
      *exit_code = Fail(ctx, path.status(), kExitUsage);
      return;
    }
    auto key = security::ReadKeyFile(*path);
    if (!key.ok()) {
      *exit_code = Fail(ctx, key.status(), kExitUsage);
      return;
    }
    if (key->kind != "admin" && key->kind != "read") {
      *exit_code = Fail(ctx,
                        Status::InvalidArgument(*path + " holds a " + key->kind +
                                                " key; tokens are made from client keys"),
                        kExitUsage);
      return;
    }
    uint64_t expires = static_cast<uint64_t>(WallMillis() / 1000) + hours * 3600;
    auto t = security::MakeHttpToken(key->keys, key->cluster_public, expires);
    if (!t.ok()) {
      *exit_code = Fail(ctx, t.status(), kExitUsage);
      return;
    }
    if (ctx.json) {
      wire::Json j = {{"token", *t}, {"role", key->kind}, {"expires_s", expires}};
      PrintJsonLine(j);
    } else {
      std::printf("%s\n", t->c_str());
    }
    *exit_code = kExitOk;
  });
}

}  // namespace rs::ctl
