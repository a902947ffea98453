// Leader: the job table of the cluster (README.md "Life of a job"). Validates and launches
// submitted jobs (placement, downstream-first start of every task, the sink in this process),
// tracks them from the workers' reports and the membership view, ends them (done, failed,
// cancelled) and answers every job.* command, including the long-polled console output.
//
// Threads: commands arrive on the admin thread and never block it: launches, stops and remote
// calls run on a small pool; a ticker thread (50 ms) answers output polls and watches members.
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "daemon/hydfs/hydfs_service.h"
#include "daemon/membership/membership_service.h"
#include "daemon/stream/autoscaler.h"
#include "daemon/stream/operator_resolver.h"
#include "daemon/stream/scheduler.h"
#include "daemon/stream/worker.h"
#include "shared/stream/job_spec.h"
#include "shared/util/worker_pool.h"

namespace rs::stream {

struct LeaderOptions {
  std::string self_endpoint;  // HOST:PORT of this node's control port
  bool hosts_tasks = false;   // place tasks on the leader too (always when it is alone)
  TaskConfig knobs;           // window, batch, resend, checkpoint, flush, test knob
  // Where path operators may be (operator_dirs, operator_resolver.h): checked at submit.
  std::vector<std::string> operator_dirs = {kBuiltinOperatorDirs};
};

enum class JobState { kStarting, kRunning, kDone, kFailed, kCancelled };
const char* JobStateName(JobState s);

// What the leader counts of one job, for GET /metrics (leader_metrics.cc).
struct JobMetrics {
  std::string job;
  JobState state = JobState::kStarting;
  std::vector<uint32_t> stage_tasks;      // per stage (index stage - 1)
  std::map<uint32_t, uint64_t> rebuilds;  // by stage (the sink: stages + 1)
  struct Scaling {
    uint32_t stage = 0;
    bool up = false, done = false;
    bool operator<(const Scaling& o) const {
      return std::tie(stage, up, done) < std::tie(o.stage, o.up, o.done);
    }
  };
  std::map<Scaling, uint64_t> scaling;  // rescales by stage, direction and outcome
  TaskReport sink;                      // the sink's last report (it runs on the leader)
};

class Leader {
 public:
  using Args = std::map<std::string, std::string>;

  Leader(LeaderOptions options, Worker* worker, hydfs::HydfsService* hydfs,
         membership::MembershipService* membership);
  ~Leader();

  void Command(const std::string& cmd, const Args& args, Reply done);
  void OnReports(const std::vector<TaskReport>& reports);
  void Stop();
  // Every job in the table, as GET /metrics exports them (leader_metrics.cc).
  std::vector<JobMetrics> Metrics() const;

 private:
  struct Slot {
    uint32_t stage = 0, task = 0;
    std::string node;     // member id
    std::string address;  // HOST:PORT of its control port
    std::string inbox;    // tcp://... of the task
    int64_t pid = 0;
    std::string op, log;
    TaskReport report;
    bool reported = false;
    bool completed_logged = false;
    uint64_t incarnation = 1;
    // The run this index's task began with: rebuilds keep it, a rescale that brings an index
    // back starts a new task (rainsource tells the two apart by it).
    uint64_t first_incarnation = 1;
    uint32_t failures = 0;    // runs of this task that failed (operator crash, node loss)
    bool rebuilding = false;  // a replacement is being started
    // Stage 1 of a job reading files, a task a rescale added: its range is the piece task
    // `piece_giver` cut for it at `piece_epoch` (0: none).
    uint64_t piece_epoch = 0;
    uint32_t piece_giver = 0;
  };
  struct Job {
    std::string id;
    JobSpec spec;
    JobState state = JobState::kStarting;
    std::string reason;
    uint64_t submitted_ms = 0, ended_ms = 0;
    TimePoint started_at, ended_at;
    // Every operator task (a deque: a rescale adds some while a rebuild holds a Slot*).
    std::deque<Slot> slots;
    std::shared_ptr<Task> sink;  // released once the job ended and its tasks stopped
    // What the sink leaves behind once released: its last report and its output spool (on
    // this node, for job.output), until the output was read whole or kSpoolRetention passed.
    TaskReport sink_final;
    std::string spool_path;
    uint64_t spool_size = 0;
    bool spool_removed = false;
    bool output_read = false;         // a job.output reader got all of it
    std::set<std::string> addresses;  // every node that ever ran a task of the job (cleanup)
    bool source_attached = false;
    std::vector<SourceFile> src;  // the input, fixed at submit
    bool stop_sent = false;
    bool finishing = false;  // the sink is done; the final reports are being collected
    TaskConfig base;         // what every task of the job shares (for rebuilds)
    std::vector<std::optional<uint64_t>> input_partition;  // per stage (index stage - 1)
    uint32_t rebuilds = 0;                                 // tasks rebuilt after a failure
    bool lossy = false;     // rebuilt without exactly-once: results may be lost or repeated
    std::mutex rebuild_mu;  // one rebuild at a time per job (held across remote calls)
    // Rescaling (leader_rescale.cc, README.md "Autoscaling"), per stage (index stage - 1): its
    // tasks (after the rescale under way), its group table (empty: even) and epoch, and the
    // table before it while a rescale is not settled. The order of the rescale under way goes
    // again to a task rebuilt meanwhile.
    std::vector<uint32_t> stage_tasks;
    std::vector<std::vector<uint32_t>> owners, prev_owners;
    std::vector<uint64_t> epochs;
    // Stage 1 of a job reading files: the next origin never used (a piece is read under one).
    uint64_t next_origin = 0;
    bool rescaling = false;
    std::optional<RegroupOrder> order;
    // The last run of a task that left its stage: the index, back, starts at the run after.
    std::map<std::pair<uint32_t, uint32_t>, uint64_t> left_runs;
    std::vector<TaskReport> left;  // their last reports: job status counts them in their stage
    // With autoscaling: the policy, fed every task report, asked once a second (Autoscale).
    std::unique_ptr<Autoscaler> autoscaler;
    TimePoint last_decision;
    struct ScaleEvent {
      uint64_t at_ms = 0, took_ms = 0;
      uint32_t stage = 0, from = 0, to = 0;
      std::string reason, outcome;  // outcome: "done" or why it failed
    };
    std::vector<ScaleEvent> scaling;
    // Every rebuild of a failed task, in order (a task that keeps failing ends the job, so the
    // list stays short).
    struct RebuildEvent {
      uint64_t at_ms = 0, took_ms = 0;
      uint32_t stage = 0, task = 0;
      uint64_t run = 0;              // the new run
      std::string from, to, reason;  // member ids: where it failed, where it runs now
    };
    std::vector<RebuildEvent> rebuild_history;
  };
  using JobPtr = std::shared_ptr<Job>;
  struct Waiter {
    JobPtr job;
    uint64_t offset = 0, max_bytes = 0;
    TimePoint deadline;
    Reply done;
  };

