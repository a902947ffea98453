// Stream engine cluster tests of a job's life around its edges (daemon/stream/README.md "Life of
// a job"): a cancel while the job starts, a slow operator, size limits, what an ended job
// leaves behind, a reader that pauses.
// Helpers in stream_cases.h; each TEST_CASE runs as its own meson test.
#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/stream_cases.h"

namespace rs::harness {
namespace {

using namespace stream_cases;

// The pids of live processes whose command line contains `needle`.
std::vector<int64_t> ProcessesWith(const std::string& needle) {
  std::vector<int64_t> pids;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos && ProcessAlive(pid)) pids.push_back(pid);
  }
  ::closedir(d);
  return pids;
}

}  // namespace

// Before: a job cancelled while `starting` still had its tasks started 3 s later; they ran and
// wrote checkpoints for about 30 s. The leader's stop went out while start_task calls were
// still being answered.
TEST_CASE("a job cancelled while it starts leaves no task running", "[stream-cancel-starting]") {
  OperatorDir ops;
  // Answers hello after 3 s: the job is still starting when it is cancelled.
  auto slow = ops.Write("slow-start.py", R"PY(#!/usr/bin/python3
import sys, time, msgpack
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=True):
    if msg[0] == 0:
        time.sleep(3)
        out.write(msgpack.packb([1, {"name": "slow-start"}]))
    elif msg[0] == 2:
        out.write(msgpack.packb([3, [[[k, v]] for k, v in msg[1]]]))
    out.flush()
)PY");
  REQUIRE_OK(slow.status());
  Cluster c(3, StreamArgs(ops.Args()));
  StartStream(c);

  std::string dest = Dest("cancel-starting");
  Subprocess attached;
  REQUIRE_OK(StartAttachedJob(c.node(1),
                              {"job", "submit", "--stage", "identity", "--stage", *slow, "--tasks",
                               "2", "--src", kSample, "--dest", dest},
                              &attached));
  std::string job;
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    job = FindJobWriting(c.node(0), dest, "starting", why);
    return !job.empty();
  });
  // The slow operators are starting (their hello is being answered).
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    *why = "no slow-start operator yet";
    return !ProcessesWith(*slow).empty();
  });
  CommandResult cancel = Ctl(c.node(2), {"job", "cancel", job});
  INFO(cancel.Describe());
  REQUIRE(cancel.code() == 0);
  JobRun run = FinishAttachedJob(attached, job);
  INFO(run.result.Describe());
  CHECK(run.result.code() != 0);
  CHECK(StateOf(c, job) == "cancelled");

  // Every operator of the job is gone once the slow starts are over, and stays gone.
  REQUIRE_EVENTUALLY(15s, [&](std::string* why) {
    auto left = ProcessesWith(*slow);
    *why = std::to_string(left.size()) + " slow-start operators still run";
    return left.empty();
  });
  std::this_thread::sleep_for(4s);
  CHECK(ProcessesWith(*slow).empty());
  auto tasks = JobTasks(c.node(0), job);
  REQUIRE_OK(tasks.status());
  for (const Json& t : *tasks) {
    CAPTURE(t["stage"].Uint(), t["task"].Uint());
    CHECK(t["state"].Str() != "running");
  }
}

// Before: a batch of up to 1,024 tuples had a fixed 10 s, so an operator slower than about
// 10 ms a tuple failed every job ("did not answer batch 1 within 10000 ms", 6 tries). Now
// batches are sized by time (OperatorDriver) and deadlines count from the operator's last
// answer.
TEST_CASE("an operator taking 50 ms a tuple is slow, not hung: the job completes exactly",
          "[stream-slow-operator]") {
  OperatorDir ops;
  std::string slow = SlowOperator(ops, "0.05");
  Cluster c(3, StreamArgs(ops.Args()));
  StartStream(c);
  std::vector<std::string> want;
  std::string lines;
  for (int i = 1; i <= 240; ++i) {
    want.push_back("slow line " + std::to_string(i));
    lines += want.back() + "\n";
  }
  REQUIRE_OK(WriteLocal(c.dir() + "/slow.txt", lines));
  REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/slow.txt", "data/slow.txt").status());
  std::string dest = Dest("slow-operator");
  // One task: its 240 tuples were one batch of 12 s before.
  JobRun run = RunJob(
      c.node(1),
      {"job", "submit", "--stage", slow, "--tasks", "1", "--src", "data/slow.txt", "--dest", dest},
      90s);
  RequireSameLines(DoneOutput(c, run, dest), want, "console vs the input");
  auto status = JobStatus(c.node(0), run.job);
  REQUIRE_OK(status.status());
  CHECK((*status)["rebuilds"].Uint() == 0);
}

