#include "daemon/hydfs/repair_policy.h"

#include <algorithm>

namespace rs::hydfs {
namespace {

// The generation a merge of these copies keeps (merge.h ChooseGeneration over the heads): the
// primary's when it holds a copy, else the one most copies hold, this copy included (ties: ours,
// as we cannot tell created_ms from a head).
uint64_t KeptGeneration(const CopyFacts& f) {
  if (!f.replicas.empty() && f.replicas[0].answered && f.replicas[0].has_copy) {
    return f.replicas[0].gen;
  }
  std::map<uint64_t, size_t> votes;
  votes[f.gen] = 1;
  for (const auto& r : f.replicas) {
    if (r.has_copy) ++votes[r.gen];
  }
  uint64_t best = f.gen;
  size_t best_n = votes[f.gen];
  for (const auto& [gen, n] : votes) {
    if (n > best_n) {
      best = gen;
      best_n = n;
    }
  }
  return best;
}

}  // namespace

ScanDecision DecideCopy(const CopyFacts& f) {
  for (const auto& r : f.replicas) {
    if (r.answered && r.removed) {
      return {ScanAction::kDropRemoved, "the generation was removed"};
    }
  }
  for (const auto& r : f.replicas) {
    if (!r.self && !r.answered) return {ScanAction::kWait, "a replica did not answer"};
  }
  if (f.kind == CopyKind::kReplica) {
    int self_rank = -1;
    bool equal = true;
    for (size_t i = 0; i < f.replicas.size(); ++i) {
      const auto& r = f.replicas[i];
      if (r.self) {
        if (self_rank < 0) self_rank = static_cast<int>(i);
        continue;
      }
      equal &= r.has_copy && r.gen == f.gen && r.digest == f.digest;
    }
    if (equal) return {ScanAction::kNone, "replicas identical"};
    if (f.recently_written) return {ScanAction::kWait, "written recently: merged once quiet"};
    for (int i = 0; i < self_rank; ++i) {
      const auto& r = f.replicas[static_cast<size_t>(i)];
      if (r.has_copy && r.gen == f.gen) {
        return {ScanAction::kWait, "an earlier replica coordinates the repair"};
      }
    }
    return {ScanAction::kRepair, "replicas_differ"};
  }
  // An extra or legacy copy: only a full replica set holding every append of it makes it safe
  // to drop.
  if (f.full_count == 0 || f.replicas.size() < f.full_count) {
    return {ScanAction::kWait, "the replica set is not full"};
  }
  bool covered = true;
  for (const auto& r : f.replicas) {
    covered &= r.has_copy && r.gen == f.gen && r.ids_checked && r.lacks == 0;
  }
  if (covered) {
    return {ScanAction::kDropSafe, "every replica holds every append of this copy"};
  }
  if (KeptGeneration(f) != f.gen) {
    return {ScanAction::kDropSuperseded, "the replicas keep another generation of the name"};
  }
  return {ScanAction::kHandOver,
          f.kind == CopyKind::kLegacy ? "legacy_copy_handover" : "copy_outside_replica_set"};
}

const char* ScanActionName(ScanAction a) {
  switch (a) {
    case ScanAction::kNone:
      return "none";
    case ScanAction::kWait:
      return "wait";
    case ScanAction::kDropRemoved:
      return "drop_removed";
    case ScanAction::kDropSafe:
      return "drop_safe";
    case ScanAction::kDropSuperseded:
      return "drop_superseded";
    case ScanAction::kRepair:
      return "repair";
    case ScanAction::kHandOver:
      return "hand_over";
  }
  return "?";
}

bool RepairBackoff::Ready(const std::string& name, TimePoint now) const {
  auto it = state_.find(name);
  return it == state_.end() || it->second.not_before <= now;
}

void RepairBackoff::Record(const std::string& name, TimePoint now, bool useful) {
  if (useful) {
    state_.erase(name);
    return;
  }
  State& s = state_[name];
  s.empty = std::min<uint32_t>(s.empty + 1, 30);
  s.not_before = now + Delay(name);
}

Clock::duration RepairBackoff::Delay(const std::string& name) const {
  auto it = state_.find(name);
  if (it == state_.end() || it->second.empty == 0) return Clock::duration::zero();
  Clock::duration d = base_;
  for (uint32_t i = 1; i < it->second.empty && d < max_; ++i) d *= 2;
  return std::min(d, max_);
}

}  // namespace rs::hydfs
