// Task::Impl, shared by task.cc (the loop, inbox, operator), task_commit.cc (group commit,
// sends, acks, resends, checkpoints) and task_recover.cc (the source's input, recovery). Private
// to the task: README.md "Code".
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <tuple>

#include "daemon/stream/local_inbox.h"
#include "daemon/stream/operator_driver.h"
#include "daemon/stream/operator_process.h"
#include "daemon/stream/order_replay.h"
#include "daemon/stream/task.h"
#include "daemon/stream/task_checkpoint.h"
#include "daemon/stream/task_sink.h"
#include "daemon/stream/task_source.h"
#include "shared/clock.h"
#include "shared/logging.h"
#include "shared/stream/channel.h"
#include "shared/stream/checkpoint.h"
#include "shared/stream/key_groups.h"
#include "shared/stream/limits.h"
#include "shared/stream/regroup.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"
#include "shared/util/csv.h"
#include "shared/util/hash.h"
#include "shared/util/histogram.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace task_internal {

inline std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

inline uint64_t NowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

inline std::string UtcStamp() {
  auto now = std::chrono::system_clock::now();
  time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm_utc.tm_year + 1900,
                tm_utc.tm_mon + 1, tm_utc.tm_mday, tm_utc.tm_hour, tm_utc.tm_min, tm_utc.tm_sec,
                static_cast<int>(ms.count()));
  return buf;
}

constexpr size_t kMaxInFlight = 4;             // operator batches pipelined
constexpr size_t kRetainFactor = 16;           // frames kept for replay: at most this many windows
constexpr size_t kMaxFrameBytes = 256u << 10;  // an output frame is cut at this size
constexpr size_t kMaxWaitingRecords = 32;      // replay-mode records waiting for durable outputs
constexpr auto kStallTimeout = std::chrono::seconds(30);   // no ack progress: the task fails
constexpr auto kHydfsTimeout = std::chrono::seconds(120);  // one HyDFS read of an input file

// An input channel: one upstream task (Upstream in shared/stream/channel.h), whose acks go to
// `ack_to`.
struct InChannel {
  ReceiverChannel rx;
  std::string ack_to;
};

// A unit of whole input frames handed to the operator (OperatorDriver cuts it into batches),
// and the cursor of its tuples whose outputs came back.
struct OpBatch {
  std::vector<InFrame> frames;
  size_t tuples = 0;
  size_t frame = 0, tuple = 0;  // the next tuple to take outputs for
  size_t done = 0;              // tuples whose outputs came back
};

struct OutChannel {
  std::string endpoint;
  DataFrameBuilder builder;
  uint64_t emit_us = 0;    // oldest source time among the tuples in `builder`
  SenderChannel tx;        // frames sent and kept until durable, held back (README "Recovery")
  std::string rewired_to;  // set by Rewire(): resend everything above durable there
};

// The completion of an asynchronous HyDFS read, waited for by the task (WaitHydfs).
struct ReadResult {
  std::mutex mu;
  bool done = false;
  Status status;
  std::string data;
};

// A change of this task's stage's group table not finished here yet (task_regroup.cc, README.md
// "Autoscaling"): the groups it gives up (once every upstream's cut is processed, their state
// and watermarks go to a HyDFS handoff file) and those it takes (their handoffs read and put into
// the operator before any input is fed).
struct Regrouping {
  uint64_t epoch = 0;
  KeyGroupMap next;  // the table at `epoch`
  std::vector<uint32_t> giving;
  std::map<uint32_t, std::vector<uint32_t>> taking;  // giving task -> its groups we take
  std::string handoff;                               // ours, encoded (kept for a retry)
  std::shared_ptr<ReadResult> write;                 // our handoff's write in flight
  bool given = false;
  std::map<uint32_t, Handoff> loaded;  // giving task -> its handoff
  std::map<uint32_t, std::shared_ptr<ReadResult>> reads;
  bool taken = false;
  TimePoint retry_at{};
};

// A group table from a config (task_config.h): `owners`, or when empty `groups` spread evenly
// over `tasks`.
inline Result<KeyGroupMap> TableOf(const std::vector<uint32_t>& owners, uint32_t groups,
                                   uint32_t tasks) {
  if (owners.empty()) return KeyGroupMap::Even(groups, std::max<uint32_t>(tasks, 1));
  uint32_t n = *std::max_element(owners.begin(), owners.end()) + 1;
  if (owners.size() != groups) {
    return Status::InvalidArgument("a group table of " + std::to_string(owners.size()) +
                                   " groups, not " + std::to_string(groups));
  }
  return KeyGroupMap::FromOwners(owners, n);
}

