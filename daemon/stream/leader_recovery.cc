// The leader's side of recovery (README.md "Recovery"): task reports, rebuilds of failed
// tasks, nodes declared failed, and the periodic checks.
#include <algorithm>
#include <future>
#include <set>

#include "daemon/stream/leader.h"
#include "daemon/stream/leader_internal.h"
#include "shared/logging.h"
#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {

using namespace leader_internal;

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
        if (job->autoscaler && job->state == JobState::kRunning && r.state == TaskState::kRunning) {
          job->autoscaler->Sample(s.stage, s.task, {r.rate_in, r.rate_out, r.busy, r.rate_done},
                                  Clock::now());
        }
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

void Leader::Rebuild(const JobPtr& job, uint32_t stage, uint32_t task, const std::string& reason,
                     bool node_lost) {
  std::lock_guard<std::mutex> rebuild(job->rebuild_mu);
  TimePoint t0 = Clock::now();
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
    RebuildAction action = PlanRebuild(slot->failures, node_lost);
    if (action == RebuildAction::kFailJob) {
      slot->rebuilding = false;
      std::string why = "task " + std::to_string(stage) + "." + std::to_string(task) + " failed " +
                        std::to_string(slot->failures) + " times; the last: " + reason;
      pool_.Submit([this, job, why] { End(job, JobState::kFailed, why); });
      return;
    }
    if (action == RebuildAction::kElsewhere) avoid.insert(old_address);
    c = ConfigFor(*job, stage, task);
    c.incarnation = ++slot->incarnation;
    c.recover = job->spec.exactly_once;
    c.ckpt_gen_hint = slot->report.ckpt_gen;
    if (!job->spec.exactly_once) job->lossy = true;
  }
  Log()->warn("event=task_failed_run job={} task={}.{} node={} failures={} reason=\"{}\"", job->id,
              stage, task, old_node, slot->failures, reason);
  if (!node_lost) {
    // The failed run may still hold its slot on its node (and its port). If the node does not
    // answer, the start below finds out whether it is usable.
    auto stopped =
        CallStopTask(old_address, StopTaskRequest{job->id, stage, task}, std::chrono::seconds(3));
    if (!stopped.ok()) {
      Log()->warn("event=stop_task_failed job={} task={}.{} node={} error=\"{}\"", job->id, stage,
                  task, old_node, stopped.status().message());
    }
  }
  std::shared_ptr<Task> sink;
  {
    std::lock_guard<std::mutex> lock(mu_);  // CleanUp releases the sink under it
    if (job->spec.exactly_once && stage == job->spec.stages.size()) sink = job->sink;
  }
  if (sink) {
    // From now on the sink drops the failed run's frames, and what it kept of the task's input
    // order goes to the new run to replay (README.md "Order log").
    c.replay_order = sink->OrderForRebuild(task, c.incarnation);
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::pair<std::string, std::string> target;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (Terminal(job->state)) {
        slot->rebuilding = false;
        return;
      }
      if (avoid.count(old_address)) {
        auto host = PickHost(Hosts(), avoid, CurrentLoad(job.get(), stage));
        if (host) target = {host->id, host->address};
      } else {
        target = {old_node, old_address};
      }
    }
    if (target.second.empty()) break;
    bool fetched = !c.argv.empty() && c.argv[0].rfind("hydfs:", 0) == 0;
    auto started = CallStartTask(target.second, StartTaskRequest{c},
                                 fetched ? kStartTaskTimeout : kRestartTaskTimeout);
    if (!started.ok()) {
      Log()->warn("event=rebuild_attempt_failed job={} task={}.{} node={} error=\"{}\"", job->id,
                  stage, task, target.first, started.status().message());
      avoid.insert(target.second);
      continue;
    }
    std::string inbox = started->endpoint;
    int64_t pid = started->pid;
    std::string log = started->log;
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
      job->rebuild_history.push_back({WallMillis(),
                                      static_cast<uint64_t>(ToMillis(Clock::now() - t0)), stage,
                                      task, c.incarnation, old_node, target.first, reason});
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
      RewireRequest req{job->id, stage, task, inbox};
      rewires.push_back(std::async(std::launch::async, [address, req] {
        auto r = CallRewire(address, req, std::chrono::seconds(2));
        if (!r.ok()) {
          Log()->warn("event=rewire_failed job={} node={} error=\"{}\"", req.job, address,
                      r.status().message());
        }
      }));
    }
    for (auto& f : rewires) f.get();
    // A rescale under way: the new run's config has the new table, but an order sent while it
    // started may have missed it (or a task next to it); the order goes again (idempotent).
    std::optional<RegroupOrder> order;
    {
      std::lock_guard<std::mutex> lock(mu_);
      order = job->order;
    }
    if (order && stage + 1 >= order->stage && stage <= order->stage + 1)
      (void)SendOrder(job, *order);
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
      if (job->autoscaler) Autoscale(job, now);
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

}  // namespace rs::stream
