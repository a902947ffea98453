// The task's group commit (outputs out, then inputs acknowledged), its
// output channels' resends and rewires, and its HyDFS checkpoints (README.md "Exactly-once").
#include "daemon/stream/task_impl.h"

namespace rs::stream {

void Task::Impl::StageFrame(uint32_t d, bool end) {
  OutChannel& o = out[d];
  size_t n = o.builder.tuples();
  uint64_t emit = o.emit_us;
  uint64_t seq = o.tx.TakeSeq();
  OrderNote note;
  std::string bytes = o.builder.Finish(seq, emit, end, NoteFor(d, &note));
  ++frames_sent;
  bool duplicate =
      cfg.test_duplicate_every > 0 && n > 0 && frames_sent % cfg.test_duplicate_every == 0 && !end;
  if (duplicate) {
    // Test knob: the same tuples (same ids) once more, as a new frame.
    auto parsed = ParseTaskFrame(bytes);
    if (parsed.ok()) {
      DataFrameBuilder again;
      again.Begin(parsed->data);
      for (const auto& r : parsed->tuples) again.Add(r.origin, r.group, r.id, r.key, r.value);
      uint64_t seq2 = o.tx.TakeSeq();
      staged.emplace_back(d, KeptFrame{seq, std::move(bytes)});
      staged.emplace_back(d, KeptFrame{seq2, again.Finish(seq2, emit, false)});
      injected += n;
      return;
    }
  }
  staged.emplace_back(d, KeptFrame{seq, std::move(bytes)});
}

void Task::Impl::BeginBuilders() {
  for (auto& ch : out) BeginBuilder(ch);
}

void Task::Impl::BeginBuilder(OutChannel& ch) {
  DataHeader h;
  h.job = cfg.job;
  h.from_stage = cfg.stage;
  h.from_task = cfg.task;
  h.incarnation = cfg.incarnation;
  h.ack_to = t->endpoint_;
  h.epoch = out_epoch;
  ch.builder.Begin(h);
}

// The group commit: the outputs of what was processed since the last one go out (or are held,
// README.md "Recovery") in one frame per downstream, then the inputs are acknowledged.
void Task::Impl::Commit() {
  if (!dirty && staged.empty()) {
    SendDueAcks();  // acks a delay held back
    return;
  }
  for (uint32_t d = 0; d < out.size(); ++d) {
    if (out[d].builder.tuples() > 0) StageFrame(d, false);
  }
  if (sink) {
    // The spool write belongs to the commit: output is visible only once it is written.
    Status w = sink->WriteSpool();
    if (!w.ok()) {
      Fail(w);
      return;
    }
    t->spool_committed_.fetch_add(sink->Committed());
  }
  ++commits;
  for (auto& [d, p] : staged) {
    if (holds_outputs) {
      out[d].tx.Hold(std::move(p));
    } else {
      Release(d, std::move(p));
    }
  }
  staged.clear();
  SendDueAcks();
  dirty = false;
}

// Acknowledges what is processed, coalesced (README.md "Channels"): an ack goes once ack_delay_ms
// passed since the channel's last one, a quarter window of frames waits for one, or the end
// frame is processed. Durable acks are not delayed (OnCheckpointDurable).
void Task::Impl::SendDueAcks() {
  TimePoint now = Clock::now();
  uint64_t frames = std::max<uint64_t>(1, cfg.window / 4);
  for (auto& [key, ch] : in) {
    if (ch.rx.AckDueAt(now, std::chrono::milliseconds(cfg.ack_delay_ms), frames)) SendAck(ch);
  }
}

void Task::Impl::Release(uint32_t d, KeptFrame p) {
  out[d].tx.Release(std::move(p), Clock::now());
  Flush(d);
}

// Acknowledges what is processed, and what the last durable checkpoint covers. Without
// exactly-once (and at the sink, which is never rebuilt) processed is durable.
void Task::Impl::SendAck(InChannel& ch) {
  if (ch.ack_to.empty()) return;
  auto ack = ch.rx.TakeAck(!cfg.exactly_once || cfg.is_sink(), Clock::now());
  Send(ch.ack_to, EncodeAck(AckFrame{cfg.job, cfg.stage, cfg.task, ack.run, ack.seq, ack.durable}));
}

void Task::Impl::TakeRewires() {
  std::lock_guard<std::mutex> lock(t->rewire_mu_);
  for (auto& [d, endpoint] : t->rewires_) {
    if (d < out.size()) out[d].rewired_to = std::move(endpoint);
  }
  t->rewires_.clear();
}

void Task::Impl::Resend() {
  TakeRewires();
  TimePoint now = Clock::now();
  for (uint32_t d = 0; d < out.size(); ++d) {
    OutChannel& o = out[d];
    auto send = [&](const std::string& b) { return Send(o.endpoint, b); };
    if (!o.rewired_to.empty()) {
      // The receiver was rebuilt elsewhere: it restored its checkpoint and expects every
      // frame above what that checkpoint covers (our `durable`) again.
      o.endpoint = std::move(o.rewired_to);
      o.rewired_to.clear();
      o.tx.Rewire(now);
      size_t n = o.tx.Flush(send);
      resent += n;
      TaskLog("event=rewired to=" + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
              " endpoint=" + o.endpoint + " resent=" + std::to_string(n));
      continue;
    }
    Flush(d);  // what a full socket queue refused earlier
    if (o.tx.Stalled(now, kStallTimeout)) {
      Fail(Status::Unavailable("task " + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
                               " (" + o.endpoint + ") acknowledged nothing for " +
                               std::to_string(ToMillis(kStallTimeout) / 1000) + " s"));
      return;
    }
    size_t n = o.tx.Resend(now, send);
    if (n == 0) continue;
    resent += n;
    TaskLog("event=resend to=" + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
            " frames=" + std::to_string(n) + " after_seq=" + std::to_string(o.tx.acked()));
  }
}

std::string Task::Impl::CheckpointPrefix() const {
  return CheckpointFilePrefix(cfg.job, cfg.stage, cfg.task);
}

void Task::Impl::Checkpoint() {
  if (!ckpt) return;  // without exactly-once, and at the sink (it lives on the leader)
  TimePoint now = Clock::now();
  bool busy = false;
  switch (ckpt->Check(now)) {
    case CheckpointFiles::Poll::kBusy:
      busy = true;
      break;
    case CheckpointFiles::Poll::kDurable:
      OnCheckpointDurable();
      break;
    case CheckpointFiles::Poll::kFailed:
      state_chain = false;
      break;
    case CheckpointFiles::Poll::kStalled:
      state_chain = false;
      // A HyDFS write can hang on a replica that just failed; a stateful task holds its
      // outputs (and its inputs' durable acks) until a checkpoint lands, so it must not wait
      // for that write: the new generation is written now.
      last_ckpt = now - ckpt_interval;
      break;
    case CheckpointFiles::Poll::kIdle:
      break;
  }
  if (replays_outputs) {
    if (!busy) WriteWaiting(now);
  } else if (busy) {
    return;
  }
  if (replay) return;  // frames may be processed in part: positions are not settled
  // Groups cut out of the state and watermarks, their handoff not durable yet: a record now
  // would lose them (README.md "Autoscaling").
  if (regrouping && !regrouping->handoff.empty() && !regrouping->given) return;
  if (now - last_ckpt < ckpt_interval) return;
  if (replays_outputs) {
    // The record must cover every output of the inputs it counts as processed (all of them
    // are staged and released by the commit just before), and a bounded number wait.
    bool unstaged = !staged.empty();
    for (const auto& o : out) unstaged |= o.builder.tuples() > 0;
    if (unstaged) return;
    if (waiting.size() >= kMaxWaitingRecords) {
      last_ckpt = now;
      return;
    }
  }
  std::string state;
  bool changes = false;
  if (op && op->ready().stateful) {
    if (!batches.empty()) {
      want_drain = true;  // the state must match the watermarks: snapshot between batches
      return;
    }
    want_drain = false;
    // Only the entries changed since the last record, when that one is durable in the
    // generation this one goes to: recovery applies them to the generation's last full state
    // (a replaying task's records may be superseded unwritten, so its states are full).
    changes = op->ready().state_changes && !replays_outputs && state_chain &&
              state_chain_gen == ckpt->gen() && !ckpt->fresh();
    TimePoint t0 = Clock::now();
    auto st = op->Snapshot(changes);
    if (!st.ok()) {
      Fail(st.status());
      return;
    }
    if (st->size() > kMaxStateBytes) {
      FailPermanent(Status::InvalidArgument(
          "the operator's state is " + std::to_string(st->size()) + " bytes, over the " +
          std::to_string(kMaxStateBytes >> 20) + " MiB limit of a state (PROTOCOL.md Limits)"));
      return;
    }
    state = std::move(*st);
    // A large state is snapshotted less often, so that snapshots (and their HyDFS writes)
    // take at most about a tenth of the task's time; a small one every checkpoint_ms.
    ckpt_interval = std::max<Clock::duration>(std::chrono::milliseconds(cfg.checkpoint_ms),
                                              (Clock::now() - t0) * 10);
  }
  CheckpointRecord r;
  r.time_ms = WallMillis();
  r.commits = commits;
  r.wm.reserve(dedup.processed().size());
  for (const auto& [k, id] : dedup.processed()) {
    r.wm.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), id});
  }
  std::map<Upstream, uint64_t> processed, incarnation;
  for (const auto& [k, ch] : in) {
    r.in.push_back({k.first, k.second, ch.rx.run(), ch.rx.processed(), ch.rx.ended()});
    processed[k] = ch.rx.processed();
    incarnation[k] = ch.rx.run();
  }
  if (!state.empty()) r.state = state;
  r.state_changes = changes;
  if (logs_order) {
    r.order = order_log.Seal();
    ckpt_order = *r.order;
  }
  r.spool_bytes = t->spool_committed_.load();
  r.tuples_in = processed_in;
  r.tuples_out = tuples_out;
  r.duplicates = duplicates;
  r.epoch = in_epoch;
  if (cfg.rescalable && source) {
    // While its piece file is written a giver's records keep its old end (task_pieces.cc).
    SourceRange range = source->range();
    uint64_t end = piece_work && !piece_work->taking ? piece_work->kept_end : range.end;
    r.source = CheckpointRecord::Source{range.origin, range.begin, end};
  }
  last_ckpt = now;
  if (replays_outputs) {
    WaitingRecord w;
    AppendCheckpointRecord(r, &w.bytes);
    w.epoch = r.epoch;
    w.released.reserve(out.size());
    for (const auto& o : out) w.released.push_back(o.tx.released());
    w.processed = std::move(processed);
    w.incarnation = std::move(incarnation);
    waiting.push_back(std::move(w));
    if (!busy) WriteWaiting(now);
    return;
  }
  ckpt_processed = std::move(processed);
  ckpt_incarnation = std::move(incarnation);
  // Every output frame a rebuilt task must still deliver (sent and not covered by the
  // receiver's checkpoint, and held back): per downstream a contiguous run of seqs from
  // pending_from. The record lists only those no durable record of this generation listed
  // (covered_upto); a generation's first record lists them all.
  if (ckpt->fresh() || ckpt->gen() != covered_gen) {
    covered_gen = ckpt->gen();
    covered_upto.assign(out.size(), 0);
  }
  covered_upto.resize(out.size(), 0);  // downstream tasks added by a rescale
  ckpt_held.assign(out.size(), 0);
  ckpt_listed_upto.assign(out.size(), 0);
  for (uint32_t d = 0; d < out.size(); ++d) {
    for (const auto* list : {&out[d].tx.kept(), &out[d].tx.held()}) {
      for (const auto& p : *list) {
        if (r.pending_from.count(d) == 0) r.pending_from[d] = p.seq;
        ckpt_listed_upto[d] = p.seq;
        if (p.seq > covered_upto[d]) r.pending.push_back({d, p.seq, p.bytes});
      }
    }
    ckpt_held[d] = out[d].tx.held().size();
  }
  std::string rec;
  AppendCheckpointRecord(r, &rec);
  ++ckpts;
  ckpt_epoch = r.epoch;
  ckpt_gen_written = ckpt->gen();
  ckpt->Write(std::move(rec), now);
}

