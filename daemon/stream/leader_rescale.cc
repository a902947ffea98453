// The leader's side of rescaling (README.md "Autoscaling"): a keyed stage grows or shrinks by
// moving key groups between its tasks. New tasks start first; the group table's new epoch goes
// to the stage (its tasks give or take groups through HyDFS handoffs), to the stage after (how
// many upstream tasks it has) and to the stage before (which routes by it and cuts its
// streams); the rescale is over once every task of the stage has a durable checkpoint of the
// new epoch, and tasks left without groups have ended. Stage 1 of a job reading files grows by
// cutting its tasks' unread bytes into pieces for the new tasks (task_pieces.cc).
#include <algorithm>
#include <future>
#include <set>

#include "daemon/stream/leader.h"
#include "daemon/stream/leader_internal.h"
#include "shared/stream/checkpoint.h"
#include "shared/stream/regroup.h"

namespace rs::stream {

using namespace leader_internal;

namespace {
constexpr auto kRescaleDeadline = std::chrono::seconds(60);
constexpr auto kRegroupCallTimeout = std::chrono::seconds(3);

// The stage-1 origins a job may use: a path number is the origin, then from stage 3 on times the
// radix plus a task, and must fit in 64 bits (README.md "Origins").
uint64_t OriginLimit(uint32_t radix, size_t stages) {
  if (stages <= 2 || radix <= 1) return UINT64_MAX;
  unsigned bits = 0;
  while ((1ull << bits) < radix) ++bits;
  unsigned shift = bits * static_cast<unsigned>(stages - 2);
  return shift == 0 ? UINT64_MAX : shift >= 64 ? 1 : 1ull << (64 - shift);
}

// Which stage-1 task gives each added task its piece: the one with the most bytes left per
// piece it would keep (greedy), from their last reports.
std::vector<PieceOrder> AssignPieces(const std::vector<uint64_t>& left,
                                     const std::vector<uint32_t>& added, uint64_t first_origin) {
  std::vector<uint32_t> giving(left.size(), 0);
  std::vector<PieceOrder> pieces;
  for (uint32_t t : added) {
    uint32_t best = 0;
    for (uint32_t g = 1; g < left.size(); ++g) {
      // left[g] / (giving[g] + 1) > left[best] / (giving[best] + 1), without division
      if (left[g] * (giving[best] + 1) > left[best] * (giving[g] + 1)) best = g;
    }
    ++giving[best];
    pieces.push_back({best, t, first_origin++});
  }
  return pieces;
}
}  // namespace

void Leader::RemoveTaskFiles(const JobPtr& job, uint32_t stage, uint32_t task) {
  std::string prefix = CheckpointFilePrefix(job->id, stage, task);
  auto names = HydfsList(hydfs_, prefix);
  if (!names.ok()) {
    Log()->warn("event=task_files_remove_failed job={} task={}.{} error=\"{}\"", job->id, stage,
                task, names.status().message());
    return;
  }
  for (const auto& name : *names) {
    Status st = HydfsRemove(hydfs_, name);
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      Log()->warn("event=task_files_remove_failed job={} file={} error=\"{}\"", job->id, name,
                  st.message());
    }
  }
}

uint32_t Leader::SlotCount(const Job& job, uint32_t stage) const {
  uint32_t n = stage >= 1 && stage <= job.stage_tasks.size() ? job.stage_tasks[stage - 1] : 0;
  for (const auto& s : job.slots) {
    if (s.stage == stage) n = std::max(n, s.task + 1);
  }
  return n;
}

TaskConfig Leader::ConfigFor(const Job& job, uint32_t stage, uint32_t task) const {
  TaskConfig c = job.base;
  const uint32_t stages = static_cast<uint32_t>(job.spec.stages.size());
  c.stage = stage;
  c.task = task;
  c.argv = job.spec.stages[stage - 1];
  c.tasks = SlotCount(job, stage);
  c.upstreams = stage == 1 ? (job.spec.live ? 1 : 0) : job.stage_tasks[stage - 2];
  if (stage == 1 && !job.spec.live) {
    uint32_t n = std::max<uint32_t>(job.stage_tasks[0], 1);
    c.src = job.src;
    c.rate = job.spec.input_rate == 0 ? 0 : (job.spec.input_rate + n - 1) / n;
    for (const auto& s : job.slots) {
      if (s.stage == 1 && s.task == task) {
        c.piece_epoch = s.piece_epoch;
        c.piece_giver = s.piece_giver;
      }
    }
  }
  if (stage == stages) {
    c.downstream = {job.sink ? job.sink->endpoint() : ""};
    c.partition_column = std::nullopt;
  } else {
    c.downstream.assign(SlotCount(job, stage + 1), "");
    for (const auto& s : job.slots) {
      if (s.stage == stage + 1) c.downstream[s.task] = s.inbox;
    }
    c.partition_column = job.input_partition[stage];
    c.out_epoch = job.epochs[stage];
    c.out_owners = job.owners[stage];
  }
  c.in_epoch = job.epochs[stage - 1];
  c.in_owners = job.owners[stage - 1];
  c.in_prev_owners = job.prev_owners[stage - 1];
  return c;
}

