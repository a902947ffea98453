// The order a task took its inputs in (daemon/stream/README.md "Recovery", "Order log"). A
// stateful task whose input channels interleave differently after a rebuild (a merge of several
// upstream tasks) cannot reproduce its outputs by replaying its inputs, unless it knows the order
// it took them in. Ids of one (upstream task, origin) stream strictly increase (channel.h), so the
// order is a list of runs: "take every tuple of (upstream, origin) up to id X, then the next run".
// The task logs runs (OrderLog) and sends them down with its outputs, never after them; the sink
// keeps them (OrderKeeper) until the task's durable checkpoint covers them; a rebuilt task gets
// them from the leader and takes its replayed inputs in that order (daemon/stream/order_replay.h),
// so it regenerates exactly the outputs the sink may already hold. Pure and thread-compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"
#include "shared/stream/task_frame.h"

namespace rs::stream {

// At most this many runs a task logs and its durable checkpoint does not cover yet: beyond it
// the task takes no more input until a checkpoint lands (what a rebuild gets stays bounded).
inline constexpr uint64_t kMaxUndurableRuns = 16384;

// The task's side: runs recorded as the operator takes its input, handed out to frames.
class OrderLog {
 public:
  // Recovery: the checkpoint's index (runs before it are in its state).
  void Restore(uint64_t next);
  // The tuples of one input frame from `upstream`, in the order the operator takes them.
  void Record(uint32_t upstream, const std::vector<TupleRef>& tuples);
  // A run taken again in a replay, as logged before: the sink holds it already.
  void Replayed();
  bool HasUnsent() const { return !unsent_.empty(); }
  // The runs recorded since the last call (a run handed out is never extended).
  OrderRuns TakeUnsent();
  // The index of the next run to record.
  uint64_t next() const { return sent_ + unsent_.size(); }
  // A checkpoint is taken now: the runs it covers (next()), none of which is extended later.
  uint64_t Seal() {
    sealed_ = unsent_.size();
    return next();
  }

 private:
  uint64_t sent_ = 0;  // runs [0, sent_) were handed out (or replayed)
  std::vector<OrderRun> unsent_;
  size_t sealed_ = 0;  // unsent_[0, sealed_) are covered by a checkpoint: never extended
};

// The sink's side, per upstream task: the runs not yet covered by its durable checkpoint.
class OrderKeeper {
 public:
  // Runs from a frame (in frame order): a run already held is replaced by the same one (a
  // rebuilt task sends the runs it replays again). False when they start after a hole (runs
  // were lost); the keeper then keeps only the new ones.
  bool Add(const OrderRuns& runs);
  // Every run below `index` is covered by a durable checkpoint.
  void Trim(uint64_t index);
  OrderRuns All() const;
  size_t size() const { return runs_.size(); }

 private:
  uint64_t base_ = 0;  // the index of runs_.front()
  std::deque<OrderRun> runs_;
};

// [first, [[upstream, origin, last_id], ...]] as MessagePack bytes (a rebuilt task's config).
std::string EncodeOrderRuns(const OrderRuns& runs);
Result<OrderRuns> DecodeOrderRuns(std::string_view bytes);

}  // namespace rs::stream
