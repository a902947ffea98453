// Merge: the deterministic order that reconciles the copies of one file held by its replicas.
//
// Problem: clients write each append to every replica in parallel, so two concurrent appends
// from different clients may land in different orders on different replicas, and a replica that
// missed an append (it was down, or new) lacks it. A merge must give every replica the same
// content containing every append any replica acknowledged, keep each client's appends in the
// client's order, and be a function of the replicas' contents only (never of wall clocks or of
// which node runs it), so that two merges of the same state agree and a repeated merge is a
// no-op.
//
// Choice: take the primary replica's order (the first ring successor; when it holds no copy, the
// copy with the most appends, earlier successors winning ties) as the base, append every append
// it lacks sorted by (client, seq), then put each client's appends into seq order within the
// positions that client occupies. The create (seq 0 of the creator) stays first, because every
// replica's copy starts with it. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "daemon/hydfs/types.h"
#include "shared/status.h"

namespace rs::hydfs {

struct MergePlan {
  FileMeta file;
  std::vector<AppendMeta> order;
  uint64_t digest = 0;  // OrderDigest(file.gen, order)
  // For each append, the indexes (into the input) of the copies that hold it.
  std::map<uint64_t, std::vector<size_t>> holders;
};

// `copies[i]` is successor i's copy (nullopt when it holds none); index 0 is the primary.
// Copies of another generation than the chosen one are left out (see ChooseGeneration).
// NotFound when no copy exists.
Result<MergePlan> PlanMerge(const std::vector<std::optional<Manifest>>& copies);

// The generation a merge keeps: the primary's when it has a copy, else the one most copies
// hold (ties: the newer created_ms, then the larger gen).
std::optional<uint64_t> ChooseGeneration(const std::vector<std::optional<Manifest>>& copies);

// Cuts `plan` (of the file `name`) down to `snap`: its first snap.appends appends, which must be
// the snapshot's (same generation, same digest). FailedPrecondition naming what changed
// otherwise: the file was replaced, or appends merged in among the snapshot's.
Status RestrictToSnapshot(const std::string& name, const FileSnapshot& snap, MergePlan* plan);

}  // namespace rs::hydfs
