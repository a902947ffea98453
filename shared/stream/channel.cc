#include "shared/stream/channel.h"

#include <algorithm>

namespace rs::stream {

// ---- SenderChannel ----

void SenderChannel::Release(KeptFrame f, TimePoint now) {
  // A channel with nothing in flight starts its resend and stall clocks now, not at its last ack.
  if (in_flight() == 0) last_progress_ = now;
  released_ = std::max(released_, f.seq);
  kept_.push_back(std::move(f));
}

void SenderChannel::ReleaseHeld(size_t n, TimePoint now) {
  for (size_t i = 0; i < n && !held_.empty(); ++i) {
    KeptFrame f = std::move(held_.front());
    held_.pop_front();
    Release(std::move(f), now);
  }
}

bool SenderChannel::ResendDue(TimePoint now) const { return now >= NextResend(); }

TimePoint SenderChannel::NextResend() const {
  if (sent_ == 0) return TimePoint::max();
  return std::max(last_progress_, last_resend_) + o_.resend_after;
}

SenderChannel::AckResult SenderChannel::OnAck(uint64_t seq, uint64_t durable, TimePoint now) {
  if (seq > released_) return AckResult::kBogus;
  if (!o_.exactly_once) durable = seq;
  durable = std::min(durable, seq);
  bool progress = false;
  if (seq > acked_) {
    acked_ = seq;
    progress = true;
  }
  if (durable > durable_) {
    durable_ = durable;
    progress = true;
    size_t popped = 0;
    while (!kept_.empty() && kept_.front().seq <= durable_) {
      kept_.pop_front();
      ++popped;
    }
    sent_ = sent_ > popped ? sent_ - popped : 0;
  }
  if (!progress) return AckResult::kNothing;
  last_progress_ = now;
  return AckResult::kProgress;
}

void SenderChannel::Rewire(TimePoint now) {
  // The new run restored its checkpoint: frames above durable are not processed there.
  acked_ = durable_;
  sent_ = 0;
  last_progress_ = last_resend_ = now;
}

// ---- ReceiverChannel ----

ReceiverChannel::Offer ReceiverChannel::Take(uint64_t run, uint64_t seq, bool exactly_once) {
  if (run != run_) {
    if (run < run_) return Offer::kOldRun;
    // A new run of the sender numbers its frames from 1 again; ids keep deduplicating. Its
    // old run's processed and durable seqs say nothing about the new run's frames.
    run_ = run;
    next_seq_ = 1;
    processed_ = acked_sent_ = durable_ = 0;
    ended_ = false;
  }
  if (!exactly_once && processed_ == 0 && next_seq_ == 1 && seq > 1) next_seq_ = seq;
  if (seq < next_seq_) return Offer::kRepeat;
  if (seq > next_seq_) return Offer::kGap;
  ++next_seq_;
  return Offer::kNext;
}

void ReceiverChannel::Processed(uint64_t run, uint64_t seq, bool end) {
  if (run != run_) return;  // the sender restarted meanwhile
  processed_ = std::max(processed_, seq);
  if (end) ended_ = true;
}

bool ReceiverChannel::Durable(uint64_t run, uint64_t seq) {
  if (run != run_ || seq <= durable_) return false;
  durable_ = seq;
  return true;
}

void ReceiverChannel::Restore(uint64_t run, uint64_t processed, bool ended) {
  run_ = run;
  processed_ = acked_sent_ = durable_ = processed;
  next_seq_ = processed + 1;
  ended_ = ended;
}

ReceiverChannel::Ack ReceiverChannel::TakeAck(bool processed_is_durable, TimePoint now) {
  acked_sent_ = processed_;
  acked_at_ = now;
  return Ack{run_, processed_, processed_is_durable ? processed_ : durable_};
}

// ---- Dedup ----

size_t Dedup::Admit(const Upstream& from, std::vector<TupleRef>* tuples) {
  size_t kept = 0, dropped = 0;
  std::string* mark = nullptr;
  uint64_t origin = 0;
  uint32_t group = 0;
  for (size_t i = 0; i < tuples->size(); ++i) {
    const TupleRef& r = (*tuples)[i];
    if (mark == nullptr || r.origin != origin || r.group != group) {
      mark = &admitted_[StreamKey{r.group, from.first, from.second, r.origin}];
      origin = r.origin;
      group = r.group;
    }
    if (!mark->empty() && CompareIds(r.id, *mark) <= 0) {
      ++dropped;
      continue;
    }
    mark->assign(r.id.data(), r.id.size());
    if (kept != i) (*tuples)[kept] = r;
    ++kept;
  }
  tuples->resize(kept);
  return dropped;
}

void Dedup::Processed(const Upstream& from, const std::vector<TupleRef>& tuples) {
  // Ids of one stream increase, so the last tuple of a run of one (origin, group) is the run's
  // highest; a stream's runs may alternate with others', hence the comparison.
  uint64_t origin = 0;
  uint32_t group = 0;
  bool first = true;
  for (auto it = tuples.rbegin(); it != tuples.rend(); ++it) {
    if (!first && it->origin == origin && it->group == group) continue;
    first = false;
    origin = it->origin;
    group = it->group;
    std::string& mark = done_[StreamKey{group, from.first, from.second, origin}];
    if (mark.empty() || CompareIds(it->id, mark) > 0) mark.assign(it->id.data(), it->id.size());
  }
}

void Dedup::Restore(const StreamKey& key, std::string_view id) {
  admitted_[key] = done_[key] = std::string(id);
}

std::vector<std::pair<StreamKey, std::string>> Dedup::Extract(const std::vector<uint32_t>& groups) {
  std::vector<std::pair<StreamKey, std::string>> out;
  for (uint32_t g : groups) {
    // The streams of group g are adjacent: the group is the key's first element.
    auto lo = done_.lower_bound(StreamKey{g, 0, 0, 0});
    auto hi = done_.lower_bound(StreamKey{g + 1, 0, 0, 0});
    for (auto it = lo; it != hi; ++it) out.emplace_back(it->first, it->second);
    done_.erase(lo, hi);
    admitted_.erase(admitted_.lower_bound(StreamKey{g, 0, 0, 0}),
                    admitted_.lower_bound(StreamKey{g + 1, 0, 0, 0}));
  }
  return out;
}

}  // namespace rs::stream
