// A stage-1 task's input (its partition of the job's input snapshot) and a rebuilt task's
// recovery from its last HyDFS checkpoint (README.md "Recovery").
#include "daemon/stream/task_impl.h"

namespace rs::stream {

Status Task::Impl::LoadSource(uint64_t restored_epoch) {
  std::vector<SourceText> texts;
  for (const auto& src : cfg.src) {
    auto data = ReadSourceFile(src);
    if (!data.ok()) {
      return Status(data.status().code(),
                    "reading input file " + src.name + ": " + data.status().message());
    }
    if (data->size() != src.size) {
      return Status::Corruption("input file " + src.name + " read back " +
                                std::to_string(data->size()) + " bytes, its snapshot has " +
                                std::to_string(src.size));
    }
    texts.push_back(SourceText{src.name, std::move(*data), src.header});
  }
  source_rate.emplace(cfg.rate, cfg.batch_tuples, Clock::now());
  // A rescalable job's stage 1 may have grown (task_pieces.cc): the range comes from the record
  // recovered, or, for a task the rescale added, from its giver's piece file; the epoch is the
  // record's.
  if (cfg.rescalable) in_epoch = restored_epoch;
  if (cfg.rescalable && restored_source) {
    const auto& r = *restored_source;
    source.emplace(std::move(texts), cfg.csv_header, SourceRange{r.origin, r.begin, r.end});
  } else if (cfg.rescalable && cfg.piece_epoch > 0) {
    source_files = std::move(texts);
    piece_work.emplace();
    piece_work->epoch = cfg.piece_epoch;
    piece_work->taking = true;
    piece_work->from = cfg.piece_giver;
    TaskLog("event=source_piece_wait epoch=" + std::to_string(cfg.piece_epoch) +
            " giver=" + std::to_string(cfg.piece_giver));
    return Status::Ok();
  } else {
    uint32_t parts = cfg.source_parts > 0 ? cfg.source_parts : cfg.tasks;
    source.emplace(std::move(texts), cfg.csv_header, cfg.task, parts);
  }
  if (cfg.rescalable && cfg.recover) {
    Status s = FindGivenPieces();
    if (!s.ok()) return s;
  }
  SourceRange range = source->range();
  TaskLog("event=source_partition files=" + std::to_string(source->files()) + " bytes=" +
          std::to_string(source->total_bytes()) + " first_line=" + std::to_string(source->line()) +
          " range=" + std::to_string(range.begin) + "-" + std::to_string(range.end) +
          " origin=" + std::to_string(range.origin));
  // A rebuilt task resumes after the last line its checkpoint covers.
  auto wm = dedup.processed().find(StreamKey{0, 0, cfg.task, range.origin});
  if (wm != dedup.processed().end()) {
    uint64_t skipped = source->ResumeAfter(wm->second);
    TaskLog("event=source_resume skipped_lines=" + std::to_string(skipped) +
            " next_line=" + std::to_string(source->line()));
  }
  return Status::Ok();
}

int Task::Impl::SourceWaitMs() const {
  if (!source || source_done) return 5;
  return source_rate->WaitMs();
}

// Reads up to one batch of lines into the queue. True when it did.
bool Task::Impl::ReadSource() {
  if (!source || source_done) return false;
  if (piece_work && !piece_work->taking) return false;  // cutting: no read until it is written
  if (queued_tuples >= 2 * cfg.batch_tuples || !WindowOpen()) return false;
  size_t want = source_rate->Allowed(Clock::now());
  if (want == 0) return false;
  InFrame fr;
  fr.from = {0, cfg.task};
  fr.seq = ++source_seq;
  fr.emit_us = NowUs();
  Status read = source->Read(want, &fr);
  if (!read.ok()) {
    FailPermanent(read);
    return false;
  }
  source_rate->Spend(fr.tuples.size());
  tuples_in += fr.tuples.size();
  queued_tuples += fr.tuples.size();
  if (fr.end) source_done = true;
  queue.push_back(std::move(fr));
  return true;
}

// Blocking read of an input file as of its snapshot.
Result<std::string> Task::Impl::ReadSourceFile(const SourceFile& src) {
  if (!env.hydfs_get_source) return Status::FailedPrecondition("no HyDFS source reader");
  return WaitHydfs(src.name, [&](std::function<void(Result<std::string>)> cb) {
    env.hydfs_get_source(src, std::move(cb));
  });
}

// Blocking HyDFS read for recovery; NotFound passes through.
Result<std::string> Task::Impl::ReadWhole(const std::string& name) {
  return WaitHydfs(name, [&](std::function<void(Result<std::string>)> cb) {
    env.hydfs_get(name, std::move(cb));
  });
}

// Blocking HyDFS listing (kHydfsTimeout, or the task's stop): the names under `prefix`.
Result<std::vector<std::string>> Task::Impl::ListWhole(const std::string& prefix) {
  auto names =
      std::make_shared<std::pair<std::mutex, std::optional<Result<std::vector<std::string>>>>>();
  env.hydfs_list(prefix, [names](Result<std::vector<std::string>> r) {
    std::lock_guard<std::mutex> lock(names->first);
    names->second = std::move(r);
  });
  TimePoint deadline = Clock::now() + kHydfsTimeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(names->first);
      if (names->second) return std::move(*names->second);
    }
    if (t->stop_.load()) return Status::Unavailable("stopped");
    if (Clock::now() > deadline) return Status::Timeout("listing " + prefix);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Starts a HyDFS read with `start` and waits for it (kHydfsTimeout, or the task's stop).
Result<std::string> Task::Impl::WaitHydfs(
    const std::string& name,
    const std::function<void(std::function<void(Result<std::string>)>)>& start) {
  auto res = std::make_shared<ReadResult>();
  start([res](Result<std::string> r) {
    std::lock_guard<std::mutex> lock(res->mu);
    res->done = true;
    res->status = r.status();
    if (r.ok()) res->data = std::move(*r);
  });
  TimePoint deadline = Clock::now() + kHydfsTimeout;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(res->mu);
      if (res->done) break;
    }
    if (t->stop_.load()) return Status::Unavailable("stopped");
    if (Clock::now() > deadline) return Status::Timeout("reading " + name);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::lock_guard<std::mutex> lock(res->mu);
  if (!res->status.ok()) return res->status;
  return std::move(res->data);
}

Status Task::Impl::Recover(uint64_t* epoch) {
  // The newest generation of the checkpoint file: the failed run's last reported one (or the
  // one after it, should it have rolled over since), else a listing.
  std::optional<std::string> found;
  uint64_t gen = 1;
  for (uint64_t g : {cfg.ckpt_gen_hint + 1, cfg.ckpt_gen_hint}) {
    if (g == 0 || cfg.ckpt_gen_hint == 0) break;
    auto data = ReadWhole(ckpt->name(g));
    if (data.ok()) {
      gen = g;
      found = std::move(*data);
      break;
    }
    if (data.status().code() != StatusCode::kNotFound) return data.status();
  }
  if (!found && env.hydfs_list) {
    auto names = ListWhole(CheckpointPrefix());
    if (!names.ok()) return names.status();
    uint64_t newest = 0;
    for (const auto& n : *names) {
      uint64_t g = 0;
      std::string tail = n.substr(CheckpointPrefix().size());
      auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), g);
      if (ec == std::errc() && p == tail.data() + tail.size()) newest = std::max(newest, g);
    }
    if (newest == 0) {
      TaskLog("event=task_recovered checkpoint=none (starting over; upstream replays all)");
      return Status::Ok();
    }
    gen = newest;
  }
  if (!found) {
    auto data = ReadWhole(ckpt->name(gen));
    if (data.status().code() == StatusCode::kNotFound) {
      TaskLog("event=task_recovered checkpoint=none (starting over; upstream replays all)");
      return Status::Ok();
    }
    if (!data.ok()) return data.status();
    found = std::move(*data);
  }
  ckpt->ResumeAfter(gen);
  // The last complete record wins (a torn tail is ignored); the frames it leaves pending are
  // listed in it and the generation's records before it.
  CheckpointRecords file = SplitCheckpointFile(*found);
  size_t records = file.records.size();
  if (records == 0) {
    TaskLog("event=task_recovered checkpoint=empty (starting over)");
    return Status::Ok();
  }
  std::vector<CheckpointRecord> all;
  all.reserve(records);
  for (std::string_view bytes : file.records) {
    auto r = DecodeCheckpointRecord(bytes);
    if (!r.ok()) return r.status();
    all.push_back(std::move(*r));
  }
  const CheckpointRecord* rec = &all.back();
  *epoch = rec->epoch;
  restored_source = rec->source;
  if (keyed_in && !cfg.in_prev_owners.empty() && rec->epoch >= cfg.in_epoch) {
    // The record is of the table the leader is changing to: our part of it was done.
    auto table = TableOf(cfg.in_owners, cfg.key_groups, cfg.tasks);
    if (!table.ok()) return table.status();
    prev_groups = std::move(in_groups);
    in_groups = std::move(*table);
    in_epoch = cfg.in_epoch;
  }
  order_log.Restore(rec->order.value_or(0));
  std::vector<CheckpointFrame> pending = PendingFrames(all);
  for (const auto& w : rec->wm) {
    if (keyed_in ? !in_groups.Owns(cfg.task, w.group) : w.group != 0) {
      return Status::Corruption("the checkpoint holds watermarks of key group " +
                                std::to_string(w.group) + ", which this task does not own");
    }
    dedup.Restore(StreamKey{w.group, w.stage, w.task, w.origin}, w.id);
  }
  for (const auto& c : rec->in) {
    in[Upstream{c.stage, c.task}].rx.Restore(c.incarnation, c.processed, c.ended);
  }
  size_t replayed = 0;
  // Our outputs the receivers may lack, renumbered for this run (the receivers dedup by id).
  for (const auto& p : pending) {
    if (p.to >= out.size()) continue;
    auto f = ParseTaskFrame(std::string(p.bytes));
    if (!f.ok()) return Status::Corruption("a frame in the checkpoint: " + f.status().message());
    OutChannel& o = out[p.to];
    DataFrameBuilder again;
    DataHeader h = f->data;
    h.incarnation = cfg.incarnation;
    h.ack_to = t->endpoint_;
    again.Begin(h);
    for (const auto& r : f->tuples) again.Add(r.origin, r.group, r.id, r.key, r.value);
    uint64_t seq = o.tx.TakeSeq();
    staged.emplace_back(p.to, KeptFrame{seq, again.Finish(seq, h.emit_us, h.end)});
    ++replayed;
  }
  for (auto& [d, p] : staged) Release(d, std::move(p));
  staged.clear();
  auto src = in.find(Upstream{0, cfg.task});
  if (src != in.end()) source_seq = src->second.rx.processed();
  // Counting goes on from the checkpoint: what it covers is not processed again.
  tuples_in = processed_in = last_in = rec->tuples_in;
  tuples_out = last_out = rec->tuples_out;
  duplicates = rec->duplicates;
  auto restored = StateAt(all);
  if (!restored.ok()) return restored.status();
  std::string state = std::move(*restored);
  if (!state.empty() && op && op->ready().keyed_state) {
    // Every group the state holds must be one of this task's.
    auto groups = SplitKeyedState(state);
    if (!groups.ok()) return groups.status();
    for (const auto& [g, st] : *groups) {
      if (keyed_in ? !in_groups.Owns(cfg.task, g) : g != 0) {
        return Status::Corruption("the checkpoint holds the state of key group " +
                                  std::to_string(g) + ", which this task does not own");
      }
    }
  }
  if (!state.empty() && op && op->ready().stateful) {
    Status s = op->Restore(state);
    if (!s.ok()) return s;
  }
  TaskLog("event=task_recovered records=" + std::to_string(records) + " watermarks=" +
          std::to_string(dedup.processed().size()) + " channels=" + std::to_string(in.size()) +
          " replayed_frames=" + std::to_string(replayed) +
          " state_bytes=" + std::to_string(state.size()));
  Log()->info("event=task_recovered task={} records={} replayed_frames={} state_bytes={}",
              cfg.name(), records, replayed, state.size());
  return Status::Ok();
}

}  // namespace rs::stream