Status Leader::SendOrder(const JobPtr& job, const RegroupOrder& order) {
  // Two rounds. First the stage's own tasks, so that they know the new table before the stage
  // before routes by it (a frame routed by a table a task has not heard of is not taken: it
  // would wait for its resend, a second). Then every task of the stages next to it, the stage's
  // again (an order a task has is ignored); the sink, on this node, is the last stage's next.
  const bool last = order.stage == job->spec.stages.size();
  for (bool stage_only : {true, false}) {
    std::set<std::string> nodes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& s : job->slots) {
        bool near = stage_only ? s.stage == order.stage
                               : s.stage + 1 >= order.stage && s.stage <= order.stage + 1;
        if (near) nodes.insert(s.address);
      }
    }
    if (!stage_only && last) nodes.insert(options_.self_endpoint);
    std::vector<std::future<Status>> calls;
    for (const auto& address : nodes) {
      if (address == options_.self_endpoint) {
        worker_->Regroup(job->id, order, stage_only);
        continue;
      }
      RegroupRequest req{job->id, order, stage_only};
      calls.push_back(std::async(std::launch::async, [address, req] {
        auto r = CallRegroup(address, req, kRegroupCallTimeout);
        return r.ok() ? Status::Ok() : r.status();
      }));
    }
    Status first;
    for (auto& f : calls) {
      Status s = f.get();
      // A node that does not answer: its tasks are rebuilt with the new table, and the order
      // goes again to every rebuilt task while the rescale is under way.
      if (!s.ok() && first.ok()) first = s;
    }
    if (!first.ok()) {
      Log()->warn("event=regroup_order_failed job={} stage={} epoch={} error=\"{}\"", job->id,
                  order.stage, order.epoch, first.message());
    }
  }
  return Status::Ok();
}

void Leader::Autoscale(const JobPtr& job, TimePoint now) {
  if (now - job->last_decision < std::chrono::seconds(1) || job->rescaling) return;
  job->last_decision = now;
  bool started = false;
  for (const ScaleAction& a : job->autoscaler->Decide(now)) {
    if (a.stage == 1 && !job->spec.live && a.to < a.from) {
      // Stage 1 reads ranges of the input file: it grows by cutting them, but giving a range
      // back to a task that stays is not built yet. Said once per cooldown.
      Log()->info(
          "event=autoscale_skipped job={} stage=1 from={} to={} reason=\"{}\" why=\"stage "
          "1 of a job reading a file does not shrink yet\"",
          job->id, a.from, a.to, a.reason);
      job->autoscaler->Done(1, a.from, now);
      continue;
    }
    if (started) {  // one rescale at a time: the others are judged again after it
      job->autoscaler->Defer(a.stage);
      continue;
    }
    started = true;
    job->rescaling = true;  // no second decision while this one is handed to the pool
    Log()->info("event=autoscale job={} stage={} from={} to={} policy={} reason=\"{}\"", job->id,
                a.stage, a.from, a.to, ScalePolicyName(job->autoscaler->options().policy),
                a.reason);
    pool_.Submit([this, job, a] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        job->rescaling = false;  // Rescale takes it again under its own checks
      }
      Status st = Rescale(job, a.stage, a.to, a.reason);
      std::lock_guard<std::mutex> lock(mu_);
      if (job->autoscaler) {
        job->autoscaler->Done(a.stage, job->stage_tasks[a.stage - 1], Clock::now());
      }
      (void)st;  // logged by Rescale, kept in the job's scaling history
    });
  }
}

