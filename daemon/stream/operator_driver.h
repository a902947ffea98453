// OperatorDriver: feeds a task's operator in batches sized by time, not by count.
//
// The problem: a task hands its operator units of whole input frames (up to stream_batch_tuples,
// 1024, tuples). With a fixed batch of 1024 and a fixed 10 s deadline per batch, an operator
// taking more than about 10 ms a tuple failed every job ("did not answer batch 1 within
// 10000 ms"), though it was healthy and making progress.
//
// The choice:
//   - A unit is cut into operator batches whose size adapts (BatchSizer): the first batch is one
//     tuple, each answered batch lets the next grow 4x, and the size is capped so that a batch
//     takes about `target` (50 ms) at the operator's measured time per tuple. A fast operator
//     reaches full batches after a handful of round trips; one taking 200 ms a tuple gets
//     batches of one.
//   - Deadlines measure progress (OperatorProcess): a batch's clock starts when the operator
//     could start it, its send or the previous answer, whichever is later. A slow operator that
//     answers batch after batch is never taken for a hung one; one that answers nothing for
//     batch_timeout is. One tuple must still be done within batch_timeout.
// Outputs come back per batch, in order, with the position of its first tuple in its unit; the
// caller learns when a whole unit is answered. Task thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "daemon/stream/operator_process.h"
#include "shared/clock.h"
#include "shared/status.h"

namespace rs::stream {

// The size of the next operator batch. Pure: time comes in as arguments.
class BatchSizer {
 public:
  BatchSizer(size_t max_tuples, Clock::duration target) : max_(max_tuples), target_(target) {}
  size_t Next() const { return next_; }
  // A batch of `tuples` was answered `took` after the operator could start it.
  void Answered(size_t tuples, Clock::duration took);
  double per_tuple_seconds() const { return per_tuple_; }  // < 0 until the first answer

 private:
  size_t max_;
  Clock::duration target_;
  size_t next_ = 1;
  double per_tuple_ = -1;
};

class OperatorDriver {
 public:
  // `op` outlives the driver; at most `max_in_flight` batches are pipelined into it.
  OperatorDriver(OperatorProcess* op, size_t max_tuples, size_t max_in_flight);

  // Units queued or in flight (a full unit answered is gone).
  size_t units() const { return units_.size(); }
  // Whether the newest unit still has tuples to send.
  bool sending() const {
    return !units_.empty() && units_.back().sent < units_.back().tuples.size();
  }
  // Queues a unit, with each tuple's key group (empty: none). The views must stay valid until
  // the unit is answered (OnUnit).
  void Add(std::vector<TupleView> tuples, std::vector<uint32_t> groups = {});
  // Sends the next batches while the operator takes more. True when it sent one.
  Result<bool> Send();
  // Takes every answer that has arrived: `on_batch(first, results)` for each batch (first: the
  // position of its first tuple in its unit), then `on_unit()` once a unit is fully answered.
  // Units without tuples are answered at once. True when it took any.
  using OnBatch = std::function<void(size_t first, ResultViews& results)>;
  Result<bool> Collect(const OnBatch& on_batch, const std::function<void()>& on_unit);
  // The slowest batch answer so far since the last call (for the task's rate log).
  Clock::duration TakeSlowest();
  // The operator's busy time since the last call: for each answered batch, from when the
  // operator could start it (its send or the previous answer) to its answer. Busy time over
  // wall time is the share the autoscaler's target policy sizes a stage by (autoscaler.h).
  Clock::duration TakeBusy();
  // The tuples in the batches answered since the last call: over the busy time, the operator's
  // true rate (tuples_in counts what the task took in, which runs ahead while batches wait).
  uint64_t TakeAnswered();
  const BatchSizer& sizer() const { return sizer_; }
  uint64_t batches_sent() const { return batches_sent_; }

 private:
  struct Unit {
    std::vector<TupleView> tuples;
    std::vector<uint32_t> groups;  // empty, or one per tuple
    size_t sent = 0;               // tuples handed to the operator
    size_t answered = 0;           // tuples whose outputs came back
  };
  struct Batch {
    size_t tuples = 0;
    TimePoint sent_at;
  };
  OperatorProcess* op_;
  size_t max_in_flight_;
  BatchSizer sizer_;
  std::deque<Unit> units_;
  std::deque<Batch> in_flight_;
  TimePoint last_answer_{};
  Clock::duration slowest_{};
  Clock::duration busy_{};
  uint64_t answered_ = 0;
  uint64_t batches_sent_ = 0;
};

}  // namespace rs::stream
