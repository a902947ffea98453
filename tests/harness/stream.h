// Stream-engine helpers for cluster tests: jobs run through the real rainctl (attached, so
// stdout is the job's output, or --detach), typed job queries (`job status`, `list_tasks`,
// `job list`, all --json), the destination read back with `rainctl cat`, `rainsource` fed from a
// local file, and the independent computation (an oracle run by /usr/bin/python3 with its csv
// module, line by line) that job outputs are compared with. Every query returns a Result, so an
// Eventually() predicate can treat "no answer yet" as "not yet". Thread-compatible.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "shared/status.h"
#include "tests/harness/cluster.h"
#include "tests/harness/ctl.h"
#include "tests/harness/json.h"
#include "tests/harness/logquery.h"  // SplitLines
#include "tests/harness/subprocess.h"

namespace rs::harness {

// An attached job over the test datasets ends in a few seconds; this bounds a stuck one (and
// stays under each scenario's meson timeout).
inline constexpr auto kJobTimeout = std::chrono::seconds(60);

// $RAINSOURCE, else ctl/rainsource of the build dir next to the test binary.
Result<std::string> RainsourceBinary();

// --- starting a stream cluster ---

// raind arguments for a stream cluster test, plus `more`: log shipping off (it only adds HyDFS
// traffic).
std::vector<std::string> StreamArgs(std::vector<std::string> more = {});
// A directory for a test's own operators, added to the nodes' operator_dirs:
// /tmp/rs-ops-XXXXXX, mode 0755 like the executables written into it, so that a root raind's
// operator_user can run them. Removed with its files when the object goes. Test-thread only.
//   OperatorDir ops;
//   Cluster c(3, StreamArgs(ops.Args()));
//   auto op = ops.Write("crash.py", "#!/usr/bin/python3\n...");
class OperatorDir {
 public:
  OperatorDir();
  ~OperatorDir();
  OperatorDir(const OperatorDir&) = delete;
  OperatorDir& operator=(const OperatorDir&) = delete;

  const std::string& path() const { return path_; }  // empty when it could not be made
  // Writes the executable `name` (mode 0755) holding `body`; its full path.
  Result<std::string> Write(const std::string& name, const std::string& body);
  // raind arguments setting operator_dirs to the built-in directories and this one.
  std::vector<std::string> Args() const;

