// Cluster tests of the stream engine: real raind processes on 127.0.0.1, jobs submitted through
// the real rainctl (every command form) and rainsource, outputs compared with an independent
// computation (tests/harness/stream.h: python3's csv module over the same file, line by line).
// App 1 is `grep PATTERN | select OBJECTID,Sign_Type`, App 2 `grep -x --column Sign_Post VALUE |
// count Category`, run on the real Champaign export (../shared/datasets, when present) and the
// repo sample. Both the console output (attached rainctl) and the HyDFS destination are checked.
// Each TEST_CASE starts one cluster and runs several jobs on it; each runs as its own meson test.
#include "tests/harness/stream.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/raind_process.h"

namespace rs::harness {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A job over the test data ends in a few seconds; states settle within a few leader ticks.
constexpr auto kJobDeadline = 45s;

const std::string kSample = "data/sample.csv";  // HyDFS names
const std::string kChampaign = "data/champaign.csv";

const std::string kApp1Cols = "OBJECTID,Sign_Type";

// Starts the cluster (every node on every HyDFS ring) and stores the sample as kSample.
void StartStream(Cluster& c) {
  REQUIRE_OK(OperatorsBuilt({"rainop-identity", "rainop-grep", "rainop-select", "rainop-count"}));
  REQUIRE_OK(StartHydfs(c));
  REQUIRE_OK(HydfsCreate(c.node(0), SampleCsvPath(), kSample).status());
}

// The Champaign export stored as kChampaign: {local path, HyDFS name}; the sample when the
// export is missing (with a warning).
std::pair<std::string, std::string> StoreChampaign(Cluster& c) {
  if (!fs::is_regular_file(ChampaignCsvPath())) {
    WARN(ChampaignCsvPath() << " is missing: checking the repo sample only");
    return {SampleCsvPath(), kSample};
  }
  REQUIRE_OK(HydfsCreate(c.node(0), ChampaignCsvPath(), kChampaign).status());
  return {ChampaignCsvPath(), kChampaign};
}

std::vector<std::string> Want(Cluster& c, const std::vector<std::string>& oracle_args) {
  auto want = Oracle(c.dir(), oracle_args);
  REQUIRE_OK(want.status());
  return *want;
}

// An attached run that must have ended done: returns its console lines, after checking that the
// destination holds the same lines (as a multiset) and that job status counts them.
std::vector<std::string> DoneOutput(Cluster& c, const JobRun& run, const std::string& dest) {
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

std::string Dest(const std::string& what) {
  static int n = 0;
  return "out/" + std::to_string(++n) + "-" + what;
}

// `RainStorm 2 TASKS grep PATTERN select COLS SRC DEST EO false 0 0 0` (App 1, spec form).
JobRun App1(Cluster& c, const std::string& pattern, int tasks, bool eo, const std::string& src,
            const std::string& dest) {
  return RunJob(c.node(1), {"RainStorm", "2", std::to_string(tasks), "grep", pattern, "select",
                            kApp1Cols, src, dest, eo ? "true" : "false", "false", "0", "0", "0"});
}

// App 2 with each stage quoted as one word (the quoted-words spec form).
JobRun App2(Cluster& c, const std::string& post, int tasks, bool eo, const std::string& src,
            const std::string& dest) {
  return RunJob(c.node(2), {"RainStorm", "2", std::to_string(tasks),
                            "grep -x --column Sign_Post '" + post + "'", "count Category", src,
                            dest, eo ? "true" : "false", "false", "0", "0", "0"});
}

// Every process a task entry names is gone.
bool TasksGone(const std::vector<int64_t>& pids, std::string* why) {
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
std::vector<int64_t> OperatorPids(const std::vector<Json>& tasks, uint64_t stages) {
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
std::string StateOf(Cluster& c, const std::string& job) {
  auto state = JobState(c.node(0), job);
  REQUIRE_OK(state.status());
  return *state;
}

// The id of the job `job list` shows writing `dest` in state `state`, or "".
std::string JobWriting(Cluster& c, const std::string& dest, const std::string& state,
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
JobRun Collect(Subprocess& p, const std::string& job) {
  JobRun run = FinishAttachedJob(p, job, kJobTimeout);
  INFO(run.result.Describe());
  REQUIRE_FALSE(run.result.timed_out);
  return run;
}

bool AllRunning(Cluster& c, std::string* why) {
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.node(i).Running()) {
      *why = c.node(i).name() + " exited";
      return false;
    }
  }
  return true;
}

TEST_CASE("App 1 (grep | select) matches python's csv over the same file, line by line",
          "[stream-app1]") {
  Cluster c(4, StreamArgs());
  StartStream(c);
  auto [local, name] = StoreChampaign(c);
  for (const std::string pattern : {"Parking", "Stop", "Nonexistent Sign"}) {
    std::vector<std::string> want = Want(c, {"select", local, kApp1Cols, pattern});
    if (pattern == "Nonexistent Sign") {
      REQUIRE(want.empty());
    } else {
      // The Champaign export has hundreds of matches; the 200-row sample a few dozen.
      REQUIRE(want.size() > (local == SampleCsvPath() ? 5u : 100u));
    }
    for (int tasks : {1, 3}) {
      for (bool eo : {true, false}) {
        CAPTURE(pattern, tasks, eo);
        std::string dest = Dest("app1");
        auto got = DoneOutput(c, App1(c, pattern, tasks, eo, name, dest), dest);
        RequireSameLines(got, want, "console vs python");
      }
    }
  }
  // The sample too (3 tasks, both modes).
  std::vector<std::string> want = Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"});
  REQUIRE(!want.empty());
  for (bool eo : {true, false}) {
    CAPTURE(eo);
    std::string dest = Dest("app1-sample");
    RequireSameLines(DoneOutput(c, App1(c, "Parking", 3, eo, kSample, dest), dest), want,
                     "console vs python");
  }
}

TEST_CASE("App 2 (grep -x --column | count) gives python's final counts, each counted 1..n",
          "[stream-app2]") {
  Cluster c(4, StreamArgs());
  StartStream(c);
  auto [local, name] = StoreChampaign(c);
  for (const std::string post : {"Punched Telespar", "Unpunched Telespar"}) {
    std::vector<std::string> want =
        Want(c, {"count", local, "Category", "-x", "--column", "Sign_Post", post});
    REQUIRE(want.size() >= 3);
    for (int tasks : {1, 3}) {
      for (bool eo : {true, false}) {
        CAPTURE(post, tasks, eo);
        std::string dest = Dest("app2");
        RequireCounts(DoneOutput(c, App2(c, post, tasks, eo, name, dest), dest), want,
                      "console vs python");
        // The destination keeps the sink's order: the same running counts.
        auto file = HydfsCat(c.node(0), dest);
        REQUIRE_OK(file.status());
        RequireCounts(SplitLines(*file), want, "destination vs python");
      }
    }
  }
  std::vector<std::string> want = Want(
      c, {"count", SampleCsvPath(), "Category", "-x", "--column", "Sign_Post", "Punched Telespar"});
  std::string dest = Dest("app2-sample");
  RequireCounts(DoneOutput(c, App2(c, "Punched Telespar", 3, true, kSample, dest), dest), want,
                "console vs python");
}

TEST_CASE("duplicates injected by the test knob are discarded with exactly-once, kept without",
          "[stream-dups]") {
  // Every 3rd data frame is sent twice; small batches make many frames; a long resend period
  // keeps real resends (which also count as duplicates) out of the comparison.
  Cluster c(4, StreamArgs({"--set", "stream_test_duplicate_every=3", "--set",
                           "stream_batch_tuples=64", "--set", "stream_resend_ms=20000"}));
  StartStream(c);
  auto [local, name] = StoreChampaign(c);

  auto require_knob_counted = [&](const std::string& job) {
    auto st = JobStatus(c.node(0), job);
    REQUIRE_OK(st.status());
    INFO("status: injected " << (*st)["injected"].Uint() << ", duplicates "
                             << (*st)["duplicates"].Uint() << ", resent frames "
                             << (*st)["resent_frames"].Uint());
    REQUIRE((*st)["injected"].Uint() > 0);
    REQUIRE((*st)["resent_frames"].Uint() == 0);
    REQUIRE((*st)["duplicates"].Uint() == (*st)["injected"].Uint());
  };

  std::vector<std::string> want1 = Want(c, {"select", local, kApp1Cols, "Parking"});
  {
    std::string dest = Dest("dups-app1");
    JobRun run = App1(c, "Parking", 3, true, name, dest);
    RequireSameLines(DoneOutput(c, run, dest), want1, "exactly-once: console vs python");
    require_knob_counted(run.job);
  }
  {
    std::vector<std::string> want2 =
        Want(c, {"count", local, "Category", "-x", "--column", "Sign_Post", "Punched Telespar"});
    std::string dest = Dest("dups-app2");
    JobRun run = App2(c, "Punched Telespar", 3, true, name, dest);
    RequireCounts(DoneOutput(c, run, dest), want2, "exactly-once: console vs python");
    require_knob_counted(run.job);
  }
  {
    // Without exactly-once the knob's copies reach the output: more lines, nothing else.
    std::string dest = Dest("dups-off");
    JobRun run = App1(c, "Parking", 3, false, name, dest);
    std::vector<std::string> got = DoneOutput(c, run, dest);
    CHECK(got.size() > want1.size());
    std::set<std::string> distinct(got.begin(), got.end());
    std::set<std::string> want_distinct(want1.begin(), want1.end());
    REQUIRE(distinct == want_distinct);
    auto st = JobStatus(c.node(0), run.job);
    REQUIRE_OK(st.status());
    CHECK((*st)["injected"].Uint() > 0);
  }
}

TEST_CASE("every rainctl job form runs the job it describes", "[stream-cli]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  std::vector<std::string> want_app1 = Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"});

  {
    INFO("spec form, an operator and one argument per stage");
    std::string dest = Dest("spec");
    JobRun run = RunJob(c.node(0), {"RainStorm", "2", "3", "grep", "Parking", "select", kApp1Cols,
                                    kSample, dest, "true", "false", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest), want_app1, "console vs python");
  }
  {
    INFO("spec form, each command quoted as one word");
    std::string dest = Dest("quoted");
    JobRun run =
        RunJob(c.node(1), {"RainStorm", "2", "3", "grep -i 'no parking'",
                           "select OBJECTID,Sign_Type", kSample, dest, "1", "0", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest),
                     Want(c, {"select", SampleCsvPath(), kApp1Cols, "-i", "no parking"}),
                     "console vs python");
  }
  {
    INFO("spec form, a new stage at each operator name (option words as arguments)");
    std::string dest = Dest("split");
    JobRun run = RunJob(
        c.node(2), {"RainStorm", "2", "2", "grep", "-x", "--column", "Sign_Type", "Stop", "select",
                    "0,2", kSample, dest, "false", "false", "500", "0", "0", "--timeout", "5000"});
    RequireSameLines(
        DoneOutput(c, run, dest),
        Want(c, {"select", SampleCsvPath(), "0,2", "-x", "--column", "Sign_Type", "Stop"}),
        "console vs python");
  }
  {
    INFO("older form: op1 op2 src dest num_tasks");
    std::string dest = Dest("older-identity");
    JobRun run = RunJob(c.node(0), {"RainStorm", "identity", "identity", kSample, dest, "3"});
    RequireSameLines(DoneOutput(c, run, dest), Want(c, {"lines", SampleCsvPath()}),
                     "console vs python");
    dest = Dest("older-quoted");
    run = RunJob(c.node(0), {"RainStorm", "grep Parking", "select 0,3", kSample, dest, "3"});
    RequireSameLines(DoneOutput(c, run, dest),
                     Want(c, {"select", SampleCsvPath(), "0,3", "Parking"}), "console vs python");
  }
  {
    INFO("flag form, attached, throttled");
    std::string dest = Dest("flags");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", "grep -i \"No Parking\"", "--stage",
                                    "select OBJECTID,Sign_Type", "--tasks", "3", "--src", kSample,
                                    "--dest", dest, "--exactly-once", "--rate", "1000"});
    RequireSameLines(DoneOutput(c, run, dest),
                     Want(c, {"select", SampleCsvPath(), kApp1Cols, "-i", "No Parking"}),
                     "console vs python");
  }
  {
    INFO("flag form, detached: the job id at once, the output in the destination");
    std::string dest = Dest("flags-detached");
    JobRun run = RunJob(
        c.node(2), {"job", "submit", "--stage", "grep -x --column Sign_Post 'Punched Telespar'",
                    "--stage", "count Category", "--tasks", "3", "--src", kSample, "--dest", dest,
                    "--no-exactly-once", "--detach"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 0);
    REQUIRE(!run.job.empty());
    REQUIRE(SplitLines(run.result.out) == std::vector<std::string>{run.job});
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      return JobIn(c.node(0), run.job, {"done", "failed", "cancelled"}, why);
    });
    REQUIRE(StateOf(c, run.job) == "done");
    auto file = HydfsCat(c.node(1), dest);
    REQUIRE_OK(file.status());
    RequireCounts(SplitLines(*file),
                  Want(c, {"count", SampleCsvPath(), "Category", "-x", "--column", "Sign_Post",
                           "Punched Telespar"}),
                  "destination vs python");
    auto jobs = JobList(c.node(1));
    REQUIRE_OK(jobs.status());
    bool listed = false;
    for (const Json& j : *jobs) {
      if (j["job"].Str() != run.job) continue;
      listed = true;
      CHECK(j["dest"].Str() == dest);
      CHECK(j["state"].Str() == "done");
      CHECK(!j["exactly_once"].Bool());
    }
    CHECK(listed);
  }
  {
    INFO("--json attached: no output lines, one summary at the end");
    std::string dest = Dest("json");
    JobRun run = RunJob(c.node(0), {"RainStorm", "2", "3", "grep", "Parking", "select", kApp1Cols,
                                    kSample, dest, "true", "false", "0", "0", "0", "--json"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 0);
    std::vector<std::string> lines = run.Lines();
    REQUIRE(lines.size() == 1);
    auto summary = Json::Parse(lines[0]);
    REQUIRE_OK(summary.status());
    CHECK((*summary)["state"].Str() == "done");
    CHECK((*summary)["output_lines"].Uint() == want_app1.size());
    auto file = HydfsCat(c.node(0), dest);
    REQUIRE_OK(file.status());
    RequireSameLines(SplitLines(*file), want_app1, "destination vs python");
  }
  {
    INFO("a source prefix: every file under it (the sample in two files, one header)");
    auto whole = ReadLocal(SampleCsvPath());
    REQUIRE_OK(whole.status());
    size_t cut = 0;
    for (int k = 0; k < 100; ++k) cut = whole->find('\n', cut) + 1;
    REQUIRE_OK(WriteLocal(c.dir() + "/part-a.csv", whole->substr(0, cut)));
    REQUIRE_OK(WriteLocal(c.dir() + "/part-b.csv", whole->substr(cut)));
    REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/part-a.csv", "parts/a.csv").status());
    REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/part-b.csv", "parts/b.csv").status());
    std::string dest = Dest("prefix");
    JobRun run = RunJob(c.node(1), {"RainStorm", "2", "3", "grep", "Parking", "select", kApp1Cols,
                                    "parts/", dest, "true", "false", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest), want_app1, "console vs python");
  }
  {
    INFO("an operator stored in HyDFS (hydfs:NAME)");
    REQUIRE_OK(WriteLocal(c.dir() + "/upper.py", R"PY(#!/usr/bin/python3
import sys, msgpack
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=True):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "upper"}]))
    elif msg[0] == 2:
        out.write(msgpack.packb([3, [[[k, v.upper()]] for k, v in msg[1]]]))
    out.flush()
)PY"));
    REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/upper.py", "ops/upper.py").status());
    std::string dest = Dest("hydfs-op");
    JobRun run = RunJob(c.node(2), {"RainStorm", "1", "2", "hydfs:ops/upper.py", kSample, dest,
                                    "true", "false", "0", "0", "0"});
    std::vector<std::string> want = Want(c, {"lines", SampleCsvPath()});
    for (auto& line : want) {
      for (char& ch : line) {
        if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
      }
    }
    RequireSameLines(DoneOutput(c, run, dest), want, "console vs the sample upper-cased");
  }
  {
    INFO("autoscale=true is refused by the leader: not yet");
    std::string dest = Dest("autoscale");
    JobRun run = RunJob(c.node(1), {"RainStorm", "2", "3", "grep", "Parking", "select", "0,3",
                                    kSample, dest, "true", "true", "0", "10", "100"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 1);
    REQUIRE(run.result.err.find("not yet") != std::string::npos);
    REQUIRE(run.result.out.empty());
    CHECK(!HydfsLs(c.node(0), dest).ok());
  }
}

