// Cluster tests of the stream engine: real raind processes on 127.0.0.1, jobs submitted through
// the real rainctl (every command form) and rainsource, outputs compared with an independent
// computation (tests/harness/stream.h: python3's csv module over the same file, line by line).
// App 1 is `grep PATTERN | select OBJECTID,Sign_Type`, App 2 `grep -x --column Sign_Post VALUE |
// count Category`, run on the real Champaign export (../shared/datasets, when present) and the
// repo sample. Both the console output (attached rainctl) and the HyDFS destination are checked.
// Each TEST_CASE starts one cluster and runs several jobs on it; each runs as its own meson test.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/cluster/stream_cases.h"

namespace rs::harness {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace stream_cases;

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

  // Key groups do not change results: 5 groups over 3 tasks (the count stage's tasks own 2, 2
  // and 1 of them, as list_tasks shows), the same counts.
  dest = Dest("app2-groups");
  JobRun run =
      RunJob(c.node(2), {"RainStorm", "2", "3", "grep -x --column Sign_Post 'Punched Telespar'",
                         "count Category", kSample, dest, "true", "false", "0", "0", "0",
                         "--key-groups", "5"});
  RequireCounts(DoneOutput(c, run, dest), want, "5 key groups vs python");
  auto tasks = JobTasks(c.node(0), run.job);
  REQUIRE_OK(tasks.status());
  std::map<std::string, std::string> groups;
  for (const Json& t : *tasks) groups[t["stage"].Str() + "." + t["task"].Str()] = t["groups"].Str();
  CHECK(groups["1.0"] == "");  // stage 1 is not keyed
  CHECK(groups["2.0"] == "0-1");
  CHECK(groups["2.1"] == "2-3");
  CHECK(groups["2.2"] == "4");
  auto status = JobStatus(c.node(0), run.job);
  REQUIRE_OK(status.status());
  CHECK((*status)["key_groups"].Uint() == 5);
  // More tasks than groups: refused before anything runs.
  CommandResult few =
      Ctl(c.node(2), {"RainStorm", "2", "3", "identity", "identity", kSample, Dest("app2-few"),
                      "true", "false", "0", "0", "0", "--key-groups", "2"});
  CHECK(few.code() == 2);
  CHECK(few.err.find("key groups must be 3") != std::string::npos);
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
    INFO("autoscale=true runs (stages 2..N may be rescaled, daemon/stream/README.md Autoscaling)");
    std::string dest = Dest("autoscale");
    JobRun run = RunJob(c.node(1), {"RainStorm", "2", "3", "grep", "Parking", "select", "0,3",
                                    kSample, dest, "true", "true", "0", "10", "100"});
    RequireSameLines(DoneOutput(c, run, dest),
                     Want(c, {"select", SampleCsvPath(), "0,3", "Parking"}),
                     "autoscaling job vs python");
    auto status = JobStatus(c.node(0), run.job);
    REQUIRE_OK(status.status());
    CHECK((*status)["autoscale"].Str() == "thresholds");
  }
  {
    INFO("bad autoscaling arguments are usage errors: nothing is sent");
    const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
        {{"2", "3", "0", "100", "10"}, "above HW"},
        {{"2", "3", "0", "5", "5"}, "must be below HW"},
        {{"2", "3", "0", "0", "0"}, "needs HW > 0"},
        {{"2", "3", "-5", "1", "10"}, "INPUT_RATE"},
        {{"2", "3", "0", "-1", "10"}, "LW"},
        {{"2", "0", "0", "1", "10"}, "tasks per stage"},
    };
    for (const auto& [w, why] : bad) {
      std::string dest = Dest("autoscale-bad");
      JobRun run = RunJob(c.node(1), {"RainStorm", w[0], w[1], "grep", "Parking", "select", "0,3",
                                      kSample, dest, "true", "true", w[2], w[3], w[4]});
      INFO(run.result.Describe());
      CHECK(run.result.code() == 2);
      CHECK(run.result.err.find(why) != std::string::npos);
      CHECK(!HydfsLs(c.node(0), dest).ok());
    }
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

}  // namespace
}  // namespace rs::harness
