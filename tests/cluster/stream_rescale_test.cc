// Cluster tests of rescaling (daemon/stream/README.md "Autoscaling"): a running exactly-once job
// whose stage 2 is the stateful `count` has that stage moved between task counts by `rainctl
// job rescale` while its input streams (App 2 over the Champaign export, rate-limited to run
// ~8 s). Its output must be exactly the running counts python computes: no count skipped,
// repeated or lost, whatever moved where, and with a worker SIGKILLed in the middle of a
// rescale. No task other than the ones added or retired restarts. Stage 1 grows too: a live
// job's by joining rainsource's round robin, a file job's by cutting its tasks' unread ranges.
#include <algorithm>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/cluster/stream_cases.h"
#include "tests/harness/ctl.h"

namespace rs::harness {
namespace {

using namespace stream_cases;
using namespace std::chrono_literals;

constexpr double kJobSeconds = 8;

struct RescaleRun {
  Cluster c;
  std::string src, local;  // the input in HyDFS, and its local copy
  std::vector<std::string> want;
  uint64_t rate = 0;
  explicit RescaleRun(size_t nodes, double seconds = kJobSeconds) : c(nodes, StreamArgs()) {
    StartStream(c);
    auto [path, name] = StoreChampaign(c);
    src = name;
    local = path;
    want = Want(c, {"count", local, "Category", "-x", "--column", "Sign_Post", "Punched Telespar"});
    auto data = ReadLocal(local);
    REQUIRE_OK(data.status());
    uint64_t lines = std::count(data->begin(), data->end(), '\n');
    rate = std::max<uint64_t>(10, static_cast<uint64_t>(lines / seconds));
  }
  // App 2 with autoscaling on (thresholds no rate reaches: every rescale here is by hand; at
  // most 4 tasks a stage), attached through the leader, which no failure here touches.
  std::string Start(const std::string& dest, Subprocess* attached, int tasks) {
    REQUIRE_OK(StartAttachedJob(
        c.node(0),
        {"RainStorm", "2", std::to_string(tasks), "grep -x --column Sign_Post 'Punched Telespar'",
         "count Category", src, dest, "true", "true", std::to_string(rate), "0", "1000000000",
         "--max-tasks", "4"},
        attached));
    std::string job;
    REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
      job = FindJobWriting(c.node(0), dest, "running", why);
      return !job.empty();
    });
    return job;
  }
  // Every row counted by Category (no filter: a line lost or read twice anywhere shows), with
  // autoscaling on as in Start.
  std::string StartCountingRows(const std::string& dest, Subprocess* attached, int tasks) {
    want = Want(c, {"count", local, "Category"});
    REQUIRE_OK(StartAttachedJob(c.node(0),
                                {"RainStorm", "2", std::to_string(tasks), "identity",
                                 "count Category", src, dest, "true", "true", std::to_string(rate),
                                 "0", "1000000000", "--max-tasks", "4"},
                                attached));
    std::string job;
    REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
      job = FindJobWriting(c.node(0), dest, "running", why);
      return !job.empty();
    });
    return job;
  }
  CommandResult Rescale(const std::string& job, int tasks) {
    return Ctl(c.node(0), {"job", "rescale", job, "2", std::to_string(tasks)}, 90s);
  }
  std::vector<std::string> Finish(Subprocess& attached, const std::string& job,
                                  const std::string& dest) {
    JobRun run = FinishAttachedJob(attached, job, 90s);
    INFO("job " << job << ": " << run.result.Describe());
    REQUIRE(run.result.code() == 0);
    REQUIRE(run.result.err.find("job " + job + " done") != std::string::npos);
    std::vector<std::string> console = run.Lines();
    RequireCounts(console, want, "console of job " + job);
    auto file = HydfsCat(c.node(0), dest);
    REQUIRE_OK(file.status());
    RequireSameLines(SplitLines(*file), console, "destination " + dest + " vs console");
    return console;
  }
  // `rainctl job rescale JOB STAGE TASKS`, and as soon as the leader logs its start, SIGKILL of
  // the node of a task of `stage` (a giver; not the leader). The rescale settles once the killed
  // tasks are rebuilt (or gives up at 60 s): either way the job must end done, counts exact.
  void RescaleKillingGiver(const std::string& job, uint32_t stage, int tasks) {
    std::this_thread::sleep_for(1500ms);
    auto now = OperatorTasks(c.node(0), job, 2);
    REQUIRE_OK(now.status());
    std::string victim;
    for (const auto& t : *now) {
      if (t.stage == stage && t.node != c.node(0).Id()) victim = t.node;
    }
    REQUIRE(!victim.empty());
    Subprocess rescale;
    REQUIRE_OK(StartCtl({"--node", c.node(0).ControlAddress(), "job", "rescale", job,
                         std::to_string(stage), std::to_string(tasks)},
                        &rescale));
    REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
      *why = "no rescale_start in the leader's log";
      return !LeaderLines("rescale_start", job).empty();
    });
    for (size_t i = 1; i < c.size(); ++i) {
      if (c.node(i).Id() == victim) c.node(i).Kill();
    }
    auto ended = rescale.Wait(120s);
    REQUIRE(ended.has_value());
  }
  std::vector<std::string> LeaderLines(const std::string& event, const std::string& job) {
    return LogLinesWith(c.node(0), {"event=" + event, "job=" + job + " "});
  }
  uint32_t Stage2Tasks(const std::string& job) {
    auto tasks = OperatorTasks(c.node(0), job, 2);
    REQUIRE_OK(tasks.status());
    return static_cast<uint32_t>(std::count_if(tasks->begin(), tasks->end(),
                                               [](const TaskEntry& t) { return t.stage == 2; }));
  }
};

}  // namespace

