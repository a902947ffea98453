// rainsource: the live source of a job submitted with `job submit --live`. Reads stdin lines (or,
// with --msgpack, a stream of MessagePack [key, value] arrays), asks a node for the job's stage-1
// inboxes (job.source) and sends them task-data frames as the job's stage 0, task 0
// (daemon/stream/README.md "Wire" and "rainsource").
//
// Channels: one per stage-1 task, exactly like a task's outputs (the same SenderChannel,
// shared/stream/channel.h). Frames carry seq 1, 2, ... per channel; the task acknowledges
// cumulatively on our PULL (`ack_to`): `seq` once processed, `durable` once its HyDFS checkpoint
// covers it. A frame is kept until it is durable, since a rebuilt task restarts from its
// checkpoint and needs everything after it again. At most `window` frames per channel are
// unprocessed and kRetainWindows windows kept; while the next batch's channel is full, stdin is
// read only kReadAhead ahead (then back-pressure reaches the writer of the pipe). A channel that
// has not acknowledged for kResendAfter gets its unprocessed frames again (the task discards seqs
// it has already processed), or, when only `durable` is awaited, its last frame alone as a probe
// that the task answers with its current ack. Batches go strictly round robin over the channels, up
// to --batch lines, or fewer after kFlushAfter.
//
// Rebuilds: while a channel makes no progress, job.tasks is asked (every kLookupEvery) for the
// stage-1 tasks' runs and inboxes; a task with a new run or inbox was rebuilt, so the channel
// connects to the new inbox and sends every frame that is not durable (the same as a task's
// Rewire from the leader).
//
// Rescales: when the job autoscales, job.tasks is asked every kLookupEvery anyway. A stage-1 task
// a rescale added gets a channel and joins the round robin; one marked `leaving` gets no more
// batches, only our end frame, and ends once it processed everything (daemon/stream/README.md
// "Autoscaling"). At end of input, job.tasks is asked once more (and while a stage-1 task is
// still starting), so a task added meanwhile gets its end too. Each second it also reports what
// the writer offers (job.source_load, LoadMeter): the target policy's demand on stage 1.
//
// Tuples: key "stdin:LINE" (lines numbered from 1), value the line; with exactly-once, origin
// the destination task's index and id SourceId(0, LINE), so resent frames are deduplicated;
// without, origin 0 and an empty id (README "Wire").
// At end of input (or the first Ctrl-C) every channel gets an `end` frame; rainsource exits once
// everything, end frames included, is durable at the stage-1 tasks.
//
// Exit codes: 0 every line acknowledged; 1 the node refused (unknown job, not live, job failed);
// 2 usage (bad flags, undecodable --msgpack input); 3 no node answered, or for kGiveUp neither
// an acknowledgement nor a change of the stage-1 tasks' outputs (a slow operator acknowledges
// a frame only once all of it is processed, but its outputs show progress); 130 a second Ctrl-C.
//
// Single-threaded: one zmq_poll loop over stdin, the ack PULL and the timers.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ctl/client.h"
#include "ctl/output.h"
#include "ctl/source_input.h"
#include "shared/clock.h"
#include "shared/status.h"
#include "shared/stream/channel.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"

