// A rebuilt task's replay of its logged input order (shared/stream/input_order.h; README.md
// "Recovery", "Order log"). The inputs come back in whatever interleaving the channels bring
// them; OrderReplay cuts each frame into pieces of one (upstream, origin) and hands the pieces on
// in the logged order: every tuple of the run's stream up to its last id, then the next run. Once
// every run is taken, what waits goes on as it came, and new input bypasses it. A frame counts as
// processed (ReceiverChannel::Processed) only when all its pieces are (Done). Pure: no sockets,
// no clock; thread-compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "daemon/stream/in_frame.h"
#include "shared/stream/input_order.h"

namespace rs::stream {

class OrderReplay {
 public:
  // `upstreams`: the input channels; once each has brought its end frame, a run whose tuples
  // never came is given up (counted as mismatched) rather than waited for.
  OrderReplay(std::vector<OrderRun> runs, uint32_t upstreams)
      : runs_(std::move(runs)), upstreams_(upstreams) {}

  // A frame taken from an input channel (duplicates already dropped).
  void Offer(InFrame fr);
  // Appends to `out` what may be taken next: pieces in the logged order as far as the input has
  // come (each run taken calls log->Replayed()), frames without tuples, and once every run is
  // taken everything that waits.
  void Take(std::deque<InFrame>* out, OrderLog* log);

  // A piece handed out by Take was processed: the frame it came from, when that frame is now
  // processed whole.
  struct Whole {
    Upstream from;
    uint64_t incarnation = 0, seq = 0;
    bool end = false;
  };
  std::optional<Whole> Done(const InFrame& piece);

  // Runs not yet taken.
  bool replaying() const { return next_ < runs_.size(); }
  // Nothing of the replay outstanding: every run taken and every piece processed.
  bool finished() const { return !replaying() && frames_.empty(); }
  // Runs whose stream ran past its last id without it, or ended without it (an upstream did
  // not regenerate the same ids: operators must be deterministic).
  uint64_t mismatched() const { return mismatched_; }

 private:
  using FrameKey = std::tuple<uint32_t, uint32_t, uint64_t, uint64_t>;  // from, run, seq
  struct Pending {
    size_t pieces = 0;
    bool end = false;
  };
  static FrameKey KeyOf(const InFrame& f) {
    return {f.from.first, f.from.second, f.incarnation, f.seq};
  }

  std::vector<OrderRun> runs_;
  uint32_t upstreams_ = 0;
  std::set<Upstream> ended_;  // channels whose end frame came
  size_t next_ = 0;
  std::map<std::pair<uint32_t, uint64_t>, std::deque<InFrame>> streams_;  // (upstream, origin)
  std::deque<InFrame> empty_;  // frames without tuples: nothing to order
  std::map<FrameKey, Pending> frames_;
  uint64_t mismatched_ = 0;
};

}  // namespace rs::stream