inline void AppendBe32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace task_internal

using namespace task_internal;

struct Task::Impl {
  explicit Impl(Task* owner) : t(owner), cfg(owner->config_), env(owner->env_) {}

  Task* t;
  const TaskConfig& cfg;
  const TaskEnv& env;

  std::unique_ptr<zmq::socket_t> inbox;
  std::shared_ptr<LocalInbox> local_inbox;      // frames from tasks of this process (null: none)
  uint64_t local_sent = 0, local_received = 0;  // frames handed over in memory
  std::map<std::string, std::unique_ptr<zmq::socket_t>> pushes;
  std::set<std::string> client_endpoints;  // ack_to of rainsource: pushes there serve a client
  std::unique_ptr<OperatorProcess> op;
  std::unique_ptr<OperatorDriver> driver;  // feeds `op` (not for the sink)
  int log_fd = -1;

  std::map<Upstream, InChannel> in;
  Dedup dedup;  // id watermarks per (key group, upstream, origin): admitted and processed
  // Key groups (shared/stream/key_groups.h). A keyed stage (2..stages) takes only tuples of the
  // groups `in_groups` gives it; a task whose next stage is an operator routes each output to
  // the owner of its group in `out_groups`. Into stage 1 and the sink every tuple is group 0.
  bool keyed_in = false, keyed_out = false;
  KeyGroupMap in_groups, out_groups;
  // Rescaling (task_regroup.cc): the epochs of the two tables, the table before in_groups (for
  // frames routed by it), a change under way, the last epoch a durable record covers (reported),
  // the upstream tasks there are now, downstream tasks that left their stage, and per input
  // channel the highest epoch of a frame processed (its cut).
  uint64_t in_epoch = 0, out_epoch = 0;
  KeyGroupMap prev_groups;
  std::optional<Regrouping> regrouping;
  uint64_t settled_epoch = 0, ckpt_epoch = 0;
  uint32_t upstream_count = 0;
  std::vector<bool> out_retired;
  std::map<Upstream, uint64_t> cut_epoch;
  bool retired = false;  // it owns no group any more: it ends like a task whose inputs ended
  SenderChannel::Options out_options;
  std::deque<InFrame> queue;
  size_t queued_tuples = 0;
  std::deque<OpBatch> batches;
  std::vector<OutChannel> out;
  bool dirty = false;
  bool end_sent = false;
  Status failed;
  bool permanent = false;  // `failed` repeats with the same input (FailPermanent)
  TaskState state = TaskState::kStarting;

  // Source (stage 1 reading HyDFS).
  bool has_source = false, source_done = false;
  std::optional<SourcePartition> source;
  std::optional<SourceRate> source_rate;
  uint64_t source_seq = 0;
  // Stage 1 of a rescalable job reading files (task_pieces.cc; README.md "Autoscaling").
  std::optional<CheckpointRecord::Source> restored_source;  // the range the record recovered had
  std::vector<SourceText> source_files;  // the input, kept while the range waits for its piece
  struct PieceWork {
    uint64_t epoch = 0;
    bool taking = false;  // a task the rescale added: waits for the piece file of `from`
    uint32_t from = 0;
    std::string file;       // giving: our piece file, encoded
    uint64_t kept_end = 0;  // giving: our end before the cut, which records say until it is written
    uint64_t cut_at = 0;    // giving: where we had read to when we cut (we read no more)
    std::shared_ptr<ReadResult> io;  // the read or write in flight
    TimePoint retry_at{};
    TimePoint conflict_since{};  // giving: our file exists but did not read back, since
  };
  std::optional<PieceWork> piece_work;
  std::set<uint64_t> pieces_given;  // epochs whose piece file of ours a rebuilt task found

  std::unique_ptr<SinkOutput> sink;  // the sink's spool and destination (no operator)
  uint64_t latency_max_window = 0;
  Clock::duration rtt_max{0};  // the oldest frame completed since the last rate line

