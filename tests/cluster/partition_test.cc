// Partition scenarios on hosts of their own: 5 network namespaces cabled to one bridge, one raind
// on each (tests/harness/netns.h), faults made with nftables inside the hosts. Every HyDFS
// scenario has one append client per host running the whole time (both sides of the cut); after
// the heal the checker (tests/harness/partition.h) waits for one membership and full
// replication, merges, reads every replica and checks: every acknowledged record present exactly
// once and in its client's order on every replica, identical replicas, failed appends at most
// once, failures answered (no hung rainctl), one membership, nobody on the majority side failed,
// expelled or renamed. The stream scenario isolates a worker host mid-job: the output must be
// exact, or the job must fail with a reason; never a wrong answer.
// Needs root, iproute2 and nftables; elsewhere the binary exits 77 (SKIP) before any test.
#include "tests/harness/partition.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/stream.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

constexpr size_t kHosts = 5;
// Appends run this long on the whole network before the fault strikes.
constexpr auto kBeforeFault = 3s;

std::unique_ptr<PartitionHarness> MakeHarness(size_t files = 3) {
  PartitionOptions options;
  options.hosts = kHosts;
  options.files = files;
  auto h = PartitionHarness::Create(options);
  REQUIRE_OK(h.status());
  return std::move(*h);
}

// Prints the report (always: it is the scenario's evidence) and requires it clean.
void RequireClean(const PartitionReport& r, bool appends = true) {
  std::cerr << "---- partition report\n" << r.ToString() << "----\n";
  INFO(r.ToString());
  if (appends) CHECK(r.acked > 0);
  REQUIRE(r.ok());
}

// Isolates `host` for `hold` while appends run on every host, heals, checks.
void IsolateScenario(size_t host, Clock::duration hold) {
  auto h = MakeHarness();
  h->StartAppends();
  HoldFor(kBeforeFault);
  REQUIRE_OK(h->net().Isolate({host}));
  HoldFor(hold);
  uint64_t dropped = h->net().DroppedPackets(host);
  REQUIRE_OK(h->net().Heal());
  TimePoint healed = Clock::now();
  INFO("packets dropped on the isolated host: " << dropped);
  CHECK(dropped > 0);
  RequireClean(h->AfterHeal({host}, healed,
                            "host " + std::to_string(host) + " isolated for " +
                                std::to_string(ToMillis(hold) / 1000) + " s"));
}

TEST_CASE("a host isolated for 5 s while both sides append loses no acknowledged write",
          "[partition][partition-isolate-5s]") {
  IsolateScenario(4, 5s);
}

TEST_CASE("a host isolated for 15 s rejoins one cluster and every replica holds every ack",
          "[partition][partition-isolate-15s]") {
  IsolateScenario(2, 15s);
}

TEST_CASE("a host isolated for 45 s (longer than cleanup_ms) loses no acknowledged write",
          "[partition][partition-isolate-45s]") {
  IsolateScenario(3, 45s);
}

// The minority holds node 0, the introducer and stream leader, and one more host.
TEST_CASE("a 2-to-3 split heals into one cluster with every acknowledged write on 3 replicas",
          "[partition][partition-split]") {
  auto h = MakeHarness();
  h->StartAppends();
  HoldFor(kBeforeFault);
  REQUIRE_OK(h->net().Split({{0, 1}, {2, 3, 4}}));
  HoldFor(15s);
  uint64_t dropped = h->net().DroppedPackets(0) + h->net().DroppedPackets(3);
  REQUIRE_OK(h->net().Heal());
  TimePoint healed = Clock::now();
  CHECK(dropped > 0);
  RequireClean(h->AfterHeal({0, 1}, healed, "split {0,1} | {2,3,4} for 15 s"));
}

TEST_CASE("a host whose link flaps every second for 20 s loses no acknowledged write",
          "[partition][partition-flap]") {
  auto h = MakeHarness();
  h->StartAppends();
  HoldFor(kBeforeFault);
  for (int i = 0; i < 10; ++i) {
    REQUIRE_OK(h->net().Isolate({1}));
    HoldFor(1s);
    REQUIRE_OK(h->net().Heal());
    HoldFor(1s);
  }
  TimePoint healed = Clock::now();
  CHECK(h->net().DroppedPackets(1) > 0);
  RequireClean(h->AfterHeal({1}, healed, "host 1 cut and restored every second for 20 s"));
}

