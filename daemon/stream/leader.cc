#include "daemon/stream/leader.h"

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <random>
#include <set>

#include "daemon/stream/operator_resolver.h"
#include "shared/logging.h"
#include "shared/stream/checkpoint.h"
#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

// Starting a task: resolving its operator (a hydfs: operator is fetched from HyDFS first),
// starting the process and its hello.
constexpr auto kStartTaskTimeout = std::chrono::seconds(20);
// Starting a replacement: a built-in or path operator starts in well under a second, and a
// target that died unnoticed (two nodes killed at once, the second not yet declared failed)
// must not hold the rebuild, and every other rebuild of the job, for kStartTaskTimeout.
constexpr auto kRestartTaskTimeout = std::chrono::seconds(4);
// A task whose run fails is restarted where it was this many times (when its node is alive),
// then moved; after kMaxTaskFailures failed runs the job fails.
constexpr uint32_t kInPlaceRestarts = 2;
constexpr uint32_t kMaxTaskFailures = 5;
constexpr auto kHydfsTimeout = std::chrono::seconds(60);
// An ended job's output spool stays this long for a late `job.output` reader (the output is in
// its HyDFS destination anyway), unless it was read whole first.
constexpr auto kSpoolRetention = std::chrono::minutes(10);
// Ended jobs listed by job list / job status; older ones leave the table.
constexpr size_t kMaxEndedJobs = 100;
constexpr uint64_t kMaxOutputChunk = 4u << 20;
constexpr uint64_t kHeaderBytes = 64u << 10;  // the CSV header is the first line within these

bool Terminal(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kCancelled;
}