// Before: frames allowed 64 MiB but the built-in operators refused strings over 32 MiB, after
// 148 s of retrying a failure certain to repeat, and nothing said where the limit was. Now one
// limit (16 MiB a tuple, shared/stream/limits.h, PROTOCOL.md "Limits") is checked where data
// enters, and going over it fails the job at once, without rebuilds.
TEST_CASE("a tuple over the 16 MiB limit fails the job at once with a clear message",
          "[stream-limits]") {
  OperatorDir ops;
  auto bloat = ops.Write("bloat.py", R"PY(#!/usr/bin/python3
import sys, msgpack
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=True, max_buffer_size=1 << 30):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "bloat"}]))
    elif msg[0] == 2:
        out.write(msgpack.packb([3, [[[k, v * (17 * 2**20 // len(v) + 1)]] for k, v in msg[1]]]))
    out.flush()
)PY");
  REQUIRE_OK(bloat.status());
  Cluster c(3, StreamArgs(ops.Args()));
  StartStream(c);
  const std::string big_line(17u << 20, 'x');
  auto failed_at_once = [&](const JobRun& run, const std::string& says) {
    INFO(run.result.Describe());
    CHECK(run.result.code() == 1);
    REQUIRE(!run.job.empty());
    auto st = JobStatus(c.node(0), run.job);
    REQUIRE_OK(st.status());
    INFO("reason: " << (*st)["reason"].Str());
    CHECK((*st)["state"].Str() == "failed");
    CHECK((*st)["reason"].Str().find(says) != std::string::npos);
    CHECK((*st)["reason"].Str().find("16 MiB limit of a tuple") != std::string::npos);
    CHECK((*st)["reason"].Str().find("not retried") != std::string::npos);
    CHECK((*st)["rebuilds"].Uint() == 0);
  };
  {
    INFO("an input line over the limit");
    REQUIRE_OK(WriteLocal(c.dir() + "/huge.txt", "small\n" + big_line + "\nsmall again\n"));
    REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/huge.txt", "data/huge.txt").status());
    JobRun run = RunJob(c.node(1), {"RainStorm", "1", "2", "identity", "data/huge.txt",
                                    Dest("huge-line"), "true", "false", "0", "0", "0"});
    failed_at_once(run, "line 2 of input file data/huge.txt is 17825792 bytes");
  }
  {
    INFO("an operator output over the limit");
    JobRun run = RunJob(c.node(2), {"job", "submit", "--stage", *bloat, "--tasks", "1", "--src",
                                    kSample, "--dest", Dest("bloat")});
    failed_at_once(run, "the operator emitted a tuple of");
  }
  {
    INFO("rainsource: a line over the limit ends the input there, exit 2");
    std::string dest = Dest("live-huge");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "identity", "--tasks",
                                    "1", "--dest", dest, "--detach"});
    REQUIRE(run.result.code() == 0);
    REQUIRE_OK(WriteLocal(c.dir() + "/live-huge.txt", "one\ntwo\n" + big_line + "\nthree\n"));
    Subprocess source;
    REQUIRE_OK(StartRainsource(c.node(0), run.job, c.dir() + "/live-huge.txt", {}, &source));
    auto exit = source.Wait(kJobTimeout);
    REQUIRE(exit.has_value());
    INFO("rainsource: " << exit->ToString() << "\n" << source.Stderr());
    CHECK(exit->code == 2);
    CHECK(source.Stderr().find("line 3 is 17825792 bytes, over the 16 MiB limit of a tuple") !=
          std::string::npos);
    REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
      return JobIn(c.node(0), run.job, {"done", "failed", "cancelled"}, why);
    });
    auto file = HydfsCat(c.node(0), dest);
    REQUIRE_OK(file.status());
    RequireSameLines(SplitLines(*file), {"one", "two"}, "the lines before the long one");
  }
}

// The leader's resident memory, from /proc (bytes).
uint64_t RssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// The entries of every node's stream directory, "node: entry".
std::vector<std::string> StreamDirEntries(Cluster& c) {
  std::vector<std::string> out;
  for (RaindProcess* n : c.Running()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(n->DataDir() + "/stream", ec)) {
      out.push_back(n->name() + ": " + e.path().filename().string());
    }
  }
  return out;
}