TEST_CASE("one-way loss into a host (all, then half of its inbound packets) loses no ack",
          "[partition][partition-oneway]") {
  auto h = MakeHarness();
  h->StartAppends();
  HoldFor(kBeforeFault);
  REQUIRE_OK(h->net().DropInbound(3, 100));
  HoldFor(8s);
  REQUIRE_OK(h->net().DropInbound(3, 50));
  HoldFor(10s);
  uint64_t dropped = h->net().DroppedPackets(3);
  REQUIRE_OK(h->net().Heal());
  TimePoint healed = Clock::now();
  CHECK(dropped > 0);
  RequireClean(h->AfterHeal({3}, healed,
                            "host 3 drops 100 % of inbound packets for 8 s, then 50 % for 10 s"));
}

// ---- a stream job across a partition

TEST_CASE("a stream job whose worker host is isolated mid-job is exact or fails with a reason",
          "[partition][partition-stream]") {
  const std::string input = ChampaignOrSampleCsvPath();
  REQUIRE_OK(OperatorsBuilt({"rainop-grep", "rainop-select"}));
  auto h = MakeHarness(0);
  Cluster& c = h->cluster();
  REQUIRE_OK(HydfsCreate(c.node(0), input, "data/signs.csv").status());
  auto data = ReadLocal(input);
  REQUIRE_OK(data.status());
  // The job runs ~12 s, so the isolation (2 s in, 8 s long) strikes mid-job.
  uint64_t lines = std::count(data->begin(), data->end(), '\n');
  uint64_t rate = std::max<uint64_t>(10, lines / 12);
  std::vector<std::string> want_args = {"select", input, "OBJECTID,Sign_Type", "Parking"};
  auto want = Oracle(c.dir(), want_args);
  REQUIRE_OK(want.status());

  const std::string dest = "out/partition-app1";
  Subprocess ctl;
  REQUIRE_OK(
      StartAttachedJob(c.node(0),
                       {"RainStorm", "2", "3", "grep Parking", "select OBJECTID,Sign_Type",
                        "data/signs.csv", dest, "true", "false", std::to_string(rate), "0", "0"},
                       &ctl));
  std::string job;
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    if (!ctl.Running()) return (*why = "rainctl exited: " + ctl.Stderr()), false;
    job = FindJobWriting(c.node(0), dest, "running", why);
    return !job.empty();
  });
  HoldFor(2s);
  auto tasks = OperatorTasks(c.node(0), job, 2);
  REQUIRE_OK(tasks.status());
  // A worker host (not node 0, the leader) that runs a task, stage 2 first.
  int victim = -1;
  for (auto it = tasks->rbegin(); it != tasks->rend() && victim < 0; ++it) {
    int host = h->net().HostOf(it->node);
    if (host > 0) victim = host;
  }
  REQUIRE(victim > 0);
  REQUIRE_OK(h->net().Isolate({static_cast<size_t>(victim)}));
  HoldFor(8s);
  REQUIRE_OK(h->net().Heal());
  TimePoint healed = Clock::now();

  JobRun run = FinishAttachedJob(ctl, job, 90s);
  INFO("job " << job << " (worker host " << victim << " isolated 8 s): " << run.result.Describe());
  REQUIRE(!run.result.timed_out);
  if (run.result.code() == 0) {
    // Done: the output must be exact, on the console and in the destination.
    std::string diff = MultisetDifference(run.Lines(), *want);
    INFO("console vs python: " << diff);
    REQUIRE(diff.empty());
    auto file = HydfsCat(c.node(0), dest);
    REQUIRE_OK(file.status());
    std::string dest_diff = MultisetDifference(SplitLines(*file), *want);
    INFO("destination vs python: " << dest_diff);
    REQUIRE(dest_diff.empty());
    std::cerr << "job " << job << ": done, exact (" << want->size() << " lines)\n";
  } else {
    // Failed: with a reason, never silently.
    REQUIRE(run.result.err.find("job " + job + " failed: ") != std::string::npos);
    auto status = JobStatus(c.node(0), job);
    REQUIRE_OK(status.status());
    CHECK((*status)["state"].Str() == "failed");
    std::cerr << "job " << job << ": failed with a reason: " << run.result.err << "\n";
  }
  RequireClean(h->AfterHeal({static_cast<size_t>(victim)}, healed,
                            "worker host " + std::to_string(victim) + " isolated 8 s mid-job"),
               false);
}

}  // namespace
}  // namespace rs::harness
