// Legacy copies: what this node stored under an earlier member id. When the process is expelled
// and rejoins under a new id it must not serve its old copies as the new member's replicas (a
// rejoining machine keeps no blocks as its own), but it must not delete them either: they may
// hold the only copy of acknowledged appends (a healed partition can expel a healthy majority).
// So they move, blobs renamed and manifests copied, into a second Store under
// <hydfs>/legacy: not listed, not answered to heads or manifests, read only as a repair source.
// The repair scan (reconcile.cc, repair_policy.h) hands each legacy copy's appends over to the
// file's current replicas and drops it once every one of them holds them all.
// Free functions over Stores; call them from one thread at a time (they write LMDB).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/hydfs/store.h"

namespace rs::hydfs {

struct QuarantineResult {
  size_t files = 0;
  uint64_t bytes = 0;
  size_t appends_lost = 0;  // appends whose blob was missing (they could not move)
};

// Moves the live copy of `name` from `live` into `legacy`, merged with a legacy copy of the same
// generation already there (a second expulsion). The live copy is gone afterwards.
Status QuarantineFile(Store& live, Store& legacy, const std::string& name, QuarantineResult* out);
// QuarantineFile for every live copy.
QuarantineResult QuarantineAll(Store& live, Store& legacy);

// How many of `ids` the copy lacks: all of them when it holds no copy or another generation.
uint64_t CountLacking(const std::optional<Manifest>& copy, uint64_t gen,
                      const std::vector<uint64_t>& ids);
std::vector<uint64_t> AppendIds(const Manifest& m);

}  // namespace rs::hydfs
