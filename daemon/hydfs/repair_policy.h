// Repair policy: what the repair scan does with one copy this node holds, decided from the heads
// of the file's current replicas, and how long a file waits after a repair that moved nothing.
// Pure functions and a plain class over plain data (no sockets, clocks or store); the scan in
// reconcile.cc gathers the facts and carries out the decision. Thread-compatible.
//
// Problem: a node holds three kinds of copies. Its own replica copies (it is one of the file's
// current replicas); extra copies (the ring moved and it is no longer a replica); legacy copies
// (it was expelled and came back under a new member id: what it held before is quarantined, not
// served as its own, and kept only to hand appends over). A copy may be deleted only when that
// loses nothing: the file is held at its full replica count on the current ring and each of
// those replicas holds every append the copy holds (compared by append id: the order may differ
// until merged), or the copy's generation was removed (rm) or replaced. A repair that moves
// nothing must not be retried at once, or a stale copy that can never match (its order differs,
// appends keep arriving) loops forever.
//
// Choice:
//   any replica reports the generation removed      -> drop (the rm wins, never resurrect);
//   a replica did not answer                        -> wait (membership settles who is alive);
//   replica copy: all replicas equal (digest)       -> nothing; written recently -> wait;
//                 an earlier replica holds a copy   -> wait (it coordinates); else repair;
//   extra/legacy: every replica holds all its ids   -> drop (safe);
//                 the merge would keep another gen  -> drop (superseded);
//                 else                              -> hand over (merge it into the replicas).
// Backoff: a repair that failed or changed nothing waits base * 2^(k-1) (bounded by max) before
// the file is considered again; a repair that moved data clears it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/clock.h"

namespace rs::hydfs {

enum class CopyKind { kReplica, kExtra, kLegacy };

// What one current replica of the file reported to the scan's head (or, for this node's own
// slot, what its live copy holds).
struct ReplicaHead {
  bool self = false;      // this slot is this node
  bool answered = false;  // it answered the head
  bool removed = false;   // it reports the copy's generation removed (a tombstone)
  bool has_copy = false;
  uint64_t gen = 0;
  uint64_t digest = 0;  // OrderDigest of its copy
  // Of the append ids of the copy under scan (sent for extra and legacy copies only): how many
  // its copy of the same generation lacks. Meaningful only with `ids_checked`.
  bool ids_checked = false;
  uint64_t lacks = 0;
};

struct CopyFacts {
  CopyKind kind = CopyKind::kReplica;
  uint64_t gen = 0;
  uint64_t digest = 0;
  size_t full_count = 0;              // min(hydfs_replicas, ring size)
  std::vector<ReplicaHead> replicas;  // the file's current replicas, in ring order
  bool recently_written = false;      // a replica copy took a write within quiet_ms
};

enum class ScanAction {
  kNone,            // in sync: nothing to do
  kWait,            // not now (a replica silent, still written, another coordinator)
  kDropRemoved,     // drop: the generation was removed
  kDropSafe,        // drop: every replica holds every append of this copy
  kDropSuperseded,  // drop: the replicas keep another generation of the name
  kRepair,          // merge the replicas (this node coordinates)
  kHandOver,        // merge with this copy as a source, then drop it on a later scan
};

struct ScanDecision {
  ScanAction action = ScanAction::kNone;
  const char* reason = "";
};

ScanDecision DecideCopy(const CopyFacts& facts);
const char* ScanActionName(ScanAction a);

// Per-file backoff after a repair that failed or moved nothing (bounded exponential).
class RepairBackoff {
 public:
  RepairBackoff(Clock::duration base, Clock::duration max) : base_(base), max_(max) {}
  // False while `name` waits.
  bool Ready(const std::string& name, TimePoint now) const;
  // A repair of `name` ended: `useful` when it moved bytes or changed a replica.
  void Record(const std::string& name, TimePoint now, bool useful);
  void Forget(const std::string& name) { state_.erase(name); }
  // How long `name` waits after its last empty repair (zero when none).
  Clock::duration Delay(const std::string& name) const;
  size_t waiting() const { return state_.size(); }

 private:
  struct State {
    uint32_t empty = 0;  // consecutive repairs that failed or changed nothing
    TimePoint not_before;
  };
  Clock::duration base_, max_;
  std::map<std::string, State> state_;
};

}  // namespace rs::hydfs