  // Checkpoints (README.md "Recovery"). A stateful operator whose input order a rebuilt task
  // could not reproduce holds its outputs until a durable checkpoint covers them, and its
  // records list them (`holds_outputs`). Every other task replays instead of logging
  // (`replays_outputs`): its records list no frames, and each waits in `waiting` until every
  // output it covers is durable downstream, so a replay from its positions regenerates (same
  // ids) whatever a receiver may still lack.
  bool holds_outputs = false;
  bool replays_outputs = false;
  struct WaitingRecord {
    std::string bytes;
    uint64_t epoch = 0;              // of the group table its groups are those of
    std::vector<uint64_t> released;  // per downstream: the highest seq it covers
    std::map<Upstream, uint64_t> processed, incarnation;
  };
  std::deque<WaitingRecord> waiting;
  // The operator offers state changes and the last record (its state) is durable in generation
  // `state_chain_gen`: the next record of that generation may hold only the changes since.
  bool state_chain = false;
  uint64_t state_chain_gen = 0;
  std::map<Upstream, uint64_t> ckpt_processed;  // per channel, in the checkpoint being written
  std::vector<size_t> ckpt_held;                // per downstream, held frames it covers
  // Pending frames in checkpoint records (README.md "HyDFS checkpoints"): per downstream, the
  // highest seq a durable record of generation `covered_gen` listed, and the highest the record
  // being written lists (of generation `ckpt_gen_written`).
  std::vector<uint64_t> covered_upto, ckpt_listed_upto;
  uint64_t covered_gen = 0, ckpt_gen_written = 0;
  std::optional<CheckpointFiles> ckpt;  // with exactly-once, but for the sink
  bool want_drain = false;
  TimePoint last_ckpt;
  Clock::duration ckpt_interval{std::chrono::milliseconds(100)};
  uint64_t ckpts = 0;  // records written
  // Records durable (OnCheckpointDurable): how many, their bytes, the last one's, and the time
  // each took from write to durable (metrics; TaskReport).
  uint64_t ckpts_durable = 0, ckpt_durable_bytes = 0;
  Histogram ckpt_seconds;

  // Counters.
  uint64_t tuples_in = 0, tuples_out = 0, duplicates = 0, injected = 0, resent = 0;
  uint64_t processed_in = 0;  // the tuples_in processed: what a checkpoint counts as input
  uint64_t frames_sent = 0, frames_received = 0, commits = 0, loops = 0;
  uint64_t last_in = 0, last_out = 0;
  double rate_in = 0, rate_out = 0;
  double busy = 0;       // the operator's busy share of the last second (OperatorDriver::TakeBusy)
  double rate_done = 0;  // tuples/s its operator answered in that second (TakeAnswered)
  // Backpressure: while some output channel has no room (WindowOpen false) the task is blocked.
  // The loop notes each change (NoteBlocked) and every 100 ms samples the total time blocked
  // (SampleBlocked): the share of the last second is the growth over the samples of that second.
  // A share that crosses kBackpressured is published at once.
  bool blocked = false;
  TimePoint blocked_since;
  Clock::duration blocked_total{0};
  std::deque<std::pair<TimePoint, Clock::duration>> blocked_samples;  // the last second's
  double backpressure = 0;  // the share of the last second spent blocked
  TimePoint last_report;
  std::string scratch;

  // Junk on the inbox is dropped and counted; the task log says so at most once a second.
  uint64_t malformed = 0;
  TimePoint malformed_logged;
  // Frames routed by a group table whose order had not reached us (not taken; resent).
  uint64_t early_frames = 0;

  std::vector<std::pair<uint32_t, KeptFrame>> staged;  // outputs of the commit under way

  std::map<Upstream, uint64_t> ckpt_incarnation;  // per channel, in the checkpoint being written

  // Input order (shared/stream/input_order.h, README.md "Order log"): a stateful task of the
  // last stage whose input order a rebuild could not reproduce logs that order and sends it to
  // the sink with its outputs, so its outputs go out at once instead of waiting (held) for a
  // durable checkpoint. A rebuilt one replays the logged runs first (`replay`); meanwhile it
  // takes no checkpoint.
  bool logs_order = false;
  OrderLog order_log;
  uint64_t order_durable = 0;       // runs below it are covered by a durable checkpoint
  uint64_t order_durable_sent = 0;  // the last `durable` a frame told the sink
  uint64_t ckpt_order = 0;          // order_log.next() in the checkpoint being written
  std::optional<OrderReplay> replay;