namespace rs::source {

using ctl::kExitOk;
using ctl::kExitRemoteError;
using ctl::kExitUnreachable;
using ctl::kExitUsage;

// A partial batch waits this long.
inline constexpr auto kFlushAfter = std::chrono::milliseconds(5);
// stream_resend_ms of a task.
inline constexpr auto kResendAfter = std::chrono::milliseconds(1000);
// No ack progress at all for this long: give up.
inline constexpr auto kGiveUp = std::chrono::seconds(30);
// While stalled: is the job still alive?
inline constexpr auto kAskJobEvery = std::chrono::seconds(5);
// While a channel is stalled (or the job autoscales): was a task rebuilt, added or retired?
inline constexpr auto kLookupEvery = std::chrono::seconds(1);
// One job.tasks request, at most.
inline constexpr int kLookupTimeoutMs = 2000;
// At end of input, job.tasks while a stage-1 task starts.
inline constexpr int kFinalLookups = 50;
// Frames kept until durable: at most this many windows.
inline constexpr uint64_t kRetainWindows = 16;
// A batch is cut at this size, whatever --batch says.
inline constexpr size_t kMaxFrameBytes = 4u << 20;
inline constexpr size_t kReadChunk = 1u << 16;
// Stdin bytes read ahead of what is sent (LoadMeter).
inline constexpr size_t kReadAhead = 4u << 20;
// When job.source names none.
inline constexpr uint64_t kDefaultWindow = 64;
inline constexpr int kExitInterrupted = 130;

uint64_t WallMicros();  // microseconds since the Unix epoch, for frames

struct Options {
  ctl::Context ctx;
  std::string job;
  uint64_t rate = 0;  // lines/s; 0 = the job's INPUT_RATE, else as fast as the job takes them
  bool msgpack = false;
  uint32_t batch = 1000;
};

// The channel to one stage-1 task: its socket, and the protocol's sending side
// (shared/stream/channel.h, the same as a task's output channel).
struct Channel {
  std::string endpoint;
  uint64_t run = 0;  // the task's incarnation as the leader reports it (0: not known)
  zmq::socket_t push;
  stream::SenderChannel tx;
  bool end_queued = false;
  bool leaving = false;  // a rescale takes the task out of stage 1: it gets our end, no more
};

class Source {
 public:
  explicit Source(Options o) : o_(std::move(o)), reader_(o_.msgpack), limiter_(o_.rate) {}

  int Run();

 private:
  int Fail(const std::string& message, int code) {
    std::fprintf(stderr, "rainsource: %s\n", message.c_str());
    return code;
  }
  Status Setup(int* code);
  void QueueFrame(Channel& c, std::string bytes, uint64_t seq, TimePoint now);
  void OpenBatch();
  void FlushBatch();
  void Flush(Channel& c);
  void ReceiveAcks(TimePoint now);
  // job.tasks: reconnects each channel whose task has a new run or inbox (rebuilt).
  void LookupTasks(TimePoint now);
  void ReportLoad(TimePoint now);  // job.source_load: what the writer offers, best effort
  Status Rewire(Channel& c, const std::string& endpoint, TimePoint now);
  // A new channel (a task a rescale added, or an index that left and is back) to `endpoint`.
  Status Open(Channel& c, const std::string& endpoint, uint64_t run);
  // The end frame to every channel that is due one: all at end of input, else those leaving.
  void QueueEnds(bool input_done, TimePoint now);
  size_t Outstanding() const {
    size_t n = 0;
    for (const auto& c : channels_) n += c.tx.kept().size();
    return n;
  }
  // job.status while stalled: a job that ended will never acknowledge. Returns an exit code
  // when it did.
  std::optional<int> CheckJob();

  Options o_;
  InputReader reader_;
  RateLimiter limiter_;
  LoadMeter load_{Clock::now()};
  std::vector<Channel> channels_;
  zmq::socket_t pull_;
  std::string ack_to_;
  uint64_t incarnation_ = 0;
  uint64_t window_ = kDefaultWindow;
  bool exactly_once_ = true;
  // The job autoscales: stage 1 may grow or shrink, so job.tasks is asked every kLookupEvery
  // (not only while stalled), and once more before exiting.
  bool autoscale_ = false;
  bool starting_ = false;  // the last lookup saw a stage-1 task not started yet (no inbox)
  stream::SenderChannel::Options channel_options_;

  stream::DataFrameBuilder builder_;
  stream::DataHeader header_;
  int batch_channel_ = -1;  // the channel of the open batch; -1 when none is open
  TimePoint batch_started_;
  uint64_t batch_emit_us_ = 0;
  size_t rr_ = 0;  // the next channel to try

  transport::SocketOptions push_options_;
  TimePoint next_lookup_;

  uint64_t lines_ = 0, frames_ = 0, resent_ = 0, bad_acks_ = 0, rewires_ = 0;
  uint64_t added_ = 0;  // channels opened to tasks a rescale added
  int final_lookups_ = 0;
  // The stage-1 tasks' outputs at the last lookup, and when they last changed: a slow operator
  // acknowledges a frame only once it processed all of it, but its outputs show it works.
  uint64_t stage1_out_ = 0;
  TimePoint working_{};
};

}  // namespace rs::source
