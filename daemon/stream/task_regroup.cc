// Rescaling, the task's side (README.md "Autoscaling"): a change of the group table of the
// stage before (route by it, cut), of its own stage (give groups up or take them over, through
// HyDFS handoff files) or of the stage after (how many upstream tasks there are).
#include "daemon/stream/task_impl.h"

namespace rs::stream {

namespace {
constexpr auto kHandoffRetry = std::chrono::milliseconds(100);
}  // namespace

void Task::Regroup(RegroupOrder order) {
  std::lock_guard<std::mutex> lock(rewire_mu_);
  regroups_.push_back(std::move(order));
  regroups_waiting_ = true;
}

void Task::Impl::TakeRegroups() {
  // Once per loop: no lock taken unless an order came.
  if (!t->regroups_waiting_.exchange(false)) return;
  std::vector<RegroupOrder> orders;
  {
    std::lock_guard<std::mutex> lock(t->rewire_mu_);
    orders.swap(t->regroups_);
  }
  for (const auto& o : orders) {
    if (!failed.ok()) return;
    ApplyRegroup(o);
  }
}

void Task::Impl::ApplyRegroup(const RegroupOrder& o) {
  uint32_t tasks = static_cast<uint32_t>(o.inboxes.size());
  // The stage after ours (or the sink's last stage): how many upstream tasks there are. A task
  // leaving that stage still ends its channel, which InputsEnded waits for too.
  if (o.stage + 1 == cfg.stage) {
    if (tasks > 0 && tasks != upstream_count) {
      TaskLog("event=regroup_upstreams epoch=" + std::to_string(o.epoch) +
              " upstreams=" + std::to_string(tasks));
      upstream_count = tasks;
    }
    return;
  }
  // Stage 1 reading files: its tasks' ranges are cut (task_pieces.cc).
  if (o.stage == cfg.stage && has_source) {
    ApplySourceOrder(o);
    return;
  }
  // Our own stage: groups move between its tasks.
  if (o.stage == cfg.stage) {
    if (!keyed_in || o.epoch <= in_epoch || (regrouping && o.epoch <= regrouping->epoch)) return;
    if (regrouping) {
      Fail(Status::FailedPrecondition("a rescale to epoch " + std::to_string(o.epoch) +
                                      " while the one to " + std::to_string(regrouping->epoch) +
                                      " is not finished here"));
      return;
    }
    auto next = KeyGroupMap::FromOwners(o.owners, tasks);
    if (!next.ok() || next->groups() != in_groups.groups()) {
      Fail(Status::InvalidArgument("a regroup of stage " + std::to_string(o.stage) +
                                   " with a bad group table: " +
                                   (next.ok() ? "another group count" : next.status().message())));
      return;
    }
    StartRegrouping(o.epoch, std::move(*next));
    return;
  }
  // The stage after ours: route by its new table from the next frame on. Every frame we send
  // from now on carries the epoch, and each of its tasks gets one (empty) frame at once: our cut.
  if (o.stage != cfg.stage + 1 || !keyed_out || o.epoch < out_epoch) return;
  if (o.epoch == out_epoch) {
    // We started (or were rebuilt) with this table while the leader was still starting the
    // tasks the rescale adds: our config may lack their inboxes. Frames for them waited in
    // their channels; they go now (as to a rebuilt receiver, Resend).
    for (uint32_t d = 0; d < tasks && d < out.size(); ++d) {
      if (out[d].endpoint.empty() && !o.inboxes[d].empty()) out[d].rewired_to = o.inboxes[d];
    }
    return;
  }
  auto table = KeyGroupMap::FromOwners(o.owners, tasks);
  if (!table.ok() || table->groups() != cfg.key_groups) {
    Fail(Status::InvalidArgument("a regroup of stage " + std::to_string(o.stage) +
                                 " with a bad group table: " +
                                 (table.ok() ? "another group count" : table.status().message())));
    return;
  }
  for (uint32_t d = 0; d < out.size(); ++d) {
    if (out[d].builder.tuples() > 0) StageFrame(d, false);  // routed by the old table
  }
  auto fresh = [&](OutChannel& ch, const std::string& endpoint) {
    ch = OutChannel{};
    ch.endpoint = endpoint;
    ch.tx = SenderChannel(out_options);
    BeginBuilder(ch);
  };
  out_retired.resize(out.size(), false);
  const std::vector<bool> was_retired = out_retired;
  std::vector<bool> added(std::max<size_t>(out.size(), tasks), false);
  for (uint32_t d = 0; d < tasks && d < out.size(); ++d) {
    // A task index that left the stage and is back is a new task: a new channel (the one that
    // left had everything durable: its giver's record after the handoff covered our cut). Its
    // seqs start again, so what our records and the ones in flight say of channel d is void.
    if (out_retired[d]) {
      if (!out[d].tx.kept().empty()) {
        TaskLog("event=regroup_channel_dropped to=" + std::to_string(cfg.stage + 1) + "." +
                std::to_string(d) + " kept=" + std::to_string(out[d].tx.kept().size()));
      }
      fresh(out[d], o.inboxes[d]);
      added[d] = true;
      if (ckpt) ckpt->Roll();
      if (d < ckpt_held.size()) ckpt_held[d] = 0;
      for (auto& w : waiting) {
        if (d < w.released.size()) w.released[d] = 0;
      }
    }
  }
  for (uint32_t d = static_cast<uint32_t>(out.size()); d < tasks; ++d) {
    out.emplace_back();
    fresh(out.back(), o.inboxes[d]);
    added[d] = true;
  }
  out_retired.assign(out.size(), false);
  for (uint32_t d = tasks; d < out.size(); ++d) out_retired[d] = true;
  out_groups = std::move(*table);
  out_epoch = o.epoch;
  for (auto& ch : out) ch.builder.set_epoch(out_epoch);
  for (uint32_t d = 0; d < out.size(); ++d) {
    // A task that left the stage before this order gets nothing: it has ended (our cut frame
    // would never be acknowledged, and our records wait for every frame to be durable).
    if (d < was_retired.size() && was_retired[d] && !added[d]) continue;
    // Our outputs ended before the order came (the leader's check of finished tasks goes by
    // reports, a second late): an ended channel counts as cut, and a task the rescale adds
    // gets our end alone, so it does not wait for us forever.
    if (!end_sent) {
      StageFrame(d, false);
    } else if (added[d]) {
      StageFrame(d, true);
    }
  }
  dirty = true;
  TaskLog("event=regroup_out stage=" + std::to_string(o.stage) +
          " epoch=" + std::to_string(o.epoch) + " tasks=" + std::to_string(tasks));
}

void Task::Impl::StartRegrouping(uint64_t epoch, KeyGroupMap next) {
  Regrouping r;
  r.epoch = epoch;
  for (const GroupMove& m : GroupMoves(in_groups, next)) {
    if (m.from == cfg.task) r.giving.push_back(m.group);
    if (m.to == cfg.task) r.taking[m.from].push_back(m.group);
  }
  if (!r.giving.empty() && !r.taking.empty()) {
    Fail(Status::FailedPrecondition("a rescale that makes task " + cfg.name() +
                                    " both give and take groups"));
    return;
  }
  r.next = std::move(next);
  TaskLog("event=regroup epoch=" + std::to_string(epoch) + " giving=" +
          KeyGroupMap::FormatGroups(r.giving) + " taking_from=" + std::to_string(r.taking.size()) +
          " groups_after=" + KeyGroupMap::FormatGroups(r.next.GroupsOf(cfg.task)));
  regrouping = std::move(r);
}

uint64_t Task::Impl::KnownEpoch() const {
  return regrouping ? std::max(regrouping->epoch, in_epoch) : in_epoch;
}

// The table a frame of `epoch` was routed by.
const KeyGroupMap& Task::Impl::TableAt(uint64_t epoch) const {
  if (regrouping && epoch >= regrouping->epoch) return regrouping->next;
  if (epoch >= in_epoch || prev_groups.groups() == 0) return in_groups;
  return prev_groups;
}

// Every upstream task's cut for `epoch` is processed: nothing of the groups we give up will
// come any more (an upstream that ended sends nothing at all).
bool Task::Impl::CutComplete(uint64_t epoch) const {
  for (uint32_t u = 0; u < upstream_count; ++u) {
    Upstream key{cfg.stage - 1, u};
    auto it = in.find(key);
    if (it == in.end()) return false;
    if (it->second.rx.ended()) continue;
    auto c = cut_epoch.find(key);
    if (c == cut_epoch.end() || c->second < epoch) return false;
  }
  return true;
}

bool Task::Impl::RegroupHoldsInput() const {
  if (!regrouping) return false;
  const Regrouping& r = *regrouping;
  if (!r.taking.empty() && !r.taken) return true;  // the groups' state must be in first
  // Giving: once the cuts are in, the operator is drained to cut its state.
  return !r.giving.empty() && !r.given && !r.write && CutComplete(r.epoch);
}

bool Task::Impl::RegroupStep() {
  if (!regrouping || !failed.ok()) return false;
  bool busy = false;
  if (!regrouping->giving.empty() && !regrouping->given) busy |= Give();
  if (!failed.ok()) return busy;
  if (!regrouping->taking.empty() && !regrouping->taken) busy |= Take();
  if (!failed.ok() || !regrouping) return busy;
  Regrouping& r = *regrouping;
  if ((r.giving.empty() || r.given) && (r.taking.empty() || r.taken)) {
    if (in_epoch < r.epoch) {  // neither gave nor took: the table changes all the same
      prev_groups = in_groups;
      in_groups = r.next;
      in_epoch = r.epoch;
    }
    TaskLog("event=regrouped epoch=" + std::to_string(r.epoch) +
            " groups=" + KeyGroupMap::FormatGroups(in_groups.GroupsOf(cfg.task)));
    regrouping.reset();
    if (keyed_in && in_groups.GroupsOf(cfg.task).empty()) {
      retired = true;  // ends like a task whose inputs ended (CheckDone)
      TaskLog("event=retiring epoch=" + std::to_string(in_epoch));
    }
    // Settled once a record of the new epoch is durable; without checkpoints, now.
    if (!ckpt) RegroupSettled();
    busy = true;
  }
  return busy;
}

// Gives the groups up once every cut is processed and the operator is idle: their state and
// watermarks go to the handoff file, then out of the operator and the dedup. The new owner
// reads the file; our records (with the new epoch) resume once it is durable.
bool Task::Impl::Give() {
  Regrouping& r = *regrouping;
  TimePoint now = Clock::now();
  if (r.write) {
    Status st;
    {
      std::lock_guard<std::mutex> lock(r.write->mu);
      if (!r.write->done) return false;
      st = r.write->status;
    }
    r.write.reset();
    // A rebuilt giver hands the same groups over again: the first file stands.
    if (!st.ok() && st.code() != StatusCode::kAlreadyExists) {
      TaskLog("event=handoff_write_failed epoch=" + std::to_string(r.epoch) + " error=\"" +
              st.message() + "\"");
      r.retry_at = now + kHandoffRetry;
      return false;
    }
    r.given = true;
    prev_groups = in_groups;
    in_groups = r.next;
    in_epoch = r.epoch;
    state_chain = false;  // the next record holds the whole (smaller) state
    last_ckpt = now - ckpt_interval;
    TaskLog("event=handoff_written epoch=" + std::to_string(r.epoch) +
            " groups=" + KeyGroupMap::FormatGroups(r.giving));
    return true;
  }
  if (!r.handoff.empty()) {
    if (now < r.retry_at) return false;
  } else {
    if (!CutComplete(r.epoch) || !batches.empty()) return false;
    Handoff h;
    h.job = cfg.job;
    h.stage = cfg.stage;
    h.epoch = r.epoch;
    h.from_task = cfg.task;
    h.groups = r.giving;
    if (op && op->ready().stateful) {
      if (!op->ready().regroup) {
        FailPermanent(Status::FailedPrecondition(
            "the operator of stage " + std::to_string(cfg.stage) +
            " keeps state but does not take regroup (PROTOCOL.md \"Regroup\"): it cannot be "
            "rescaled"));
        return false;
      }
      auto whole = op->Snapshot(false);
      if (!whole.ok()) {
        Fail(whole.status());
        return false;
      }
      auto split = SplitKeyedState(*whole);
      if (!split.ok()) {
        Fail(split.status());
        return false;
      }
      std::map<uint32_t, std::string> drop;
      for (uint32_t g : r.giving) {
        auto it = split->find(g);
        if (it != split->end()) h.state[g] = std::move(it->second);
        drop[g] = std::string("\xc0", 1);  // nil: the group leaves
      }
      Status s = op->Regroup(JoinKeyedState(drop));
      if (!s.ok()) {
        Fail(s);
        return false;
      }
    }
    for (auto& [key, id] : dedup.Extract(r.giving)) {
      h.marks.push_back(
          {std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key), std::move(id)});
    }
    r.handoff = EncodeHandoff(h);
    TaskLog("event=handoff_cut epoch=" + std::to_string(r.epoch) +
            " groups=" + KeyGroupMap::FormatGroups(r.giving) + " state_groups=" +
            std::to_string(h.state.size()) + " marks=" + std::to_string(h.marks.size()) +
            " bytes=" + std::to_string(r.handoff.size()));
  }
  auto w = std::make_shared<ReadResult>();
  r.write = w;
  std::string name = HandoffFileName(cfg.job, cfg.stage, r.epoch, cfg.task);
  env.hydfs_create(name, r.handoff, [w](Status s) {
    std::lock_guard<std::mutex> lock(w->mu);
    w->status = std::move(s);
    w->done = true;
  });
  return true;
}

