// The exactly-once channel protocol's pure parts (daemon/stream/README.md "Channels",
// "Recovery"): the sending side of one channel, its receiving side, and the id watermarks that
// drop duplicates. No sockets, no clock reads, no logging: time comes in as an argument and the
// transport is a callback, so tests drive them step by step (tests/unit/stream/channel_test.cc
// runs them against a model through loss, duplication, reordering and crashes). The stream
// task (daemon/stream/task.cc) and rainsource (ctl/rainsource.cc) are their only users.
//
// A channel carries numbered frames (seq 1, 2, ...) of one sender's run (its incarnation) to one
// receiver. The receiver takes them strictly in seq order and acknowledges cumulatively: `seq`
// once processed, `durable` once its durable checkpoint covers the frame. The sender keeps every
// frame until it is durable, resends the unprocessed ones when nothing was heard for a while, and
// sends every frame above `durable` again when the receiver was rebuilt (Rewire). Thread-
// compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "shared/clock.h"
#include "shared/stream/task_frame.h"

namespace rs::stream {

// A frame as the sender keeps it: its seq and its encoded bytes (which carry that seq).
struct KeptFrame {
  uint64_t seq = 0;
  std::string bytes;
};

class SenderChannel {
 public:
  struct Options {
    uint64_t window = 64;  // frames sent and not processed, at most
    uint64_t retain_windows =
        16;  // frames kept until durable (and held), at most this many windows
    Clock::duration resend_after = std::chrono::seconds(1);
    bool exactly_once = true;  // off: nothing is replayed, so processed is as good as durable
  };

  SenderChannel() = default;
  explicit SenderChannel(Options o) : o_(o) {}

  // The seq of the next frame (a frame's bytes carry its seq, so it is taken before encoding).
  uint64_t TakeSeq() { return next_seq_++; }
  uint64_t next_seq() const { return next_seq_; }

  // A frame that may not go out yet (output commit: a stateful task with several inputs holds
  // its outputs until a durable checkpoint covers them). Seqs are released in order.
  void Hold(KeptFrame f) { held_.push_back(std::move(f)); }
  // Releases the first `n` held frames.
  void ReleaseHeld(size_t n, TimePoint now);
  // A frame allowed out: kept until durable; the next Flush hands it to the transport.
  void Release(KeptFrame f, TimePoint now);

  // Hands the frames not sent yet (since the last Rewire) to `send(bytes) -> bool`, in order,
  // until it returns false (the transport is full: the rest wait for the next Flush). Returns
  // how many it took.
  template <class Send>
  size_t Flush(Send&& send) {
    size_t n = 0;
    while (sent_ < kept_.size() && send(kept_[sent_].bytes)) {
      ++sent_;
      ++n;
    }
    return n;
  }

  // When nothing was heard for resend_after while sent frames are kept: hands the ones not
  // processed to `send` again (until it returns false). When all are processed and only their
  // durable ack is awaited, the last one goes again alone, as a probe: the receiver answers a
  // repeat with its current ack, so a lost durable ack does not stall the channel. Returns how
  // many it took.
  template <class Send>
  size_t Resend(TimePoint now, Send&& send) {
    if (!ResendDue(now)) return 0;
    last_resend_ = now;
    if (kept_[sent_ - 1].seq <= acked_) return send(kept_[sent_ - 1].bytes) ? 1 : 0;
    size_t n = 0;
    for (size_t i = 0; i < sent_; ++i) {
      if (kept_[i].seq <= acked_) continue;
      if (!send(kept_[i].bytes)) break;
      ++n;
    }
    return n;
  }
  bool ResendDue(TimePoint now) const;
  // When the next resend falls due (TimePoint::max() when none can).
  TimePoint NextResend() const;

  enum class AckResult {
    kProgress,  // acknowledged or made durable something new
    kNothing,   // a repeat, or an old one
    kBogus,     // acknowledges a frame never released: ignored
  };
  // The receiver's cumulative ack: frames <= seq processed, frames <= durable covered by its
  // durable checkpoint (forgotten here).
  AckResult OnAck(uint64_t seq, uint64_t durable, TimePoint now);

  // The receiver was rebuilt: it restored its checkpoint and expects every frame above durable
  // again. The next Flush sends every kept frame.
  void Rewire(TimePoint now);

  // The receiver finished (it processed our end frame, so everything before it): every frame
  // counts as durable, though its last acks were lost as it closed.
  void ForgetAll() {
    kept_.clear();
    sent_ = 0;
    acked_ = durable_ = released_;
  }

  // Room for another frame: the window is not full and what is kept stays bounded.
  bool HasRoom() const {
    return in_flight() < o_.window && kept_.size() + held_.size() < o_.retain_windows * o_.window;
  }
  // Frames wait and nothing was acknowledged or made durable for `limit`: the receiver is gone.
  bool Stalled(TimePoint now, Clock::duration limit) const {
    return !kept_.empty() && now - last_progress_ >= limit;
  }
  // Every frame released is durable at the receiver and none is held.
  bool Drained() const { return kept_.empty() && held_.empty(); }
  bool Unsent() const { return sent_ < kept_.size(); }