// Writes the newest waiting record whose outputs are all durable downstream (the older ones
// are superseded by it). A receiver that finished counts everything as durable (ForgetAll).
void Task::Impl::WriteWaiting(TimePoint now) {
  size_t take = waiting.size();
  for (size_t i = waiting.size(); i-- > 0;) {
    bool durable = true;
    for (size_t d = 0; d < out.size() && d < waiting[i].released.size() && durable; ++d) {
      durable = out[d].tx.durable() >= waiting[i].released[d];
    }
    if (durable) {
      take = i;
      break;
    }
  }
  if (take == waiting.size()) return;
  WaitingRecord w = std::move(waiting[take]);
  waiting.erase(waiting.begin(), waiting.begin() + static_cast<std::ptrdiff_t>(take) + 1);
  ckpt_processed = std::move(w.processed);
  ckpt_incarnation = std::move(w.incarnation);
  ckpt_held.clear();
  ++ckpts;
  ckpt_epoch = w.epoch;
  ckpt_gen_written = ckpt->gen();
  ckpt->Write(std::move(w.bytes), now);
}

// The checkpoint just written is durable: upstream tasks may forget what it covers, and the
// outputs it holds may go out.
void Task::Impl::OnCheckpointDurable() {
  ++ckpts_durable;
  ckpt_durable_bytes += ckpt->last_durable_bytes();
  ckpt_seconds.ObserveMicros(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(ckpt->last_durable_took()).count()));
  state_chain = true;
  if (ckpt_epoch > settled_epoch && ckpt_epoch == in_epoch && !regrouping) RegroupSettled();
  if (logs_order) order_durable = std::max(order_durable, ckpt_order);
  state_chain_gen = ckpt_gen_written;
  // The frames it listed need not be listed again in this generation.
  if (ckpt && ckpt_gen_written == covered_gen) covered_upto = ckpt_listed_upto;
  for (const auto& [k, processed] : ckpt_processed) {
    auto it = in.find(k);
    if (it != in.end() && it->second.rx.Durable(ckpt_incarnation[k], processed)) {
      SendAck(it->second);
    }
  }
  for (uint32_t d = 0; d < out.size() && d < ckpt_held.size(); ++d) {
    out[d].tx.ReleaseHeld(ckpt_held[d], Clock::now());
    Flush(d);
  }
  ckpt_held.clear();
}

}  // namespace rs::stream
