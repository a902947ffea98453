// Stage 1 of a rescalable job reading files grows (README.md "Autoscaling", "Stage 1 of a job
// reading a file"): a giving task cuts what it has not read into pieces, one per task the
// rescale adds, each read under an origin never used before, and writes them to its piece file
// in HyDFS (shared/stream/regroup.h SourcePieces); each new task reads its piece from there.
// The giver reads nothing while its file is being written, and its records keep its old end
// until the file is durable, so a giver rebuilt from any record finds all it gave or nothing.
#include "daemon/stream/task_impl.h"

namespace rs::stream {

namespace {
constexpr auto kPieceRetry = std::chrono::milliseconds(100);  // a piece not written yet
// A piece file that exists but does not read back (its writer died mid-create) is tried again
// this long before the task fails.
constexpr auto kPieceConflictFor = std::chrono::seconds(30);
}  // namespace

// A rebuilt task: the piece files it wrote (in this run or an earlier one) end its range where
// the first piece begins, whatever its record says. Read by name for every epoch of the stage so
// far (a listing may miss a file whose writer died as it wrote it).
Status Task::Impl::FindGivenPieces() {
  for (uint64_t e = 1; e <= cfg.in_epoch; ++e) {
    std::string name = PieceFileName(cfg.job, e, cfg.task);
    auto data = ReadWhole(name);
    if (data.status().code() == StatusCode::kNotFound) continue;
    if (!data.ok()) {
      return Status(data.status().code(), "reading " + name + ": " + data.status().message());
    }
    auto file = DecodeSourcePieces(*data);
    if (!file.ok()) return Status::Corruption(name + ": " + file.status().message());
    if (!file->pieces.empty()) source->LimitEnd(file->pieces.front().begin);
    pieces_given.insert(e);
    TaskLog("event=source_pieces_found epoch=" + std::to_string(e) +
            " end=" + std::to_string(source->range().end));
  }
  return Status::Ok();
}

void Task::Impl::ApplySourceOrder(const RegroupOrder& o) {
  if (o.source_rate && source_rate) source_rate->SetRate(*o.source_rate);
  if (o.epoch <= in_epoch || (piece_work && o.epoch <= piece_work->epoch)) return;
  if (piece_work) {
    Fail(Status::FailedPrecondition("a rescale of stage 1 to epoch " + std::to_string(o.epoch) +
                                    " while the one to " + std::to_string(piece_work->epoch) +
                                    " is not finished here"));
    return;
  }
  std::vector<uint32_t> takers;
  std::vector<uint64_t> origins;
  for (const auto& p : o.pieces) {
    if (p.giver != cfg.task) continue;
    takers.push_back(p.taker);
    origins.push_back(p.origin);
  }
  TimePoint now = Clock::now();
  if (takers.empty() || pieces_given.count(o.epoch) ||
      (source && (source_done || source->Exhausted()))) {
    // Nothing to give (given before a rebuild, or all read: the leader writes the empty pieces
    // once we are done): the epoch is ours once a record says so.
    in_epoch = o.epoch;
    last_ckpt = now - ckpt_interval;
    TaskLog("event=source_epoch epoch=" + std::to_string(o.epoch));
    if (!ckpt) RegroupSettled();
    return;
  }
  if (!source) {
    Fail(Status::FailedPrecondition("asked to give a piece of stage 1 before it has its own"));
    return;
  }
  PieceWork w;
  w.epoch = o.epoch;
  w.kept_end = source->range().end;
  uint64_t at = source->Position();
  w.cut_at = at;
  std::vector<SourceRange> cut = source->Split(origins);
  SourcePieces file{cfg.job, o.epoch, cfg.task, {}};
  std::string list;
  for (size_t i = 0; i < cut.size(); ++i) {
    file.pieces.push_back({takers[i], cut[i].origin, cut[i].begin, cut[i].end});
    list += (i ? "," : "") + std::to_string(takers[i]) + ":" + std::to_string(cut[i].begin) + "-" +
            std::to_string(cut[i].end);
  }
  w.file = EncodeSourcePieces(file);
  TaskLog("event=source_cut epoch=" + std::to_string(o.epoch) + " at=" + std::to_string(at) +
          " keep_to=" + std::to_string(source->range().end) + " pieces=" + list);
  piece_work = std::move(w);
}

bool Task::Impl::PieceStep() {
  if (!piece_work || !failed.ok()) return false;
  return piece_work->taking ? PieceTake() : PieceGive();
}

// Writes our piece file; once it is durable the cut stands: the next records carry the new end
// and the epoch.
bool Task::Impl::PieceGive() {
  PieceWork& w = *piece_work;
  TimePoint now = Clock::now();
  std::string name = PieceFileName(cfg.job, w.epoch, cfg.task);
  if (w.io) {
    Status st;
    {
      std::lock_guard<std::mutex> lock(w.io->mu);
      if (!w.io->done) return false;
      st = w.io->status;
    }
    w.io.reset();
    if (st.code() == StatusCode::kAlreadyExists) {
      // A run of ours before a rebuild wrote it (its writer died as it wrote, so the search at
      // our start did not see it): that cut stands, if it gives away nothing we read. A file
      // whose writer died mid-create may not read back until HyDFS repaired it: tried again,
      // for at most kPieceConflictFor.
      auto there = ReadWhole(name);
      if (!there.ok()) {
        if (w.conflict_since == TimePoint{}) w.conflict_since = now;
        if (now - w.conflict_since < kPieceConflictFor) {
          TaskLog("event=source_piece_conflict epoch=" + std::to_string(w.epoch) + " error=\"" +
                  there.status().message() + "\"");
          w.retry_at = now + kPieceRetry;
          return false;
        }
      }
      Result<SourcePieces> file =
          there.ok() ? DecodeSourcePieces(*there) : Result<SourcePieces>(there.status());
      if (!file.ok() || file->job != cfg.job || file->epoch != w.epoch || file->giver != cfg.task ||
          (!file->pieces.empty() && file->pieces.front().begin < w.cut_at)) {
        Fail(Status::Corruption(
            "the piece file " + name + " of an earlier run gives away lines " +
            "this run read, or does not read back: " +
            (file.ok() ? "cut at " +
                             std::to_string(file->pieces.empty() ? 0 : file->pieces.front().begin) +
                             ", read to " + std::to_string(w.cut_at)
                       : file.status().message())));
        return false;
      }
      source->SetEnd(file->pieces.empty() ? w.kept_end : file->pieces.front().begin);
      TaskLog("event=source_cut_found epoch=" + std::to_string(w.epoch) +
              " end=" + std::to_string(source->range().end));
      st = Status::Ok();
    }
    if (!st.ok()) {
      TaskLog("event=source_piece_write_failed epoch=" + std::to_string(w.epoch) + " error=\"" +
              st.message() + "\"");
      w.retry_at = now + kPieceRetry;
      return false;
    }
    in_epoch = w.epoch;
    TaskLog("event=source_given epoch=" + std::to_string(w.epoch) +
            " end=" + std::to_string(source->range().end));
    piece_work.reset();
    last_ckpt = now - ckpt_interval;
    if (!ckpt) RegroupSettled();
    return true;
  }
  if (now < w.retry_at) return false;
  auto io = std::make_shared<ReadResult>();
  w.io = io;
  env.hydfs_create(name, w.file, [io](Status s) {
    std::lock_guard<std::mutex> lock(io->mu);
    io->status = std::move(s);
    io->done = true;
  });
  return true;
}

// A task the rescale added: reads its giver's piece file (polling until it is written), then
// reads its piece.
bool Task::Impl::PieceTake() {
  PieceWork& w = *piece_work;
  TimePoint now = Clock::now();
  std::string name = PieceFileName(cfg.job, w.epoch, w.from);
  if (!w.io) {
    if (now < w.retry_at) return false;
    auto io = std::make_shared<ReadResult>();
    w.io = io;
    env.hydfs_get(name, [io](Result<std::string> got) {
      std::lock_guard<std::mutex> lock(io->mu);
      io->status = got.status();
      if (got.ok()) io->data = std::move(*got);
      io->done = true;
    });
    return true;
  }
  std::string data;
  {
    std::lock_guard<std::mutex> lock(w.io->mu);
    if (!w.io->done) return false;
    if (!w.io->status.ok()) {  // not written yet (NotFound), or a read that failed: again
      w.io.reset();
      w.retry_at = now + kPieceRetry;
      return false;
    }
    data = std::move(w.io->data);
  }
  w.io.reset();
  auto file = DecodeSourcePieces(data);
  if (file.ok() && (file->job != cfg.job || file->epoch != w.epoch || file->giver != w.from)) {
    file = Status::Corruption("it is of another job, epoch or task");
  }
  const SourcePiece* mine = nullptr;
  if (file.ok()) {
    for (const auto& p : file->pieces) {
      if (p.taker == cfg.task) mine = &p;
    }
    if (mine == nullptr) file = Status::Corruption("it has no piece for this task");
  }
  if (!file.ok()) {
    Fail(Status::Corruption("the piece file " + name + ": " + file.status().message()));
    return false;
  }
  source.emplace(std::move(source_files), cfg.csv_header,
                 SourceRange{mine->origin, mine->begin, mine->end});
  source_files.clear();
  in_epoch = w.epoch;
  TaskLog("event=source_piece_taken epoch=" + std::to_string(w.epoch) +
          " giver=" + std::to_string(w.from) + " range=" + std::to_string(mine->begin) + "-" +
          std::to_string(mine->end) + " origin=" + std::to_string(mine->origin));
  piece_work.reset();
  last_ckpt = now - ckpt_interval;
  if (!ckpt) RegroupSettled();
  return true;
}

}  // namespace rs::stream
