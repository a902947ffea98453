// Private to HydfsService: the state of operations in flight. Loop thread only.
#pragma once

#include <optional>
#include <string>

#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/retry.h"

namespace rs::hydfs {

inline constexpr uint8_t kToolLane = 127;  // the lane of rainctl's frames

// One replica of a write.
struct HydfsService::Lane {
  RingNode node;
  bool open = false;        // the replica accepted the put
  bool ready = false;       // every chunk is written there (or it listed the append already)
  bool committing = false;  // commit sent, not settled yet (answered or declared failed)
  bool committed = false;
  bool failed = false;  // given up on (no answer, declared failed, error)
  Status status;
  uint64_t acked = 0;  // chunks acknowledged: every seq < acked
  TimePoint last;      // last sign of life
};

// A create or append run by this node as the client.
struct HydfsService::PutOp {
  uint64_t stream = 0;
  bool create = false;
  bool quiet = false;  // log at debug level (the log shipper's appends)
  std::string name;
  FileMeta file;    // create: the new generation; append: the generation appended to
  AppendMeta meta;  // crcs unknown until the data has passed
  std::vector<Lane> lanes;
  std::string tool;  // rainctl's data endpoint when the data comes from rainctl
  std::string data;  // the data otherwise
  uint64_t chunks = 0;
  uint64_t sent = 0;        // chunks sent to every open lane
  uint64_t tool_acked = 0;  // chunks acknowledged to the tool
  TimePoint started, last_tool;
  bool opened = false, committing = false, finished = false;
  // The commit phase: lanes whose commit is not settled yet, lanes committed, the first failure.
  size_t commits_pending = 0, commits_ok = 0;
  Status commit_error;
  std::function<void(Status, wire::BodyWriter)> on_open;  // rainctl's command reply
  std::function<void(Status, wire::BodyWriter)> on_done;
  transport::EventLoop::TimerId timer = 0;
  std::vector<uint32_t> crcs;  // of chunks forwarded from the tool
  // Retries (retry.h). `id_fixed`: file.gen and meta.seq come from an earlier attempt of this
  // write and are kept, so replicas that committed that attempt see the same append id.
  // `id_assigned`: file.gen and meta.seq are chosen (a later attempt must reuse them).
  bool id_fixed = false, id_assigned = false;
  bool resumed = false;    // the fixed id is an unsettled append's (LaunchMemoryPut), not a retry's
  bool transient = false;  // the failure reported by FinishPut may pass (retry.h)
  bool commit_definitive = false;  // a commit was refused for a reason a retry cannot fix
  // The replicas the last head asked (member ids), and how often the open found the ring moved
  // since and went back to the head (PutOpen).
  std::vector<std::string> head_replicas;
  int reheads = 0;
  // The kind FinishPut records (op_metrics.h), from `requested`; unset for an attempt of an
  // in-process write, which LaunchMemoryPut records once over all its attempts.
  std::optional<OpKind> metric;
  TimePoint requested;

