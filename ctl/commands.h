// rainctl command groups. Each Add*Commands registers subcommands on the app; a subcommand's
// callback stores the exit code in *exit_code. Depends on shared/ only, never on daemon/.
#pragma once

#include <CLI/CLI.hpp>

#include "ctl/client.h"

namespace rs::ctl {

void AddMembershipCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddHydfsCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddLogCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddStreamCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddKeysCommands(CLI::App& app, Context& ctx, int* exit_code);
// `keys token` (token_command.cc), added under `keys` by AddKeysCommands.
void AddTokenCommand(CLI::App* keys, Context& ctx, int* exit_code);

// `job checkpoint JOB TASK` (the file the task writes now) or `--file NAME` (checkpoint_commands.cc).
int JobCheckpoint(Context& ctx, const std::string& job, const std::string& task,
                  const std::string& file, bool all);

}  // namespace rs::ctl
