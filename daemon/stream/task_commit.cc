// The task's group commit (dedup log record, then outputs out and inputs acknowledged), its
// output channels' resends and rewires, and its HyDFS checkpoints (README.md "Exactly-once").
#include "daemon/stream/task_impl.h"

namespace rs::stream {

void Task::Impl::StageFrame(uint32_t d, bool end) {
  OutChannel& o = out[d];
  size_t n = o.builder.tuples();
  uint64_t emit = o.emit_us;
  uint64_t seq = o.tx.TakeSeq();
  std::string bytes = o.builder.Finish(seq, emit, end);
  ++frames_sent;
  bool duplicate = cfg.test_duplicate_every > 0 && n > 0 &&
                   frames_sent % cfg.test_duplicate_every == 0 && !end;
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
  for (size_t d = 0; d < out.size(); ++d) {
    DataHeader h;
    h.job = cfg.job;
    h.from_stage = cfg.stage;
    h.from_task = cfg.task;
    h.incarnation = cfg.incarnation;
    h.ack_to = t->endpoint_;
    out[d].builder.Begin(h);
  }
}

// The "wm" and "in" entries of a log or checkpoint record: the watermarks processed
// ([group, stage, task, origin, id]) and the input channels ([stage, task, sender run, processed
// seq, ended]), the same in both so recovery reads either.
void Task::Impl::PackPositions(wire::Packer& pk) const {
  pk.pack("wm");
  pk.pack_array(static_cast<uint32_t>(dedup.processed().size()));
  for (const auto& [k, id] : dedup.processed()) {
    pk.pack_array(5);
    pk.pack_uint32(std::get<0>(k));
    pk.pack_uint32(std::get<1>(k));
    pk.pack_uint32(std::get<2>(k));
    pk.pack_uint64(std::get<3>(k));
    pk.pack_bin(static_cast<uint32_t>(id.size()));
    pk.pack_bin_body(id.data(), static_cast<uint32_t>(id.size()));
  }
  pk.pack("in");
  pk.pack_array(static_cast<uint32_t>(in.size()));
  for (const auto& [k, ch] : in) {
    pk.pack_array(5);
    pk.pack_uint32(k.first);
    pk.pack_uint32(k.second);
    pk.pack_uint64(ch.rx.run());
    pk.pack_uint64(ch.rx.processed());
    pk.pack(ch.rx.ended());
  }
}

std::string Task::Impl::LogRecord() {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_map(4);
  PackPositions(pk);
  pk.pack("out");
  pk.pack_array(static_cast<uint32_t>(staged.size()));
  for (const auto& [d, p] : staged) {
    pk.pack_array(3);
    pk.pack_uint32(d);
    pk.pack_uint64(p.seq);
    pk.pack_bin(static_cast<uint32_t>(p.bytes.size()));
    pk.pack_bin_body(p.bytes.data(), static_cast<uint32_t>(p.bytes.size()));
  }
  pk.pack("acked");
  pk.pack_array(static_cast<uint32_t>(acked_since_commit.size()));
  for (const auto& [d, seq] : acked_since_commit) {
    pk.pack_array(2);
    pk.pack_uint32(d);
    pk.pack_uint64(seq);
  }
  return std::string(buf.data(), buf.size());
}

void Task::Impl::Commit() {
  if (!dirty && staged.empty() && acked_since_commit.empty()) return;
  // Acks alone change nothing a rebuilt task would need urgently: log them with the next
  // commit, or within 10 ms.
  if (!dirty && staged.empty() && Clock::now() - last_commit < std::chrono::milliseconds(10)) {
    return;
  }
  last_commit = Clock::now();
  for (uint32_t d = 0; d < out.size(); ++d) {
    if (out[d].builder.tuples() > 0) StageFrame(d, false);
  }
  if (sink) {
    // The spool write belongs to the commit: output is visible only once it is logged.
    Status w = sink->WriteSpool();
    if (!w.ok()) {
      Fail(w);
      return;
    }
  }
  ++commits;
  if (cfg.exactly_once && log) {
    auto idx = log->Append(LogRecord());
    if (!idx.ok()) {
      Fail(Status::IOError("dedup log: " + idx.status().message()));
      return;
    }
    MaybeTrim();
  }
  if (sink) t->spool_committed_.fetch_add(sink->Committed());
  acked_since_commit.clear();
  for (auto& [d, p] : staged) {
    if (holds_outputs) {
      out[d].tx.Hold(std::move(p));
    } else {
      Release(d, std::move(p));
    }
  }
  staged.clear();
  for (auto& [key, ch] : in) {
    if (ch.rx.AckDue()) SendAck(ch);
  }
  dirty = false;
}

void Task::Impl::Release(uint32_t d, KeptFrame p) {
  out[d].tx.Release(std::move(p), Clock::now());
  Flush(d);
}

// Acknowledges what is processed, and what the last durable checkpoint covers. Without
// exactly-once (and at the sink, which is never rebuilt) processed is durable.
void Task::Impl::SendAck(InChannel& ch) {
  if (ch.ack_to.empty()) return;
  auto ack = ch.rx.TakeAck(!cfg.exactly_once || cfg.is_sink());
  Send(ch.ack_to, EncodeAck(AckFrame{cfg.job, cfg.stage, cfg.task, ack.run, ack.seq, ack.durable}));
}

// Keeps the log short: every record holds the full watermarks, so records before the oldest
// one that still holds an unacknowledged frame carry nothing needed.
void Task::Impl::MaybeTrim() {
  if (++trim_counter % 1024 != 0) return;
  // Conservative: keep the last 1024 records when anything is unacknowledged.
  bool pending = false;
  for (const auto& o : out) pending |= !o.tx.kept().empty();
  uint64_t keep_from = log->next_index() - (pending ? 1024 : 1);
  Status s = log->TrimBefore(keep_from);
  if (!s.ok()) TaskLog("event=log_trim_failed error=\"" + s.message() + "\"");
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
  switch (ckpt->Check(now)) {
    case CheckpointFiles::Poll::kBusy:
      return;
    case CheckpointFiles::Poll::kDurable:
      OnCheckpointDurable();
      break;
    case CheckpointFiles::Poll::kStalled:
      // A HyDFS write can hang on a replica that just failed; a stateful task holds its
      // outputs (and its inputs' durable acks) until a checkpoint lands, so it must not wait
      // for that write: the new generation is written now.
      last_ckpt = now - ckpt_interval;
      break;
    case CheckpointFiles::Poll::kIdle:
      break;
  }
  if (now - last_ckpt < ckpt_interval) return;
  std::string state;
  if (op && op->ready().stateful) {
    if (!batches.empty()) {
      want_drain = true;  // the state must match the watermarks: snapshot between batches
      return;
    }
    want_drain = false;
    TimePoint t0 = Clock::now();
    auto st = op->Snapshot();
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
  r.log_index = log ? log->next_index() - 1 : 0;
  r.wm.reserve(dedup.processed().size());
  for (const auto& [k, id] : dedup.processed()) {
    r.wm.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), std::get<3>(k), id});
  }
  ckpt_processed.clear();
  for (const auto& [k, ch] : in) {
    r.in.push_back({k.first, k.second, ch.rx.run(), ch.rx.processed(), ch.rx.ended()});
    ckpt_processed[k] = ch.rx.processed();
    ckpt_incarnation[k] = ch.rx.run();
  }
  // Every output frame a rebuilt task must still deliver (sent and not covered by the
  // receiver's checkpoint, and held back): per downstream a contiguous run of seqs from
  // pending_from. The record lists only those no durable record of this generation listed
  // (covered_upto); a generation's first record lists them all.
  if (ckpt->fresh() || ckpt->gen() != covered_gen) {
    covered_gen = ckpt->gen();
    covered_upto.assign(out.size(), 0);
  }
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
  if (!state.empty()) r.state = state;
  r.spool_bytes = t->spool_committed_.load();
  r.tuples_in = processed_in;
  r.tuples_out = tuples_out;
  r.duplicates = duplicates;
  std::string rec;
  AppendCheckpointRecord(r, &rec);
  ++ckpts;
  ckpt_gen_written = ckpt->gen();
  ckpt->Write(std::move(rec), now);
  last_ckpt = now;
}

// The checkpoint just written is durable: upstream tasks may forget what it covers, and the
// outputs it holds may go out.
void Task::Impl::OnCheckpointDurable() {
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