  uint64_t MinAcked() const {
    uint64_t m = UINT64_MAX;
    for (const auto& l : lanes) {
      if (l.open && !l.failed) m = std::min(m, l.acked);
    }
    return m == UINT64_MAX ? 0 : m;
  }
  // Whether every lane given up on failed for a reason that may pass (retry.h).
  bool FailuresTransient() const {
    for (const auto& l : lanes) {
      if (l.failed && !TransientWriteError(l.status.code())) return false;
    }
    return true;
  }
  size_t Healthy() const {
    size_t n = 0;
    for (const auto& l : lanes) n += (l.open && !l.failed) ? 1 : 0;
    return n;
  }
};

// "create" or "append", for the logs of a write.
inline const char* OpName(bool create) { return create ? "create" : "append"; }

// "1 of 3 replicas reachable, write quorum is 2": every write that misses its quorum names the
// quorum, over the replica set of the ring this node sees.
inline std::string QuorumText(size_t got, size_t replicas, size_t quorum, const std::string& what) {
  return std::to_string(got) + " of " + std::to_string(replicas) + " replicas " + what +
         ", write quorum is " + std::to_string(quorum);
}

// An in-process create or append across its attempts (retry.h). Loop thread only.
struct HydfsService::MemoryPut {
  bool create = false;
  bool quiet = false;
  std::string name;
  std::string data;  // moved into each attempt's PutOp and back out when it fails
  std::function<void(Status)> done;
  int attempts = 0;  // started so far
  TimePoint first_started;
  // Once an attempt has chosen the append id, every later attempt keeps it.
  bool id_fixed = false;
  FileMeta file;
  uint64_t seq = 0;
  uint64_t wall_ms = 0;
  bool resumed = false;  // the id came from unsettled_ (the caller's retry of a failed append)
  TimePoint requested;   // when the caller asked: the start of the operation's duration
};

// A get (or getfromreplica, or an in-process Get) run by this node as the client.
struct HydfsService::GetOp {
  uint64_t stream = 0;
  std::string name;
  bool local_only = false;   // getfromreplica: this node's own copy, in its own order
  std::string tool;          // rainctl's data endpoint, or empty for the in-process API
  bool tool_client = false;  // the tool is a client process (rainctl), not a node
  std::string data;          // in-process sink
  uint64_t max_bytes = 0;    // in-process prefix read: at least this many leading bytes; 0: all
  std::optional<FileSnapshot> snapshot;  // in-process: read only this snapshot's appends
  bool plan_only = false;                // Snapshot(): stop once the merged order is known
  MergePlan plan;
  std::map<uint64_t, std::vector<RingNode>> sources;  // append id -> replicas holding it
  uint64_t size = 0;
  std::shared_ptr<Fetch> fetch;
  uint64_t total_chunks = 0;  // of the fetch
  std::string fill_path;      // cache fill in progress
  int fill_fd = -1;
  uint64_t fill_offset = 0;
  int cache_fd = -1;  // serving from the cache
  uint64_t cache_chunks = 0, cache_sent = 0, cache_acked = 0;
  bool cached = false;
  TimePoint started, last_tool;
  bool finished = false;
  std::function<void(Status, wire::BodyWriter)> on_open;
  std::function<void(Status, wire::BodyWriter)> on_done;
  transport::EventLoop::TimerId timer = 0;
  std::vector<std::string> corrupt;  // corruption seen and worked around
  // The kind FinishGet records (op_metrics.h), from `requested`; unset for the read inside a
  // Snapshot, which Snapshot records itself.
  std::optional<OpKind> metric;
  TimePoint requested;
};

// A write arriving at this replica.
struct HydfsService::Inbound {
  uint64_t stream = 0;
  uint8_t lane = 0;
  std::string sender;  // the client's data endpoint
  bool create = false;
  bool quiet = false;
  FileMeta file;
  std::unique_ptr<BlobWriter> writer;  // null for an empty write
  AppendMeta empty_meta;               // the append as announced (crcs empty)
  uint64_t next_seq = 0;
  uint64_t chunks = 0;
  bool ready = false;       // every chunk written; waiting for the client's commit or abort
  bool committing = false;  // the commit is running on the IO pool
  bool listed = false;      // the append is already in this replica's manifest: no data needed
  TimePoint last;
  TimePoint started;
};

// A read served by this replica.
struct HydfsService::Outbound {
  uint64_t stream = 0;
  uint8_t lane = 0;
  std::string reader;   // where the chunks go: the reader's data endpoint
  std::string control;  // where the end frame goes: the reader, or the node relaying its acks
  Manifest manifest;    // for logs and self-repair
  struct Range {
    AppendMeta meta;
    uint32_t from = 0, to = 0;
    bool legacy = false;  // read from the legacy store (a hand-over source)
  };
  std::vector<Range> ranges;
  size_t range = 0;
  uint32_t chunk = 0;
  uint64_t first_seq = 0;
  uint64_t next_seq = 0;  // next to send
  uint64_t acked = 0;     // every seq < acked acknowledged
  uint64_t end_seq = 0;   // first_seq + total chunks
  uint32_t window = 8;
  TimePoint last;
};

}  // namespace rs::hydfs
