// Stream engine cluster tests of a job's life around its edges (daemon/stream/README.md "Life of
// a job"): a cancel while the job starts. Helpers in stream_cases.h; each TEST_CASE runs as its
// own meson test.
#include <dirent.h>

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

}  // namespace rs::harness
