// Cluster tests of the stream engine's recovery: jobs keep their exactly-once results through
// failures. Each trial starts an attached App 1 (`grep Parking | select OBJECTID,Sign_Type`) or
// App 2 (`grep -x --column Sign_Post 'Punched Telespar' | count Category`, whose stage 2 is
// stateful) with 3 tasks per stage on a fresh cluster of 6 raind (node 0 is the leader and hosts
// no task, so it and the sink survive), rate-limited to run ~4.5 s over the Champaign export,
// and about 1.5 s in breaks it: SIGKILLs worker nodes, `rainctl kill_task` on one operator, or a
// second crash while the first is being recovered. The console (the attached rainctl's stdout)
// and the HyDFS destination must then equal the failure-free run and python's computation
// (tests/harness/stream.h): nothing lost, nothing twice, every running count 1..n. The leader's
// log and `job status`/`list_tasks` must show the rebuilds; afterwards no operator process of
// the job is left and every surviving raind runs. Without exactly-once a crash leaves the job
// done with a note that results may be off.
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/raind_process.h"
#include "tests/harness/stream.h"
#include "tests/cluster/stream_recovery_checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// 6 nodes: the leader and 5 workers, so two crashes leave 3 workers for 6 tasks.
constexpr size_t kNodes = 6;
constexpr int kTasks = 3;
constexpr uint32_t kStages = 2;
// The failure-free job runs this long (the input rate is set from the file's length) and the
// failure strikes this far into it.
constexpr double kJobSeconds = 4.5;
constexpr auto kIntoJob = 1500ms;
// A job ends within seconds of its input even after a rebuild: failure detection (~2 s), a
// task restart, its checkpoint read and the replay. This bounds a stuck one.
constexpr auto kJobDeadline = 50s;
constexpr auto kStartDeadline = 20s;
constexpr auto kCleanupDeadline = 15s;
constexpr int64_t kPromptRecoveryMs = 20000;

const std::string kSrc = "data/signs.csv";  // HyDFS name of whichever is used

// INPUT_RATE (tuples/s over all stage-1 tasks) for a ~kJobSeconds job over the input.
uint64_t InputRate() {
  auto data = ReadLocal(ChampaignOrSampleCsvPath());
  REQUIRE_OK(data.status());
  uint64_t lines = std::count(data->begin(), data->end(), '\n');
  return std::max<uint64_t>(10, static_cast<uint64_t>(lines / kJobSeconds));
}

struct App {
  std::string name;
  std::string stage1, stage2;  // each one quoted word of the spec form
  std::vector<std::string> oracle;
  bool counts;  // App 2: running counts
};

App App1() {
  return {"app1",
          "grep Parking",
          "select OBJECTID,Sign_Type",
          {"select", ChampaignOrSampleCsvPath(), "OBJECTID,Sign_Type", "Parking"},
          false};
}

App App2() {
  return {"app2",
          "grep -x --column Sign_Post 'Punched Telespar'",
          "count Category",
          {"count", ChampaignOrSampleCsvPath(), "Category", "-x", "--column", "Sign_Post",
           "Punched Telespar"},
          true};
}

// `RainStorm 2 3 STAGE1 STAGE2 SRC DEST EO false RATE 0 0`, attached through the leader (which
// no failure touches, so the console survives every failure).
// --keep: the checks read the tasks' checkpoints after the job ended.
std::vector<std::string> SpecArgs(const App& app, const std::string& dest, bool eo, uint64_t rate) {
  return {
      "RainStorm",           "2",     std::to_string(kTasks), app.stage1, app.stage2, kSrc,    dest,
      eo ? "true" : "false", "false", std::to_string(rate),   "0",        "0",        "--keep"};
}

std::string Dest(const std::string& what) {
  static int n = 0;
  return "out/" + std::to_string(++n) + "-" + what;
}

// The value of `key=` in a key=value log line ("" when absent; a quoted value without quotes).
std::string LogField(const std::string& line, const std::string& key) {
  size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  size_t start = at + key.size() + 2;
  if (start < line.size() && line[start] == '"') {
    size_t end = line.find('"', start + 1);
    return line.substr(start + 1, end == std::string::npos ? end : end - start - 1);
  }
  size_t end = line.find(' ', start);
  return line.substr(start, end == std::string::npos ? end : end - start);
}

