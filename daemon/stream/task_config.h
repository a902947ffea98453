// TaskConfig: everything a worker needs to run one task, sent by the leader in
// a StartTask message (messages.h), and TaskReport: what a task tells the leader.
// Both travel as MessagePack maps. Pure value types; thread-compatible.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shared/util/histogram.h"
#include "shared/status.h"
#include "shared/stream/input_order.h"
#include "shared/stream/key_groups.h"
#include "shared/wire/envelope.h"

namespace rs::stream {

// The longest string a task config carries (a CSV header, an operator argument): 1 MiB.
inline constexpr uint32_t kMaxConfigString = 1u << 20;

// One input file of a job, fixed when the job is submitted (a HyDFS snapshot: generation,
// append count, size, order digest). Every stage-1 task, and every rebuild of one, reads these
// bytes and no others, whatever is appended to the file meanwhile.
struct SourceFile {
  std::string name;  // HyDFS name
  uint64_t gen = 0, appends = 0, size = 0, digest = 0;
  bool header = false;  // its first line is a CSV header: not a tuple
  bool operator==(const SourceFile&) const = default;
};

struct TaskConfig {
  std::string job;
  uint32_t stage = 1;   // 1..stages; stages + 1 is the job's sink
  uint32_t stages = 1;  // operator stages of the job
  uint32_t task = 0, tasks = 1;
  std::vector<std::string> argv;  // the operator command (empty for the sink)
  std::optional<std::string> csv_header;
  bool exactly_once = true;
  uint64_t incarnation = 1;  // this run of the task; frames and acks carry it
  // A rebuilt task: restore the last checkpoint from HyDFS (state, watermarks, outputs not yet
  // durable downstream) before anything else.
  bool recover = false;
  uint64_t ckpt_gen_hint = 0;  // the checkpoint generation the failed run last reported
  // A rebuilt task that logs its input order: the runs the sink holds for it (input_order.h),
  // taken again in that order from the checkpoint's index on.
  OrderRuns replay_order;

  // Input. Stage 1 reads partition `task` of `src` (in order) unless `live`; every other task
  // (and live stage 1) reads `upstreams` channels until each has ended.
  std::vector<SourceFile> src;
  bool live = false;
  uint32_t upstreams = 0;
  uint64_t rate = 0;  // tuples/s this task's source may emit; 0 = unthrottled
  // A stage-1 task a rescale added to a job reading files: its range is the piece that task
  // `piece_giver` cuts for it at epoch `piece_epoch` (0: none; it reads partition `task`).
  uint64_t piece_epoch = 0;
  uint32_t piece_giver = 0;
  // How many partitions the input was first cut into (the stage's tasks at submit; 0: `tasks`):
  // a task rebuilt without a record starts from partition `task` of these.
  uint32_t source_parts = 0;

  // Output: the next stage's inboxes by task index, and how to route to them.
  std::vector<std::string> downstream;
  std::optional<uint64_t> partition_column;  // nullopt: by key
  // The job's key groups (shared/stream/key_groups.h): a keyed stage's groups are split evenly
  // over its tasks, and this task routes each output to the owner of its group.
  uint32_t key_groups = kDefaultKeyGroups;

  // Rescaling (README.md "Autoscaling"). `rescalable`: the job autoscales, so its stages may
  // change size while it runs. Paths (origins) are numbered with radix `origin_radix` (the most
  // tasks a stage may have; 0: `tasks`). The group table of this task's stage is `in_owners`
  // at epoch `in_epoch` (empty: KeyGroupMap::Even(key_groups, tasks)); `in_prev_owners`, when
  // set, is the table before it, for a task started while that rescale is not settled (it gives
  // or takes groups first). `out_owners`/`out_epoch`: the next stage's table (empty: even over
  // `downstream`).
  bool rescalable = false;
  uint32_t origin_radix = 0;
  uint64_t in_epoch = 0, out_epoch = 0;
  std::vector<uint32_t> in_owners, in_prev_owners, out_owners;

  std::string dest;    // the sink's HyDFS destination file
  std::string leader;  // HOST:PORT of the leader's control port (reports go there)

  // Knobs (raind config; README.md).
  uint32_t window = 64;          // unacknowledged frames per channel
  uint32_t batch_tuples = 1024;  // tuples per operator batch (and per source read)
  uint32_t resend_ms = 1000;     // resend unacknowledged frames after this long
  uint32_t checkpoint_ms = 100;  // HyDFS checkpoint period (exactly-once)
  uint32_t sink_flush_ms = 100;  // sink: HyDFS append period
  uint32_t ack_delay_ms = 5;     // processed acks of a busy channel, coalesced over this long
  uint32_t test_duplicate_every = 0;

