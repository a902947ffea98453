// OpMetrics: what the file operations this node runs as a client add up to, for GET /metrics
// (README.md "Metrics"): per kind, operations ok and failed, payload bytes of the ones that
// succeeded, and a latency histogram. Each operation is recorded once, when its caller is told
// the outcome (an in-process write's retries are one operation).
// Thread-safety: Record and Take may be called from any thread (relaxed atomics: a Take taken
// while an operation is recorded may show it in one series and not yet in another).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/util/histogram.h"

namespace rs::hydfs {

// The operations a node runs as a client: rainctl's file commands and the in-process API.
enum class OpKind : uint8_t {
  kCreate,          // rainctl create, HydfsService::Create
  kAppend,          // rainctl append, HydfsService::Append
  kGet,             // rainctl get, HydfsService::Get
  kGetPrefix,       // HydfsService::GetPrefix
  kGetSnapshot,     // HydfsService::GetSnapshot
  kGetFromReplica,  // rainctl getfromreplica (this node's own copy)
  kSnapshot,        // HydfsService::Snapshot (a merge, then the merged order's figures)
  kMerge,           // rainctl merge
  kLs,              // rainctl ls
  kLsAll,           // rainctl lsall, HydfsService::ListAll
  kRm,              // rainctl rm, HydfsService::Remove
};
inline constexpr size_t kOpKinds = 11;

// Every kind, in enum order.
inline constexpr std::array<OpKind, kOpKinds> kAllOpKinds = {
    OpKind::kCreate,      OpKind::kAppend,         OpKind::kGet,      OpKind::kGetPrefix,
    OpKind::kGetSnapshot, OpKind::kGetFromReplica, OpKind::kSnapshot, OpKind::kMerge,
    OpKind::kLs,          OpKind::kLsAll,          OpKind::kRm};

// The `kind` label value: "create", "get_prefix", "get_from_replica", "ls_all", ...
std::string_view OpKindName(OpKind kind);
// Whether operations of `kind` move file data (creates, appends, gets); the others count no bytes.
bool CarriesPayload(OpKind kind);

struct OpCounts {
  uint64_t ok = 0, error = 0;
  uint64_t bytes =
      0;  // payload written (create, append) or read (gets) by operations that succeeded
  HistogramSnapshot duration;
};

class OpMetrics {
 public:
  // One finished operation: `bytes` counts only when `ok`.
  void Record(OpKind kind, bool ok, uint64_t bytes, std::chrono::microseconds elapsed);
  OpCounts Take(OpKind kind) const;

 private:
  struct PerKind {
    std::atomic<uint64_t> ok{0}, error{0}, bytes{0};
    Histogram duration;
  };
  std::array<PerKind, kOpKinds> kinds_;
};

}  // namespace rs::hydfs