// The leader's `event=task_rescheduled` lines of `job`.
std::vector<std::string> Rescheduled(Cluster& c, const std::string& job) {
  return LogLinesWith(c.node(0), {"event=task_rescheduled", "job=" + job + " "});
}

// One cluster: the leader (node 0) and workers, every node on the HyDFS ring, the input stored.
class RecoveryCluster {
 public:
  explicit RecoveryCluster(std::vector<std::string> more = {}) : c_(kNodes, StreamArgs(more)) {
    REQUIRE_OK(OperatorsBuilt({"rainop-grep", "rainop-select", "rainop-count"}));
    REQUIRE_OK(StartHydfs(c_));
    if (ChampaignOrSampleCsvPath() == SampleCsvPath()) {
      WARN(ChampaignCsvPath() << " is missing: the repo sample stands in (a short job)");
    }
    REQUIRE_OK(HydfsCreate(c_.node(0), ChampaignOrSampleCsvPath(), kSrc).status());
  }

  Cluster& c() { return c_; }

  // python's output for `app`.
  std::vector<std::string> Want(const App& app) {
    auto want = Oracle(c_.dir(), app.oracle);
    REQUIRE_OK(want.status());
    REQUIRE(!want->empty());
    return *want;
  }

  // A running node other than the leader (to read files through), else the leader.
  RaindProcess& Reader() {
    for (size_t i = 1; i < c_.size(); ++i) {
      if (c_.node(i).Running()) return c_.node(i);
    }
    return c_.node(0);
  }

  // The node process whose member id is `id` (nullptr when none runs it).
  RaindProcess* Node(const std::string& id) { return NodeWithId(c_, id); }

  // The failure-free outputs by app name (Baseline()).
  std::map<std::string, std::vector<std::string>> baselines;

 private:
  Cluster c_;
};

// What a trial saw of its job.
struct Trial {
  std::string job;
  JobRun run;
  std::vector<TaskEntry> before;     // the tasks when the failure struck
  std::vector<TaskEntry> after;      // the tasks once the job ended
  std::set<int64_t> pids;            // every operator pid list_tasks showed meanwhile
  std::vector<std::string> console;  // the attached rainctl's lines
  std::vector<std::string> dest;     // the destination's lines
  Json status;                       // job status once ended
  int64_t after_failure_ms = 0;      // from the failure to the end of the attached rainctl
};

// The failure a trial injects once the job has run kIntoJob; it gets the tasks of that moment.
using Failure = std::function<void(RecoveryCluster&, const Trial&)>;