 private:
  std::string path_;
};

// Ok when every built-in operator of `names` ("rainop-grep", ...) is built beside raind's build
// tree, where raind finds them; else NotFound naming the first one missing. (operators/ is
// configured after tests/, so meson cannot list them as dependencies of the tests.)
Status OperatorsBuilt(const std::vector<std::string>& names);

// `relative` under the repo's root (the source dir meson was configured from).
std::string SourcePath(const std::string& relative);
// The traffic-signs CSV: the repo's sample (always present), and the Champaign export
// (../shared/datasets beside the repo; it may be missing).
const std::string& SampleCsvPath();
const std::string& ChampaignCsvPath();
// The Champaign export when it is present, else the sample.
const std::string& ChampaignOrSampleCsvPath();

// One `rainctl --node VIA ARGS...` run of a job command, attached unless ARGS say --detach.
struct JobRun {
  CommandResult result;
  std::string job;  // from "rainctl: job J submitted" (attached) or the printed id (--detach)
  std::vector<std::string> Lines() const;  // stdout split into lines
};
JobRun RunJob(const RaindProcess& via, const std::vector<std::string>& args,
              Clock::duration timeout = kJobTimeout);

// `job status J --json`: the job's list entry plus stages_detail, output_lines, duplicates,
// injected, resent_frames, ...
Result<Json> JobStatus(const RaindProcess& via, const std::string& job);
// The job's state ("running", "done", ...), from job status.
Result<std::string> JobState(const RaindProcess& via, const std::string& job);
// True when the job's state is one of `states`; `why` tells what it is.
bool JobIn(const RaindProcess& via, const std::string& job, const std::set<std::string>& states,
           std::string* why);
// `list_tasks --job J --json`: the task entries.
Result<std::vector<Json>> JobTasks(const RaindProcess& via, const std::string& job);
// `job list --json`: the job entries.
Result<std::vector<Json>> JobList(const RaindProcess& via);

// `rainctl cat NAME`: the HyDFS file's bytes.
Result<std::string> HydfsCat(const RaindProcess& via, const std::string& name);

// `sh -c 'exec rainsource --node VIA --job JOB ARGS... < INPUT'` started in the background
// (its own process group; the Subprocess kills it at the latest when it goes out of scope).
Status StartRainsource(const RaindProcess& via, const std::string& job, const std::string& input,
                       const std::vector<std::string>& args, Subprocess* process);

// True when process `pid` exists (and is not a zombie).
bool ProcessAlive(int64_t pid);

// --- attached jobs in the background, and their tasks ---

// `rainctl --node VIA ARGS...` started in the background: an attached job keeps running while
// the test acts on the cluster. Collect it with FinishAttachedJob().
Status StartAttachedJob(const RaindProcess& via, const std::vector<std::string>& args,
                        Subprocess* process);
// Waits (up to `timeout`) for an attached rainctl started by StartAttachedJob() to exit; its
// result as a JobRun (`job` given, or read from its "rainctl: job J submitted" line). A rainctl
// still running at the timeout is killed and reported as timed out.
JobRun FinishAttachedJob(Subprocess& process, const std::string& job,
                         Clock::duration timeout = kJobTimeout);
// The id of the job `job list` shows writing `dest` in state `state`, or "" (`why` tells what
// it saw).
std::string FindJobWriting(const RaindProcess& via, const std::string& dest,
                           const std::string& state, std::string* why);

// One operator task of `list_tasks --json` (the sink, stage stages+1, is left out).
struct TaskEntry {
  uint32_t stage = 0;
  uint32_t task = 0;
  std::string node;  // member id
  int64_t pid = 0;
  uint64_t incarnation = 0;
  std::string state;
  std::string Name() const { return std::to_string(stage) + "." + std::to_string(task); }
};
// The job's operator tasks (stages 1..`stages`), in list order.
Result<std::vector<TaskEntry>> OperatorTasks(const RaindProcess& via, const std::string& job,
                                             uint32_t stages);
// True when none of `pids` is a live operator process (a pid the OS gave to a process that is
// no operator, "rainop-" or a python operator, does not count). `why` names the first one left.
bool OperatorsGone(const std::set<int64_t>& pids, std::string* why);

// --- comparing outputs ---

std::vector<std::string> Sorted(std::vector<std::string> lines);
// "" when `got` and `want` are equal as multisets; else a short description of the difference
// (counts and a few missing and extra lines).
std::string MultisetDifference(const std::vector<std::string>& got,
                               const std::vector<std::string>& want);

// A running count output (`count`: "VALUE,N" with VALUE CSV-quoted when needed), split at the
// last comma: per formatted value, its counts in output order.
struct RunningCounts {
  std::map<std::string, std::vector<uint64_t>> by_value;
  std::vector<std::string> malformed;  // lines without ",N"
  // Per value, the last count.
  std::map<std::string, uint64_t> Final() const;
  // "" when every value's counts are exactly 1, 2, ..., n in output order; else the first value
  // that is not.
  std::string CheckIncreasing() const;
};
RunningCounts ParseRunningCounts(const std::vector<std::string>& lines);
// "" when `got` is a correct running count output for the final counts `want` (python's
// "VALUE,N" lines): no malformed line, every value's counts are exactly 1..n in output order
// (none lost, none twice), and the last count of every value is python's. Else what differs.
std::string RunningCountsDifference(const std::vector<std::string>& got,
                                    const std::vector<std::string>& want);
// Catch2-requires MultisetDifference(got, want) and RunningCountsDifference(got, want) to be
// empty; `what` names the outputs in the failure.
void RequireSameLines(const std::vector<std::string>& got, const std::vector<std::string>& want,
                      const std::string& what);
void RequireCounts(const std::vector<std::string>& got, const std::vector<std::string>& want,
                   const std::string& what);

// --- the independent computation ---

// Writes the oracle script (Python 3, csv module) into `dir` and runs it as
// `/usr/bin/python3 SCRIPT ARGS...`; its stdout lines. It reads FILE line by line like the
// engine's sources do (physical lines, a trailing \r dropped; the first line of a *.csv FILE is
// its header, never a row, as a job's default; all-lines keeps it) and
// formats CSV like the built-in operators (RFC 4180; quoted when a field holds a comma, quote,
// CR or LF or starts or ends with a space or tab). GREP is rainop-grep's arguments (-v -i -x
// --column COL, then the pattern; no -E), applied first when given. Modes:
//   select FILE COLS [GREP...]      `grep GREP | select COLS` (COLS: names or indexes; with a
//                                   name, in COLS or --column, the header line is skipped)
//   count FILE COL [GREP...]        `grep GREP | count COL`: the final count of every COL value,
//                                   as the "VALUE,N" line count writes last for it
//   filter FILE [INDEX VALUE]...    `filter.py --column INDEX VALUE` chained: the rows whose
//                                   column INDEX equals VALUE for every pair
//   lines FILE                      every row (identity)
//   all-lines FILE                  every line, a *.csv header included (identity, --no-header)
Result<std::vector<std::string>> Oracle(const std::string& dir,
                                        const std::vector<std::string>& args);

}  // namespace rs::harness