// Before: a job's checkpoints stayed in HyDFS (one job left 74 files, 810 MiB x3), the dedup
// logs and directories of failed jobs stayed on the workers, and the leader kept every ended
// job's sink (12 MB -> 1.1 GB over 120 jobs). Now all of it goes when the job ends, unless
// --keep; the leader forgets the sink and gives the memory back.
TEST_CASE("an ended job leaves nothing behind unless kept; the leader's memory stays flat",
          "[stream-leftovers]") {
  OperatorDir ops;
  auto crash = ops.Write("crash.py", R"PY(#!/usr/bin/python3
import sys, msgpack
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=True):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "crash"}]))
    elif msg[0] == 2:
        sys.exit(3)
)PY");
  REQUIRE_OK(crash.status());
  Cluster c(3, StreamArgs(ops.Args()));
  StartStream(c);
  const pid_t leader = c.node(0).Pid();  // the founder leads
  std::vector<std::string> want = Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"});
  auto app1 = [&](const std::vector<std::string>& more) {
    std::string dest = Dest("leftovers");
    std::vector<std::string> args = {"RainStorm", "2",       "3",     "grep", "Parking",
                                     "select",    kApp1Cols, kSample, dest,   "true",
                                     "false",     "0",       "0",     "0"};
    args.insert(args.end(), more.begin(), more.end());
    JobRun run = RunJob(c.node(1), args);
    RequireSameLines(DoneOutput(c, run, dest), want, "console vs python");
    return run.job;
  };
  for (int i = 0; i < 3; ++i) app1({});
  uint64_t rss_warm = RssBytes(leader);
  for (int i = 0; i < 12; ++i) app1({});
  {
    INFO("a job that fails (its tasks rebuilt on other nodes first)");
    JobRun run = RunJob(c.node(2), {"job", "submit", "--stage", "identity", "--stage", *crash,
                                    "--tasks", "2", "--src", kSample, "--dest", Dest("crash")});
    CHECK(run.result.code() == 1);
  }
  {
    INFO("a cancelled job");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "identity", "--dest",
                                    Dest("cancelled"), "--detach"});
    REQUIRE(run.result.code() == 0);
    CHECK(Ctl(c.node(0), {"job", "cancel", run.job}).code() == 0);
  }
  const std::string kept = app1({"--keep"});
  uint64_t rss_end = RssBytes(leader);

  // Only the kept job's files remain: HyDFS checkpoints, and a directory on the workers.
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    std::vector<std::string> left;
    for (RaindProcess* n : c.Running()) {
      auto names = StoredNames(*n);
      if (!names.ok()) {
        *why = names.status().ToString();
        return false;
      }
      for (const auto& name : *names) {
        if (name.rfind("rainstorm/", 0) == 0 && name.rfind("rainstorm/" + kept + "/", 0) != 0) {
          left.push_back(n->name() + ": " + name);
        }
      }
    }
    for (const auto& e : StreamDirEntries(c)) {
      if (e.substr(e.find(": ") + 2) != kept) left.push_back(e);
    }
    *why = std::to_string(left.size()) + " left: " + Join(left, ", ");
    return left.empty();
  });
  CommandResult ckpt = Ctl(c.node(0), {"job", "checkpoint", kept, "2.0"});
  INFO(ckpt.Describe());
  CHECK(ckpt.code() == 0);  // a kept job's checkpoints stay readable
  WARN("leader RSS after 3 jobs " << rss_warm / 1024 << " KiB, after 18 " << rss_end / 1024
                                  << " KiB");
  CHECK(rss_end < rss_warm + (32u << 20));
}

// Before: `rainctl RainStorm ... | (sleep 20; cat)` exited 3 ("no answer from the node for 10
// s") after 12,288 of 300,000 lines, though the job was done: the time rainctl spent blocked on
// its stdout counted as the node's silence.
TEST_CASE("an attached job's reader that pauses longer than the node timeout gets every line",
          "[stream-slow-reader]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  std::string lines;
  for (int i = 1; i <= 150000; ++i) lines += "line " + std::to_string(i) + " of the slow reader\n";
  REQUIRE_OK(WriteLocal(c.dir() + "/many.txt", lines));
  REQUIRE_OK(HydfsCreate(c.node(0), c.dir() + "/many.txt", "data/many.txt").status());
  auto rainctl = RainctlBinary();
  REQUIRE_OK(rainctl.status());
  const std::string got = c.dir() + "/got.txt", rc = c.dir() + "/rainctl.rc";
  const std::string script =
      "set -o pipefail; '" + *rainctl + "' --node " + c.node(0).ControlAddress() +
      " RainStorm 1 2 identity data/many.txt out/slow-reader true false 0 0 0"
      " | (sleep 13; cat > '" +
      got + "'); echo ${PIPESTATUS[0]} > '" + rc + "'";
  CommandResult r = RunCommand({"/bin/bash", "-c", script}, 90s);
  INFO(r.Describe());
  REQUIRE(r.code() == 0);
  auto code = ReadLocal(rc);
  REQUIRE_OK(code.status());
  CHECK(*code == "0\n");
  auto out = ReadLocal(got);
  REQUIRE_OK(out.status());
  CHECK(SplitLines(*out).size() == 150000);
  RequireSameLines(SplitLines(*out), SplitLines(lines), "the reader's lines vs the input");
}

}  // namespace rs::harness