TEST_CASE("python operators, by built-in name and by absolute path, give python's output",
          "[stream-python]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  std::string filter_py = SourcePath("operators/python/filter.py");
  std::string dest = Dest("python");
  JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", "filter --column 3 Stop", "--stage",
                                  filter_py + " --column 6 'Punched Telespar'", "--tasks", "3",
                                  "--src", kSample, "--dest", dest});
  std::vector<std::string> want =
      Want(c, {"filter", SampleCsvPath(), "3", "Stop", "6", "Punched Telespar"});
  REQUIRE(!want.empty());
  RequireSameLines(DoneOutput(c, run, dest), want, "console vs python");
  // A python stage feeding a C++ one, exactly-once off, one task.
  dest = Dest("python-count");
  run = RunJob(c.node(2), {"RainStorm", "2", "1", "filter", "Stop", "count", "Sign_Post", kSample,
                           dest, "false", "false", "0", "0", "0"});
  RequireCounts(DoneOutput(c, run, dest), Want(c, {"count", SampleCsvPath(), "Sign_Post", "Stop"}),
                "console vs python");
}

TEST_CASE(
    "list_tasks shows a running job's tasks; cancel stops them; concurrent and "
    "back-to-back jobs are each correct",
    "[stream-jobs]") {
  Cluster c(4, StreamArgs());
  StartStream(c);
  std::set<std::string> ids;
  for (size_t i = 0; i < c.size(); ++i) ids.insert(c.node(i).Id());

  // A slow job, attached: 201 lines at 10 lines/s.
  std::string slow_dest = Dest("slow");
  Subprocess slow_ctl;
  REQUIRE_OK(StartCtl({"--node", c.node(1).ControlAddress(), "job", "submit", "--stage", "identity",
                       "--stage", "identity", "--tasks", "3", "--src", kSample, "--dest", slow_dest,
                       "--rate", "10", "--name", "slow"},
                      &slow_ctl));
  JobRun slow;
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    slow.job = JobWriting(c, slow_dest, "running", why);
    return !slow.job.empty();
  });
  std::vector<Json> tasks;
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    auto t = JobTasks(c.node(2), slow.job);
    if (!t.ok()) {
      *why = t.status().ToString();
      return false;
    }
    tasks.clear();
    std::set<std::pair<uint64_t, uint64_t>> slots;
    for (const Json& e : *t) {
      if (e["stage"].Uint() < 1 || e["stage"].Uint() > 2) continue;  // the sink, if listed
      tasks.push_back(e);
      slots.insert({e["stage"].Uint(), e["task"].Uint()});
      std::string what = "task " + e["stage"].Str() + "-" + e["task"].Str() + ": ";
      if (e["job"].Str() != slow.job) {
        *why = what + "job " + e["job"].Str();
        return false;
      }
      if (e["state"].Str() != "running") {
        *why = what + "state " + e["state"].Str();
        return false;
      }
      if (!ids.count(e["node"].Str())) {
        *why = what + "node '" + e["node"].Str() + "' is not a member id";
        return false;
      }
      if (!ProcessAlive(static_cast<int64_t>(e["pid"].Uint()))) {
        *why = what + "pid " + e["pid"].Str() + " is not a live process";
        return false;
      }
      if (e["op"].Str().find("identity") == std::string::npos) {
        *why = what + "op '" + e["op"].Str() + "'";
        return false;
      }
      if (!fs::is_regular_file(e["log"].Str())) {
        *why = what + "log file '" + e["log"].Str() + "' does not exist";
        return false;
      }
    }
    *why = std::to_string(slots.size()) + " of 6 operator tasks listed";
    return slots.size() == 6 && tasks.size() == 6;
  });
  // A stage's three tasks run on three different workers (the leader, node 0, hosts none).
  for (uint64_t stage : {1, 2}) {
    std::set<std::string> nodes;
    for (const Json& e : tasks) {
      if (e["stage"].Uint() == stage) nodes.insert(e["node"].Str());
    }
    CAPTURE(stage);
    CHECK(nodes.size() == 3);
    CHECK(!nodes.count(c.node(0).Id()));
  }
  std::vector<int64_t> pids = OperatorPids(tasks, 2);
  REQUIRE(pids.size() == 6);
  {
    REQUIRE(StateOf(c, slow.job) == "running");
    CommandResult cancel = Ctl(c.node(3), {"job", "cancel", slow.job});
    INFO(cancel.Describe());
    REQUIRE(cancel.code() == 0);
    REQUIRE(cancel.out.find("cancelled") != std::string::npos);
  }
  // The attached rainctl ends with the job: exit 1, "job J cancelled".
  slow = Collect(slow_ctl, slow.job);
  {
    INFO(slow.result.Describe());
    CHECK(slow.result.code() == 1);
    CHECK(slow.result.err.find("job " + slow.job + " cancelled") != std::string::npos);
    CHECK(slow.Lines().size() < 201);
  }
  REQUIRE(StateOf(c, slow.job) == "cancelled");
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) { return TasksGone(pids, why); });

  // Two jobs at once, through two nodes, attached.
  std::vector<std::string> want1 = Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"});
  std::vector<std::string> want2 = Want(
      c, {"count", SampleCsvPath(), "Category", "-x", "--column", "Sign_Post", "Punched Telespar"});
  std::string dest1 = Dest("concurrent1"), dest2 = Dest("concurrent2");
  Subprocess p1, p2;
  REQUIRE_OK(
      StartCtl({"--node", c.node(1).ControlAddress(), "RainStorm", "2", "3", "grep", "Parking",
                "select", kApp1Cols, kSample, dest1, "true", "false", "300", "0", "0"},
               &p1));
  REQUIRE_OK(StartCtl({"--node", c.node(2).ControlAddress(), "RainStorm", "2", "3",
                       "grep -x --column Sign_Post 'Punched Telespar'", "count Category", kSample,
                       dest2, "true", "false", "300", "0", "0"},
                      &p2));
  JobRun r1 = Collect(p1, ""), r2 = Collect(p2, "");
  REQUIRE(r1.job != r2.job);
  RequireSameLines(DoneOutput(c, r1, dest1), want1, "concurrent App 1 vs python");
  RequireCounts(DoneOutput(c, r2, dest2), want2, "concurrent App 2 vs python");

  // Back to back, through every node in turn.
  for (size_t i = 0; i < c.size(); ++i) {
    CAPTURE(i);
    std::string dest = Dest("b2b");
    JobRun run =
        RunJob(c.node(i), {"RainStorm", "2", "2", "grep", "Parking", "select", kApp1Cols, kSample,
                           dest, i % 2 ? "true" : "false", "false", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest), want1, "console vs python");
  }
  std::string why;
  bool running = AllRunning(c, &why);
  INFO(why);
  CHECK(running);
}