Status Leader::Rescale(const JobPtr& job, uint32_t stage, uint32_t tasks,
                       const std::string& reason) {
  const TimePoint t0 = Clock::now();
  const uint32_t stages = static_cast<uint32_t>(job->spec.stages.size());
  // A task of the stage or of the one before that finished takes no more order, so a task
  // added now would never hear its end: near its end a job is not rescaled (mu_ held).
  // Stage 1 of a live job: once rainsource ended its input (any stage-1 task says so, at once),
  // a task added would never hear of the end.
  auto finished_near = [&]() -> std::string {
    for (const auto& s : job->slots) {
      if (!s.reported || (s.stage != stage && s.stage + 1 != stage)) continue;
      if (s.report.state == TaskState::kDone || (stage == 1 && s.report.input_ended)) {
        return "task " + std::to_string(s.stage) + "." + std::to_string(s.task) +
               " has finished its input";
      }
    }
    return "";
  };
  uint32_t from = 0;
  uint64_t epoch = 0;
  RegroupOrder order;
  std::vector<uint32_t> added;
  const bool file_stage1 = stage == 1 && !job->spec.live;
  std::vector<PieceOrder> pieces;  // file_stage1: who cuts a piece for whom
  {
    std::lock_guard<std::mutex> rebuild(job->rebuild_mu);
    std::lock_guard<std::mutex> lock(mu_);
    if (job->state != JobState::kRunning) {
      return Status::FailedPrecondition("job " + job->id + " is " + JobStateName(job->state));
    }
    if (stage < 1 || stage > stages) {
      return Status::InvalidArgument("stage " + std::to_string(stage) +
                                     " cannot be rescaled: the job has stages 1 to " +
                                     std::to_string(stages));
    }
    if (file_stage1 && tasks < job->stage_tasks[0]) {
      return Status::InvalidArgument(
          "stage 1 of a job reading a file grows but does not shrink yet (its tasks' unread "
          "ranges are cut for new tasks; giving them back is not built): it has " +
          std::to_string(job->stage_tasks[0]) + " tasks");
    }
    uint32_t max = MaxTasks(job->spec);
    if (!job->spec.autoscale) max = std::min(job->spec.key_groups, kMaxTasksPerStage);
    if (tasks < 1 || tasks > max) {
      return Status::InvalidArgument("stage " + std::to_string(stage) + " may have 1 to " +
                                     std::to_string(max) + " tasks, not " + std::to_string(tasks));
    }
    if (job->rescaling) return Status::FailedPrecondition("a rescale of the job is under way");
    if (std::string why = finished_near(); !why.empty()) {
      return Status::FailedPrecondition("the job is ending (" + why + ")");
    }
    for (const auto& s : job->slots) {
      if (s.rebuilding) {
        return Status::Unavailable("task " + std::to_string(s.stage) + "." +
                                   std::to_string(s.task) + " is being rebuilt; try again");
      }
    }
    from = job->stage_tasks[stage - 1];
    if (tasks == from) return Status::Ok();
    if (file_stage1) {
      std::vector<uint64_t> left(from, 0);
      for (const auto& s : job->slots) {
        if (s.stage == 1 && s.task < from && s.reported) left[s.task] = s.report.source_left;
      }
      if (std::all_of(left.begin(), left.end(), [](uint64_t b) { return b == 0; })) {
        return Status::FailedPrecondition("stage 1 has no unread input left to share");
      }
      uint64_t limit = OriginLimit(MaxTasks(job->spec), stages);
      if (job->next_origin >= limit || limit - job->next_origin < tasks - from) {
        return Status::FailedPrecondition("stage 1 has used every origin its paths can number (" +
                                          std::to_string(limit) + " for " + std::to_string(stages) +
                                          " stages): it grows no more");
      }
      for (uint32_t t = from; t < tasks; ++t) added.push_back(t);
      pieces = AssignPieces(left, added, job->next_origin);
      job->next_origin += tasks - from;
      added.clear();
    }
    KeyGroupMap old = job->owners[stage - 1].empty()
                          ? KeyGroupMap::Even(job->spec.key_groups, from)
                          : *KeyGroupMap::FromOwners(job->owners[stage - 1], from);
    KeyGroupMap next = old.Rescaled(tasks);
    epoch = job->epochs[stage - 1] + 1;
    job->prev_owners[stage - 1] = old.owners();
    job->owners[stage - 1] = next.owners();
    job->epochs[stage - 1] = epoch;
    job->stage_tasks[stage - 1] = tasks;
    job->rescaling = true;
    for (uint32_t t = from; t < tasks; ++t) added.push_back(t);
  }
  Log()->info("event=rescale_start job={} stage={} from={} to={} epoch={} reason=\"{}\"", job->id,
              stage, from, tasks, epoch, reason);
  auto finish = [&](Status st) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!st.ok()) {
      // Nothing was sent yet: the old table stands.
      job->owners[stage - 1] = job->prev_owners[stage - 1];
      job->epochs[stage - 1] = epoch - 1;
      job->stage_tasks[stage - 1] = from;
    }
    job->prev_owners[stage - 1].clear();
    job->rescaling = false;
    job->order.reset();
    uint64_t took = static_cast<uint64_t>(ToMillis(Clock::now() - t0));
    job->scaling.push_back(
        {WallMillis(), took, stage, from, tasks, reason, st.ok() ? "done" : st.message()});
    if (st.ok()) {
      Log()->info("event=rescaled job={} stage={} from={} to={} epoch={} took_ms={}", job->id,
                  stage, from, tasks, epoch, took);
    } else {
      Log()->warn("event=rescale_failed job={} stage={} from={} to={} error=\"{}\"", job->id, stage,
                  from, tasks, st.message());
    }
    return st;
  };

  // 1. New tasks, each taking its groups once it starts (in_prev_owners in its config).
  for (uint32_t t : added) {
    TaskConfig c;
    std::pair<std::string, std::string> target;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto host = PickHost(Hosts(), {}, CurrentLoad(job.get(), stage));
      if (!host) return finish(Status::Unavailable("no node to host a new task"));
      target = {host->id, host->address};
      Slot s;
      s.stage = stage;
      s.task = t;
      auto left = job->left_runs.find({stage, t});
      if (left != job->left_runs.end()) s.incarnation = left->second + 1;
      s.first_incarnation = s.incarnation;
      for (const auto& p : pieces) {
        if (p.taker == t) {
          s.piece_epoch = epoch;
          s.piece_giver = p.giver;
        }
      }
      s.node = target.first;
      s.address = target.second;
      s.op = job->spec.stages[stage - 1][0];
      s.rebuilding = true;  // not reported yet: no rebuild of it while it starts
      job->slots.push_back(s);
      job->addresses.insert(target.second);
      c = ConfigFor(*job, stage, t);
      c.incarnation = s.incarnation;
    }
    if (c.incarnation > 1) {
      // The index was used before: what its earlier task left goes first (its checkpoints, the
      // order the sink kept of it), so that the new task is not taken for a rebuild of it.
      RemoveTaskFiles(job, stage, t);
      std::shared_ptr<Task> sink;
      {
        std::lock_guard<std::mutex> lock(mu_);
        sink = job->sink;
      }
      if (sink && stage == stages) sink->ForgetOrder(t, c.incarnation);
    }
    auto started = CallStartTask(target.second, StartTaskRequest{c}, kStartTaskTimeout);
    std::lock_guard<std::mutex> rebuild(job->rebuild_mu);  // slots are erased below
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(job->slots.begin(), job->slots.end(),
                           [&](const Slot& s) { return s.stage == stage && s.task == t; });
    if (!started.ok()) {
      // Nothing routes to it yet: take back the tasks started so far.
      job->slots.erase(it);
      for (uint32_t a : added) {
        if (a >= t) break;
        auto jt = std::find_if(job->slots.begin(), job->slots.end(),
                               [&](const Slot& s) { return s.stage == stage && s.task == a; });
        if (jt != job->slots.end()) {
          std::string address = jt->address;
          job->slots.erase(jt);
          pool_.Submit([job, stage, a, address] {
            (void)CallStopTask(address, StopTaskRequest{job->id, stage, a},
                               std::chrono::seconds(3));
          });
        }
      }
      return finish(Status::Unavailable("starting task " + std::to_string(stage) + "." +
                                        std::to_string(t) + ": " + started.status().message()));
    }
    it->inbox = started->endpoint;
    it->pid = started->pid;
    it->log = started->log;
    it->rebuilding = false;
    Log()->info("event=task_scheduled job={} task={}.{} node={} pid={} op=\"{}\" log={}", job->id,
                stage, t, target.first, started->pid, it->op, started->log);
  }

  // 2. The new table, to the stage and the stages next to it. Not if a task near it finished
  // meanwhile: then the old table stands and the tasks just started go again.
  {
    std::lock_guard<std::mutex> rebuild(job->rebuild_mu);  // slots may be erased
    std::unique_lock<std::mutex> lock(mu_);
    if (std::string why = finished_near(); !why.empty()) {
      for (const auto& s : job->slots) {
        if (s.stage != stage || s.task < from) continue;
        pool_.Submit([job, stage, t = s.task, address = s.address] {
          (void)CallStopTask(address, StopTaskRequest{job->id, stage, t}, std::chrono::seconds(3));
        });
      }
      job->slots.erase(
          std::remove_if(job->slots.begin(), job->slots.end(),
                         [&](const Slot& s) { return s.stage == stage && s.task >= from; }),
          job->slots.end());
      lock.unlock();
      return finish(Status::FailedPrecondition("the job is ending (" + why + ")"));
    }
    order.stage = stage;
    order.epoch = epoch;
    order.owners = job->owners[stage - 1];
    order.inboxes.assign(tasks, "");
    for (const auto& s : job->slots) {
      if (s.stage == stage && s.task < tasks) order.inboxes[s.task] = s.inbox;
    }
    if (file_stage1) {
      order.pieces = pieces;
      uint64_t rate = job->spec.input_rate;
      order.source_rate = rate == 0 ? 0 : (rate + tasks - 1) / tasks;
    }
    job->order = order;
  }
  (void)SendOrder(job, order);

  // 3. Settled: every task of the stage reported a durable record of the new epoch (or, without
  // exactly-once, the change itself); a task left without groups ended.
  TimePoint deadline = Clock::now() + kRescaleDeadline;
  std::vector<std::pair<uint32_t, std::string>> retire;  // (task, address)
  std::set<uint32_t> ended_givers;  // file_stage1: their (empty) pieces written here
  while (true) {
    std::vector<uint32_t> write_for;  // givers that ended before they cut
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Terminal(job->state)) {
        job->rescaling = false;
        return Status::FailedPrecondition("job " + job->id + " ended during the rescale");
      }
      bool settled = true;
      retire.clear();
      for (const auto& s : job->slots) {
        if (s.stage != stage) continue;
        bool reported = s.reported && s.report.incarnation == s.incarnation;
        if (s.task >= tasks) {
          if (!reported || s.report.state != TaskState::kDone) settled = false;
          retire.emplace_back(s.task, s.address);
        } else if (!reported || ((stage > 1 || file_stage1) && s.report.epoch < epoch &&
                                 !(file_stage1 && s.report.state == TaskState::kDone))) {
          // A live stage 1 moves no groups: running is enough (rainsource adds it to its round
          // robin). A file's: a durable record of the epoch (its cut or its piece), or done.
          settled = false;
        }
        if (file_stage1 && reported && s.report.state == TaskState::kDone &&
            !ended_givers.count(s.task)) {
          write_for.push_back(s.task);
        }
      }
      if (settled) break;
    }
    // A giver that read all its range before the order came cut nothing and wrote no file: its
    // pieces are empty, and the tasks waiting for them end at once (a file it wrote stands).
    for (uint32_t g : write_for) {
      SourcePieces none{job->id, epoch, g, {}};
      for (const auto& p : pieces) {
        if (p.giver == g) none.pieces.push_back({p.taker, p.origin, 0, 0});
      }
      ended_givers.insert(g);
      if (none.pieces.empty()) continue;
      Status st = HydfsCreate(hydfs_, PieceFileName(job->id, epoch, g), EncodeSourcePieces(none));
      if (!st.ok() && st.code() != StatusCode::kAlreadyExists) {
        ended_givers.erase(g);  // tried again on the next round
        Log()->warn("event=piece_write_failed job={} epoch={} giver={} error=\"{}\"", job->id,
                    epoch, g, st.message());
      }
    }
    if (Clock::now() >= deadline) {
      // The new table went out: it stands, and tasks rebuilt from now on get it. The job goes
      // on; the autoscaler may act again after its cooldown.
      std::lock_guard<std::mutex> lock(mu_);
      job->rescaling = false;
      job->order.reset();
      job->scaling.push_back({WallMillis(), static_cast<uint64_t>(ToMillis(Clock::now() - t0)),
                              stage, from, tasks, reason, "not settled within 60 s"});
      Log()->warn("event=rescale_unsettled job={} stage={} epoch={}", job->id, stage, epoch);
      return Status::Timeout("the rescale of stage " + std::to_string(stage) +
                             " did not settle within 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // 4. Tasks that gave all their groups away have ended: stop them and forget their slots.
  for (const auto& [t, address] : retire) {
    auto stopped =
        CallStopTask(address, StopTaskRequest{job->id, stage, t}, std::chrono::seconds(3));
    (void)stopped;  // ended already; a node that does not answer keeps a finished task
    std::lock_guard<std::mutex> rebuild(job->rebuild_mu);  // no Slot* is held while we erase
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(job->slots.begin(), job->slots.end(),
                           [&](const Slot& s) { return s.stage == stage && s.task == t; });
    if (it != job->slots.end()) {
      job->left_runs[{stage, t}] = it->incarnation;
      job->left.push_back(it->report);
      job->slots.erase(it);
    }
  }
  // Its checkpoints are not needed any more: its groups' state is in the tasks that took them,
  // each with a durable record of the new epoch (settled above).
  for (const auto& [t, address] : retire) RemoveTaskFiles(job, stage, t);
  return finish(Status::Ok());
}

}  // namespace rs::stream
