// Shared by the stream engine's cluster tests (stream_test.cc, stream_live_test.cc): starting a
// stream cluster with its data, running App 1 and App 2, and checking a finished job's output.
// Test-thread only.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/raind_process.h"
#include "tests/harness/stream.h"

namespace rs::harness::stream_cases {
using namespace std::chrono_literals;

// A job over the test data ends in a few seconds; states settle within a few leader ticks.
inline constexpr auto kJobDeadline = 45s;

inline const std::string kSample = "data/sample.csv";  // HyDFS names
inline const std::string kChampaign = "data/champaign.csv";

inline const std::string kApp1Cols = "OBJECTID,Sign_Type";

// A python3 operator (msgpack, no SDK) that passes each tuple on after sleeping
// `seconds_per_tuple`: a slow stage. Its path in `ops` (in operator_dirs).
inline std::string SlowOperator(OperatorDir& ops, const std::string& seconds_per_tuple) {
  auto path = ops.Write("slow.py", R"PY(#!/usr/bin/python3
import sys, time, msgpack
delay = float(sys.argv[1])
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=True):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "slow"}]))
    elif msg[0] == 2:
        results = []
        for k, v in msg[1]:
            time.sleep(delay)
            results.append([[k, v]])
        out.write(msgpack.packb([3, results]))
    out.flush()
)PY");
  REQUIRE_OK(path.status());
  return *path + " " + seconds_per_tuple;
}

// Starts the cluster (every node on every HyDFS ring) and stores the sample as kSample.
inline void StartStream(Cluster& c) {
  REQUIRE_OK(OperatorsBuilt({"rainop-identity", "rainop-grep", "rainop-select", "rainop-count"}));
  REQUIRE_OK(StartHydfs(c));
  REQUIRE_OK(HydfsCreate(c.node(0), SampleCsvPath(), kSample).status());
}

// The Champaign export stored as kChampaign: {local path, HyDFS name}; the sample when the
// export is missing (with a warning).
inline std::pair<std::string, std::string> StoreChampaign(Cluster& c) {
  if (!std::filesystem::is_regular_file(ChampaignCsvPath())) {
    WARN(ChampaignCsvPath() << " is missing: checking the repo sample only");
    return {SampleCsvPath(), kSample};
  }
  REQUIRE_OK(HydfsCreate(c.node(0), ChampaignCsvPath(), kChampaign).status());
  return {ChampaignCsvPath(), kChampaign};
}

inline std::vector<std::string> Want(Cluster& c, const std::vector<std::string>& oracle_args) {
  auto want = Oracle(c.dir(), oracle_args);
  REQUIRE_OK(want.status());
  return *want;
}

// An attached run that must have ended done: returns its console lines, after checking that the
// destination holds the same lines (as a multiset) and that job status counts them.
inline std::vector<std::string> DoneOutput(Cluster& c, const JobRun& run, const std::string& dest) {
  INFO("job " << run.job << ": " << run.result.Describe());
  REQUIRE(run.result.code() == 0);
  REQUIRE(!run.job.empty());
  REQUIRE(run.result.err.find("job " + run.job + " done") != std::string::npos);
  std::vector<std::string> console = run.Lines();
  auto file = HydfsCat(c.node(c.size() - 1), dest);
  REQUIRE_OK(file.status());
  RequireSameLines(SplitLines(*file), console, "destination " + dest + " vs console");
  auto status = JobStatus(c.node(0), run.job);
  REQUIRE_OK(status.status());
  CHECK((*status)["state"].Str() == "done");
  CHECK((*status)["output_lines"].Uint() == console.size());
  return console;
}

inline std::string Dest(const std::string& what) {
  static int n = 0;
  return "out/" + std::to_string(++n) + "-" + what;
}

// `RainStorm 2 TASKS grep PATTERN select COLS SRC DEST EO false 0 0 0` (App 1, spec form).
inline JobRun App1(Cluster& c, const std::string& pattern, int tasks, bool eo,
                   const std::string& src, const std::string& dest) {
  return RunJob(c.node(1), {"RainStorm", "2", std::to_string(tasks), "grep", pattern, "select",
                            kApp1Cols, src, dest, eo ? "true" : "false", "false", "0", "0", "0"});
}

// App 2 with each stage quoted as one word (the quoted-words spec form).
inline JobRun App2(Cluster& c, const std::string& post, int tasks, bool eo, const std::string& src,
                   const std::string& dest) {
  return RunJob(c.node(2), {"RainStorm", "2", std::to_string(tasks),
                            "grep -x --column Sign_Post '" + post + "'", "count Category", src,
                            dest, eo ? "true" : "false", "false", "0", "0", "0"});
}

// Every process a task entry names is gone.
inline bool TasksGone(const std::vector<int64_t>& pids, std::string* why) {
  for (int64_t pid : pids) {
    if (ProcessAlive(pid)) {
      *why = "operator process " + std::to_string(pid) + " still runs";
      return false;
    }
  }
  return true;
}

// The pids of the operator tasks (stages 1..stages; the sink, stage stages+1, runs inside the
// leader's raind and lists its pid).
inline std::vector<int64_t> OperatorPids(const std::vector<Json>& tasks, uint64_t stages) {
  std::vector<int64_t> pids;
  for (const Json& t : tasks) {
    uint64_t stage = t["stage"].Uint();
    if (stage >= 1 && stage <= stages && t["pid"].Uint() > 0) {
      pids.push_back(static_cast<int64_t>(t["pid"].Uint()));
    }
  }
  return pids;
}

// The job's state; the query must answer.
inline std::string StateOf(Cluster& c, const std::string& job) {
  auto state = JobState(c.node(0), job);
  REQUIRE_OK(state.status());
  return *state;
}

// The id of the job `job list` shows writing `dest` in state `state`, or "".
inline std::string JobWriting(Cluster& c, const std::string& dest, const std::string& state,
                              std::string* why) {
  auto jobs = JobList(c.node(1));
  if (!jobs.ok()) {
    *why = jobs.status().ToString();
    return "";
  }
  for (const Json& j : *jobs) {
    if (j["dest"].Str() == dest && j["state"].Str() == state) return j["job"].Str();
  }
  *why = "no " + state + " job writes " + dest;
  return "";
}

// A finished background rainctl (attached job) as a JobRun.
inline JobRun Collect(Subprocess& p, const std::string& job) {
  JobRun run = FinishAttachedJob(p, job, kJobTimeout);
  INFO(run.result.Describe());
  REQUIRE_FALSE(run.result.timed_out);
  return run;
}

inline bool AllRunning(Cluster& c, std::string* why) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.node(i).Running()) {
      *why = c.node(i).name() + " exited";
      return false;
    }
  }
  return true;
}

}  // namespace rs::harness::stream_cases
