#include "daemon/hydfs/op_metrics.h"

#include <algorithm>

namespace rs::hydfs {

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kCreate:
      return "create";
    case OpKind::kAppend:
      return "append";
    case OpKind::kGet:
      return "get";
    case OpKind::kGetPrefix:
      return "get_prefix";
    case OpKind::kGetSnapshot:
      return "get_snapshot";
    case OpKind::kGetFromReplica:
      return "get_from_replica";
    case OpKind::kSnapshot:
      return "snapshot";
    case OpKind::kMerge:
      return "merge";
    case OpKind::kLs:
      return "ls";
    case OpKind::kLsAll:
      return "ls_all";
    case OpKind::kRm:
      return "rm";
  }
  return "unknown";
}

bool CarriesPayload(OpKind kind) {
  switch (kind) {
    case OpKind::kCreate:
    case OpKind::kAppend:
    case OpKind::kGet:
    case OpKind::kGetPrefix:
    case OpKind::kGetSnapshot:
    case OpKind::kGetFromReplica:
      return true;
    case OpKind::kSnapshot:
    case OpKind::kMerge:
    case OpKind::kLs:
    case OpKind::kLsAll:
    case OpKind::kRm:
      return false;
  }
  return false;
}

void OpMetrics::Record(OpKind kind, bool ok, uint64_t bytes, std::chrono::microseconds elapsed) {
  PerKind& k = kinds_[static_cast<size_t>(kind)];
  if (ok) {
    k.ok.fetch_add(1, std::memory_order_relaxed);
    k.bytes.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    k.error.fetch_add(1, std::memory_order_relaxed);
  }
  k.duration.ObserveMicros(static_cast<uint64_t>(std::max<int64_t>(0, elapsed.count())));
}

OpCounts OpMetrics::Take(OpKind kind) const {
  const PerKind& k = kinds_[static_cast<size_t>(kind)];
  OpCounts c;
  c.ok = k.ok.load(std::memory_order_relaxed);
  c.error = k.error.load(std::memory_order_relaxed);
  c.bytes = k.bytes.load(std::memory_order_relaxed);
  c.duration = k.duration.Take();
  return c;
}

}  // namespace rs::hydfs
