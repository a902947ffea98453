// Task: one task of a job, on its own thread (README.md). It owns a PULL inbox, PUSH sockets to
// its peers, its operator process (none for the sink) and, with exactly-once, its dedup log.
// Its loop: take frames from the inbox (dedup, in seq order per channel), read its source
// partition (stage 1), feed the operator with pipelined batches, route the results to the next
// stage by key, group-commit, then send outputs and acknowledge inputs; resend what stays
// unacknowledged; checkpoint to HyDFS; report once a second.
//
// Thread-safety: Prepare, Start and Stop from one control thread; Report() and the sink's
// output accessors from any thread; everything else runs on the task's own thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/stream/operator_sandbox.h"
#include "daemon/stream/task_config.h"
#include "shared/status.h"

namespace rs::stream {

// What a task needs from its node. The HyDFS calls complete on another thread (their callbacks
// must not block); the task waits on them with deadlines.
struct TaskEnv {
  std::string node_id;  // the worker's member id
  std::string host;     // where the inbox binds
  std::string dir;      // the job's directory on this node (logs, dedup logs, fetched operators)
  // The operator runs sandboxed in its task directory <dir>/task-S-T.work (operator_sandbox.h);
  // nullopt: in `dir`, with raind's user, environment and limits (tests of the task alone).
  std::optional<SandboxOptions> sandbox;
  std::function<void(const std::string& name, std::function<void(Result<std::string>)>)> hydfs_get;
  // An input file's bytes as of its snapshot (SourceFile): the same for every task and rebuild.
  std::function<void(const SourceFile& file, std::function<void(Result<std::string>)>)>
      hydfs_get_source;
  std::function<void(const std::string& name, std::string data, std::function<void(Status)>)>
      hydfs_create;
  std::function<void(const std::string& name, std::string data, std::function<void(Status)>)>
      hydfs_append;
  std::function<void(const std::string& prefix,
                     std::function<void(Result<std::vector<std::string>>)>)>
      hydfs_list;  // names under prefix, sorted
  std::function<void(const std::string& name, std::function<void(Status)>)> hydfs_remove;
  // Called from the task thread once a second and at every state change. Must not block long.
  std::function<void(const TaskReport&)> report;
};

class Task {
 public:
  Task(TaskConfig config, TaskEnv env);
  ~Task();  // Stop()
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  // Binds the inbox and starts the operator `argv` (already resolved to an executable), waiting
  // for its ready answer. Blocking, bounded by the operator's hello deadline.
  Status Prepare(const std::vector<std::string>& argv);
  void Start();  // runs the loop on the task's thread
  // Ends the task now (the operator is killed); joins the thread. Idempotent.
  void Stop();
  // The downstream task `index` was rebuilt at `endpoint`: send there from now on, starting
  // with every frame its checkpoint does not cover. Thread-safe.
  void Rewire(uint32_t index, const std::string& endpoint);
  // The leader changed a group table of this task's job (README.md "Autoscaling"): taken by
  // the task's thread at its next loop; an order for a stage next to no task of ours, or of an
  // epoch already taken, changes nothing. Thread-safe.
  void Regroup(RegroupOrder order);

  const TaskConfig& config() const { return config_; }
  const std::string& endpoint() const { return endpoint_; }
  const std::string& log_path() const { return log_path_; }
  int64_t pid() const;
  bool stateful() const;
  std::optional<uint64_t> input_partition_column() const;
  TaskReport Report() const;

  // Sink: the output spool (every committed output line, in order) and its committed size.
  const std::string& spool_path() const { return spool_path_; }
  uint64_t spool_committed() const { return spool_committed_.load(); }
  // Sink: task `task` of the last stage is rebuilt as run `incarnation`. From now on frames of
  // its earlier runs are dropped, and the runs of its input order the sink holds (input_order.h)
  // are returned, for the new run to replay. Thread-safe.
  OrderRuns OrderForRebuild(uint32_t task, uint64_t incarnation);
  // Sink: task `task` of the last stage left its stage (README.md "Autoscaling") and comes back
  // as a new task, run `incarnation`: the order it logged goes, earlier runs are fenced off.
  void ForgetOrder(uint32_t task, uint64_t incarnation);

  struct Impl;

 private:
  TaskConfig config_;
  TaskEnv env_;
  std::string endpoint_, log_path_, spool_path_;
  int64_t pid_ = 0;  // the operator's (raind's own for the sink), fixed at Prepare
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> spool_committed_{0};
  mutable std::mutex report_mu_;
  TaskReport report_;  // guarded by report_mu_
  std::mutex rewire_mu_;
  std::vector<std::pair<uint32_t, std::string>> rewires_;  // guarded by rewire_mu_
  std::vector<RegroupOrder> regroups_;                     // guarded by rewire_mu_
  std::atomic<bool> regroups_waiting_{false};  // regroups_ may be non-empty: the loop looks
  // Sink: the order logs of the last stage's tasks, and the first run each may send from.
  std::mutex order_mu_;
  std::map<uint32_t, OrderKeeper> order_keepers_;  // guarded by order_mu_
  std::map<uint32_t, uint64_t> order_fence_;       // guarded by order_mu_
};

}  // namespace rs::stream
