#include "daemon/stream/task_checkpoint.h"

#include <algorithm>

namespace rs::stream {

void CheckpointFiles::NextGeneration() {
  // The abandoned generation may still be created by its hung write: it goes too.
  obsolete_.push_back(gen_);
  ++gen_;
  created_ = false;
  file_bytes_ = 0;
}

CheckpointFiles::Poll CheckpointFiles::Check(TimePoint now) {
  if (!call_) return Poll::kIdle;
  Status s;
  if (!call_->Done(&s)) {
    if (now - started_ < kStall) return Poll::kBusy;
    io_.log("event=checkpoint_stalled file=" + name() + " after_ms=" +
            std::to_string(ToMillis(now - started_)) + " (writing a new generation)");
    call_.reset();
    NextGeneration();
    return Poll::kStalled;
  }
  call_.reset();
  if (!s.ok()) {
    io_.log("event=checkpoint_failed error=\"" + s.message() + "\"");
    // Our own earlier run created it: append from now on.
    if (s.code() == StatusCode::kAlreadyExists) created_ = true;
    return Poll::kFailed;
  }
  created_ = true;
  last_bytes_ = call_bytes_;
  last_took_ = now - started_;
  // Every older generation is superseded by a durable record in this one.
  auto newer = std::stable_partition(obsolete_.begin(), obsolete_.end(),
                                     [&](uint64_t g) { return g >= call_gen_; });
  for (auto it = newer; it != obsolete_.end(); ++it) {
    if (io_.remove) io_.remove(name(*it));
  }
  obsolete_.erase(newer, obsolete_.end());
  if (file_bytes_ >= kRollBytes) NextGeneration();
  return Poll::kDurable;
}

void CheckpointFiles::Write(std::string record, TimePoint now) {
  if (roll_) {
    roll_ = false;
    if (created_) NextGeneration();
  }
  file_bytes_ += record.size();
  written_ += record.size();
  call_ = AsyncCall::Make();
  call_gen_ = gen_;
  call_bytes_ = record.size();
  started_ = now;
  (created_ ? io_.append : io_.create)(name(), std::move(record), AsyncCall::Callback(call_));
}

void CheckpointFiles::ResumeAfter(uint64_t gen) {
  gen_ = gen + 1;
  file_bytes_ = 0;
  created_ = false;
  // Recovery read `gen`: it stays until this run's first record is durable.
  obsolete_.push_back(gen);
}

}  // namespace rs::stream