  // ---- task.cc: helpers ----
  void TaskLog(const std::string& line);
  zmq::socket_t* Push(const std::string& endpoint);
  bool Send(const std::string& endpoint, const std::string& bytes);
  void Flush(uint32_t d);
  void FailPermanent(Status s);
  void Fail(Status s);
  TaskReport MakeReport();
  void Publish();

  // ---- task.cc: inbox ----
  bool DrainInbox();
  void Received(std::string bytes, security::Role from);  // one frame from the inbox
  void Malformed(const std::string& what);
  void OnAck(const AckFrame& a);
  void OnData(TaskFrame f);

  // ---- task.cc: processing, done, the loop ----
  bool WindowOpen() const;
  void NoteBlocked();  // backpressure: the window just closed or opened again
  Clock::duration BlockedTotal(TimePoint now) const;
  void SampleBlocked(TimePoint now);  // every 100 ms: the share, published when it crosses
  bool Feed();
  bool SendBatches();
  uint64_t OriginOut(uint64_t origin, const Upstream& from) const;
  struct Routed {
    uint32_t task = 0, group = 0;  // the downstream task, and the tuple's key group there
  };
  Routed Route(std::string_view key, std::string_view value);
  void Emit(Routed to, uint64_t origin, std::string_view id, std::string_view key,
            std::string_view value, uint64_t emit_us);
  void CompleteFrames(const OpBatch& b);
  bool Collect();
  void SinkFlush(bool force);
  void ReportTick(bool force);
  bool InputsEnded() const;
  bool CheckDone();
  void Wait(int timeout_ms);
  void Run();

  // ---- task_commit.cc: commit (stage, then send and acknowledge), resends ----
  void StageFrame(uint32_t d, bool end);
  void BeginBuilders();
  void BeginBuilder(OutChannel& ch);  // a frame of our header (the epoch we route by)
  void Commit();
  void Release(uint32_t d, KeptFrame p);
  void SendAck(InChannel& ch);
  void SendDueAcks();
  void TakeRewires();
  void Resend();

  // ---- task_commit.cc: HyDFS checkpoints ----
  std::string CheckpointPrefix() const;
  void Checkpoint();
  void WriteWaiting(TimePoint now);
  void OnCheckpointDurable();

  // ---- task_order.cc: the input order's log and replay, the sink's keepers ----
  void TakeInput(InFrame fr);
  void Completed(const InFrame& fr);
  const OrderNote* NoteFor(uint32_t d, OrderNote* note);
  Status StartReplay();
  bool SinkFences(const DataHeader& h);
  void SinkKeepsOrder(const DataHeader& h);

  // ---- task_regroup.cc: rescaling (README.md "Autoscaling") ----
  void TakeRegroups();
  void ApplyRegroup(const RegroupOrder& o);
  void StartRegrouping(uint64_t epoch, KeyGroupMap next);
  const KeyGroupMap& TableAt(uint64_t epoch) const;
  uint64_t KnownEpoch() const;  // the newest group table of our stage we have heard of
  bool CutComplete(uint64_t epoch) const;
  bool RegroupHoldsInput() const;  // Feed waits: a handoff is being cut or put in
  bool RegroupStep();
  bool Give();
  bool Take();
  void RegroupSettled();

  // ---- task_recover.cc: the source's input, recovery from the last checkpoint ----
  Status LoadSource(uint64_t restored_epoch);
  Result<std::vector<std::string>> ListWhole(const std::string& prefix);
  // Stage 1 of a rescalable job reading files: its range moves when the stage grows
  // (task_pieces.cc).
  Status FindGivenPieces();
  void ApplySourceOrder(const RegroupOrder& o);
  bool PieceStep();
  bool PieceTake();
  bool PieceGive();
  int SourceWaitMs() const;
  bool ReadSource();
  Result<std::string> ReadSourceFile(const SourceFile& src);
  Result<std::string> ReadWhole(const std::string& name);
  Result<std::string> WaitHydfs(
      const std::string& name,
      const std::function<void(std::function<void(Result<std::string>)>)>& start);
  // Recovery from the last checkpoint record; `epoch`: the record's group table epoch.
  Status Recover(uint64_t* epoch);
  // After recovery: a rescale the leader has not seen settled is taken up where the record
  // left it (README.md "Autoscaling").
  void StartFromConfig(uint64_t restored_epoch);
};

}  // namespace rs::stream
