// The real rainctl binary, driven from cluster tests: RunCtl() runs one command (fork/exec,
// output captured, killed at a timeout), and the typed helpers run `rainctl --node N --json ...`
// and parse its one JSON line. Every helper returns a Result so an Eventually() predicate can
// treat "no answer yet" as "not yet". Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"
#include "tests/harness/json.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {

inline constexpr auto kCtlTimeout = std::chrono::seconds(10);

// Routes for nodes on hosts of their own (tests/harness/netns.h): a rainctl whose `--node` names
// a host registered here runs as `PREFIX... rainctl ARGS...`, e.g. with the prefix
// {"/usr/sbin/ip", "netns", "exec", NS}, inside that host's network namespace, where the node's
// address is reachable. Unregistered hosts (127.0.0.1) run rainctl directly. Thread-safe.
void RouteCtlHost(const std::string& host, std::vector<std::string> prefix);
void UnrouteCtlHost(const std::string& host);
// The prefix RunCtl/StartCtl put before rainctl for these arguments (empty: none).
std::vector<std::string> CtlPrefixFor(const std::vector<std::string>& args);

// Runs `rainctl args...`. A missing $RAINCTL shows up as exit code 127 with the reason in err.
CommandResult RunCtl(const std::vector<std::string>& args, Clock::duration timeout = kCtlTimeout);

// Starts `rainctl args...` in the background (e.g. `members --watch --for 3`); collect it with
// Wait() and read Stdout()/Stderr().
Status StartCtl(const std::vector<std::string>& args, Subprocess* process);

// `rainctl --node NODE --json ARGS...` parsed; non-zero exits become a status carrying stderr.
Result<Json> CtlJson(const std::string& node, const std::vector<std::string>& args);

struct MemberInfo {
  std::string id;
  std::string state;  // alive | suspect | failed | left
  uint64_t incarnation = 0;
};

struct MemberList {
  std::string self;
  bool in_cluster = false;
  std::map<std::string, MemberInfo> members;  // by id, self included

  // The state of `id` in this list, or "absent".
  std::string StateOf(const std::string& id) const;
  std::string ToString() const;  // "id=state ..." for failure messages
};

Result<MemberList> ListMem(const std::string& node);

struct ProtocolInfo {
  std::string protocol;
  bool suspicion = false;
  uint64_t config_version = 0;
};
Result<ProtocolInfo> DisplayProtocol(const std::string& node);

// `rainctl config get KEY` (plain text, one line).
Result<std::string> ConfigGet(const std::string& node, const std::string& key);

struct EventInfo {
  uint64_t seq = 0;
  std::string event;  // join | suspect | alive | fail | leave | remove | refute | expelled | config
  std::string member;
  std::string detail;
};
// The node's event history: `members --watch --history --for SECONDS --json`.
Result<std::vector<EventInfo>> History(const std::string& node, double seconds = 0.3);
// Parses the JSON lines a `members --watch --json` run printed.
Result<std::vector<EventInfo>> ParseEvents(const std::string& json_lines);

Result<Json> Stats(const std::string& node);

}  // namespace rs::harness
