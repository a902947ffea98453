// rainctl's connection to one node: resolves the target (--node, $RAIN_NODE, else node1 of the
// local cluster), sends admin commands with a deadline and maps failures to exit codes.
#pragma once

#include <map>
#include <memory>
#include <msgpack.hpp>
#include <string>

#include "shared/status.h"
#include "shared/wire/envelope.h"

namespace rs::ctl {

// Exit codes, documented in ctl/README.md.
enum ExitCode : int {
  kExitOk = 0,
  kExitRemoteError = 1,  // the node answered with an error
  kExitUsage = 2,        // bad arguments
  kExitUnreachable = 3,  // no answer within the deadline, or no node to talk to
};

struct Context {
  std::string node;  // HOST:PORT; empty: resolve the default
  bool json = false;
  int timeout_ms = 3000;
  std::string key_file;  // --key; empty: $RAIN_KEY, the local cluster's admin key, ~/.config
  bool insecure = false;
  Status security;  // why the client key could not be set up; Command() reports it
};

// A successful reply: the payload and what keeps it alive.
struct Reply {
  wire::Envelope envelope;
  msgpack::object payload;
};

// The outcome of one command: `status` is the node's answer (remote = true) or why no answer
// came (remote = false: unreachable, timeout, undecodable reply).
struct Outcome {
  Status status;
  bool remote = false;
  bool usage = false;  // the request was never sent: bad arguments (e.g. a malformed --node)
  Reply reply;
  bool ok() const { return status.ok(); }
};

Result<std::string> ResolveEndpoint(const Context& ctx);
// The address a node's peers can reach this machine at, towards `host`: the source address of
// the route to it (127.0.0.1 for a local cluster). Empty when it cannot be found.
std::string LocalAddressToward(const std::string& host);
Outcome Command(const Context& ctx, const std::string& cmd,
                const std::map<std::string, std::string>& args = {}, int timeout_ms = 0);

// Prints a failure (one line on stderr; with --json also {"error":...} on stdout) and returns
// its exit code: kExitRemoteError when the node answered, kExitUnreachable otherwise.
int Fail(const Context& ctx, const Outcome& outcome);
int Fail(const Context& ctx, const Status& status, int exit_code);

}  // namespace rs::ctl
