// Worker: the tasks this node hosts (README.md). Starts a task when the leader asks
// (kStreamStartTask: resolve the operator, bind, start the operator, answer with the inbox
// endpoint), stops a job's tasks (kStreamStopJob), and sends the tasks' reports to their leader
// once a second and at once on a state change (kStreamReport; messages.h).
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/hydfs/hydfs_service.h"
#include "daemon/stream/messages.h"
#include "daemon/stream/operator_sandbox.h"
#include "daemon/stream/task.h"
#include "shared/util/worker_pool.h"

namespace rs::stream {

using Reply = std::function<void(Status, wire::BodyWriter)>;

// The names of the HyDFS files under `prefix`, sorted; `done` runs on the HyDFS loop thread.
void ListHydfs(hydfs::HydfsService* h, const std::string& prefix,
               std::function<void(Result<std::vector<std::string>>)> done);

struct WorkerOptions {
  std::string host = "127.0.0.1";
  std::string dir;            // <data_dir>/stream
  std::string self_endpoint;  // HOST:PORT of this node's control port
  SandboxOptions sandbox;     // how operators run, and which may (operator_dirs)
};

class Worker {
 public:
  // `deliver_local(reports)`: reports for a leader running in this process.
  Worker(WorkerOptions options, hydfs::HydfsService* hydfs, std::function<std::string()> node_id,
         std::function<void(std::vector<TaskReport>)> deliver_local);
  ~Worker();

  // kStreamStartTask: answers once the operator is ready and the inbox bound; the task runs
  // from then on. `done` runs on a pool thread.
  void StartTask(TaskConfig config, std::function<void(Result<StartTaskReply>)> done);
  // Starts a task in this process and returns it (the leader's sink).
  Result<std::shared_ptr<Task>> StartLocal(TaskConfig config, const std::vector<std::string>& argv);
  // Stops every task of `job` here and returns their final reports.
  // Stops every task of `job` here; their final reports. With `remove`, the job's directory
  // goes too (task logs, dedup logs, operator work directories), all but the sink's output
  // spool, which the leader removes once it is read. Without, only the dedup logs go.
  std::vector<TaskReport> StopJob(const std::string& job, bool remove);
  // Stops one task (before it is rebuilt); NotFound when it is not here.
  Result<TaskReport> StopTask(const std::string& job, uint32_t stage, uint32_t task);
  // Task (stage, index) of `job` now listens at `endpoint`: the tasks of the stage before it
  // send there (stage 0: nothing to do here). Returns how many tasks were told.
  // The group table of stage `order.stage` of `job` changed: every task here of that stage or
  // a stage next to it is told (Task::Regroup). Returns how many.
  size_t Regroup(const std::string& job, const RegroupOrder& order, bool stage_only = false);
  size_t Rewire(const std::string& job, uint32_t stage, uint32_t index,
                const std::string& endpoint);
  // SIGKILLs the operator process `pid` of a task hosted here (never any other process);
  // returns the task's name, NotFound otherwise.
  Result<std::string> KillTask(int64_t pid);
  std::vector<TaskReport> Reports() const;
  void Stop();

 private:
  TaskEnv MakeEnv(const TaskConfig& config);
  Result<std::vector<std::string>> ResolveArgv(const TaskConfig& config, const std::string& dir);
  void OnReport(const TaskReport& r, const std::string& leader);
  void ReporterLoop();

  WorkerOptions options_;
  hydfs::HydfsService* hydfs_;
  std::function<std::string()> node_id_;
  std::function<void(std::vector<TaskReport>)> deliver_local_;
  WorkerPool pool_{4};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Hosted {
    std::shared_ptr<Task> task;
    std::string leader;
    TaskReport last;
    bool dirty = false;
    bool final_sent = false;
  };
  std::map<std::string, Hosted> tasks_;  // by "job/stage.task"; guarded by mu_
  bool urgent_ = false, stop_ = false;   // guarded by mu_
  std::thread reporter_;
};

}  // namespace rs::stream
