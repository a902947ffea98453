// A task's checkpoint file in HyDFS (`rainstorm/<job>/task-S-T.ckpt.<gen>`, daemon/stream/README.md
// "HyDFS checkpoints"): records appended one after another, each a 4-byte big-endian length and
// a MessagePack map {time_ms, commits, wm, in, pending, pending_from, state, state_changes,
// order, spool_bytes, counters, epoch, source}. The task
// writes them (AppendCheckpointRecord), a rebuilt task reads the last one back, and `rainctl job
// checkpoint` prints them. Hostile bytes give Corruption, never a throw. Pure and
// thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::stream {

// The highest tuple id processed from one (key group, upstream stage, task, origin).
struct CheckpointWatermark {
  uint32_t group = 0;
  uint32_t stage = 0, task = 0;
  uint64_t origin = 0;
  std::string_view id;
};

// One input channel: the sender's run and the last frame processed from it.
struct CheckpointChannel {
  uint32_t stage = 0, task = 0;
  uint64_t incarnation = 0, processed = 0;
  bool ended = false;
};

// An output frame (a whole task-data envelope) a rebuilt task must deliver again.
struct CheckpointFrame {
  uint32_t to = 0;  // the downstream task's index
  uint64_t seq = 0;
  std::string_view bytes;
};

// One record. Writing, the views point into the task's own data; read back, into `hold`.
struct CheckpointRecord {
  uint64_t time_ms = 0;  // wall clock when it was taken
  uint64_t commits = 0;  // the task's group commits when it was taken
  std::vector<CheckpointWatermark> wm;
  std::vector<CheckpointChannel> in;
  // Output frames a rebuilt task must deliver again. A record lists only those that no
  // earlier durable record of its generation listed, and `pending_from` gives, per downstream
  // task, the lowest seq still pending: the frames pending at this record are those of every
  // record of the generation up to it with seq >= pending_from[to] (PendingFrames). A downstream
  // without an entry has none. Read back without the field (`incremental` false), `pending` is
  // complete on its own.
  std::vector<CheckpointFrame> pending;
  std::map<uint32_t, uint64_t> pending_from;
  bool incremental = false;               // read back: the record had pending_from
  std::optional<std::string_view> state;  // the operator's snapshot; none when stateless
  // `state` holds only the entries changed since the record before it, of the same generation
  // (operators/PROTOCOL.md "State changes"); StateAt rebuilds the full state.
  bool state_changes = false;
  uint64_t spool_bytes = 0;  // the sink: bytes of its spool committed
  // A task that logs its input order (input_order.h): the runs logged before this record, whose
  // inputs its state holds. A rebuild replays the runs from this index on.
  std::optional<uint64_t> order;
  // The task's counters at this point (inputs processed, outputs produced, duplicates
  // dropped): a rebuilt task counts on from them, so job status stays exact across rebuilds.
  uint64_t tuples_in = 0, tuples_out = 0, duplicates = 0;
  // The epoch of the group table the record's groups (state, watermarks) are those of
  // (README.md "Autoscaling"); 0 before the stage's first rescale (absent on the wire).
  uint64_t epoch = 0;
  // Stage 1 of a rescalable job reading files: the range it reads, [origin, begin, end] (the
  // end moves down when it gives pieces away; README.md "Autoscaling"). Absent otherwise.
  struct Source {
    uint64_t origin = 0, begin = 0, end = 0;
  };
  std::optional<Source> source;
  std::shared_ptr<const void> hold;
};

// "rainstorm/<job>/": every checkpoint file of a job is under it (removed when the job ends,
// unless it is kept).
std::string CheckpointDir(std::string_view job);
// "rainstorm/<job>/task-S-T.ckpt." and, with the generation, a checkpoint file's HyDFS name.
std::string CheckpointFilePrefix(std::string_view job, uint32_t stage, uint32_t task);
std::string CheckpointFileName(std::string_view job, uint32_t stage, uint32_t task, uint64_t gen);

// The operator state a rebuild restores at the last of `records` (one generation's, in order):
// the last one's own state, or, when it holds changes, the last full state before it with every
// later record's changes applied (ApplyKeyedStateChanges). Empty: none. Corruption when changes
// have no full state before them.
Result<std::string> StateAt(const std::vector<CheckpointRecord>& records);

// Appends `record`, length prefix included, to `out`.
void AppendCheckpointRecord(const CheckpointRecord& record, std::string* out);

// The records of a checkpoint file, each a view into `file`, in order. A torn tail (an append
// cut short by a crash) is left out and its size reported.
struct CheckpointRecords {
  std::vector<std::string_view> records;
  size_t torn_bytes = 0;
};
CheckpointRecords SplitCheckpointFile(std::string_view file);

// Decodes one record (a view from SplitCheckpointFile; the result copies what it needs).
Result<CheckpointRecord> DecodeCheckpointRecord(std::string_view record);

// The frames pending at `records.back()`, assembled from the records of one generation in
// order (views into `records`' holds), by (to, seq) ascending.
std::vector<CheckpointFrame> PendingFrames(const std::vector<CheckpointRecord>& records);

}  // namespace rs::stream
