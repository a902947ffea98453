#include "daemon/stream/order_replay.h"

namespace rs::stream {

void OrderReplay::Offer(InFrame fr) {
  if (fr.end) ended_.insert(fr.from);
  if (fr.tuples.empty()) {
    empty_.push_back(std::move(fr));
    return;
  }
  Pending& p = frames_[KeyOf(fr)];
  p.end = fr.end;
  size_t begin = 0;
  for (size_t i = 0; i < fr.tuples.size(); ++i) {
    if (i + 1 < fr.tuples.size() && fr.tuples[i + 1].origin == fr.tuples[i].origin) continue;
    InFrame piece;
    piece.from = fr.from;
    piece.incarnation = fr.incarnation;
    piece.seq = fr.seq;
    piece.emit_us = fr.emit_us;
    piece.hold = fr.hold;
    piece.piece = true;
    piece.tuples.assign(fr.tuples.begin() + static_cast<std::ptrdiff_t>(begin),
                        fr.tuples.begin() + static_cast<std::ptrdiff_t>(i + 1));
    ++p.pieces;
    streams_[{fr.from.second, fr.tuples[i].origin}].push_back(std::move(piece));
    begin = i + 1;
  }
}

void OrderReplay::Take(std::deque<InFrame>* out, OrderLog* log) {
  while (!empty_.empty()) {
    out->push_back(std::move(empty_.front()));
    empty_.pop_front();
  }
  while (next_ < runs_.size()) {
    const OrderRun& run = runs_[next_];
    auto it = streams_.find({run.upstream, run.origin});
    bool complete = false;
    while (it != streams_.end() && !it->second.empty() && !complete) {
      InFrame& front = it->second.front();
      size_t take = 0;
      while (take < front.tuples.size() && CompareIds(front.tuples[take].id, run.last_id) <= 0) {
        ++take;
      }
      if (take > 0) complete = CompareIds(front.tuples[take - 1].id, run.last_id) == 0;
      if (take < front.tuples.size() && !complete) {
        // The stream went past the run's last id without it.
        ++mismatched_;
        complete = true;
      }
      if (take == 0) break;
      if (take == front.tuples.size()) {
        front.logged = true;
        out->push_back(std::move(front));
        it->second.pop_front();
      } else {
        // The piece's head belongs to this run, its tail to a later one.
        InFrame head = front;
        head.tuples.resize(take);
        head.logged = true;
        front.tuples.erase(front.tuples.begin(),
                           front.tuples.begin() + static_cast<std::ptrdiff_t>(take));
        ++frames_[KeyOf(front)].pieces;
        out->push_back(std::move(head));
      }
    }
    if (!complete) {
      if (ended_.size() < upstreams_) return;  // the rest of the run has not come yet
      ++mismatched_;  // and never will: every channel has ended
    }
    log->Replayed();
    ++next_;
  }
  // Every run taken: what waits goes on (each stream in its order), recorded anew.
  for (auto& [key, q] : streams_) {
    while (!q.empty()) {
      out->push_back(std::move(q.front()));
      q.pop_front();
    }
  }
  streams_.clear();
}

std::optional<OrderReplay::Whole> OrderReplay::Done(const InFrame& piece) {
  auto it = frames_.find(KeyOf(piece));
  if (it == frames_.end()) return std::nullopt;
  if (--it->second.pieces > 0) return std::nullopt;
  Whole w{piece.from, piece.incarnation, piece.seq, it->second.end};
  frames_.erase(it);
  return w;
}

}  // namespace rs::stream
