#include "daemon/stream/leader.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <random>
#include <set>

#include "daemon/stream/leader_internal.h"
#include "daemon/stream/operator_resolver.h"
#include "shared/logging.h"
#include "shared/stream/checkpoint.h"
#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace leader_internal {

std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

bool Terminal(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kCancelled;
}

std::string ArgOf(const Leader::Args& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

}  // namespace leader_internal

namespace {

using namespace leader_internal;

constexpr auto kHydfsTimeout = std::chrono::seconds(60);
// Ended jobs listed by job list / job status; older ones leave the table.
constexpr size_t kMaxEndedJobs = 100;
constexpr uint64_t kHeaderBytes = 64u << 10;  // the CSV header is the first line within these

// Blocking wrappers over the in-process HyDFS client, for the launch thread.
// The first `max_bytes` of a file (a CSV header is in them), without reading the rest.
Result<std::string> HydfsHead(hydfs::HydfsService* h, const std::string& name, uint64_t max_bytes) {
  auto p = std::make_shared<std::promise<Result<std::string>>>();
  auto f = p->get_future();
  h->GetPrefix(name, max_bytes, [p](Result<std::string> r) { p->set_value(std::move(r)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("reading " + name + " from HyDFS");
  }
  return f.get();
}

// The file's content as of now, fixed (hydfs::HydfsService::Snapshot).
Result<hydfs::FileSnapshot> HydfsSnapshot(hydfs::HydfsService* h, const std::string& name) {
  auto p = std::make_shared<std::promise<Result<hydfs::FileSnapshot>>>();
  auto f = p->get_future();
  h->Snapshot(name, [p](Result<hydfs::FileSnapshot> r) { p->set_value(std::move(r)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("reading the state of " + name + " in HyDFS");
  }
  return f.get();
}

std::string RandomSuffix() {
  std::random_device rd;
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04x", static_cast<unsigned>(rd() & 0xffff));
  return buf;
}

}  // namespace

namespace leader_internal {

Status HydfsRemove(hydfs::HydfsService* h, const std::string& name) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  h->Remove(name, [p](Result<uint64_t> r) { p->set_value(r.status()); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("removing " + name + " from HyDFS");
  }
  return f.get();
}

Status HydfsCreate(hydfs::HydfsService* h, const std::string& name, std::string data) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  h->Create(name, std::move(data), [p](Status s) { p->set_value(std::move(s)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("creating " + name + " in HyDFS");
  }
  return f.get();
}

Result<std::vector<std::string>> HydfsList(hydfs::HydfsService* h, const std::string& prefix) {
  auto p = std::make_shared<std::promise<Result<std::vector<std::string>>>>();
  auto f = p->get_future();
  ListHydfs(h, prefix, [p](Result<std::vector<std::string>> r) { p->set_value(std::move(r)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("listing " + prefix + " in HyDFS");
  }
  return f.get();
}

}  // namespace leader_internal

using namespace leader_internal;

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kStarting:
      return "starting";
    case JobState::kRunning:
      return "running";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Leader::Leader(LeaderOptions options, Worker* worker, hydfs::HydfsService* hydfs,
               membership::MembershipService* membership)
    : options_(std::move(options)), worker_(worker), hydfs_(hydfs), membership_(membership) {
  ticker_ = std::thread([this] { TickLoop(); });
}

Leader::~Leader() { Stop(); }

void Leader::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::vector<Waiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiters.swap(waiters_);
  }
  for (auto& w : waiters) w.done(Status::Unavailable("the leader is shutting down"), {});
}

Leader::JobPtr Leader::Find(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void Leader::Submit(const Args& args, Reply done) {
  auto spec = DecodeJobSpec(ArgOf(args, "spec"));
  if (!spec.ok()) {
    done(spec.status(), {});
    return;
  }
  Status st = ValidateJobSpec(*spec);
  if (!st.ok()) {
    done(st, {});
    return;
  }
  // Exactly-once names each (stage-1 task, task...) path of a tuple by one 64-bit number, in
  // radix the most tasks a stage may have (README.md "Exactly-once", "Autoscaling").
  uint32_t radix = MaxTasks(*spec);
  if (spec->exactly_once && radix > 1) {
    unsigned bits = 0;
    while ((1ull << bits) < radix) ++bits;
    if (bits * (spec->stages.size() - 1) > 64) {
      done(Status::InvalidArgument(
               "with exactly-once, T^(stages-1) must fit in 64 bits, T being the most tasks a "
               "stage may have (" +
               std::to_string(radix) + " tasks and " + std::to_string(spec->stages.size()) +
               " stages do not)"),
           {});
      return;
    }
  }
  auto job = std::make_shared<Job>();
  job->spec = std::move(*spec);
  job->submitted_ms = WallMillis();
  job->started_at = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->id = "j" + std::to_string(next_job_++) + "-" + RandomSuffix();
    jobs_[job->id] = job;
    order_.push_back(job->id);
    ForgetOldJobs();
  }
  std::string ops;
  for (const auto& argv : job->spec.stages) {
    ops += (ops.empty() ? "" : " | ");
    for (size_t i = 0; i < argv.size(); ++i) ops += (i ? " " : "") + argv[i];
  }
  Log()->info(
      "event=job_received job={} stages={} tasks={} src={} dest={} exactly_once={} rate={} "
      "ops=\"{}\"",
      job->id, job->spec.stages.size(), job->spec.tasks,
      job->spec.live ? "(rainsource)" : job->spec.src, job->spec.dest, job->spec.exactly_once,
      job->spec.input_rate, ops);
  pool_.Submit([this, job, done] { Launch(job, done); });
}

Status Leader::Prepare(Job& job, std::optional<std::string>* csv_header) {
  // Operators must resolve here (the workers run the same build) or exist in HyDFS.
  for (size_t i = 0; i < job.spec.stages.size(); ++i) {
    const std::string& name = job.spec.stages[i][0];
    if (name.rfind(kHydfsOperatorPrefix, 0) == 0) {
      std::string file = name.substr(std::string(kHydfsOperatorPrefix).size());
      auto got = HydfsList(hydfs_, file);
      if (!got.ok()) return got.status();
      if (std::find(got->begin(), got->end(), file) == got->end()) {
        return Status::NotFound("stage " + std::to_string(i + 1) + ": operator " + name +
                                ": no such HyDFS file");
      }
      continue;
    }
    auto path = ResolveOperator(name, options_.operator_dirs);
    if (!path.ok()) {
      return Status(path.status().code(),
                    "stage " + std::to_string(i + 1) + ": " + path.status().message());
    }
  }
  if (!job.spec.live) {
    std::vector<std::string> names = {job.spec.src};
    if (!job.spec.src.empty() && job.spec.src.back() == '/') {
      auto listed = HydfsList(hydfs_, job.spec.src);
      if (!listed.ok()) return listed.status();
      if (listed->empty()) {
        return Status::NotFound("no HyDFS files under " + job.spec.src);
      }
      names = *listed;
    }
    // One snapshot of each input, so that every task (and every rebuild) reads the same bytes
    // whatever is appended meanwhile.
    job.src.clear();
    for (const auto& name : names) {
      auto snap = HydfsSnapshot(hydfs_, name);
      if (!snap.ok()) {
        return Status(snap.status().code(), "source " + name + ": " + snap.status().message());
      }
      job.src.push_back(SourceFile{name, snap->gen, snap->appends, snap->size, snap->digest,
                                   InputHasHeader(job.spec, name)});
    }
    // The first line of the first input, for operators that name columns. Not when it is
    // longer than kHeaderBytes: that is no CSV header.
    const SourceFile& f0 = job.src[0];
    if (f0.size > 0) {
      auto first = HydfsHead(hydfs_, f0.name, std::min<uint64_t>(kHeaderBytes, f0.size));
      if (!first.ok()) {
        return Status(first.status().code(), "source " + f0.name + ": " + first.status().message());
      }
      size_t nl = first->find('\n');
      if (nl != std::string::npos || first->size() == f0.size) {
        std::string header = first->substr(0, nl);
        if (!header.empty() && header.back() == '\r') header.pop_back();
        *csv_header = header;
      }
    }
  }
  Status s = HydfsCreate(hydfs_, job.spec.dest, "");
  if (s.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists("destination " + job.spec.dest +
                                 " already exists (choose a new name or rm it)");
  }
  if (!s.ok()) return Status(s.code(), "destination " + job.spec.dest + ": " + s.message());
  return Status::Ok();
}

std::vector<NodeRef> Leader::Hosts() const {
  membership::ViewPtr view = membership_->view();
  std::vector<MemberRef> members;
  for (const auto& m : view->members) {
    std::string addr = m.record.id.host() + ":" + std::to_string(m.record.id.port());
    members.push_back(
        MemberRef{{m.record.id.str(), addr}, m.record.state == membership::MemberState::kAlive});
  }
  return TaskHosts(members, NodeRef{view->self.str(), options_.self_endpoint},
                   options_.hosts_tasks);
}

Load Leader::CurrentLoad(const Job* job, uint32_t stage) const {
  Load load;
  for (const auto& [id, j] : jobs_) {
    if (Terminal(j->state)) continue;
    for (const auto& s : j->slots) {
      // A task of the same stage weighs more: a stage's tasks spread over the nodes.
      load[s.address] += (j.get() == job && s.stage == stage) ? 4 : 1;
    }
  }
  return load;
}

Status Leader::Place(Job& job) {
  auto placed = PlaceJob(Hosts(), CurrentLoad(nullptr, 0),
                         static_cast<uint32_t>(job.spec.stages.size()), job.spec.tasks);
  for (const Placement& p : placed) {
    Slot s;
    s.stage = p.stage;
    s.task = p.task;
    s.node = p.node.id;
    s.address = p.node.address;
    job.addresses.insert(p.node.address);
    job.slots.push_back(s);
  }
  return Status::Ok();
}

void Leader::Launch(JobPtr job, Reply done) {
  std::optional<std::string> header;
  Status st = Prepare(*job, &header);
  if (st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    st = Place(*job);
  }
  if (!st.ok()) {
    End(job, JobState::kFailed, st.message());
    done(st, {});
    return;
  }
  const uint32_t stages = static_cast<uint32_t>(job->spec.stages.size());
  const uint32_t tasks = job->spec.tasks;
  TaskConfig base = options_.knobs;
  base.job = job->id;
  base.stages = stages;
  base.tasks = tasks;
  base.key_groups = job->spec.key_groups;
  base.csv_header = header;
  base.exactly_once = job->spec.exactly_once;
  base.incarnation = 1;
  base.live = job->spec.live;
  base.leader = options_.self_endpoint;
  base.rescalable = job->spec.autoscale;
  base.origin_radix = MaxTasks(job->spec);
  base.source_parts = tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->base = base;
    job->input_partition.assign(stages + 1, std::nullopt);
    job->stage_tasks.assign(stages, tasks);
    job->owners.assign(stages, {});
    job->prev_owners.assign(stages, {});
    job->epochs.assign(stages, 0);
    job->next_origin = MaxTasks(job->spec);  // above every stage-1 task index
    if (job->spec.autoscale) {
      AutoscaleOptions o;
      o.policy =
          job->spec.autoscale_policy == "target" ? ScalePolicy::kTarget : ScalePolicy::kThresholds;
      o.low = static_cast<double>(job->spec.low_watermark);
      o.high = static_cast<double>(job->spec.high_watermark);
      o.cooldown = std::chrono::milliseconds(job->spec.cooldown_ms);
      o.max_tasks = MaxTasks(job->spec);
      o.source_rate = static_cast<double>(job->spec.input_rate);
      job->autoscaler =
          std::make_unique<Autoscaler>(o, std::vector<uint32_t>(stages, tasks), Clock::now());
    }
  }

  // The sink, in this process.
  TaskConfig sink_cfg = base;
  sink_cfg.stage = stages + 1;
  sink_cfg.task = 0;
  sink_cfg.tasks = 1;
  sink_cfg.upstreams = tasks;
  sink_cfg.dest = job->spec.dest;
  auto sink = worker_->StartLocal(sink_cfg, {});
  if (!sink.ok()) {
    End(job, JobState::kFailed, "starting the sink: " + sink.status().message());
    done(sink.status(), {});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->sink = *sink;
  }
  std::vector<std::string> downstream = {(*sink)->endpoint()};
  std::optional<uint64_t> partition;  // the sink takes any routing (one task)

  for (uint32_t stage = stages; stage >= 1; --stage) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (job->state != JobState::kStarting) {
        Status why = Status::FailedPrecondition("job " + job->id + " " + JobStateName(job->state) +
                                                " while starting: " + job->reason);
        lock.unlock();
        StopLateTasks(job);
        done(why, {});
        return;
      }
    }
    struct Started {
      Status status;
      std::string inbox, log, partition_kind;
      int64_t pid = 0;
      std::optional<uint64_t> column;
    };
    std::vector<std::future<Started>> futures;
    std::vector<Slot*> slots;
    for (auto& s : job->slots) {
      if (s.stage != stage) continue;
      TaskConfig c = base;
      c.stage = stage;
      c.task = s.task;
      c.argv = job->spec.stages[stage - 1];
      c.downstream = downstream;
      c.partition_column = partition;
      c.upstreams = stage == 1 ? (job->spec.live ? 1 : 0) : tasks;
      if (stage == 1 && !job->spec.live) {
        c.src = job->src;
        c.rate = job->spec.input_rate == 0 ? 0 : (job->spec.input_rate + tasks - 1) / tasks;
      }
      std::string address = s.address;
      slots.push_back(&s);
      futures.push_back(std::async(std::launch::async, [address, c] {
        Started r;
        auto reply = CallStartTask(address, StartTaskRequest{c}, kStartTaskTimeout);
        if (!reply.ok()) {
          r.status = reply.status();
          return r;
        }
        r.inbox = reply->endpoint;
        r.pid = reply->pid;
        r.log = reply->log;
        r.column = reply->input_partition_column;
        return r;
      }));
    }
    std::string error;
    std::vector<std::string> inboxes(tasks);
    std::optional<uint64_t> column;
    for (size_t i = 0; i < futures.size(); ++i) {
      Started r = futures[i].get();
      Slot& s = *slots[i];
      if (!r.status.ok()) {
        if (error.empty()) {
          error = "stage " + std::to_string(stage) + " task " + std::to_string(s.task) + " on " +
                  s.node + ": " + r.status.message();
        }
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      s.inbox = r.inbox;
      s.pid = r.pid;
      s.log = r.log;
      s.op = job->spec.stages[stage - 1][0];
      inboxes[s.task] = r.inbox;
      if (s.task == 0) {
        column = r.column;
        job->input_partition[stage - 1] = r.column;
      }
      Log()->info("event=task_scheduled job={} task={}.{} node={} pid={} op=\"{}\" log={}", job->id,
                  stage, s.task, s.node, r.pid, s.op, r.log);
    }
    if (!error.empty()) {
      // A start that failed because the job was cancelled meanwhile (its directory removed
      // under it) ends nothing new: the job ended already, and the starts answered after its
      // stop went out left tasks running. Stop them (CI: a slow-start operator ran on).
      End(job, JobState::kFailed, error);
      StopLateTasks(job);
      done(Status::FailedPrecondition(error), {});
      return;
    }
    downstream = inboxes;
    partition = column;
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (job->state != JobState::kStarting) {
      Status why = Status::FailedPrecondition("job " + job->id + " " + JobStateName(job->state) +
                                              ": " + job->reason);
      lock.unlock();
      StopLateTasks(job);
      done(why, {});
      return;
    }
    job->state = JobState::kRunning;
  }
  Log()->info("event=job_running job={} tasks={}", job->id, job->slots.size());
  done(Status::Ok(), [this, job](wire::Packer& pk) {
    std::lock_guard<std::mutex> lock(mu_);
    pk.pack_map(2);
    pk.pack("job");
    pk.pack(job->id);
    pk.pack("tasks");
    pk.pack_array(static_cast<uint32_t>(job->slots.size()));
    for (const auto& s : job->slots) PackSlot(pk, *job, s);
  });
}

void Leader::End(const JobPtr& job, JobState state, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Terminal(job->state)) return;
    job->state = state;
    job->reason = reason;
    job->ended_ms = WallMillis();
    job->ended_at = Clock::now();
  }
  double secs = std::chrono::duration<double>(job->ended_at - job->started_at).count();
  if (state == JobState::kDone) {
    TaskReport r = SinkReport(*job);
    Log()->info("event=job_done job={} seconds={:.3f} output_lines={} dest={}", job->id, secs,
                r.output_lines, job->spec.dest);
  } else if (state == JobState::kCancelled) {
    Log()->info("event=job_cancelled job={} seconds={:.3f}", job->id, secs);
  } else {
    Log()->warn("event=job_failed job={} seconds={:.3f} reason=\"{}\"", job->id, secs, reason);
  }
  cv_.notify_all();
  pool_.Submit([this, job] { StopTasks(job); });
}

// A job that ended (cancelled, failed) while Launch or a rebuild was starting tasks: End's stop
// went out before the last start_task calls were answered, so the tasks those started would run
// on. Every start_task has been answered now: stop the job's tasks everywhere once more.
void Leader::StopLateTasks(const JobPtr& job) {
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!job->stop_sent) return;  // End's own stop is still to come, and will see them
    job->stop_sent = false;
    state = JobStateName(job->state);
  }
  Log()->info("event=stop_late_tasks job={} state={}", job->id, state);
  StopTasks(job);
}

