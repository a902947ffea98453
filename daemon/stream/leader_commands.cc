// The leader's job.* commands and their replies (README.md "Commands").
#include <algorithm>
#include <future>
#include <set>

#include "daemon/stream/leader.h"
#include "daemon/stream/leader_internal.h"
#include "shared/logging.h"
#include "shared/stream/checkpoint.h"
#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {

using namespace leader_internal;

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
  if (cmd == "job.kill_task") {
    // The demo's drill from the console: SIGKILL a task's operator wherever it runs (the
    // worker's stream.kill_task), and the job rebuilds it.
    auto stage = ParseCount(ArgOf(args, "stage"), "stage", kMaxStages);
    auto task = ParseCount(ArgOf(args, "task"), "task", kMaxTasksPerStage - 1);
    if (!stage.ok() || !task.ok()) {
      done(!stage.ok() ? stage.status() : task.status(), {});
      return;
    }
    std::string address;  // mu_ is held
    int64_t pid = 0;
    for (const auto& sl : job->slots) {
      if (sl.stage == *stage && sl.task == *task) {
        address = sl.address;
        pid = sl.pid;
      }
    }
    if (Terminal(job->state) || address.empty() || pid <= 0) {
      done(Status::NotFound("job " + id + " has no running task " + std::to_string(*stage) + "." +
                            std::to_string(*task)),
           {});
      return;
    }
    pool_.Submit([this, id, stage = *stage, task = *task, address, pid, done] {
      Status st;
      if (address == options_.self_endpoint) {
        st = worker_->KillTask(pid).status();
      } else {
        auto env = ForwardAdminCommand(address, "stream.kill_task", {{"pid", std::to_string(pid)}},
                                       std::chrono::seconds(5));
        st = env.ok() ? wire::ReplyPayload(*env).status() : env.status();
      }
      if (!st.ok()) {
        done(st, {});
        return;
      }
      done(Status::Ok(), [id, stage, task, address, pid](wire::Packer& pk) {
        pk.pack_map(5);
        pk.pack("job");
        pk.pack(id);
        pk.pack("stage");
        pk.pack_uint64(stage);
        pk.pack("task");
        pk.pack_uint64(task);
        pk.pack("node");
        pk.pack(address);
        pk.pack("pid");
        pk.pack_int64(pid);
      });
    });
    return;
  }
  if (cmd == "job.rescale") {
    auto stage = ParseCount(ArgOf(args, "stage"), "stage", kMaxStages + 1);
    auto tasks = ParseCount(ArgOf(args, "tasks"), "tasks", kMaxTasksPerStage);
    if (!stage.ok() || !tasks.ok()) {
      done(!stage.ok() ? stage.status() : tasks.status(), {});
      return;
    }
    if (!job->spec.autoscale) {
      done(Status::FailedPrecondition(
               "job " + id +
               " was not submitted with autoscaling: its paths are numbered for its task count, "
               "so its stages keep their size (submit with --autoscale to rescale it)"),
           {});
      return;
    }
    pool_.Submit([this, job, stage = static_cast<uint32_t>(*stage),
                  tasks = static_cast<uint32_t>(*tasks), done] {
      Status st = Rescale(job, stage, tasks, "rainctl job rescale");
      if (!st.ok()) {
        done(st, {});
        return;
      }
      done(Status::Ok(), [this, job, stage](wire::Packer& pk) {
        std::lock_guard<std::mutex> lock(mu_);
        pk.pack_map(3);
        pk.pack("job");
        pk.pack(job->id);
        pk.pack("stage");
        pk.pack_uint32(stage);
        pk.pack("tasks");
        pk.pack_uint32(job->stage_tasks[stage - 1]);
      });
    });
    return;
  }
  if (cmd == "job.source_load") {  // rainsource, once a second while the job autoscales
    auto offered = ParseCount(ArgOf(args, "offered"), "offered");
    auto backlog = ParseCount(ArgOf(args, "backlog"), "backlog");
    if (!offered.ok() || !backlog.ok()) {
      done(!offered.ok() ? offered.status() : backlog.status(), {});
      return;
    }
    if (!job->spec.live) {
      done(Status::FailedPrecondition("job " + id + " reads " + job->spec.src +
                                      ", not a live source"),
           {});
      return;
    }
    if (job->autoscaler && job->state == JobState::kRunning) {
      job->autoscaler->SourceLoad(static_cast<double>(*offered), static_cast<double>(*backlog),
                                  Clock::now());
    }
    done(Status::Ok(), [id](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("job");
      pk.pack(id);
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
    uint64_t rate = job->spec.input_rate;
    uint32_t tasks = job->stage_tasks[0];  // task indices from here on are leaving the stage
    bool autoscale = job->spec.autoscale;
    done(Status::Ok(), [id, inboxes, runs, eo, window, rate, tasks, autoscale](wire::Packer& pk) {
      pk.pack_map(8);
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
      pk.pack("input_rate");  // rainsource's cap unless its --rate says otherwise
      pk.pack_uint64(rate);
      pk.pack("tasks");
      pk.pack_uint32(tasks);
      pk.pack("autoscale");  // stage 1 may grow or shrink: rainsource follows job.tasks
      pk.pack(autoscale);
    });
    return;
  }
  done(Status::Unimplemented("unknown command " + cmd), {});
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
void Leader::PackSlot(wire::Packer& pk, const Job& job, const Slot& s) const {
  const TaskReport& r = s.report;
  pk.pack_map(26);
  // The run its task began with: a later run is a rebuild of it, a later first_run a new task
  // at the same index (a rescale brought the index back).
  pk.pack("first_run");
  pk.pack_uint64(s.first_incarnation);
  // A rescale is taking it out of its stage (README.md "Autoscaling"): rainsource ends its
  // input, and the task ends once it has processed everything.
  pk.pack("leaving");
  pk.pack(s.stage <= job.stage_tasks.size() && s.task >= job.stage_tasks[s.stage - 1]);
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
  pk.pack("busy");  // the operator's busy share of the last second
  pk.pack(Terminal(job.state) ? 0.0 : r.busy);
  // The share of the last second its output was blocked on a full window: the stage after it
  // does not keep up (the console colours the edge out of its stage by it).
  pk.pack("backpressure");
  pk.pack(Terminal(job.state) ? 0.0 : r.backpressure);
  // Checkpoint records this run made durable, and the last one's size and write-to-durable time.
  pk.pack("checkpoints");
  pk.pack_uint64(r.checkpoints);
  pk.pack("checkpoint_last_bytes");
  pk.pack_uint64(r.checkpoint_last_bytes);
  pk.pack("checkpoint_last_us");
  pk.pack_uint64(r.checkpoint_last_us);
  pk.pack("duplicates");
  pk.pack_uint64(r.duplicates);
  pk.pack("inbox");
  pk.pack(s.inbox);
  // The key groups it owns ("0-42"); "" for stage 1 and the sink, which are not keyed.
  pk.pack("groups");
  bool keyed = s.stage >= 2 && s.stage <= job.spec.stages.size();
  std::string groups;
  if (keyed) {
    const auto& owners =
        job.owners.size() >= s.stage ? job.owners[s.stage - 1] : std::vector<uint32_t>{};
    std::vector<uint32_t> mine;
    if (owners.empty()) {
      mine = KeyGroupMap::Even(job.spec.key_groups, job.spec.tasks).GroupsOf(s.task);
    } else {
      for (uint32_t g = 0; g < owners.size(); ++g) {
        if (owners[g] == s.task) mine.push_back(g);
      }
    }
    groups = KeyGroupMap::FormatGroups(mine);
  }
  pk.pack(groups);
}

void Leader::PackJobSummary(wire::Packer& pk, const Job& job, bool detail) const {
  uint64_t end_ms = Terminal(job.state) ? job.ended_ms : WallMillis();
  pk.pack_map(detail ? 30 : 14);
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
  pk.pack("key_groups");
  pk.pack_uint32(job.spec.key_groups);
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
    for (const auto& r : job.left) {  // tasks a rescale retired: their counts stay
      if (r.stage != stage) continue;
      in += r.tuples_in;
      out += r.tuples_out;
      d += r.duplicates;
      injected += r.injected;
      resent += r.resent_frames;
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
    pk.pack_uint32(stage <= job.stage_tasks.size() ? job.stage_tasks[stage - 1] : job.spec.tasks);
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
  pk.pack("autoscale");
  pk.pack(job.spec.autoscale ? job.spec.autoscale_policy : std::string());
  // Every rescale, in order (README.md "Autoscaling").
  pk.pack("scaling");
  pk.pack_array(static_cast<uint32_t>(job.scaling.size()));
  for (const auto& e : job.scaling) {
    pk.pack_map(7);
    pk.pack("at_ms");
    pk.pack_uint64(e.at_ms);
    pk.pack("stage");
    pk.pack_uint32(e.stage);
    pk.pack("from");
    pk.pack_uint32(e.from);
    pk.pack("to");
    pk.pack_uint32(e.to);
    pk.pack("reason");
    pk.pack(e.reason);
    pk.pack("outcome");
    pk.pack(e.outcome);
    pk.pack("took_ms");
    pk.pack_uint64(e.took_ms);
  }
  // Every rebuild of a failed task, in order (README.md "Recovery").
  pk.pack("rebuild_history");
  pk.pack_array(static_cast<uint32_t>(job.rebuild_history.size()));
  for (const auto& e : job.rebuild_history) {
    pk.pack_map(8);
    pk.pack("at_ms");
    pk.pack_uint64(e.at_ms);
    pk.pack("took_ms");
    pk.pack_uint64(e.took_ms);
    pk.pack("stage");
    pk.pack_uint32(e.stage);
    pk.pack("task");
    pk.pack_uint32(e.task);
    pk.pack("run");
    pk.pack_uint64(e.run);
    pk.pack("from");
    pk.pack(e.from);
    pk.pack("to");
    pk.pack(e.to);
    pk.pack("reason");
    pk.pack(e.reason);
  }
  pk.pack("note");
  pk.pack(job.lossy ? std::string("exactly-once is off and tasks were rebuilt: results may have "
                                  "been lost or repeated")
                    : std::string());
}

}  // namespace rs::stream