// Runs `app` attached through the leader at `rate` (0: unlimited), strikes with `failure` (when
// given) kIntoJob after the job runs, waits for the end, and checks what holds for every job
// that ended done: the console equals the destination, job status counts them, no operator
// process is left, every surviving raind runs and sees the others alive.
Trial RunTrial(RecoveryCluster& rc, const App& app, bool eo, uint64_t rate,
               const Failure& failure) {
  Cluster& c = rc.c();
  Trial t;
  std::string dest = Dest(app.name);
  Subprocess ctl;
  REQUIRE_OK(StartAttachedJob(c.node(0), SpecArgs(app, dest, eo, rate), &ctl));
  auto gather = [&](std::string* why) {
    auto tasks = OperatorTasks(c.node(0), t.job, kStages);
    if (!tasks.ok()) {
      *why = tasks.status().ToString();
      return false;
    }
    for (const auto& e : *tasks) {
      if (e.pid > 0) t.pids.insert(e.pid);
    }
    return true;
  };
  if (failure) {
    REQUIRE_EVENTUALLY(kStartDeadline, [&](std::string* why) {
      if (!ctl.Running()) {
        *why = "rainctl exited";
        return true;
      }
      t.job = FindJobWriting(c.node(0), dest, "running", why);
      return !t.job.empty();
    });
    INFO("rainctl: " << ctl.Stderr());
    REQUIRE(!t.job.empty());
    TimePoint running = Clock::now();
    std::this_thread::sleep_until(running + kIntoJob);
    auto tasks = OperatorTasks(c.node(0), t.job, kStages);
    REQUIRE_OK(tasks.status());
    REQUIRE(tasks->size() == kStages * kTasks);
    t.before = *tasks;
    for (const auto& e : t.before) t.pids.insert(e.pid);
    {
      std::string why;
      bool still_running = JobIn(c.node(0), t.job, {"running"}, &why);
      INFO("the job must still run when the failure strikes (is the rate too high?): " << why);
      REQUIRE(still_running);
    }
    failure(rc, t);
    TimePoint struck = Clock::now();
    // Until the attached rainctl ends, note every operator pid the job shows (rebuilt runs too).
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      gather(why);
      *why = "rainctl still runs";
      return !ctl.Running();
    });
    t.after_failure_ms = ToMillis(Clock::now() - struck);
    // With exactly-once the job ends a few seconds after the failure (detection ~2 s, the
    // restart, the checkpoint read, the replay: 3-7 s on 2 cores); 20 s means a channel stalled
    // until some timeout.
    if (eo) {
      INFO("job " << t.job << " ended " << t.after_failure_ms << " ms after the failure");
      CHECK(t.after_failure_ms < kPromptRecoveryMs);
    }
  }
  t.run = FinishAttachedJob(ctl, t.job, kJobDeadline);
  t.job = t.run.job;
  INFO("job " << t.job << ": " << t.run.result.Describe());
  REQUIRE(!t.job.empty());
  REQUIRE(t.run.result.code() == 0);
  REQUIRE(t.run.result.err.find("job " + t.job + " done") != std::string::npos);
  t.console = t.run.Lines();
  auto file = HydfsCat(rc.Reader(), dest);
  REQUIRE_OK(file.status());
  t.dest = SplitLines(*file);
  RequireSameLines(t.dest, t.console, "destination " + dest + " vs console");
  auto status = JobStatus(c.node(0), t.job);
  REQUIRE_OK(status.status());
  t.status = *status;
  CHECK(t.status["state"].Str() == "done");
  CHECK(t.status["output_lines"].Uint() == t.console.size());
  auto after = OperatorTasks(c.node(0), t.job, kStages);
  REQUIRE_OK(after.status());
  t.after = *after;
  for (const auto& e : t.after) t.pids.insert(e.pid);
  t.pids.erase(0);
  REQUIRE_EVENTUALLY(kCleanupDeadline,
                     [&](std::string* why) { return OperatorsGone(t.pids, why); });
  std::vector<RaindProcess*> running = c.Running();
  for (size_t i = 0; i < c.size(); ++i) {
    if (!c.node(i).Running()) continue;
    INFO(c.node(i).name() << " (" << c.node(i).Id() << ") answers");
    CHECK(ListMem(c.node(i).ControlAddress()).ok());
  }
  REQUIRE_EVENTUALLY(kConvergeDeadline, [&](std::string* why) { return AllAlive(running, why); });
  // One line per job for the test log: how long recovery took.
  std::cerr << "job " << t.job << " (" << app.name << (eo ? "" : ", exactly-once off")
            << "): done, " << t.console.size() << " lines, rebuilds " << t.status["rebuilds"].Uint()
            << ", elapsed " << t.status["elapsed_ms"].Uint() << " ms"
            << (failure ? ", " + std::to_string(t.after_failure_ms) + " ms after the failure" : "")
            << "\n";
  return t;
}

// The exact result: equal to the failure-free run and to python (App 2: running counts 1..n on
// the console and in the destination, in order).
// The data rows of the input (its lines but the CSV header).
uint64_t InputRows() {
  auto whole = ReadLocal(ChampaignOrSampleCsvPath());
  REQUIRE_OK(whole.status());
  return SplitLines(*whole).size() - 1;
}