void Leader::StopTasks(const JobPtr& job) {
  std::set<std::string> nodes;
  bool remove = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job->stop_sent) return;
    job->stop_sent = true;
    // Every node that ever ran one of its tasks: a task rebuilt elsewhere left its directory
    // (and dedup log) behind on the node it left.
    nodes = job->addresses;
    remove = !job->spec.keep;
  }
  std::vector<TaskReport> finals;
  for (const auto& address : nodes) {
    if (address == options_.self_endpoint) continue;
    auto r = CallStopJob(address, StopJobRequest{job->id, remove}, std::chrono::seconds(3));
    if (!r.ok()) {
      Log()->warn("event=stop_job_failed job={} node={} error=\"{}\"", job->id, address,
                  r.status().message());
      continue;
    }
    for (auto& rep : r->reports) finals.push_back(std::move(rep));
  }
  // The sink and any local tasks; the sink's spool stays readable for job.output.
  for (auto& rep : worker_->StopJob(job->id, remove)) finals.push_back(std::move(rep));
  OnReports(finals);
  CleanUp(job);
}

void Leader::CleanUp(const JobPtr& job) {
  bool keep = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keep = job->spec.keep;
    if (job->sink) {
      job->sink_final = job->sink->Report();
      job->spool_path = job->sink->spool_path();
      job->spool_size = job->sink->spool_committed();
      job->sink.reset();  // its buffers, channels and histogram
    }
    // Read whole already, or nothing in it: nothing left to serve.
    if (job->output_read || job->spool_size == 0) RemoveSpool(*job);
  }
  size_t removed = 0;
  if (!keep) {
    // The checkpoints: each task's generations in HyDFS.
    auto names = HydfsList(hydfs_, CheckpointDir(job->id));
    if (!names.ok()) {
      Log()->warn("event=job_cleanup_failed job={} error=\"{}\"", job->id,
                  names.status().message());
    }
    for (const auto& name : names.ok() ? *names : std::vector<std::string>{}) {
      Status st = HydfsRemove(hydfs_, name);
      if (st.ok() || st.code() == StatusCode::kNotFound) {
        ++removed;
      } else {
        Log()->warn("event=job_cleanup_failed job={} file={} error=\"{}\"", job->id, name,
                    st.message());
      }
    }
  }
  Log()->info("event=job_cleaned job={} checkpoint_files_removed={} kept={}", job->id, removed,
              keep);
  ::malloc_trim(0);  // give the ended job's memory back to the system
}

TaskReport Leader::SinkReport(const Job& job) const {
  return job.sink ? job.sink->Report() : job.sink_final;
}

uint64_t Leader::SpoolCommitted(const Job& job) const {
  return job.sink ? job.sink->spool_committed() : job.spool_size;
}

void Leader::RemoveSpool(Job& job) {
  if (job.spec.keep || job.spool_removed || job.spool_path.empty() || job.sink) return;
  std::error_code ec;
  std::filesystem::remove(job.spool_path, ec);
  std::filesystem::remove(std::filesystem::path(job.spool_path).parent_path(), ec);  // if empty
  job.spool_removed = true;
}

void Leader::ForgetOldJobs() {
  size_t ended = 0;
  for (const auto& id : order_) ended += Terminal(jobs_.at(id)->state) ? 1 : 0;
  for (auto it = order_.begin(); it != order_.end() && ended > kMaxEndedJobs;) {
    JobPtr j = jobs_.at(*it);
    // Only once its cleanup ran (the sink released): a job still stopping stays listed.
    if (!Terminal(j->state) || j->sink) {
      ++it;
      continue;
    }
    RemoveSpool(*j);
    jobs_.erase(*it);
    it = order_.erase(it);
    --ended;
  }
}

}  // namespace rs::stream
