// The client side of transport security for rainctl, rainsource and benchmark drivers: the
// --key and --insecure options, and the set-up of the client key before the first request.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "ctl/client.h"

namespace rs::ctl {

// Adds --key FILE and --insecure to `app`; after parsing (before any command runs) the client key
// is installed, or the reason it could not be is left in ctx.security.
void AddSecurityOptions(CLI::App& app, Context& ctx);

// Finds the client key file: `given`, else $RAIN_KEY, else the local cluster's keys/admin.key,
// else ~/.config/rainstorm/client.key. NotFound names every place looked.
Result<std::string> FindClientKey(const std::string& given);

// Installs CurveZMQ with the client key (or plain text with a warning when `insecure`).
Status SetUpClientSecurity(const std::string& key_file, bool insecure);

}  // namespace rs::ctl