void RequireExact(const App& app, const Trial& t, const std::vector<std::string>& baseline,
                  const std::vector<std::string>& want) {
  RequireSameLines(t.console, baseline, "console vs the failure-free run");
  if (app.counts) {
    RequireCounts(t.console, want, "console vs python");
    RequireCounts(t.dest, want, "destination vs python");
  } else {
    RequireSameLines(t.console, want, "console vs python");
  }
  // The counters are exact too, rebuilds or not (a rebuilt task counts on from its checkpoint;
  // before, it started from 0: "source tuples 7301" for 10,000 lines).
  const Json& stages = t.status["stages_detail"];
  REQUIRE(stages.size() == 2);
  INFO("source tuples " << t.status["source_tuples"].Uint() << "; stage 1 in/out "
                        << stages[size_t{0}]["tuples_in"].Uint() << "/"
                        << stages[size_t{0}]["tuples_out"].Uint() << "; stage 2 in/out "
                        << stages[size_t{1}]["tuples_in"].Uint() << "/"
                        << stages[size_t{1}]["tuples_out"].Uint() << "; output lines "
                        << t.status["output_lines"].Uint() << "; rebuilds "
                        << t.status["rebuilds"].Uint());
  CHECK(t.status["source_tuples"].Uint() == InputRows());
  CHECK(stages[size_t{0}]["tuples_in"].Uint() == InputRows());
  CHECK(stages[size_t{0}]["tuples_out"].Uint() == stages[size_t{1}]["tuples_in"].Uint());
  CHECK(stages[size_t{1}]["tuples_out"].Uint() == t.status["output_lines"].Uint());
}

// The output of the failure-free run (unlimited rate), which must be python's; one run per app
// and cluster.
std::vector<std::string> Baseline(RecoveryCluster& rc, const App& app,
                                  const std::vector<std::string>& want) {
  auto& cached = rc.baselines[app.name];
  if (!cached.empty()) return cached;
  INFO("failure-free run of " << app.name);
  Trial t = RunTrial(rc, app, true, 0, nullptr);
  if (app.counts) {
    RequireCounts(t.console, want, "failure-free console vs python");
  } else {
    RequireSameLines(t.console, want, "failure-free console vs python");
  }
  CHECK(t.status["rebuilds"].Uint() == 0);
  cached = t.console;
  return cached;
}

// Every task that ran on a node of `killed` when the failure struck was rescheduled (leader
// log) away from it and runs a later incarnation elsewhere.
void RequireRescheduledFrom(RecoveryCluster& rc, const Trial& t,
                            const std::set<std::string>& killed) {
  std::vector<std::string> lines = Rescheduled(rc.c(), t.job);
  INFO("leader's task_rescheduled lines:\n" << Join(lines));
  for (const auto& e : t.before) {
    if (!killed.count(e.node)) continue;
    CAPTURE(e.Name(), e.node);
    bool logged = false;
    for (const auto& l : lines) {
      logged |= LogField(l, "task") == e.Name() && LogField(l, "old_node") == e.node;
    }
    CHECK(logged);
    for (const auto& a : t.after) {
      if (a.stage != e.stage || a.task != e.task) continue;
      CHECK(a.incarnation >= 2);
      CHECK(!killed.count(a.node));
    }
  }
  CHECK(t.status["rebuilds"].Uint() >= 1);
}

// SIGKILLs the node with member id `id`; returns the id.
std::string KillNode(RecoveryCluster& rc, const std::string& id) {
  RaindProcess* n = rc.Node(id);
  INFO("no running node has id " << id);
  REQUIRE(n != nullptr);
  REQUIRE(n != &rc.c().node(0));
  n->Kill();
  return id;
}