  bool is_sink() const { return stage == stages + 1; }
  std::string name() const;  // "job/stage.task" for logs
};

// The leader changed the group table of stage `stage` of a job (README.md "Autoscaling"): its
// tasks give or take groups, the stage before routes by it, the stage after expects
// `inboxes.size()` upstream tasks.
// Stage 1 of a job reading files grows: `giver` cuts its unread bytes and gives `taker` a piece
// read under `origin` (shared/stream/regroup.h SourcePiece).
struct PieceOrder {
  uint32_t giver = 0, taker = 0;
  uint64_t origin = 0;
  bool operator==(const PieceOrder&) const = default;
};

struct RegroupOrder {
  uint32_t stage = 0;
  uint64_t epoch = 0;
  std::vector<uint32_t> owners;      // the stage's group table at `epoch`
  std::vector<std::string> inboxes;  // the stage's tasks' inboxes, by task index
  // Stage 1 reading files: the pieces cut, and each task's share of INPUT_RATE from now on.
  std::vector<PieceOrder> pieces;
  std::optional<uint64_t> source_rate;
};

void PackTaskConfig(wire::Packer& pk, const TaskConfig& c);
std::string EncodeTaskConfig(const TaskConfig& c);
Result<TaskConfig> DecodeTaskConfig(std::string_view bytes);
// The same from a decoded map (inside a message whose decoding bounded its sizes).
Result<TaskConfig> ReadTaskConfig(const msgpack::object& o);

enum class TaskState { kStarting, kRunning, kDone, kFailed, kStopped };
const char* TaskStateName(TaskState s);

// A task whose output was blocked at least this share of the last second is backpressured: its
// report goes to the leader at once when it crosses this either way (not only once a second).
inline constexpr double kBackpressured = 0.5;

struct TaskReport {
  std::string job;
  uint32_t stage = 0, task = 0;
  uint64_t incarnation = 0;  // which run of the task
  std::string node;          // member id of the worker
  int64_t pid = 0;
  std::string op, log;
  TaskState state = TaskState::kStarting;
  std::string reason;      // why it failed
  bool permanent = false;  // it failed for a reason the same input repeats (a size limit)
  uint64_t tuples_in = 0, tuples_out = 0, duplicates = 0;
  uint64_t injected = 0;  // tuples re-sent on purpose by stream_test_duplicate_every
  uint64_t ckpt_gen = 0;  // the checkpoint file generation being written
  uint64_t resent_frames = 0;
  double rate_in = 0, rate_out = 0;  // tuples/s over the last second
  double busy = 0;                   // the share of the last second its operator was working (0..1)
  double rate_done = 0;              // tuples/s its operator answered: over `busy`, its true rate
  uint64_t source_left = 0;          // stage 1 reading files: bytes of its range not read yet
  // The group table epoch of its stage that a durable checkpoint record of it covers (its part
  // of a rescale is done; README.md "Autoscaling").
  uint64_t epoch = 0;
  // Every input it has ended (for a live stage-1 task: rainsource ended its input). Reported at
  // once when it turns true: the leader rescales no stage fed by a source that has ended.
  bool input_ended = false;
  // Backpressure: the share of the last second (a sliding window, sampled every 100 ms) its
  // output was blocked on a full window (a downstream task not keeping up), and the total time
  // blocked.
  double backpressure = 0;
  uint64_t backpressure_us = 0;
  // Checkpoint records made durable in HyDFS by this run: how many, their bytes, the last one's
  // size and time from write to durable, and those times in buckets.
  uint64_t checkpoints = 0, checkpoint_bytes = 0, checkpoint_last_bytes = 0;
  uint64_t checkpoint_last_us = 0;
  HistogramSnapshot checkpoint_seconds;
  // Sink only: output progress and source-to-sink latency (percentiles, and in buckets).
  uint64_t output_lines = 0, output_bytes = 0;
  uint64_t latency_p50_us = 0, latency_p99_us = 0, latency_samples = 0;
  HistogramSnapshot latency_seconds;
};

void PackTaskReport(wire::Packer& pk, const TaskReport& r);
Result<TaskReport> ReadTaskReport(const msgpack::object& o);

}  // namespace rs::stream
