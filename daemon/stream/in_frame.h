// An input frame as a task holds it between its inbox (or its source) and its operator: the
// channel and seq it came with and the tuples that are not duplicates, as views into the frame's
// bytes (kept alive by `hold`).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "shared/stream/channel.h"
#include "shared/stream/task_frame.h"

namespace rs::stream {

struct InFrame {
  Upstream from;
  uint64_t incarnation = 0;  // of the sender's run
  uint64_t seq = 0;
  bool end = false;
  uint64_t emit_us = 0;
  uint64_t epoch = 0;  // the group table the sender routed it by (README.md "Autoscaling")
  std::shared_ptr<const void> hold;  // keeps the views below alive
  std::vector<TupleRef> tuples;      // only the tuples that are not duplicates
  // A piece of a frame cut by an order replay (order_replay.h): the frame is processed once all
  // its pieces are. `logged`: its run is in the order log already (a replayed run).
  bool piece = false;
  bool logged = false;
};

}  // namespace rs::stream