TEST_CASE("a live job takes its input from rainsource and ends when rainsource closes",
          "[stream-live]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  // A live job has no CSV header (no input file), so the operators address columns by index.
  std::vector<std::string> want = Want(c, {"select", SampleCsvPath(), "2,3", "Parking"});
  for (bool eo : {true, false}) {
    CAPTURE(eo);
    std::string dest = Dest("live");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "grep Parking", "--stage",
                                    "select 2,3", "--tasks", "3", "--dest", dest,
                                    eo ? "--exactly-once" : "--no-exactly-once", "--detach"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 0);
    REQUIRE(!run.job.empty());
    // It waits for its input.
    REQUIRE_CONSISTENTLY(
        500ms, [&](std::string* why) { return JobIn(c.node(0), run.job, {"running"}, why); });
    Subprocess source;
    REQUIRE_OK(StartRainsource(c.node(2), run.job, SampleCsvPath(), {}, &source));
    auto exit = source.Wait(kJobTimeout);
    REQUIRE(exit.has_value());
    INFO("rainsource: " << exit->ToString() << "\n" << source.Stderr());
    REQUIRE(exit->code == 0);
    REQUIRE(source.Stderr().find("201 lines sent to job " + run.job) != std::string::npos);
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      return JobIn(c.node(0), run.job, {"done", "failed", "cancelled"}, why);
    });
    REQUIRE(StateOf(c, run.job) == "done");
    auto file = HydfsCat(c.node(0), dest);
    REQUIRE_OK(file.status());
    RequireSameLines(SplitLines(*file), want, "destination vs python");
    // The job ended: a second rainsource is refused.
    Subprocess late;
    REQUIRE_OK(StartRainsource(c.node(0), run.job, SampleCsvPath(), {}, &late));
    auto late_exit = late.Wait(kJobTimeout);
    REQUIRE(late_exit.has_value());
    INFO("late rainsource: " << late.Stderr());
    CHECK(late_exit->code == 1);
  }
  {
    // Attached: the console gets the output while rainsource feeds the job.
    std::string dest = Dest("live-attached");
    Subprocess ctl;
    REQUIRE_OK(StartCtl(
        {"--node", c.node(0).ControlAddress(), "job", "submit", "--live", "--stage", "grep Parking",
         "--stage", "select 2,3", "--tasks", "2", "--dest", dest, "--name", "live-attached"},
        &ctl));
    std::string job;
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      job = JobWriting(c, dest, "running", why);
      return !job.empty();
    });
    Subprocess source;
    REQUIRE_OK(StartRainsource(c.node(1), job, SampleCsvPath(), {"--rate", "2000"}, &source));
    auto exit = source.Wait(kJobTimeout);
    REQUIRE(exit.has_value());
    INFO("rainsource: " << source.Stderr());
    REQUIRE(exit->code == 0);
    JobRun run = Collect(ctl, job);
    RequireSameLines(DoneOutput(c, run, dest), want, "console vs python");
  }
  {
    // One rainsource per job; cancelling the job ends the attached one (exit 1).
    std::string dest = Dest("live-cancel");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "identity", "--tasks",
                                    "2", "--dest", dest, "--detach"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 0);
    Subprocess first;
    REQUIRE_OK(StartRainsource(c.node(1), run.job, SampleCsvPath(), {"--rate", "20"}, &first));
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      auto st = JobStatus(c.node(0), run.job);
      if (!st.ok()) {
        *why = st.status().ToString();
        return false;
      }
      *why = "source_tuples " + (*st)["source_tuples"].Str();
      return (*st)["source_tuples"].Uint() > 0;
    });
    Subprocess second;
    REQUIRE_OK(StartRainsource(c.node(2), run.job, SampleCsvPath(), {}, &second));
    auto second_exit = second.Wait(kJobTimeout);
    REQUIRE(second_exit.has_value());
    INFO("second rainsource: " << second.Stderr());
    CHECK(second_exit->code == 1);
    CHECK(second.Stderr().find("already") != std::string::npos);
    CHECK(Ctl(c.node(0), {"job", "cancel", run.job}).code() == 0);
    auto first_exit = first.Wait(kJobTimeout);
    REQUIRE(first_exit.has_value());
    INFO("first rainsource: " << first.Stderr());
    CHECK(first_exit->code == 1);
    CHECK(first.Stderr().find("cancelled") != std::string::npos);
  }
  {
    // rainsource for a job that does not read from rainsource: refused.
    std::string dest = Dest("not-live");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", "identity", "--src", kSample,
                                    "--dest", dest, "--rate", "50", "--detach"});
    REQUIRE(run.result.code() == 0);
    Subprocess source;
    REQUIRE_OK(StartRainsource(c.node(1), run.job, SampleCsvPath(), {}, &source));
    auto exit = source.Wait(kJobTimeout);
    REQUIRE(exit.has_value());
    INFO("rainsource: " << source.Stderr());
    CHECK(exit->code == 1);
    CHECK(Ctl(c.node(0), {"job", "cancel", run.job}).code() == 0);
  }
}