std::string ArgOf(const Leader::Args& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

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

Status HydfsCreate(hydfs::HydfsService* h, const std::string& name, std::string data) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  h->Create(name, std::move(data), [p](Status s) { p->set_value(std::move(s)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("creating " + name + " in HyDFS");
  }
  return f.get();
}

Status HydfsRemove(hydfs::HydfsService* h, const std::string& name) {
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  h->Command("hydfs.rm", {{"name", name}},
             [p](Status s, wire::BodyWriter) { p->set_value(std::move(s)); });
  if (f.wait_for(kHydfsTimeout) != std::future_status::ready) {
    return Status::Timeout("removing " + name + " from HyDFS");
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

// One admin command to another node, blocking until its reply or the deadline.
Result<wire::Envelope> AdminCall(const std::string& address, const std::string& cmd,
                                 const std::map<std::string, std::string>& args,
                                 Clock::duration deadline) {
  auto env = transport::CallOnce(
      "tcp://" + address, wire::MsgType::kAdminCommand,
      [&](wire::Packer& pk) {
        pk.pack_map(2);
        pk.pack("cmd");
        pk.pack(cmd);
        pk.pack("args");
        pk.pack(args);
      },
      deadline);
  return env;
}

std::string RandomSuffix() {
  std::random_device rd;
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04x", static_cast<unsigned>(rd() & 0xffff));
  return buf;
}

}  // namespace

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

void Leader::Command(const std::string& cmd, const Args& args, Reply done) {
  if (cmd == "job.submit") {
    Submit(args, std::move(done));
    return;
  }
  std::string id = ArgOf(args, "job");
  if (cmd == "job.list") {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<JobPtr> jobs;
    for (const auto& jid : order_) jobs.push_back(jobs_.at(jid));
    done(Status::Ok(), [this, jobs](wire::Packer& pk) {
      std::lock_guard<std::mutex> lock(mu_);
      pk.pack_map(1);
      pk.pack("jobs");
      pk.pack_array(static_cast<uint32_t>(jobs.size()));
      for (const auto& j : jobs) PackJobSummary(pk, *j, false);
    });
    return;
  }
  if (cmd == "job.tasks") {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<JobPtr> jobs;
    if (!id.empty()) {
      JobPtr j = Find(id);
      if (!j) {
        done(Status::NotFound("no job " + id), {});
        return;
      }
      jobs.push_back(j);
    } else {
      for (const auto& jid : order_) {
        JobPtr j = jobs_.at(jid);
        if (!Terminal(j->state)) jobs.push_back(j);
      }
    }
    done(Status::Ok(), [this, jobs](wire::Packer& pk) {
      std::lock_guard<std::mutex> lock(mu_);
      size_t n = 0;
      for (const auto& j : jobs) n += j->slots.size() + (j->sink ? 1 : 0);
      pk.pack_map(1);
      pk.pack("tasks");
      pk.pack_array(static_cast<uint32_t>(n));
      for (const auto& j : jobs) {
        for (const auto& s : j->slots) PackSlot(pk, *j, s);
        if (j->sink) {
          Slot sink;
          sink.stage = j->spec.stages.size() + 1;
          sink.node = membership_->view()->self.str();
          sink.address = options_.self_endpoint;
          sink.inbox = j->sink->endpoint();
          sink.pid = ::getpid();
          sink.op = "(sink)";
          sink.log = j->sink->log_path();
          sink.report = j->sink->Report();
          sink.reported = true;
          PackSlot(pk, *j, sink);
        }
      }
    });
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  JobPtr job = Find(id);
  if (!job) {
    done(id.empty() ? Status::InvalidArgument("no job given") : Status::NotFound("no job " + id),
         {});
    return;
  }
  if (cmd == "job.status") {
    done(Status::Ok(), [this, job](wire::Packer& pk) {
      std::lock_guard<std::mutex> lock(mu_);
      PackJobSummary(pk, *job, true);
    });
    return;
  }
  if (cmd == "job.cancel") {
    if (!Terminal(job->state)) {
      Log()->info("event=job_cancel job={}", job->id);
      // End() takes the lock itself.
      pool_.Submit([this, job] { End(job, JobState::kCancelled, "cancelled by the user"); });
    }
    done(Status::Ok(), [job](wire::Packer& pk) {
      pk.pack_map(2);
      pk.pack("job");
      pk.pack(job->id);
      pk.pack("state");
      pk.pack(Terminal(job->state) ? JobStateName(job->state) : "cancelled");
    });
    return;
  }
  if (cmd == "job.output") {
    Waiter w;
    w.job = job;
    auto num = [&](const char* key, uint64_t fallback) {
      std::string v = ArgOf(args, key);
      auto r = ParseCount(v, key);
      return v.empty() || !r.ok() ? fallback : *r;
    };
    w.offset = num("offset", 0);
    w.max_bytes = std::clamp<uint64_t>(num("max_bytes", 1u << 20), 1, kMaxOutputChunk);
    uint64_t wait = std::min<uint64_t>(num("wait_ms", 500), 5000);
    w.deadline = Clock::now() + std::chrono::milliseconds(wait);
    w.done = std::move(done);
    if (!AnswerOutput(w, false)) waiters_.push_back(std::move(w));
    return;
  }
  if (cmd == "job.source") {
    if (!job->spec.live) {
      done(Status::FailedPrecondition("job " + id + " reads " + job->spec.src +
                                      ", not a live source"),
           {});
      return;
    }
    if (job->state != JobState::kRunning) {
      done(Status::FailedPrecondition("job " + id + " is " + JobStateName(job->state)), {});
      return;
    }
    if (job->source_attached) {
      done(Status::FailedPrecondition("job " + id + " already has a rainsource attached"), {});
      return;
    }
    job->source_attached = true;
    std::vector<std::string> inboxes;
    std::vector<uint64_t> runs;  // rainsource follows rebuilds by these (and the inboxes)
    for (const auto& s : job->slots) {
      if (s.stage != 1) continue;
      inboxes.push_back(s.inbox);
      runs.push_back(s.incarnation);
    }
    bool eo = job->spec.exactly_once;
    uint32_t window = options_.knobs.window;
    done(Status::Ok(), [id, inboxes, runs, eo, window](wire::Packer& pk) {
      pk.pack_map(5);
      pk.pack("job");
      pk.pack(id);
      pk.pack("endpoints");
      pk.pack(inboxes);
      pk.pack("incarnations");
      pk.pack(runs);
      pk.pack("exactly_once");
      pk.pack(eo);
      pk.pack("window");
      pk.pack_uint32(window);
    });
    return;
  }
  done(Status::Unimplemented("unknown command " + cmd), {});
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
  // Exactly-once names each (stage-1 task, task...) path of a tuple by one 64-bit number.
  if (spec->exactly_once && spec->tasks > 1) {
    unsigned bits = 0;
    while ((1ull << bits) < spec->tasks) ++bits;
    if (bits * (spec->stages.size() - 1) > 64) {
      done(Status::InvalidArgument("with exactly-once, tasks^(stages-1) must fit in 64 bits (" +
                                   std::to_string(spec->tasks) + " tasks and " +
                                   std::to_string(spec->stages.size()) + " stages do not)"),
           {});
      return;
    }
  }
  if (spec->autoscale) {
    done(Status::Unimplemented("autoscaling is not yet supported; submit with "
                               "autoscale_enabled=false (a later release adds it)"),
         {});
    return;
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

Status Leader::Place(Job& job) {
  membership::ViewPtr view = membership_->view();
  std::vector<std::pair<std::string, std::string>> workers;  // (member id, address)
  for (const auto& m : view->members) {
    if (m.record.state != membership::MemberState::kAlive) continue;
    std::string addr = m.record.id.host() + ":" + std::to_string(m.record.id.port());
    if (addr == options_.self_endpoint && !options_.hosts_tasks) continue;
    workers.emplace_back(m.record.id.str(), addr);
  }
  if (workers.empty()) {
    // Alone: the leader hosts the tasks itself.
    workers.emplace_back(view->self.str(), options_.self_endpoint);
  }
  // Load: running tasks per node, over every live job.
  std::map<std::string, size_t> load;
  for (const auto& w : workers) load[w.second] = 0;
  for (const auto& [id, j] : jobs_) {
    if (Terminal(j->state)) continue;
    for (const auto& s : j->slots) {
      if (load.count(s.address)) ++load[s.address];
    }
  }
  for (uint32_t stage = 1; stage <= job.spec.stages.size(); ++stage) {
    std::vector<std::pair<std::string, std::string>> order = workers;
    std::stable_sort(order.begin(), order.end(),
                     [&](const auto& a, const auto& b) { return load[a.second] < load[b.second]; });
    for (uint32_t t = 0; t < job.spec.tasks; ++t) {
      const auto& w = order[t % order.size()];
      Slot s;
      s.stage = stage;
      s.task = t;
      s.node = w.first;
      s.address = w.second;
      job.addresses.insert(w.second);
      ++load[w.second];
      job.slots.push_back(s);
    }
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
  base.csv_header = header;
  base.exactly_once = job->spec.exactly_once;
  base.incarnation = 1;
  base.live = job->spec.live;
  base.leader = options_.self_endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->base = base;
    job->input_partition.assign(stages + 1, std::nullopt);
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
      std::string bytes = EncodeTaskConfig(c);
      std::string address = s.address;
      slots.push_back(&s);
      futures.push_back(std::async(std::launch::async, [address, bytes] {
        Started r;
        auto env = AdminCall(address, "stream.start_task", {{"task", bytes}}, kStartTaskTimeout);
        if (!env.ok()) {
          r.status = env.status();
          return r;
        }
        auto payload = wire::ReplyPayload(*env);
        if (!payload.ok()) {
          r.status = payload.status();
          return r;
        }
        wire::FieldReader f(*payload, "start_task reply");
        r.inbox = f.Str("endpoint");
        r.pid = f.Int("pid");
        r.log = f.StrOr("log", "");
        if (const msgpack::object* p = f.Get("input_partition")) {
          const msgpack::object* col = wire::MapGet(*p, "csv_column");
          uint64_t c = 0;
          if (col && wire::ReadUint(*col, &c)) r.column = c;
        }
        r.status = f.status();
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
      End(job, JobState::kFailed, error);
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
    auto r = AdminCall(address, "stream.stop_job",
                       {{"job", job->id}, {"remove", remove ? "1" : "0"}}, std::chrono::seconds(3));
    Result<msgpack::object> payload =
        r.ok() ? wire::ReplyPayload(*r) : Result<msgpack::object>(r.status());
    if (!payload.ok()) {
      Log()->warn("event=stop_job_failed job={} node={} error=\"{}\"", job->id, address,
                  payload.status().message());
      continue;
    }
    const msgpack::object* reports = wire::MapGet(*payload, "reports");
    if (reports && reports->type == msgpack::type::ARRAY) {
      for (uint32_t i = 0; i < reports->via.array.size; ++i) {
        auto rep = ReadTaskReport(reports->via.array.ptr[i]);
        if (rep.ok()) finals.push_back(std::move(*rep));
      }
    }
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

bool Leader::AnswerOutput(Waiter& w, bool final) {
  // Called with mu_ held.
  Job& job = *w.job;
  uint64_t committed = SpoolCommitted(job);
  bool terminal = Terminal(job.state);
  if (w.offset >= committed && !terminal && !final) return false;
  if (job.spool_removed && w.offset < committed) {
    w.done(Status::NotFound("job " + job.id + "'s output was read whole and removed from the " +
                            "leader; it is in the HyDFS file " + job.spec.dest),
           {});
    return true;
  }
  std::string data;
  if (w.offset < committed) {
    uint64_t n = std::min(committed - w.offset, w.max_bytes);
    data.resize(n);
    int fd =
        ::open((job.sink ? job.sink->spool_path() : job.spool_path).c_str(), O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? ::pread(fd, data.data(), n, static_cast<off_t>(w.offset)) : -1;
    if (fd >= 0) ::close(fd);
    data.resize(got > 0 ? static_cast<size_t>(got) : 0);
  }
  uint64_t next = w.offset + data.size();
  std::string state = JobStateName(job.state), reason = job.reason;
  bool complete = terminal && next >= committed;
  if (complete) {
    job.output_read = true;  // the spool goes once the job's cleanup released the sink
    RemoveSpool(job);
  }
  w.done(Status::Ok(), [data = std::move(data), next, state, reason, complete](wire::Packer& pk) {
    pk.pack_map(5);
    pk.pack("data");
    pk.pack_bin(static_cast<uint32_t>(data.size()));
    pk.pack_bin_body(data.data(), static_cast<uint32_t>(data.size()));
    pk.pack("offset");
    pk.pack_uint64(next);
    pk.pack("state");
    pk.pack(state);
    pk.pack("reason");
    pk.pack(reason);
    pk.pack("complete");
    pk.pack(complete);
  });
  return true;
}

void Leader::OnReports(const std::vector<TaskReport>& reports) {
  std::vector<std::pair<JobPtr, std::string>> failures;
  std::vector<std::pair<JobPtr, std::string>> permanent;  // failures no rebuild can fix
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& r : reports) {
      JobPtr job = Find(r.job);
      if (!job) continue;
      for (auto& s : job->slots) {
        if (s.stage != r.stage || s.task != r.task) continue;
        if (r.incarnation != 0 && r.incarnation != s.incarnation) continue;  // an earlier run
        s.report = r;
        s.reported = true;
        if (r.pid > 0) s.pid = r.pid;
        if (r.state == TaskState::kDone && !s.completed_logged) {
          s.completed_logged = true;
          Log()->info(
              "event=task_completed job={} task={}.{} node={} tuples_in={} tuples_out={} "
              "duplicates={}",
              job->id, s.stage, s.task, s.node, r.tuples_in, r.tuples_out, r.duplicates);
        }
        if (r.state == TaskState::kFailed && !Terminal(job->state) && r.permanent) {
          // The same input fails the same way (a size limit): no rebuild.
          permanent.emplace_back(job, "task " + std::to_string(s.stage) + "." +
                                          std::to_string(s.task) + " failed (not retried: " +
                                          "the same input fails the same way): " + r.reason);
        } else if (r.state == TaskState::kFailed && !Terminal(job->state) && !s.rebuilding) {
          failures.emplace_back(
              job, std::to_string(s.stage) + "." + std::to_string(s.task) + "\n" + r.reason);
        }
      }
    }
  }
  for (auto& [job, why] : permanent) {
    pool_.Submit([this, job = job, why = why] { End(job, JobState::kFailed, why); });
  }
  for (auto& [job, what] : failures) {
    size_t dot = what.find('.'), nl = what.find('\n');
    uint32_t stage = static_cast<uint32_t>(std::stoul(what.substr(0, dot)));
    uint32_t task = static_cast<uint32_t>(std::stoul(what.substr(dot + 1, nl - dot - 1)));
    ScheduleRebuild(job, stage, task, what.substr(nl + 1), false);
  }
}

void Leader::ScheduleRebuild(const JobPtr& job, uint32_t stage, uint32_t task, std::string reason,
                             bool node_lost) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (Terminal(job->state)) return;
    for (auto& s : job->slots) {
      if (s.stage == stage && s.task == task) {
        if (s.rebuilding) return;
        s.rebuilding = true;
      }
    }
  }
  pool_.Submit([this, job, stage, task, reason = std::move(reason), node_lost] {
    Rebuild(job, stage, task, reason, node_lost);
  });
}

std::pair<std::string, std::string> Leader::PickWorker(const Job& job, uint32_t stage,
                                                       const std::set<std::string>& avoid) {
  membership::ViewPtr view = membership_->view();
  std::map<std::string, size_t> load;
  std::map<std::string, std::string> ids;  // address -> member id
  for (const auto& m : view->members) {
    if (m.record.state != membership::MemberState::kAlive) continue;
    std::string addr = m.record.id.host() + ":" + std::to_string(m.record.id.port());
    if (avoid.count(addr)) continue;
    if (addr == options_.self_endpoint && !options_.hosts_tasks && view->members.size() > 1) {
      continue;
    }
    load[addr] = 0;
    ids[addr] = m.record.id.str();
  }
  for (const auto& [id, j] : jobs_) {
    if (Terminal(j->state)) continue;
    for (const auto& s : j->slots) {
      // A task of the same stage weighs more: spread a stage's tasks.
      if (load.count(s.address)) load[s.address] += (j.get() == &job && s.stage == stage) ? 4 : 1;
    }
  }
  std::pair<std::string, std::string> best;
  size_t best_load = SIZE_MAX;
  for (const auto& [addr, l] : load) {
    if (l < best_load) {
      best_load = l;
      best = {ids[addr], addr};
    }
  }
  return best;
}

void Leader::Rebuild(const JobPtr& job, uint32_t stage, uint32_t task, const std::string& reason,
                     bool node_lost) {
  std::lock_guard<std::mutex> rebuild(job->rebuild_mu);
  Slot* slot = nullptr;
  TaskConfig c;
  std::string old_node, old_address;
  std::set<std::string> avoid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : job->slots) {
      if (s.stage == stage && s.task == task) slot = &s;
    }
    if (!slot || Terminal(job->state)) {
      if (slot) slot->rebuilding = false;
      return;
    }
    ++slot->failures;
    old_node = slot->node;
    old_address = slot->address;
    if (slot->failures >= kMaxTaskFailures) {
      slot->rebuilding = false;
      std::string why = "task " + std::to_string(stage) + "." + std::to_string(task) + " failed " +
                        std::to_string(slot->failures) + " times; the last: " + reason;
      pool_.Submit([this, job, why] { End(job, JobState::kFailed, why); });
      return;
    }
    if (node_lost || slot->failures > kInPlaceRestarts) avoid.insert(old_address);
    c = job->base;
    c.stage = stage;
    c.task = task;
    c.argv = job->spec.stages[stage - 1];
    c.incarnation = ++slot->incarnation;
    c.recover = job->spec.exactly_once;
    c.ckpt_gen_hint = slot->report.ckpt_gen;
    uint32_t stages = static_cast<uint32_t>(job->spec.stages.size());
    uint32_t tasks = job->spec.tasks;
    c.upstreams = stage == 1 ? (job->spec.live ? 1 : 0) : tasks;
    if (stage == 1 && !job->spec.live) {
      c.src = job->src;
      c.rate = job->spec.input_rate == 0 ? 0 : (job->spec.input_rate + tasks - 1) / tasks;
    }
    if (stage == stages) {
      c.downstream = {job->sink ? job->sink->endpoint() : ""};
      c.partition_column = std::nullopt;
    } else {
      c.downstream.assign(tasks, "");
      for (const auto& s : job->slots) {
        if (s.stage == stage + 1) c.downstream[s.task] = s.inbox;
      }
      c.partition_column = job->input_partition[stage];
    }
    if (!job->spec.exactly_once) job->lossy = true;
  }
  Log()->warn("event=task_failed_run job={} task={}.{} node={} failures={} reason=\"{}\"", job->id,
              stage, task, old_node, slot->failures, reason);
  if (!node_lost) {
    // The failed run may still hold its slot on its node (and its port). If the node does not
    // answer, the start below finds out whether it is usable.
    auto stopped = AdminCall(
        old_address, "stream.stop_task",
        {{"job", job->id}, {"stage", std::to_string(stage)}, {"task", std::to_string(task)}},
        std::chrono::seconds(3));
    if (!stopped.ok()) {
      Log()->warn("event=stop_task_failed job={} task={}.{} node={} error=\"{}\"", job->id, stage,
                  task, old_node, stopped.status().message());
    }
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::pair<std::string, std::string> target;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Terminal(job->state)) {
        slot->rebuilding = false;
        return;
      }
      target = avoid.count(old_address) ? PickWorker(*job, stage, avoid)
                                        : std::make_pair(old_node, old_address);
    }
    if (target.second.empty()) break;
    bool fetched = !c.argv.empty() && c.argv[0].rfind("hydfs:", 0) == 0;
    auto env = AdminCall(target.second, "stream.start_task", {{"task", EncodeTaskConfig(c)}},
                         fetched ? kStartTaskTimeout : kRestartTaskTimeout);
    Result<msgpack::object> payload =
        env.ok() ? wire::ReplyPayload(*env) : Result<msgpack::object>(env.status());
    if (!payload.ok()) {
      Log()->warn("event=rebuild_attempt_failed job={} task={}.{} node={} error=\"{}\"", job->id,
                  stage, task, target.first, payload.status().message());
      avoid.insert(target.second);
      continue;
    }
    wire::FieldReader f(*payload, "start_task reply");
    std::string inbox = f.Str("endpoint");
    int64_t pid = f.Int("pid");
    std::string log = f.StrOr("log", "");
    std::set<std::string> upstream_nodes;
    bool ended = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ended = Terminal(job->state);
      slot->node = target.first;
      slot->address = target.second;
      job->addresses.insert(target.second);
      slot->inbox = inbox;
      slot->pid = pid;
      slot->log = log;
      slot->reported = false;
      slot->report = TaskReport{};
      slot->rebuilding = false;
      ++job->rebuilds;
      for (const auto& s : job->slots) {
        if (s.stage + 1 == stage) upstream_nodes.insert(s.address);
      }
    }
    if (ended) {  // cancelled or failed while this run started: it must not run on
      StopLateTasks(job);
      return;
    }
    Log()->warn(
        "event=task_rescheduled job={} task={}.{} old_node={} new_node={} incarnation={} "
        "reason=\"{}\"",
        job->id, stage, task, old_node, target.first, c.incarnation, reason);
    // Point the upstream tasks at the new inbox, in parallel; a node that is gone is skipped
    // (its tasks are rebuilt with the current inboxes anyway).
    std::set<std::string> alive;
    for (const auto& m : membership_->view()->members) {
      if (m.record.state == membership::MemberState::kAlive ||
          m.record.state == membership::MemberState::kSuspect) {
        alive.insert(m.record.id.host() + ":" + std::to_string(m.record.id.port()));
      }
    }
    std::vector<std::future<void>> rewires;
    for (const auto& address : upstream_nodes) {
      if (address == options_.self_endpoint) {
        worker_->Rewire(job->id, stage, task, inbox);
        continue;
      }
      if (!alive.count(address)) continue;
      std::map<std::string, std::string> args{{"job", job->id},
                                              {"stage", std::to_string(stage)},
                                              {"task", std::to_string(task)},
                                              {"endpoint", inbox}};
      std::string id = job->id;
      rewires.push_back(std::async(std::launch::async, [address, args, id] {
        auto r = AdminCall(address, "stream.rewire", args, std::chrono::seconds(2));
        if (!r.ok()) {
          Log()->warn("event=rewire_failed job={} node={} error=\"{}\"", id, address,
                      r.status().message());
        }
      }));
    }
    for (auto& f : rewires) f.get();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->rebuilding = false;
  }
  End(job, JobState::kFailed,
      "task " + std::to_string(stage) + "." + std::to_string(task) +
          " could not be restarted on any node (" + reason + ")");
}

void Leader::Tick() {
  std::vector<std::pair<JobPtr, std::pair<JobState, std::string>>> ends;
  struct Lost {
    uint32_t stage, task;
    std::string reason;
  };
  std::vector<std::pair<JobPtr, Lost>> lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TimePoint now = Clock::now();
    for (auto& [id, job] : jobs_) {
      if (Terminal(job->state) && now - job->ended_at > kSpoolRetention) RemoveSpool(*job);
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (AnswerOutput(*it, now >= it->deadline)) {
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    membership::ViewPtr view = membership_->view();
    std::map<std::string, membership::MemberState> states;
    for (const auto& m : view->members) states[m.record.id.str()] = m.record.state;
    for (const auto& [id, job] : jobs_) {
      if (Terminal(job->state)) continue;
      if (job->sink) {
        TaskReport r = job->sink->Report();
        if (r.state == TaskState::kDone) {
          // Done once every task's final report is in: stop the tasks first (their final
          // reports come back with the stop), then end the job.
          if (!job->finishing) {
            job->finishing = true;
            pool_.Submit([this, job] {
              StopTasks(job);
              End(job, JobState::kDone, "");
            });
          }
          continue;
        }
        if (r.state == TaskState::kFailed) {
          ends.push_back({job, {JobState::kFailed, "sink: " + r.reason}});
          continue;
        }
      }
      if (job->state != JobState::kRunning) continue;
      // Downstream stages first, so a rebuilt task starts with its downstream's new inbox.
      for (auto it = job->slots.rbegin(); it != job->slots.rend(); ++it) {
        const Slot& s = *it;
        auto st = states.find(s.node);
        bool gone = st == states.end() || st->second == membership::MemberState::kFailed ||
                    st->second == membership::MemberState::kLeft;
        if (gone && !s.rebuilding && !(s.reported && s.report.state == TaskState::kDone)) {
          lost.push_back({job, {s.stage, s.task, "node " + s.node + " failed"}});
        }
      }
    }
  }
  for (auto& [job, e] : ends) End(job, e.first, e.second);
  for (auto& [job, l] : lost) ScheduleRebuild(job, l.stage, l.task, l.reason, true);
}

void Leader::TickLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (stop_) break;
    lock.unlock();
    Tick();
    lock.lock();
  }
}

void Leader::PackSlot(wire::Packer& pk, const Job& job, const Slot& s) const {
  const TaskReport& r = s.report;
  pk.pack_map(18);
  // The checkpoint file the task writes (rainctl job checkpoint reads it); "" without
  // exactly-once or before the task's first report.
  pk.pack("checkpoint");
  pk.pack(job.spec.exactly_once && s.reported && r.ckpt_gen > 0
              ? CheckpointFileName(job.id, s.stage, s.task, r.ckpt_gen)
              : std::string());
  pk.pack("incarnation");
  pk.pack_uint64(s.incarnation);
  pk.pack("failures");
  pk.pack_uint32(s.failures);
  pk.pack("job");
  pk.pack(job.id);
  pk.pack("stage");
  pk.pack_uint32(s.stage);
  pk.pack("task");
  pk.pack_uint32(s.task);
  pk.pack("node");
  pk.pack(s.node);
  pk.pack("pid");
  pk.pack_int64(s.pid);
  pk.pack("op");
  pk.pack(s.reported && !r.op.empty() ? r.op : s.op);
  pk.pack("log");
  pk.pack(s.log);
  pk.pack("state");
  pk.pack(s.reported ? TaskStateName(r.state) : "starting");
  pk.pack("reason");
  pk.pack(r.reason);
  pk.pack("tuples_in");
  pk.pack_uint64(r.tuples_in);
  pk.pack("tuples_out");
  pk.pack_uint64(r.tuples_out);
  pk.pack("rate_in");
  pk.pack(Terminal(job.state) ? 0.0 : r.rate_in);
  pk.pack("rate_out");
  pk.pack(Terminal(job.state) ? 0.0 : r.rate_out);
  pk.pack("duplicates");
  pk.pack_uint64(r.duplicates);
  pk.pack("inbox");
  pk.pack(s.inbox);
}

void Leader::PackJobSummary(wire::Packer& pk, const Job& job, bool detail) const {
  uint64_t end_ms = Terminal(job.state) ? job.ended_ms : WallMillis();
  pk.pack_map(detail ? 26 : 13);
  pk.pack("job");
  pk.pack(job.id);
  pk.pack("name");
  pk.pack(job.spec.name);
  pk.pack("state");
  pk.pack(JobStateName(job.state));
  pk.pack("reason");
  pk.pack(job.reason);
  pk.pack("submitted_ms");
  pk.pack_uint64(job.submitted_ms);
  pk.pack("elapsed_ms");
  pk.pack_uint64(end_ms > job.submitted_ms ? end_ms - job.submitted_ms : 0);
  pk.pack("src");
  pk.pack(job.spec.live ? std::string("(rainsource)") : job.spec.src);
  pk.pack("dest");
  pk.pack(job.spec.dest);
  pk.pack("stages");
  pk.pack_uint32(static_cast<uint32_t>(job.spec.stages.size()));
  pk.pack("tasks");
  pk.pack_uint32(job.spec.tasks);
  pk.pack("exactly_once");
  pk.pack(job.spec.exactly_once);
  pk.pack("live");
  pk.pack(job.spec.live);
  pk.pack("input_rate");
  pk.pack_uint64(job.spec.input_rate);
  if (!detail) return;
  TaskReport sink = SinkReport(job);
  uint64_t dups = sink.duplicates, injected = 0, resent = 0, source = 0;
  pk.pack("stages_detail");
  pk.pack_array(static_cast<uint32_t>(job.spec.stages.size()));
  for (uint32_t stage = 1; stage <= job.spec.stages.size(); ++stage) {
    uint64_t in = 0, out = 0, d = 0;
    double rin = 0, rout = 0;
    for (const auto& s : job.slots) {
      if (s.stage != stage) continue;
      in += s.report.tuples_in;
      out += s.report.tuples_out;
      d += s.report.duplicates;
      rin += s.report.rate_in;
      rout += s.report.rate_out;
      injected += s.report.injected;
      resent += s.report.resent_frames;
    }
    if (stage == 1) source = in;
    dups += d;
    bool live = !Terminal(job.state);
    std::string op;
    for (const auto& w : job.spec.stages[stage - 1]) op += (op.empty() ? "" : " ") + w;
    pk.pack_map(8);
    pk.pack("stage");
    pk.pack_uint32(stage);
    pk.pack("op");
    pk.pack(op);
    pk.pack("tasks");
    pk.pack_uint32(job.spec.tasks);
    pk.pack("tuples_in");
    pk.pack_uint64(in);
    pk.pack("tuples_out");
    pk.pack_uint64(out);
    pk.pack("rate_in");
    pk.pack(live ? rin : 0.0);
    pk.pack("rate_out");
    pk.pack(live ? rout : 0.0);
    pk.pack("duplicates");
    pk.pack_uint64(d);
  }
  pk.pack("source_tuples");
  pk.pack_uint64(source);
  pk.pack("output_lines");
  pk.pack_uint64(sink.output_lines);
  pk.pack("output_bytes");
  pk.pack_uint64(sink.output_bytes);
  pk.pack("latency_p50_us");
  pk.pack_uint64(sink.latency_p50_us);
  pk.pack("latency_p99_us");
  pk.pack_uint64(sink.latency_p99_us);
  pk.pack("latency_samples");
  pk.pack_uint64(sink.latency_samples);
  pk.pack("duplicates");
  pk.pack_uint64(dups);
  pk.pack("injected");
  pk.pack_uint64(injected);
  pk.pack("resent_frames");
  pk.pack_uint64(resent);
  pk.pack("sink_duplicates");
  pk.pack_uint64(sink.duplicates);
  pk.pack("rebuilds");
  pk.pack_uint32(job.rebuilds);
  pk.pack("note");
  pk.pack(job.lossy ? std::string("exactly-once is off and tasks were rebuilt: results may have "
                                  "been lost or repeated")
                    : std::string());
}

}  // namespace rs::stream
