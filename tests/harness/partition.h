// Partition scenarios, Jepsen style: a HyDFS cluster with one raind per host namespace
// (netns.h), append clients running the whole time on every host, faults driven by the caller,
// and after the heal a check of what the cluster kept (append_check.h) and of its membership.
// One copy for the partition tests (tests/cluster/partition_test.cc) and the benchmark
// (tests/bench/partition_bench.cc). Thread-compatible: one driving thread; the workload's
// client threads only run rainctl and record outcomes.
//
//   auto h = PartitionHarness::Create({});          // 5 hosts, 3 files
//   h->StartAppends();  ...  h->net().Isolate({4});  HoldFor(15s);  h->net().Heal();
//   PartitionReport r = h->AfterHeal({4}, Clock::now(), "isolate 4 15s");  r.ok(), r.ToString()
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"
#include "tests/harness/append_check.h"
#include "tests/harness/cluster.h"
#include "tests/harness/netns.h"

namespace rs::harness {

// rainctl's own deadline per request during the workload, and the harness's kill deadline for
// one append (a rainctl still running then is "hung", a violation: failures must be errors).
inline constexpr int kAppendRequestTimeoutMs = 10000;
inline constexpr auto kAppendDeadline = std::chrono::seconds(45);

// Clients appending records (append_check.h) through rainctl, one thread each, one append at a
// time, cycling over `files`. Client K talks to the node `via[K]` (run inside its host by the
// rainctl routes of netns.h). Stop() (or the destructor) lets running appends end.
class AppendWorkload {
 public:
  AppendWorkload(std::string scratch_dir, std::vector<std::string> via,
                 std::vector<std::string> files);
  ~AppendWorkload();
  AppendWorkload(const AppendWorkload&) = delete;
  AppendWorkload& operator=(const AppendWorkload&) = delete;

  void Start();
  void Stop();
  bool running() const { return !threads_.empty(); }
  // Thread-safe snapshots.
  std::vector<AppendAttempt> History() const;
  size_t Count(AppendOutcome outcome) const;
  // `t` on the workload's clock (AppendAttempt::start_ms).
  int64_t MsSinceStart(TimePoint t) const {
    return started_ == TimePoint{} ? 0 : ToMillis(t - started_);
  }

 private:
  void Run(uint32_t client);

  std::string dir_;
  std::vector<std::string> via_;
  std::vector<std::string> files_;
  TimePoint started_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<AppendAttempt> history_;  // guarded by mu_
};

struct PartitionOptions {
  size_t hosts = 5;  // one raind per host; node i on host i; node 0 founds the cluster
  size_t files = 3;  // HyDFS files every client appends to
  std::vector<std::string> extra_args;  // raind arguments besides HydfsArgs()
  // After the heal: until one membership, and until every file is fully replicated again.
  Clock::duration converge_deadline = std::chrono::seconds(30);
  Clock::duration replicate_deadline = std::chrono::seconds(30);
};

// What a run of the checker found, with the figures the benchmark prints.
struct PartitionReport {
  std::string fault;
  int64_t healed_ms = 0;        // the heal on the workload's clock (AppendAttempt::start_ms)
  uint64_t healed_wall_ms = 0;  // the heal in wall-clock ms (to match the nodes' logs)
  size_t acked = 0, failed = 0, hung = 0;
  size_t lost = 0, duplicated = 0, reordered = 0, garbage = 0, unacked_present = 0;
  size_t false_expelled = 0;            // majority members expelled, failed or under a new id
  double converge_s = -1;               // heal -> one membership (-1: not within the deadline)
  double replicate_s = -1;              // heal -> every file on 3 replicas with every acked record
  double stopped_s = -1;                // heal -> the appends stopped (after one membership)
  std::vector<std::string> violations;  // what breaks the promises, in words
  std::vector<std::string> notes;       // what is allowed but worth knowing
  bool ok() const { return violations.empty(); }
  std::string ToString() const;
};

class PartitionHarness {
 public:
  // Makes the network and the cluster, starts it (every node on every HyDFS ring), creates the
  // files and remembers every node's member id.
  static Result<std::unique_ptr<PartitionHarness>> Create(PartitionOptions options);
  ~PartitionHarness();

  Network& net() { return *net_; }
  Cluster& cluster() { return *cluster_; }
  const std::vector<std::string>& files() const { return files_; }
  AppendWorkload& workload() { return *workload_; }

  // One client per host, appending through that host's node.
  void StartAppends() { workload_->Start(); }

  // Runs after the caller healed the network at `healed_at`. `cut` are the hosts that were cut
  // off (or lossy): their nodes may be failed and rejoin under a new id; every other node is on
  // the majority side and must keep its id and never be failed or expelled. Waits for one
  // membership (appends still running), stops the appends, waits for full replication, merges
  // every file and checks every replica, then the membership.
  // `fault` describes the fault for the report.
  PartitionReport AfterHeal(const std::set<size_t>& cut, TimePoint healed_at, std::string fault);

  // Checks without waiting (e.g. a second look), used by AfterHeal.
  bool OneMembership(std::string* why);
  bool FullyReplicated(const std::vector<AppendAttempt>& history, std::string* why);

 private:
  PartitionHarness() = default;
  RaindProcess& Reader(const std::set<size_t>& cut);
  void CheckFiles(const std::set<size_t>& cut, const std::vector<AppendAttempt>& history,
                  PartitionReport* r);
  void CheckMembership(const std::set<size_t>& cut, PartitionReport* r);

  PartitionOptions options_;
  std::unique_ptr<Network> net_;
  std::unique_ptr<Cluster> cluster_;  // destroyed (processes killed) before net_
  std::unique_ptr<AppendWorkload> workload_;
  std::vector<std::string> files_;
  std::vector<std::string> ids_before_;  // node i's member id after Create()
};

// Spends `d` on purpose: a fault's duration (the one sleep the partition scenarios make).
void HoldFor(Clock::duration d);

}  // namespace rs::harness