// An operator (python3 + msgpack, no SDK) that answers hello, then fails on the first batch
// holding a tuple from past line 60 of the input (`file:line` keys): `crash` exits 3, `garbage`
// writes bytes that are no MessagePack message and keeps reading. It fails on the same tuple
// in every run, so the restarts from checkpoints fail too and the job fails in the end.
std::string BadOperator(Cluster& c, const std::string& kind) {
  std::string path = c.dir() + "/" + kind + ".py";
  std::string body = R"PY(#!/usr/bin/python3
import sys, msgpack
kind = sys.argv[1]
out = sys.stdout.buffer
seen = 0
def late(key):
    try:
        return int(key.rsplit(':', 1)[1]) > 60
    except (IndexError, ValueError):
        return False
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": kind}]))
    elif msg[0] == 2:
        seen += len(msg[1])
        if any(late(t[0]) for t in msg[1]):
            if kind == 'crash':
                print('crashing on purpose after %d tuples' % seen, file=sys.stderr, flush=True)
                sys.exit(3)
            out.write(b'\xc1\xc1 this is not MessagePack \xc1')
        else:
            out.write(msgpack.packb([3, [[t] for t in msg[1]]]))
    out.flush()
)PY";
  REQUIRE_OK(WriteLocal(path, body));
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add);
  return path;
}

