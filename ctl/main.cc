// rainctl: the RainStorm command line. Talks to one node (--node HOST:PORT, $RAIN_NODE, else
// node1 of the local cluster). Exit codes: 0 ok, 1 the node answered with an error, 2 usage
// error, 3 node unreachable or no answer within --timeout.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "ctl/commands.h"
#include "ctl/security.h"
#include "shared/util/malloc_tuning.h"

int main(int argc, char** argv) {
  rs::TuneMallocForStreams();
  std::signal(SIGPIPE, SIG_IGN);
  rs::ctl::Context ctx;
  int exit_code = rs::ctl::kExitOk;
  CLI::App app{"rainctl: control a RainStorm cluster"};
  app.fallthrough();
  app.require_subcommand(0, 1);  // none given is reported below, after unknown words are
  app.add_option("--node", ctx.node, "HOST:PORT of the node to talk to");
  app.add_flag("--json", ctx.json, "machine-readable output");
  app.add_option("--timeout", ctx.timeout_ms, "deadline of each request, in ms")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  rs::ctl::AddMembershipCommands(app, ctx, &exit_code);
  rs::ctl::AddHydfsCommands(app, ctx, &exit_code);
  rs::ctl::AddLogCommands(app, ctx, &exit_code);
  rs::ctl::AddStreamCommands(app, ctx, &exit_code);
  rs::ctl::AddKeysCommands(app, ctx, &exit_code);
  rs::ctl::AddSecurityOptions(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "rainctl: %s\nRun with --help for usage.\n", e.what());
    return rs::ctl::kExitUsage;
  }
  if (app.get_subcommands().empty()) {
    std::fprintf(stderr, "rainctl: no command given\nRun with --help for usage.\n");
    return rs::ctl::kExitUsage;
  }
  return exit_code;
}
