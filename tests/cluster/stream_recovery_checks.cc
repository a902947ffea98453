#include "tests/cluster/stream_recovery_checks.h"

#include <algorithm>
#include <iostream>
#include <set>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/stream.h"

namespace rs::harness {

// `rainctl job checkpoint JOB TASK --json` decodes the task's checkpoint file: its last record
// has input channels (the source, or some of the stage-1 tasks) with frames processed, watermarks
// once the task took tuples and, for a stateful task, the operator's state; the text form and
// --all agree on the record count.
void RequireCheckpointReadable(Cluster& c, const std::string& job, const std::string& task,
                               bool stateful, int tasks_per_stage) {
  CommandResult r = Ctl(c.node(0), {"--json", "job", "checkpoint", job, task});
  INFO(r.Describe());
  REQUIRE(r.code() == 0);
  auto j = Json::Parse(r.out);
  REQUIRE_OK(j.status());
  std::string file = (*j)["file"].Str();
  CHECK(file.rfind("rainstorm/" + job + "/task-", 0) == 0);
  uint64_t records = (*j)["records"].Uint();
  CHECK(records >= 1);
  REQUIRE((*j)["shown"].size() == 1);
  const Json& last = (*j)["shown"][size_t{0}];
  CHECK(last["record"].Uint() == records);
  CHECK(last["time_ms"].Uint() > 0);
  bool source = task.rfind("1.", 0) == 0;
  // A channel appears once a frame came on it. A task that sends its outputs at once (no held
  // outputs waiting for a last record) may end before its last record saw every channel.
  if (source) {
    CHECK(last["in"].size() == 1u);
  } else {
    CHECK(last["in"].size() >= 1u);
    CHECK(last["in"].size() <= static_cast<size_t>(tasks_per_stage));
  }
  uint64_t processed = 0;
  for (const auto& c : last["in"].items()) processed += c["processed"].Uint();
  CHECK(processed > 0);  // the failure struck after frames came in
  // Watermarks exist once tuples arrived; on the repo sample a task may get none at all.
  uint64_t tuples_in = 0;
  std::string groups;
  auto tasks = JobTasks(c.node(0), job);
  REQUIRE_OK(tasks.status());
  for (const auto& e : *tasks) {
    if (e["stage"].Str() + "." + e["task"].Str() == task) {
      tuples_in = e["tuples_in"].Uint();
      groups = e["groups"].Str();
    }
  }
  INFO("task " << task << " took " << tuples_in << " tuples, owns key groups '" << groups << "'");
  if (tuples_in > 0) CHECK(last["watermarks"].size() >= 1);
  // Watermarks are kept per key group: only the task's own groups (group 0 at stage 1).
  std::set<uint64_t> own;
  if (source) {
    CHECK(groups.empty());
    own.insert(0);
  } else {
    std::string ranges = groups;
    std::replace(ranges.begin(), ranges.end(), ',', '\n');
    for (const std::string& range : SplitLines(ranges)) {
      size_t dash = range.find('-');
      uint64_t lo = std::stoull(range.substr(0, dash));
      uint64_t hi = dash == std::string::npos ? lo : std::stoull(range.substr(dash + 1));
      for (uint64_t g = lo; g <= hi; ++g) own.insert(g);
    }
    CHECK(!own.empty());
  }
  for (const auto& w : last["watermarks"].items()) CHECK(own.count(w["group"].Uint()) == 1);
  if (stateful) CHECK(last["state_bytes"].Uint() > 0);
  CommandResult text = Ctl(c.node(0), {"job", "checkpoint", job, task, "--all"});
  INFO(text.Describe());
  REQUIRE(text.code() == 0);
  CHECK(text.out.find(file + ": " + std::to_string(records) + " record(s)") != std::string::npos);
  CHECK(text.out.find("record " + std::to_string(records) + " of " + std::to_string(records)) !=
        std::string::npos);
  // The same file by name; a missing file and a bad TASK are refused.
  CHECK(Ctl(c.node(0), {"job", "checkpoint", "--file", file}).code() == 0);
  CHECK(Ctl(c.node(0), {"job", "checkpoint", "--file", file + "0"}).code() == 1);
  CHECK(Ctl(c.node(0), {"job", "checkpoint", job, "two"}).code() == 2);
  CHECK(Ctl(c.node(0), {"job", "checkpoint", job, "9.9"}).code() == 1);
}

// The rebuilt count task (stage 2 of App 2: stateful, 3 upstreams, the last stage) logs its
// input order (README.md "Order log"): its new run replayed the runs the sink kept, each one
// found whole in its replayed input.
void RequireOrderReplayed(Cluster& c, const std::string& job, const std::string& task) {
  auto tasks = JobTasks(c.node(0), job);
  REQUIRE_OK(tasks.status());
  std::string log;
  for (const auto& e : *tasks) {
    if (e["stage"].Str() + "." + e["task"].Str() == task) log = e["log"].Str();
  }
  REQUIRE(!log.empty());
  auto text = ReadLocal(log);
  REQUIRE_OK(text.status());
  INFO("task log " << log << ":\n" << *text);
  CHECK(text->find("outputs=sent order=logged") != std::string::npos);
  size_t at = text->find("event=order_replay runs=");
  REQUIRE(at != std::string::npos);
  std::cerr << "job " << job << " task " << task << ": "
            << text->substr(at, text->find('\n', at) - at) << "\n";
  if (text->compare(at, 26, "event=order_replay runs=0 ") != 0) {
    CHECK(text->find("event=order_replayed") != std::string::npos);
    CHECK(text->find("mismatched=0") != std::string::npos);
  }
}

}  // namespace rs::harness
