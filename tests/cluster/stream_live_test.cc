// Cluster tests of the stream engine's live jobs (rainsource in, rainsource closing) and of bad
// jobs (clear messages, right exit codes, the cluster carries on). Real raind, rainctl and
// rainsource on 127.0.0.1; helpers in stream_cases.h. Each TEST_CASE runs as its own meson test.
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
std::string BadOperator(OperatorDir& ops, const std::string& kind) {
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
  auto path = ops.Write(kind + ".py", body);
  REQUIRE_OK(path.status());
  return *path;
}

TEST_CASE("bad jobs fail with a clear message and the right exit code; the cluster carries on",
          "[stream-bad-input]") {
  OperatorDir ops;  // the bad operators' directory, in operator_dirs
  Cluster c(3, StreamArgs(ops.Args()));
  StartStream(c);

  // Operators that fail mid-run: the job fails with the task's reason; its processes end.
  const std::map<std::string, std::string> expected_reason = {{"crash", "exit code 3"},
                                                              {"garbage", "undecodable"}};
  for (const auto& [kind, reason] : expected_reason) {
    CAPTURE(kind);
    std::string op = BadOperator(ops, kind);
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
    // The README's count: a task that fails 5 times fails the job (it said 6 before).
    CHECK((*st)["reason"].Str().find(" failed 5 times; the last: ") != std::string::npos);
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