TEST_CASE("a stateful count stage rescaled 1 -> 3 -> 1 -> 2 mid-job gives the exact counts",
          "[stream-rescale]") {
  RescaleRun r(4);
  std::string dest = Dest("rescale");
  Subprocess attached;
  std::string job = r.Start(dest, &attached, 1);
  // Stage 1's tasks must not restart: their pids stay.
  auto before = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(before.status());
  // Refused with a reason, nothing changed: a stage the job does not have, a count out of range
  // (0 is a usage error, nothing sent; 5 is above the job's --max-tasks).
  for (const auto& [args, code, says] :
       std::vector<std::tuple<std::vector<std::string>, int, std::string>>{
           {{"2", "0"}, 2, "TASKS"},
           {{"2", "5"}, 1, "1 to 4 tasks"},
           {{"3", "2"}, 1, "stage 3"}}) {
    CommandResult res = Ctl(r.c.node(0), {"job", "rescale", job, args[0], args[1]});
    INFO(res.Describe());
    CHECK(res.code() == code);
    CHECK(res.err.find(says) != std::string::npos);
  }
  CHECK(r.Stage2Tasks(job) == 1);
  for (int tasks : {3, 1, 2}) {
    std::this_thread::sleep_for(1200ms);
    CommandResult res = r.Rescale(job, tasks);
    INFO(res.Describe());
    REQUIRE(res.code() == 0);
    CHECK(res.out.find(": " + std::to_string(tasks) + " tasks") != std::string::npos);
    CHECK(r.Stage2Tasks(job) == static_cast<uint32_t>(tasks));
  }
  auto during = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(during.status());
  for (const auto& b : *before) {
    if (b.stage != 1) continue;
    bool same = std::any_of(during->begin(), during->end(), [&](const TaskEntry& d) {
      return d.Name() == b.Name() && d.pid == b.pid && d.incarnation == 1;
    });
    CHECK(same);
  }
  r.Finish(attached, job, dest);
  CHECK(r.LeaderLines("rescaled", job).size() == 3);
  // A job that ended is not rescaled: a non-zero exit with a reason.
  CommandResult ended = Ctl(r.c.node(0), {"job", "rescale", job, "2", "3"});
  CHECK(ended.code() == 1);
  CHECK(ended.err.find("done") != std::string::npos);
  // Nor is a job submitted without autoscaling (its paths are numbered for its task count).
  JobRun fixed =
      RunJob(r.c.node(0), {"RainStorm", "2", "2", "grep Telespar", "count Category", r.src,
                           Dest("fixed"), "true", "false", "100", "0", "0", "--detach"});
  REQUIRE(fixed.result.code() == 0);
  CommandResult refused = Ctl(r.c.node(0), {"job", "rescale", fixed.job, "2", "3"});
  INFO(refused.Describe());
  CHECK(refused.code() == 1);
  CHECK(refused.err.find("autoscaling") != std::string::npos);
  CHECK(Ctl(r.c.node(0), {"job", "cancel", fixed.job}).code() == 0);
}