// Takes the groups over: reads every giver's handoff (polling until it is written), then, with
// the operator idle, puts their state in and their watermarks into the dedup.
bool Task::Impl::Take() {
  Regrouping& r = *regrouping;
  TimePoint now = Clock::now();
  bool busy = false;
  for (const auto& [giver, groups] : r.taking) {
    if (r.loaded.count(giver)) continue;
    auto it = r.reads.find(giver);
    if (it == r.reads.end()) {
      if (now < r.retry_at) continue;
      auto rd = std::make_shared<ReadResult>();
      r.reads[giver] = rd;
      env.hydfs_get(HandoffFileName(cfg.job, cfg.stage, r.epoch, giver),
                    [rd](Result<std::string> got) {
                      std::lock_guard<std::mutex> lock(rd->mu);
                      rd->status = got.status();
                      if (got.ok()) rd->data = std::move(*got);
                      rd->done = true;
                    });
      busy = true;
      continue;
    }
    std::shared_ptr<ReadResult> rd = it->second;
    std::lock_guard<std::mutex> lock(rd->mu);
    if (!rd->done) continue;
    r.reads.erase(it);
    if (!rd->status.ok()) {  // not written yet (NotFound), or a read that failed: again
      r.retry_at = now + kHandoffRetry;
      continue;
    }
    // The giver's file holds every group it gives; ours are a part of them.
    auto h = DecodeHandoff(rd->data);
    if (h.ok() && (h->epoch != r.epoch || h->stage != cfg.stage || h->from_task != giver)) {
      h = Status::Corruption("it is of another task or epoch");
    }
    if (h.ok()) h = HandoffPart(std::move(*h), groups);
    if (!h.ok()) {
      Fail(Status::Corruption("the handoff of task " + std::to_string(cfg.stage) + "." +
                              std::to_string(giver) + " for epoch " + std::to_string(r.epoch) +
                              " is not the one expected: " + h.status().message()));
      return false;
    }
    r.loaded[giver] = std::move(*h);
    busy = true;
  }
  if (r.loaded.size() < r.taking.size() || !batches.empty()) return busy;
  std::map<uint32_t, std::string> states;
  for (auto& [giver, h] : r.loaded) {
    for (auto& [g, s] : h.state) states[g] = std::move(s);
    for (const auto& m : h.marks) dedup.Restore({m.group, m.stage, m.task, m.origin}, m.id);
  }
  if (!states.empty()) {
    if (!op || !op->ready().regroup) {
      FailPermanent(Status::FailedPrecondition(
          "the operator of stage " + std::to_string(cfg.stage) +
          " does not take regroup (PROTOCOL.md \"Regroup\"): it cannot take groups with state"));
      return false;
    }
    Status s = op->Regroup(JoinKeyedState(states));
    if (!s.ok()) {
      Fail(s);
      return false;
    }
  }
  r.taken = true;
  r.loaded.clear();
  prev_groups = in_groups;
  in_groups = r.next;
  in_epoch = r.epoch;
  state_chain = false;
  last_ckpt = now - ckpt_interval;
  TaskLog("event=handoff_taken epoch=" + std::to_string(r.epoch) + " from=" +
          std::to_string(r.taking.size()) + " state_groups=" + std::to_string(states.size()));
  return true;
}

void Task::Impl::StartFromConfig(uint64_t restored_epoch) {
  for (auto& o : out) o.builder.set_epoch(out_epoch);
  if (!keyed_in) return;
  settled_epoch = std::max(settled_epoch, std::min(restored_epoch, in_epoch));
  if (cfg.in_prev_owners.empty() || in_epoch >= cfg.in_epoch) return;
  auto next = TableOf(cfg.in_owners, cfg.key_groups, cfg.tasks);
  if (!next.ok()) {
    Fail(next.status());
    return;
  }
  StartRegrouping(cfg.in_epoch, std::move(*next));
}

// A durable record (or, without checkpoints, the change itself) covers the epoch: the leader
// may count this task's part of the rescale as done.
void Task::Impl::RegroupSettled() {
  if (in_epoch <= settled_epoch || regrouping) return;
  settled_epoch = in_epoch;
  Publish();
}

}  // namespace rs::stream