  void Submit(const Args& args, Reply done);
  void Launch(JobPtr job, Reply done);
  Status Prepare(Job& job, std::optional<std::string>* csv_header);
  Status Place(Job& job);
  // Ends the job (if not already ended) and stops its tasks everywhere, off the caller's thread.
  void End(const JobPtr& job, JobState state, const std::string& reason);
  void StopTasks(const JobPtr& job);
  void StopLateTasks(const JobPtr& job);
  // After StopTasks: what the job made goes (its HyDFS checkpoints; the workers removed its
  // directories), unless the spec says keep; the sink is released.
  void CleanUp(const JobPtr& job);
  // The output spool of an ended job: removed once read whole, or kSpoolRetention after the end.
  void RemoveSpool(Job& job);  // mu_ held
  // Ended jobs beyond kMaxEndedJobs leave the table (oldest first). mu_ held.
  void ForgetOldJobs();
  TaskReport SinkReport(const Job& job) const;
  uint64_t SpoolCommitted(const Job& job) const;
  // A task failed (its operator crashed or hung, its node left): start a replacement that
  // recovers from the task's last checkpoint, in place for the first failures of a task whose
  // node is alive, elsewhere after, and point the upstream tasks at it. Off the caller's thread.
  void ScheduleRebuild(const JobPtr& job, uint32_t stage, uint32_t task, std::string reason,
                       bool node_lost);
  void Rebuild(const JobPtr& job, uint32_t stage, uint32_t task, const std::string& reason,
               bool node_lost);
  // The config of task (stage, task) as the job stands now (mu_ held): its tables, its
  // downstream inboxes, its upstream count.
  TaskConfig ConfigFor(const Job& job, uint32_t stage, uint32_t task) const;
  uint32_t SlotCount(const Job& job, uint32_t stage) const;  // highest task index + 1 (mu_ held)
  // Rescales keyed stage `stage` of a running job to `tasks` tasks (leader_rescale.cc): moves key
  // groups, starts or retires tasks, no other task restarts. Blocking (seconds); one at a time
  // per job. The status says why it could not.
  Status Rescale(const JobPtr& job, uint32_t stage, uint32_t tasks, const std::string& reason);
  Status SendOrder(const JobPtr& job, const RegroupOrder& order);
  // Once a second per running autoscaling job (mu_ held): the policy's actions, carried out on
  // the pool one at a time.
  void Autoscale(const JobPtr& job, TimePoint now);
  // Removes the checkpoint files of task (stage, task) (blocking).
  void RemoveTaskFiles(const JobPtr& job, uint32_t stage, uint32_t task);
  // Least-loaded alive worker other than `avoid`; empty when there is none.
  // The nodes that may host tasks now, and the load on them (scheduler.h).
  std::vector<NodeRef> Hosts() const;
  Load CurrentLoad(const Job* job, uint32_t stage) const;
  void Tick();
  void TickLoop();
  bool AnswerOutput(Waiter& w, bool final);

  void PackJobSummary(wire::Packer& pk, const Job& job, bool detail) const;
  void PackSlot(wire::Packer& pk, const Job& job, const Slot& s) const;
  JobPtr Find(const std::string& id) const;

  LeaderOptions options_;
  Worker* worker_;
  hydfs::HydfsService* hydfs_;
  membership::MembershipService* membership_;
  WorkerPool pool_{4};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, JobPtr> jobs_;  // guarded by mu_
  std::vector<std::string> order_;      // job ids in submission order
  std::vector<Waiter> waiters_;         // guarded by mu_
  uint64_t next_job_ = 1;
  bool stop_ = false;
  std::thread ticker_;
};

}  // namespace rs::stream