// The tasks' nodes, stage-`stage` tasks' first (by task index from `offset`), then the others:
// the candidates for a crash.
std::vector<std::string> NodesByStage(const std::vector<TaskEntry>& tasks, uint32_t stage,
                                      size_t offset) {
  std::vector<std::string> first, rest;
  auto add = [](std::vector<std::string>& v, const std::string& id) {
    if (std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
  };
  for (size_t k = 0; k < tasks.size(); ++k) {
    const TaskEntry& e = tasks[(k + offset) % tasks.size()];
    add(e.stage == stage ? first : rest, e.node);
  }
  for (const auto& id : rest) add(first, id);
  return first;
}

TEST_CASE("two workers crash mid-job, one with a stage-2 task: the output is exact",
          "[stream-recover-kill2]") {
  // One trial per app, each killing a different stage-2 task's node (App 2's then rejoins).
  for (const auto& [app, trial] : {std::pair{App1(), 0}, std::pair{App2(), 1}}) {
    CAPTURE(app.name, trial);
    RecoveryCluster rc;
    std::vector<std::string> want = rc.Want(app);
    std::vector<std::string> baseline = Baseline(rc, app, want);
    std::set<std::string> killed;
    Trial t = RunTrial(rc, app, true, InputRate(), [&](RecoveryCluster& r, const Trial& now) {
      // A stage-2 task's node (a different task each trial), then a node with a stage-1 task.
      std::vector<std::string> nodes = NodesByStage(now.before, 2, 3 + trial);
      REQUIRE(nodes.size() >= 2);
      std::string other;
      for (const auto& e : now.before) {
        if (e.stage == 1 && e.node != nodes[0] && other.empty()) other = e.node;
      }
      if (other.empty()) other = nodes[1];
      killed = {KillNode(r, nodes[0]), KillNode(r, other)};
    });
    RequireExact(app, t, baseline, want);
    RequireRescheduledFrom(rc, t, killed);
    if (app.counts && trial == 1) {
      // The two killed nodes rejoin (new member ids): the next job places tasks on them.
      std::vector<RaindProcess*> rejoined;
      for (size_t i = 1; i < rc.c().size(); ++i) {
        RaindProcess& n = rc.c().node(i);
        if (n.Running()) continue;
        REQUIRE_OK(n.Restart());
        REQUIRE_OK(n.WaitReady(kStartDeadline));
        rejoined.push_back(&n);
      }
      REQUIRE(rejoined.size() == 2);
      std::vector<RaindProcess*> running = rc.c().Running();
      REQUIRE_EVENTUALLY(kConvergeDeadline,
                         [&](std::string* why) { return AllAlive(running, why); });
      Trial next = RunTrial(rc, app, true, 0, nullptr);
      RequireExact(app, next, baseline, want);
      std::set<std::string> nodes;
      for (const auto& e : next.after) nodes.insert(e.node);
      for (RaindProcess* n : rejoined) {
        INFO(n->name() << " rejoined as " << n->Id() << "; the job's tasks ran on "
                       << Join(std::vector<std::string>(nodes.begin(), nodes.end())));
        CHECK(nodes.count(n->Id()));
      }
    }
  }
}

// `rainctl kill_task NODE PID` through the leader on the task (stage, task index).
std::string KillTask(RecoveryCluster& rc, const Trial& now, uint32_t stage, uint32_t task) {
  for (const auto& e : now.before) {
    if (e.stage != stage || e.task != task) continue;
    CommandResult r = Ctl(rc.c().node(0), {"kill_task", e.node, std::to_string(e.pid)});
    INFO(r.Describe());
    REQUIRE(r.code() == 0);
    REQUIRE(r.out.find("pid " + std::to_string(e.pid)) != std::string::npos);
    return e.node;
  }
  FAIL("no task " << stage << "." << task);
  return "";
}

TEST_CASE("kill_task on a stage-1 task and on a stateful stage-2 task: the output is exact",
          "[stream-recover-killtask]") {
  struct Case {
    App app;
    uint32_t stage, task;
  };
  RecoveryCluster rc;
  for (const Case& k : {Case{App1(), 1, 1}, Case{App2(), 1, 0}, Case{App2(), 2, 2}}) {
    CAPTURE(k.app.name, k.stage, k.task);
    std::vector<std::string> want = rc.Want(k.app);
    std::vector<std::string> baseline = Baseline(rc, k.app, want);
    Trial t = RunTrial(rc, k.app, true, InputRate(), [&](RecoveryCluster& r, const Trial& now) {
      KillTask(r, now, k.stage, k.task);
    });
    RequireExact(k.app, t, baseline, want);
    CHECK(t.status["rebuilds"].Uint() == 1);
    // The text form shows it too (README "Rebuild").
    CommandResult text = Ctl(rc.c().node(0), {"job", "status", t.job});
    CHECK(text.code() == 0);
    CHECK(text.out.find(", task rebuilds 1\n") != std::string::npos);
    std::vector<std::string> lines = Rescheduled(rc.c(), t.job);
    INFO("leader's task_rescheduled lines:\n" << Join(lines));
    REQUIRE(lines.size() == 1);
    const std::string name = std::to_string(k.stage) + "." + std::to_string(k.task);
    CHECK(LogField(lines[0], "task") == name);
    CHECK(LogField(lines[0], "incarnation") == "2");
    // Restarted in place: its node is alive.
    CHECK(LogField(lines[0], "new_node") == LogField(lines[0], "old_node"));
    for (const auto& e : t.after) {
      CAPTURE(e.Name());
      CHECK(e.incarnation == (e.Name() == name ? 2u : 1u));
    }
    RequireCheckpointReadable(rc.c(), t.job, name, k.app.counts && k.stage == 2, kTasks);
    if (k.app.counts && k.stage == 2) RequireOrderReplayed(rc.c(), t.job, name);
  }
}

TEST_CASE("a second crash while the first is being recovered: the output is exact",
          "[stream-recover-double]") {
  for (const App& app : {App2(), App1()}) {
    CAPTURE(app.name);
    RecoveryCluster rc;
    std::vector<std::string> want = rc.Want(app);
    std::vector<std::string> baseline = Baseline(rc, app, want);
    std::set<std::string> killed;
    Trial t = RunTrial(rc, app, true, InputRate(), [&](RecoveryCluster& r, const Trial& now) {
      std::vector<std::string> nodes = NodesByStage(now.before, 2, 0);
      killed.insert(KillNode(r, nodes[0]));
      // As soon as the leader rescheduled a task, crash where it went (when that is a worker)
      // or another worker with a task: the rebuilt task is reading its checkpoint.
      std::string line;
      auto seen = Eventually(
          [&](std::string* why) {
            auto lines = Rescheduled(r.c(), now.job);
            *why = "no task_rescheduled yet";
            if (lines.empty()) return false;
            line = lines[0];
            return true;
          },
          kJobDeadline, 20ms);
      INFO("waited " << seen.ToString());
      REQUIRE(seen.ok);
      std::string second = LogField(line, "new_node");
      RaindProcess* n = r.Node(second);
      if (n == nullptr || n == &r.c().node(0) || killed.count(second)) {
        second.clear();
        for (const auto& id : nodes) {
          if (!killed.count(id)) {
            second = id;
            break;
          }
        }
      }
      REQUIRE(!second.empty());
      killed.insert(KillNode(r, second));
    });
    RequireExact(app, t, baseline, want);
    RequireRescheduledFrom(rc, t, killed);
  }
}

TEST_CASE("without exactly-once a crash still ends the job done, with a note on the results",
          "[stream-recover-eo-off]") {
  RecoveryCluster rc;
  const App app = App1();
  std::vector<std::string> want = rc.Want(app);
  std::set<std::string> killed;
  Trial t = RunTrial(rc, app, false, InputRate(), [&](RecoveryCluster& r, const Trial& now) {
    killed.insert(KillNode(r, NodesByStage(now.before, 2, 1)[0]));
  });
  std::string note = t.status["note"].Str();
  INFO("note: " << note);
  CHECK(note.find("lost or repeated") != std::string::npos);
  CHECK(t.status["rebuilds"].Uint() >= 1);
  // Lost or repeated, but no line that python does not have.
  std::set<std::string> allowed(want.begin(), want.end());
  for (const auto& l : t.console) {
    INFO("console line '" << l << "' is not in python's output");
    CHECK(allowed.count(l));
  }
  // Without exactly-once a rebuilt receiver once expected seq 1 while its upstream tasks resent
  // from where the dead one had acknowledged (a 30 s stall, now fixed). This only tells.
  if (t.after_failure_ms > 20000) {
    WARN("the job took " << t.after_failure_ms << " ms after the crash (the eo-off rewire stall)");
  }
  // A failure-free job on the same cluster has no note.
  Trial clean = RunTrial(rc, app, false, 0, nullptr);
  CHECK(clean.status["note"].Str().empty());
  RequireSameLines(clean.console, want, "failure-free console vs python");
}

// A live job (App 1 by column index: a live input has no header) fed by rainsource at a rate
// for ~kJobSeconds; kIntoJob in, one stage-1 task fails: `kill_task` (restarted in place, on a
// new inbox) or a SIGKILL of its node (moved). rainsource must follow the rebuild (job.tasks)
// and send the new run every frame its checkpoint did not cover: the destination equals
// python's output exactly.
TEST_CASE("a live job's stage-1 task is rebuilt: rainsource follows it and nothing is lost",
          "[stream-recover-live]") {
  RecoveryCluster rc;
  Cluster& c = rc.c();
  auto want = Oracle(c.dir(), {"select", ChampaignOrSampleCsvPath(), "2,3", "Parking"});
  REQUIRE_OK(want.status());
  REQUIRE(!want->empty());
  for (bool kill_node : {false, true}) {
    CAPTURE(kill_node);
    std::string dest = Dest(kill_node ? "live-node" : "live-task");
    JobRun run = RunJob(c.node(0), {"job", "submit", "--live", "--stage", "grep Parking", "--stage",
                                    "select 2,3", "--tasks", std::to_string(kTasks), "--dest", dest,
                                    "--exactly-once", "--detach"});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 0);
    REQUIRE(!run.job.empty());
    Subprocess source;
    REQUIRE_OK(StartRainsource(c.node(0), run.job, ChampaignOrSampleCsvPath(),
                               {"--rate", std::to_string(InputRate())}, &source));
    REQUIRE_EVENTUALLY(kStartDeadline, [&](std::string* why) {
      auto st = JobStatus(c.node(0), run.job);
      if (!st.ok()) {
        *why = st.status().ToString();
        return false;
      }
      *why = "source_tuples " + (*st)["source_tuples"].Str();
      return (*st)["source_tuples"].Uint() > 0;
    });
    std::this_thread::sleep_for(kIntoJob);
    auto tasks = OperatorTasks(c.node(0), run.job, kStages);
    REQUIRE_OK(tasks.status());
    std::set<int64_t> pids;
    const TaskEntry* victim = nullptr;
    for (const auto& e : *tasks) {
      pids.insert(e.pid);
      if (e.stage == 1 && e.task == 1) victim = &e;
    }
    REQUIRE(victim != nullptr);
    {
      INFO("rainsource must still be feeding the job (is the rate too high?)");
      REQUIRE(source.Running());
    }
    if (kill_node) {
      KillNode(rc, victim->node);
    } else {
      CommandResult r = Ctl(c.node(0), {"kill_task", victim->node, std::to_string(victim->pid)});
      INFO(r.Describe());
      REQUIRE(r.code() == 0);
    }
    auto exit = source.Wait(kJobDeadline);
    REQUIRE(exit.has_value());
    INFO("rainsource: " << exit->ToString() << "\n" << source.Stderr());
    REQUIRE(exit->code == 0);
    CHECK(source.Stderr().find("task 1.1 was rebuilt") != std::string::npos);
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      return JobIn(c.node(0), run.job, {"done", "failed", "cancelled"}, why);
    });
    auto status = JobStatus(c.node(0), run.job);
    REQUIRE_OK(status.status());
    INFO("job status: " << (*status)["state"].Str() << " " << (*status)["reason"].Str());
    REQUIRE((*status)["state"].Str() == "done");
    CHECK((*status)["rebuilds"].Uint() >= 1);
    auto file = HydfsCat(rc.Reader(), dest);
    REQUIRE_OK(file.status());
    RequireSameLines(SplitLines(*file), *want, "destination vs python");
    CHECK((*status)["output_lines"].Uint() == want->size());
    auto after = OperatorTasks(c.node(0), run.job, kStages);
    REQUIRE_OK(after.status());
    for (const auto& e : *after) {
      pids.insert(e.pid);
      if (e.stage == 1 && e.task == 1) CHECK(e.incarnation >= 2);
    }
    pids.erase(0);
    REQUIRE_EVENTUALLY(kCleanupDeadline,
                       [&](std::string* why) { return OperatorsGone(pids, why); });
    std::cerr << "live job " << run.job << (kill_node ? " (node killed)" : " (kill_task)")
              << ": done, " << want->size() << " lines; " << source.Stderr();
  }
}

}  // namespace
}  // namespace rs::harness
