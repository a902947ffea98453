// Log-query helpers for cluster tests: `rainctl grep` runs parsed (the --json lines and summary,
// or the plain `<node id> <line>` output and the per-node counts), the same search by the local
// GNU grep in a node's data dir (the oracle), and small text utilities (lines, the timestamps
// raind's log uses). Every helper runs the real binaries; nothing here knows how the daemon
// answers. Thread-compatible: one test thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "tests/harness/json.h"
#include "tests/harness/raind_process.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {

// One `rainctl grep` run. With --json, `lines` come from the {"node","line"} objects and
// `summary` is the final object; in plain mode `lines` come from stdout (`<node id> <line>`),
// `counts`/`total` from the `<node id> <n>` and `total <n>` lines (stderr, or stdout with -c).
struct GrepRun {
  CommandResult result;
  bool json = false;
  std::map<std::string, std::vector<std::string>> lines;  // node id -> grep's lines, in order
  Json summary;                                           // --json only
  std::map<std::string, uint64_t> counts;                 // plain only
  int64_t total = -1;                                     // from the summary or `total N`
  std::string parse_error;                                // "" when the output parsed
  int code() const { return result.code(); }
  std::string Describe() const;  // the command's status and (capped) output
};

// `rainctl --node VIA [--json] --timeout TIMEOUT_MS grep ARGS...`.
GrepRun RainGrep(const RaindProcess& via, const std::vector<std::string>& args, bool json,
                 int timeout_ms = 3000, Clock::duration kill_after = std::chrono::seconds(60));

// What GNU grep itself says: `grep -H --color=never FLAGS -e PATTERN -- FILES` run in `dir`.
struct LocalGrep {
  CommandResult result;
  std::vector<std::string> lines;  // stdout lines
  uint64_t selected = 0;           // lines, or with -c the sum of the per-file counts
  int code() const { return result.code(); }
};
LocalGrep GrepLocally(const std::string& dir, const std::vector<std::string>& flags,
                      const std::string& pattern, const std::vector<std::string>& files);

// Parses `<node id> <n>` lines and `total <n>[ ...]` (other lines, e.g. `rainctl: ...`, are
// skipped). Node ids have no spaces.
std::map<std::string, uint64_t> ParseCounts(const std::string& text, int64_t* total);

// The lines of `text` without their '\n' (a last line without one counts too).
std::vector<std::string> SplitLines(const std::string& text);

// A grep run's lines from node `id` (none: empty), and its plain output's count (none: -1).
const std::vector<std::string>& LinesOf(const GrepRun& run, const std::string& id);
int64_t CountOf(const GrepRun& run, const std::string& id);

// "" when `got` equals `want` (grep's lines), else where they first differ.
std::string FirstDifference(const std::vector<std::string>& got,
                            const std::vector<std::string>& want);

// How often `needle` occurs in `text` (overlaps counted).
size_t Occurrences(const std::string& text, const std::string& needle);

// `t` as raind's log prints it (spdlog "%Y-%m-%dT%H:%M:%S.%e", local time), so log timestamps
// can be compared with a test's own clock as strings.
std::string LogTimestamp(std::chrono::system_clock::time_point t);

}  // namespace rs::harness