TEST_CASE("bad jobs fail with a clear message and the right exit code; the cluster carries on",
          "[stream-bad-input]") {
  Cluster c(3, StreamArgs());
  StartStream(c);

  // Operators that fail mid-run: the job fails with the task's reason; its processes end.
  const std::map<std::string, std::string> expected_reason = {{"crash", "exit code 3"},
                                                              {"garbage", "undecodable"}};
  for (const auto& [kind, reason] : expected_reason) {
    CAPTURE(kind);
    std::string op = BadOperator(c, kind);
    std::string dest = Dest(kind);
    JobRun run =
        RunJob(c.node(1), {"job", "submit", "--stage", "grep Parking", "--stage", op + " " + kind,
                           "--tasks", "2", "--src", kSample, "--dest", dest, "--rate", "200"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 1);
    REQUIRE(!run.job.empty());
    REQUIRE(run.result.err.find("job " + run.job + " failed: ") != std::string::npos);
    auto st = JobStatus(c.node(0), run.job);
    REQUIRE_OK(st.status());
    INFO("reason: " << (*st)["reason"].Str());
    CHECK((*st)["state"].Str() == "failed");
    CHECK((*st)["reason"].Str().find(reason) != std::string::npos);
    CHECK(run.result.err.find(reason) != std::string::npos);
    auto tasks = JobTasks(c.node(0), run.job);
    REQUIRE_OK(tasks.status());
    std::vector<int64_t> pids = OperatorPids(*tasks, 2);
    CHECK(pids.size() == 4);
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) { return TasksGone(pids, why); });
  }

  // Operators that cannot start: the job fails before any tuple, with the operator's message.
  {
    std::string dest = Dest("no-args");
    JobRun run = RunJob(c.node(0), {"RainStorm", "grep", "select", kSample, dest, "3"});
    INFO(run.result.Describe());
    CHECK(run.result.code() == 1);
    CHECK(run.result.err.find("expected exactly one argument") != std::string::npos);
    dest = Dest("live-names");
    run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "select OBJECTID", "--dest",
                             dest, "--detach"});
    INFO(run.result.Describe());
    CHECK(run.result.code() == 1);
    CHECK(run.result.err.find("no CSV header") != std::string::npos);
  }

  // Refused submissions. Usage errors (exit 2) send nothing; the leader's refusals (exit 1)
  // leave at most a failed job in job list, with the reason.
  const std::string existing = "data/existing.csv";
  REQUIRE_OK(HydfsCreate(c.node(0), SampleCsvPath(), existing).status());
  auto jobs_before = JobList(c.node(0));
  REQUIRE_OK(jobs_before.status());
  struct Refusal {
    std::string what;
    std::vector<std::string> args;
    int code;
    std::string message;  // expected in stderr
  };
  std::string d = Dest("refused");
  const std::vector<Refusal> refusals = {
      {"unknown built-in",
       {"job", "submit", "--stage", "nosuchop", "--src", kSample, "--dest", d},
       1,
       "unknown operator 'nosuchop'"},
      {"unknown operator path",
       {"job", "submit", "--stage", "/nonexistent/op", "--src", kSample, "--dest", d},
       2,
       "not an executable file"},
      {"missing source",
       {"job", "submit", "--stage", "identity", "--src", "data/nope.csv", "--dest", d},
       1,
       "no such file"},
      {"existing destination",
       {"job", "submit", "--stage", "identity", "--src", kSample, "--dest", existing},
       1,
       "already exists"},
      {"destination = source",
       {"job", "submit", "--stage", "identity", "--src", kSample, "--dest", kSample},
       2,
       "the destination is the source"},
      {"Ntasks not a number",
       {"RainStorm", "2", "x", "grep", "a", "select", "0", kSample, d, "true", "false", "0", "0",
        "0"},
       2,
       ""},
      {"bad exactly_once boolean",
       {"RainStorm", "2", "1", "grep", "a", "select", "0", kSample, d, "maybe", "false", "0", "0",
        "0"},
       2,
       "maybe"},
      {"bad autoscale boolean",
       {"RainStorm", "2", "1", "grep", "a", "select", "0", kSample, d, "true", "2", "0", "0", "0"},
       2,
       ""},
      {"negative INPUT_RATE",
       {"RainStorm", "2", "1", "grep", "a", "select", "0", kSample, d, "true", "false", "-5", "0",
        "0"},
       2,
       ""},
      {"Nstages does not match",
       {"RainStorm", "3", "1", "grep", "a", "select", "0", kSample, d, "true", "false", "0", "0",
        "0"},
       2,
       ""},
      {"older form, bad num_tasks",
       {"RainStorm", "identity", "identity", kSample, d, "three"},
       2,
       ""},
      {"--tasks 0",
       {"job", "submit", "--stage", "identity", "--tasks", "0", "--src", kSample, "--dest", d},
       2,
       ""},
      {"--rate not a number",
       {"job", "submit", "--stage", "identity", "--rate", "fast", "--src", kSample, "--dest", d},
       2,
       ""},
      {"neither --src nor --live", {"job", "submit", "--stage", "identity", "--dest", d}, 2, ""},
  };
  size_t leader_refusals = 0;
  for (const auto& r : refusals) {
    CAPTURE(r.what);
    JobRun run = RunJob(c.node(2), r.args);
    INFO(run.result.Describe());
    CHECK(run.result.code() == r.code);
    CHECK(run.result.out.empty());
    CHECK(run.result.err.rfind("rainctl: ", 0) == 0);
    CHECK(std::count(run.result.err.begin(), run.result.err.end(), '\n') <= 2);
    if (!r.message.empty()) CHECK(run.result.err.find(r.message) != std::string::npos);
    if (r.code == 1) ++leader_refusals;
  }
  auto jobs_after = JobList(c.node(0));
  REQUIRE_OK(jobs_after.status());
  std::set<std::string> before_ids;
  for (const Json& j : *jobs_before) before_ids.insert(j["job"].Str());
  size_t new_jobs = 0;
  for (const Json& j : *jobs_after) {
    if (before_ids.count(j["job"].Str())) continue;
    ++new_jobs;
    INFO("new job " << j["job"].Str() << " " << j["state"].Str() << ": " << j["reason"].Str());
    CHECK(j["state"].Str() == "failed");
    CHECK(!j["reason"].Str().empty());
  }
  CHECK(new_jobs <= leader_refusals);
  // No destination was created; the existing one is intact.
  CHECK(!HydfsLs(c.node(0), d).ok());
  auto kept = HydfsCat(c.node(1), existing);
  REQUIRE_OK(kept.status());
  auto local = ReadLocal(SampleCsvPath());
  REQUIRE_OK(local.status());
  CHECK(*kept == *local);

  // Every daemon still runs, and a normal job still works.
  std::string why;
  bool running = AllRunning(c, &why);
  INFO(why);
  REQUIRE(running);
  std::string dest = Dest("after");
  RequireSameLines(DoneOutput(c, App1(c, "Parking", 2, true, kSample, dest), dest),
                   Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"}), "console vs python");
}

}  // namespace
}  // namespace rs::harness