  uint64_t acked() const { return acked_; }
  uint64_t durable() const { return durable_; }
  uint64_t released() const { return released_; }
  uint64_t in_flight() const { return released_ > acked_ ? released_ - acked_ : 0; }
  // Frames released and not durable, then frames held: what a checkpoint must keep.
  const std::deque<KeptFrame>& kept() const { return kept_; }
  const std::deque<KeptFrame>& held() const { return held_; }
  TimePoint last_progress() const { return last_progress_; }

 private:
  Options o_;
  uint64_t next_seq_ = 1;
  uint64_t released_ = 0;  // highest seq released
  uint64_t acked_ = 0, durable_ = 0;
  std::deque<KeptFrame> kept_;  // released, not durable, in seq order
  size_t sent_ = 0;             // the first sent_ of kept_ went to the transport (since Rewire)
  std::deque<KeptFrame> held_;
  TimePoint last_progress_{};  // the last ack progress, or when the channel became busy
  TimePoint last_resend_{};
};

class ReceiverChannel {
 public:
  enum class Offer {
    kNext,    // the next frame in order: taken (process it, then Processed)
    kRepeat,  // taken before (a resend): its tuples are duplicates
    kGap,     // ahead of the next one (a frame was lost): dropped, the resend brings it
    kOldRun,  // from an earlier run of the sender: dropped
  };
  // A data frame of the sender's run `run`. A newer run numbers its frames from 1 again.
  // Without exactly-once a receiver that took nothing yet starts wherever its sender is (a
  // rebuilt receiver there loses what was in flight).
  Offer Take(uint64_t run, uint64_t seq, bool exactly_once);
  // The frame (run, seq), taken earlier, is processed (with exactly-once: and committed).
  void Processed(uint64_t run, uint64_t seq, bool end);
  // A durable checkpoint covers frames <= seq of run `run`. True when that is news (worth an ack).
  bool Durable(uint64_t run, uint64_t seq);
  // Recovery: the position a checkpoint recorded.
  void Restore(uint64_t run, uint64_t processed, bool ended);
  // The receiver is done: nothing will be replayed, so everything processed is durable.
  void Finish() { durable_ = processed_; }

  // An ack is owed: something processed was not acknowledged yet.
  bool AckDue() const { return processed_ > acked_sent_; }
  // An owed ack that goes now: `delay` passed since the last one, `frames` or more frames wait
  // for it, or the end frame is processed. So a busy channel carries one ack per `delay` (or
  // per `frames`), not one per group commit.
  bool AckDueAt(TimePoint now, Clock::duration delay, uint64_t frames) const {
    return AckDue() && (ended_ || processed_ - acked_sent_ >= frames || now - acked_at_ >= delay);
  }
  // Worth acknowledging again on a repeat (the sender missed the ack).
  bool ReAckOnRepeat() const { return processed_ > 0 && processed_ == acked_sent_; }
  struct Ack {
    uint64_t run = 0, seq = 0, durable = 0;
  };
  // The ack to send `now` (marks it sent). `processed_is_durable`: without exactly-once, or at a
  // receiver that is never rebuilt.
  Ack TakeAck(bool processed_is_durable, TimePoint now);

  uint64_t run() const { return run_; }
  uint64_t processed() const { return processed_; }
  uint64_t durable() const { return durable_; }
  bool ended() const { return ended_; }

 private:
  uint64_t run_ = 0;
  uint64_t next_seq_ = 1;    // the next frame taken
  uint64_t processed_ = 0;   // highest seq processed
  uint64_t acked_sent_ = 0;  // highest seq acknowledged
  uint64_t durable_ = 0;     // highest seq a durable checkpoint covers
  bool ended_ = false;       // its end frame was processed
  TimePoint acked_at_{};     // when the last ack was taken
};

// One upstream task: (stage, task). Stage 0 is rainsource, and a stage-1 task's own source
// partition is (0, its index) too.
using Upstream = std::pair<uint32_t, uint32_t>;
// A stream whose ids strictly increase, kept per key group: (group, upstream stage, upstream
// task, origin), the origin being the path before the upstream task. The group comes first so
// that one group's marks are adjacent (a group moves between tasks with its marks).
using StreamKey = std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>;

// Ids of one (group, upstream, origin) stream strictly increase (every hop keeps the order of a
// path, and a group's tuples are a subsequence of it), so a tuple at or below its stream's mark
// is a duplicate. Two marks per stream: admitted (taken into the queue) and processed (what a
// checkpoint records; a rebuilt task restores both from it).
class Dedup {
 public:
  // Drops from `tuples` every one at or below its stream's admitted mark and raises the marks.
  // Returns how many it dropped.
  size_t Admit(const Upstream& from, std::vector<TupleRef>* tuples);
  // `tuples` (admitted from `from`) are processed: raises the processed marks.
  void Processed(const Upstream& from, const std::vector<TupleRef>& tuples);
  // Recovery: both marks of a stream.
  void Restore(const StreamKey& key, std::string_view id);
  // Rescaling: removes every stream of the groups in `groups` (sorted) and returns their
  // processed marks (their admitted marks must equal them: nothing admitted is unprocessed).
  std::vector<std::pair<StreamKey, std::string>> Extract(const std::vector<uint32_t>& groups);

  const std::map<StreamKey, std::string>& processed() const { return done_; }

 private:
  std::map<StreamKey, std::string> admitted_, done_;
};

}  // namespace rs::stream