TEST_CASE(
    "a live job's stage 1 rescaled 1 -> 3 -> 1 -> 3 -> 1 -> 2 while rainsource feeds it: "
    "the counts are exact",
    "[stream-rescale-live]") {
  RescaleRun r(4);
  std::string dest = Dest("rescale-live");
  Subprocess attached;
  // Every line of the export (its header line left out) counted by Category (column 8), live:
  // no filter, so a line lost anywhere shows in a count. INPUT_RATE caps rainsource so that
  // the input takes ~8 s.
  auto data = ReadLocal(r.local);
  REQUIRE_OK(data.status());
  std::string input = r.c.dir() + "/live-input.txt";
  REQUIRE_OK(WriteLocal(input, data->substr(data->find('\n') + 1)));
  r.want = Want(r.c, {"count", input, "8"});
  REQUIRE_OK(
      StartAttachedJob(r.c.node(0),
                       {"RainStorm", "2", "1", "identity", "count 8", "-", dest, "true", "true",
                        std::to_string(r.rate), "0", "1000000000", "--max-tasks", "4"},
                       &attached));
  std::string job;
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    job = FindJobWriting(r.c.node(0), dest, "running", why);
    return !job.empty();
  });
  Subprocess source;
  REQUIRE_OK(StartRainsource(r.c.node(1), job, input, {}, &source));
  auto before = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(before.status());
  // Each scale-down ends the leaving tasks' input while the others take lines (rainsource once
  // lost the open batch of another task there: more scale-downs, more chances to see it).
  for (int tasks : {3, 1, 3, 1, 2}) {
    std::this_thread::sleep_for(700ms);
    CommandResult res = Ctl(r.c.node(0), {"job", "rescale", job, "1", std::to_string(tasks)}, 90s);
    INFO(res.Describe());
    REQUIRE(res.code() == 0);
    auto now = OperatorTasks(r.c.node(0), job, 2);
    REQUIRE_OK(now.status());
    CHECK(std::count_if(now->begin(), now->end(),
                        [](const TaskEntry& t) { return t.stage == 1; }) == tasks);
  }
  auto ended = source.Wait(90s);
  REQUIRE(ended.has_value());
  INFO("rainsource: " << source.Stderr());
  REQUIRE(ended->code == 0);
  // The count task never restarted: its pid stayed.
  auto during = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(during.status());
  for (const auto& b : *before) {
    if (b.stage != 2) continue;
    CHECK(std::any_of(during->begin(), during->end(), [&](const TaskEntry& d) {
      return d.Name() == b.Name() && d.pid == b.pid && d.incarnation == 1;
    }));
  }
  r.Finish(attached, job, dest);
  CHECK(r.LeaderLines("rescaled", job).size() == 5);
}

TEST_CASE(
    "a file job's stage 1 grown 1 -> 2 -> 4 by cutting its tasks' unread ranges, its stateful "
    "stage 2 rescaled between: the counts are exact; stage 1 does not shrink",
    "[stream-rescale-source]") {
  RescaleRun r(4, 16);
  std::string dest = Dest("rescale-source");
  Subprocess attached;
  std::string job = r.StartCountingRows(dest, &attached, 1);
  auto before = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(before.status());
  auto count = [&](uint32_t stage) {
    auto now = OperatorTasks(r.c.node(0), job, 2);
    REQUIRE_OK(now.status());
    return std::count_if(now->begin(), now->end(),
                         [&](const TaskEntry& t) { return t.stage == stage; });
  };
  for (const auto& [stage, tasks] :
       std::vector<std::pair<int, int>>{{1, 2}, {2, 3}, {1, 4}, {2, 1}}) {
    std::this_thread::sleep_for(1000ms);
    CommandResult res = Ctl(
        r.c.node(0), {"job", "rescale", job, std::to_string(stage), std::to_string(tasks)}, 90s);
    INFO(res.Describe());
    REQUIRE(res.code() == 0);
    CHECK(count(static_cast<uint32_t>(stage)) == tasks);
  }
  CommandResult shrink = Ctl(r.c.node(0), {"job", "rescale", job, "1", "2"});
  INFO(shrink.Describe());
  CHECK(shrink.code() == 1);
  CHECK(shrink.err.find("does not shrink") != std::string::npos);
  // Stage 1's first task never restarted: it gave pieces away as it read.
  auto during = OperatorTasks(r.c.node(0), job, 2);
  REQUIRE_OK(during.status());
  for (const auto& b : *before) {
    if (b.stage != 1) continue;
    CHECK(std::any_of(during->begin(), during->end(), [&](const TaskEntry& d) {
      return d.Name() == b.Name() && d.pid == b.pid && d.incarnation == 1;
    }));
  }
  r.Finish(attached, job, dest);
  CHECK(r.LeaderLines("rescaled", job).size() == 4);
  // Each of the 4 stage-1 tasks read a share (a piece cut for it was not empty).
  auto done = r.LeaderLines("task_completed", job);
  int readers = 0;
  for (const auto& line : done) {
    if (line.find(" task=1.") == std::string::npos) continue;
    ++readers;
    INFO(line);
    CHECK(line.find(" tuples_in=0 ") == std::string::npos);
  }
  CHECK(readers == 4);
}

TEST_CASE("a worker SIGKILLed as a file job's stage 1 grows: the counts are still exact",
          "[stream-rescale-source-kill]") {
  RescaleRun r(5, 12);
  std::string dest = Dest("rescale-source-kill");
  Subprocess attached;
  std::string job = r.StartCountingRows(dest, &attached, 2);
  r.RescaleKillingGiver(job, 1, 4);
  r.Finish(attached, job, dest);
  CHECK(!r.LeaderLines("task_rescheduled", job).empty());
}

TEST_CASE("a worker SIGKILLed in the middle of a rescale: the counts are still exact",
          "[stream-rescale-kill]") {
  RescaleRun r(5);
  std::string dest = Dest("rescale-kill");
  Subprocess attached;
  std::string job = r.Start(dest, &attached, 2);
  r.RescaleKillingGiver(job, 2, 4);
  r.Finish(attached, job, dest);
  CHECK(!r.LeaderLines("task_rescheduled", job).empty());
  // Afterwards the job (done) is refused further rescales with a reason.
  CommandResult late = r.Rescale(job, 1);
  CHECK(late.code() != 0);
}

}  // namespace rs::harness
