#include "daemon/stream/task.h"

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

#include "daemon/stream/dedup_log.h"
#include "daemon/stream/operator_driver.h"
#include "daemon/stream/operator_process.h"
#include "daemon/stream/task_checkpoint.h"
#include "daemon/stream/task_sink.h"
#include "daemon/stream/task_source.h"
#include "shared/clock.h"
#include "shared/logging.h"
#include "shared/stream/channel.h"
#include "shared/stream/checkpoint.h"
#include "shared/stream/limits.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"
#include "shared/util/csv.h"
#include "shared/util/hash.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

uint64_t NowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string UtcStamp() {
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

constexpr size_t kMaxInFlight = 4;       // operator batches pipelined
constexpr size_t kRetainFactor = 16;     // frames kept for replay: at most this many windows
constexpr size_t kMaxFrameBytes = 256u << 10;               // an output frame is cut at this size
constexpr auto kStallTimeout = std::chrono::seconds(30);    // no ack progress: the task fails
constexpr auto kHydfsTimeout = std::chrono::seconds(120);   // one HyDFS read of an input file

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
  uint64_t emit_us = 0;  // oldest source time among the tuples in `builder`
  SenderChannel tx;      // frames sent and kept until durable, held back (README "Recovery")
  std::string rewired_to;  // set by Rewire(): resend everything above durable there
};

// The completion of an asynchronous HyDFS read, waited for by the task (WaitHydfs).
struct ReadResult {
  std::mutex mu;
  bool done = false;
  Status status;
  std::string data;
};

void AppendBe32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

struct Task::Impl {
  Impl(Task* owner) : t(owner), cfg(owner->config_), env(owner->env_) {}

  Task* t;
  const TaskConfig& cfg;
  const TaskEnv& env;

  std::unique_ptr<zmq::socket_t> inbox;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> pushes;
  std::set<std::string> client_endpoints;  // ack_to of rainsource: pushes there serve a client
  std::unique_ptr<OperatorProcess> op;
  std::unique_ptr<OperatorDriver> driver;  // feeds `op` (not for the sink)
  std::unique_ptr<DedupLog> log;
  int log_fd = -1;

  std::map<Upstream, InChannel> in;
  Dedup dedup;  // id watermarks per (upstream, origin): admitted and processed
  std::deque<InFrame> queue;
  size_t queued_tuples = 0;
  std::deque<OpBatch> batches;
  std::vector<OutChannel> out;
  std::vector<std::pair<uint32_t, uint64_t>> acked_since_commit;  // (downstream, seq)
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

  std::unique_ptr<SinkOutput> sink;  // the sink's spool and destination (no operator)
  uint64_t latency_max_window = 0;
  Clock::duration rtt_max{0};  // the oldest frame completed since the last rate line

  // Checkpoints. A stateful operator fed by several channels sees its inputs interleaved in an
  // order a rebuilt task could not reproduce, so its outputs wait for the checkpoint that
  // covers them (`holds_outputs`).
  bool holds_outputs = false;
  std::map<Upstream, uint64_t> ckpt_processed;  // per channel, in the checkpoint being written
  std::vector<size_t> ckpt_held;               // per downstream, held frames it covers
  std::optional<CheckpointFiles> ckpt;  // with exactly-once, but for the sink
  bool want_drain = false;
  TimePoint last_ckpt;
  Clock::duration ckpt_interval{std::chrono::milliseconds(100)};
  uint64_t ckpts = 0;

  // Counters.
  uint64_t tuples_in = 0, tuples_out = 0, duplicates = 0, injected = 0, resent = 0;
  uint64_t processed_in = 0;  // the tuples_in processed: what a checkpoint counts as input
  TimePoint last_commit;
  uint64_t frames_sent = 0, frames_received = 0, commits = 0, loops = 0;
  uint64_t last_in = 0, last_out = 0;
  double rate_in = 0, rate_out = 0;
  TimePoint last_report;
  std::string scratch;

  // ---- helpers ----
  void TaskLog(const std::string& line) {
    if (log_fd < 0) return;
    std::string s = UtcStamp() + " " + line + "\n";
    ssize_t w = ::write(log_fd, s.data(), s.size());
    (void)w;
  }

  zmq::socket_t* Push(const std::string& endpoint) {
    auto it = pushes.find(endpoint);
    if (it != pushes.end()) return it->second.get();
    transport::SocketOptions o;
    o.send_hwm = 100000;
    o.max_message_bytes = 64 << 20;
    o.to_client = client_endpoints.count(endpoint) > 0;
    auto s = transport::MakeSocket(zmq::socket_type::push, o);
    if (!s.ok()) return nullptr;
    auto sock = std::make_unique<zmq::socket_t>(std::move(*s));
    if (!transport::Connect(*sock, endpoint).ok()) return nullptr;
    return pushes.emplace(endpoint, std::move(sock)).first->second.get();
  }

  // False when the frame could not be queued (no socket, or its queue is full): a data frame
  // then waits in its channel for the next Flush; a lost ack is sent again on the next repeat.
  bool Send(const std::string& endpoint, const std::string& bytes) {
    zmq::socket_t* s = Push(endpoint);
    if (!s) return false;
    zmq::message_t m(bytes.data(), bytes.size());
    return transport::TrySend(*s, &m, 1);
  }

  // Hands channel d's unsent frames to its socket.
  void Flush(uint32_t d) {
    OutChannel& o = out[d];
    if (o.tx.Unsent()) o.tx.Flush([&](const std::string& b) { return Send(o.endpoint, b); });
  }

  // A failure the same input repeats (a size limit, shared/stream/limits.h): the leader fails
  // the job at once instead of rebuilding the task.
  void FailPermanent(Status s) {
    if (failed.ok()) permanent = true;
    Fail(std::move(s));
  }

  void Fail(Status s) {
    if (!failed.ok()) return;
    failed = std::move(s);
    state = TaskState::kFailed;
    TaskLog("event=task_failed reason=\"" + failed.message() + "\"");
    Log()->warn("event=task_failed task={} reason=\"{}\"", cfg.name(), failed.message());
  }

  TaskReport MakeReport() {
    TaskReport r;
    r.job = cfg.job;
    r.stage = cfg.stage;
    r.task = cfg.task;
    r.incarnation = cfg.incarnation;
    r.ckpt_gen = ckpt ? ckpt->gen() : 1;
    r.node = env.node_id;
    r.pid = op ? op->pid() : ::getpid();
    r.op = cfg.is_sink() ? "(sink)" : (op ? op->ready().name : "");
    if (r.op.empty() && !cfg.argv.empty()) r.op = cfg.argv[0];
    r.log = t->log_path_;
    r.state = state;
    r.reason = failed.ok() ? "" : failed.message();
    r.permanent = permanent;
    r.tuples_in = tuples_in;
    r.tuples_out = tuples_out;
    r.duplicates = duplicates;
    r.injected = injected;
    r.resent_frames = resent;
    r.rate_in = rate_in;
    r.rate_out = rate_out;
    if (sink) {
      r.output_lines = sink->lines();
      r.output_bytes = sink->bytes();
      r.latency_p50_us = sink->latency().Percentile(0.5);
      r.latency_p99_us = sink->latency().Percentile(0.99);
      r.latency_samples = sink->latency().samples;
    }
    return r;
  }

  void Publish() {
    TaskReport r = MakeReport();
    {
      std::lock_guard<std::mutex> lock(t->report_mu_);
      t->report_ = r;
    }
    if (env.report) env.report(r);
  }

  // ---- source ----
  Status LoadSource() {
    std::vector<SourceText> texts;
    for (const auto& src : cfg.src) {
      auto data = ReadSourceFile(src);
      if (!data.ok()) {
        return Status(data.status().code(),
                      "reading input file " + src.name + ": " + data.status().message());
      }
      if (data->size() != src.size) {
        return Status::Corruption("input file " + src.name + " read back " +
                                  std::to_string(data->size()) + " bytes, its snapshot has " +
                                  std::to_string(src.size));
      }
      texts.push_back(SourceText{src.name, std::move(*data), src.header});
    }
    source.emplace(std::move(texts), cfg.csv_header, cfg.task, cfg.tasks);
    source_rate.emplace(cfg.rate, cfg.batch_tuples, Clock::now());
    TaskLog("event=source_partition files=" + std::to_string(source->files()) +
            " bytes=" + std::to_string(source->total_bytes()) +
            " first_line=" + std::to_string(source->line()));
    // A rebuilt task resumes after the last line its checkpoint covers.
    auto wm = dedup.processed().find(StreamKey{0, cfg.task, cfg.task});
    if (wm != dedup.processed().end()) {
      uint64_t skipped = source->ResumeAfter(wm->second);
      TaskLog("event=source_resume skipped_lines=" + std::to_string(skipped) +
              " next_line=" + std::to_string(source->line()));
    }
    return Status::Ok();
  }

  int SourceWaitMs() const {
    if (!source || source_done) return 5;
    return source_rate->WaitMs();
  }

  // Reads up to one batch of lines into the queue. True when it did.
  bool ReadSource() {
    if (!source || source_done) return false;
    if (queued_tuples >= 2 * cfg.batch_tuples || !WindowOpen()) return false;
    size_t want = source_rate->Allowed(Clock::now());
    if (want == 0) return false;
    InFrame fr;
    fr.from = {0, cfg.task};
    fr.seq = ++source_seq;
    fr.emit_us = NowUs();
    Status read = source->Read(want, &fr);
    if (!read.ok()) {
      FailPermanent(read);
      return false;
    }
    source_rate->Spend(fr.tuples.size());
    tuples_in += fr.tuples.size();
    queued_tuples += fr.tuples.size();
    if (fr.end) source_done = true;
    queue.push_back(std::move(fr));
    return true;
  }

  // ---- inbox ----
  bool DrainInbox() {
    bool any = false;
    std::vector<zmq::message_t> parts;
    security::Role from = security::Role::kNone;
    for (int n = 0; n < 256 && transport::TryRecv(*inbox, &parts, &from); ++n) {
      any = true;
      if (from < security::Role::kAdmin) {  // a read-only client may not feed a job
        Malformed("a frame from a key without the admin role");
        continue;
      }
      if (parts.size() != 1) {
        Malformed("a multipart message");
        continue;
      }
      auto f = ParseTaskFrame(parts[0].to_string());
      if (!f.ok()) {
        Malformed(f.status().message());
        continue;
      }
      if (f->type == static_cast<uint16_t>(wire::MsgType::kTaskAck)) {
        OnAck(f->ack);
      } else {
        if (from != security::Role::kMember) {  // rainsource: acks go back to a client
          if (client_endpoints.size() >= 1024) client_endpoints.clear();  // forgotten: afresh
          client_endpoints.insert(f->data.ack_to);
        }
        OnData(std::move(*f));
      }
    }
    return any;
  }

  // Junk on the inbox is dropped and counted; the task log says so at most once a second.
  uint64_t malformed = 0;
  TimePoint malformed_logged;
  void Malformed(const std::string& what) {
    ++malformed;
    if (Clock::now() - malformed_logged < std::chrono::seconds(1)) return;
    malformed_logged = Clock::now();
    TaskLog("event=bad_frame count=" + std::to_string(malformed) + " last=\"" + what + "\"");
  }

  void OnAck(const AckFrame& a) {
    if (a.job != cfg.job || a.incarnation != cfg.incarnation || a.stage != cfg.stage + 1 ||
        a.task >= out.size()) {
      return;
    }
    OutChannel& o = out[a.task];
    uint64_t acked = o.tx.acked();
    if (o.tx.OnAck(a.seq, a.durable, Clock::now()) == SenderChannel::AckResult::kBogus) {
      Malformed("an ack of frame " + std::to_string(a.seq) + " from " +
                std::to_string(a.stage) + "." + std::to_string(a.task) + ", never sent");
      return;
    }
    if (cfg.exactly_once && o.tx.acked() > acked) {
      acked_since_commit.emplace_back(a.task, o.tx.acked());
    }
  }

  void OnData(TaskFrame f) {
    const DataHeader& h = f.data;
    uint32_t expect_stage = cfg.stage - 1;
    uint32_t senders = cfg.stage == 1 ? 1 : cfg.upstreams;
    if (h.job != cfg.job || h.from_stage != expect_stage || h.from_task >= senders ||
        (cfg.stage == 1 && !cfg.live) || h.incarnation == 0) {
      Malformed("a frame from " + std::to_string(h.from_stage) + "." + std::to_string(h.from_task) +
                " of job '" + h.job + "', not an upstream task");
      return;
    }
    Upstream key{h.from_stage, h.from_task};
    InChannel& ch = in[key];
    switch (ch.rx.Take(h.incarnation, h.seq, cfg.exactly_once)) {
      case ReceiverChannel::Offer::kNext:
        break;
      case ReceiverChannel::Offer::kRepeat:
        // Already taken: a resend (or a probe). Its tuples are duplicates; acknowledge again.
        ch.ack_to = h.ack_to;
        duplicates += f.tuples.size();
        if (ch.rx.ReAckOnRepeat()) SendAck(ch);
        return;
      case ReceiverChannel::Offer::kGap:  // a frame was dropped: wait for the resend
      case ReceiverChannel::Offer::kOldRun:
        return;
    }
    ch.ack_to = h.ack_to;
    ++frames_received;
    InFrame fr;
    fr.from = key;
    fr.incarnation = h.incarnation;
    fr.seq = h.seq;
    fr.end = h.end;
    fr.emit_us = h.emit_us;
    fr.hold = f.bytes;
    fr.tuples = std::move(f.tuples);
    if (cfg.exactly_once) duplicates += dedup.Admit(key, &fr.tuples);
    tuples_in += fr.tuples.size();
    queued_tuples += fr.tuples.size();
    queue.push_back(std::move(fr));
  }

  // ---- processing ----
  bool WindowOpen() const {
    for (const auto& o : out) {
      // In flight at the receiver, and everything kept for a replay, are both bounded.
      if (!o.tx.HasRoom()) return false;
    }
    return true;
  }

  bool Feed() {
    // The rest of the units already taken goes on whatever else waits (a drain for a
    // snapshot needs them answered).
    bool sent = !cfg.is_sink() && SendBatches();
    if (queue.empty() || want_drain) return sent;
    if (cfg.is_sink()) {
      // The sink has no operator: take every queued frame now.
      OpBatch b;
      while (!queue.empty()) {
        queued_tuples -= queue.front().tuples.size();
        b.frames.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      batches.push_back(std::move(b));
      return true;
    }
    // One unit being sent at a time; a few answered while it is (the driver pipelines the
    // batches across units).
    if (driver->sending() || driver->units() >= kMaxInFlight || !WindowOpen()) return sent;
    OpBatch b;
    while (!queue.empty() &&
           (b.tuples == 0 || b.tuples + queue.front().tuples.size() <= cfg.batch_tuples)) {
      b.tuples += queue.front().tuples.size();
      queued_tuples -= queue.front().tuples.size();
      b.frames.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    std::vector<TupleView> views;
    views.reserve(b.tuples);
    for (const auto& fr : b.frames) {
      for (const auto& r : fr.tuples) views.emplace_back(r.key, r.value);
    }
    driver->Add(std::move(views));
    batches.push_back(std::move(b));
    SendBatches();
    return true;
  }

  // Hands the operator the next batches of the queued units (OperatorDriver sizes them).
  bool SendBatches() {
    auto sent = driver->Send();
    if (!sent.ok()) {
      Fail(sent.status());
      return false;
    }
    return *sent;
  }

  // A tuple's origin names the path it took before the task that sends it, so that ids of one
  // (channel, origin) stream strictly increase: the stage-1 task index (its source partition),
  // then, from stage 3 on, each stage appends the task it came through (mixed radix, base
  // tasks; the leader refuses jobs whose paths do not fit in 64 bits).
  uint64_t OriginOut(uint64_t origin, const Upstream& from) const {
    if (!cfg.exactly_once || cfg.stage < 3) return origin;
    return origin * cfg.tasks + from.second;
  }

  uint32_t Route(std::string_view key, std::string_view value) {
    if (out.size() <= 1) return 0;
    uint64_t h =
        cfg.partition_column
            ? StableHash64(CsvField(value, static_cast<size_t>(*cfg.partition_column), &scratch))
            : StableHash64(key);
    return static_cast<uint32_t>(h % out.size());
  }

  void Emit(uint32_t d, uint64_t origin, std::string_view id, std::string_view key,
            std::string_view value, uint64_t emit_us) {
    OutChannel& o = out[d];
    if (o.builder.tuples() == 0) {
      o.emit_us = emit_us;
    } else {
      o.emit_us = std::min(o.emit_us, emit_us);
    }
    o.builder.Add(origin, id, key, value);
    ++tuples_out;
    if (o.builder.bytes() >= kMaxFrameBytes) StageFrame(d, false);
  }

  void CompleteFrames(const OpBatch& b) {
    uint64_t now_us = NowUs();
    for (const auto& fr : b.frames) {
      processed_in += fr.tuples.size();
      if (!fr.tuples.empty() && fr.emit_us > 0 && now_us > fr.emit_us) {
        latency_max_window = std::max(latency_max_window, now_us - fr.emit_us);
      }
      if (cfg.exactly_once) dedup.Processed(fr.from, fr.tuples);
      in[fr.from].rx.Processed(fr.incarnation, fr.seq, fr.end);
    }
    dirty = true;
  }

  bool Collect() {
    if (cfg.is_sink()) {
      bool any = false;
      while (!batches.empty() && failed.ok()) {
        tuples_out += sink->Consume(batches.front().frames, NowUs());
        CompleteFrames(batches.front());
        batches.pop_front();
        any = true;
      }
      return any;
    }
    // The outputs of each answered operator batch, in order: the batch's tuples are the next
    // ones of the front unit (batches.front()), walked with its cursor.
    std::string id;
    auto on_batch = [&](size_t first, ResultViews& outputs) {
      if (!failed.ok()) return;
      OpBatch& b = batches.front();
      (void)first;  // == b.done: batches of a unit come back in order
      for (size_t i = 0; i + 1 < outputs.offsets.size(); ++i) {
        while (b.tuple >= b.frames[b.frame].tuples.size()) {
          ++b.frame;
          b.tuple = 0;
        }
        const InFrame& fr = b.frames[b.frame];
        const TupleRef& r = fr.tuples[b.tuple++];
        uint32_t lo = outputs.offsets[i], hi = outputs.offsets[i + 1];
        for (uint32_t k = lo; k < hi; ++k) {
          const auto& [key, value] = outputs.tuples[k];
          if (key.size() + value.size() > kMaxTupleBytes) {
            FailPermanent(Status::InvalidArgument(
                "the operator emitted a tuple of " + std::to_string(key.size() + value.size()) +
                " bytes (for input " + std::string(r.key) + "), over the " +
                std::to_string(kMaxTupleBytes >> 20) +
                " MiB limit of a tuple (PROTOCOL.md Limits)"));
            return;
          }
          if (cfg.exactly_once) {
            id.assign(r.id.data(), r.id.size());
            AppendBe32(&id, k - lo);
          }
          Emit(Route(key, value), OriginOut(r.origin, fr.from), id, key, value, fr.emit_us);
        }
      }
      b.done += outputs.offsets.size() - 1;
    };
    auto on_unit = [&] {
      CompleteFrames(batches.front());
      batches.pop_front();
    };
    auto took = driver->Collect(on_batch, on_unit);
    if (!took.ok()) {
      if (op->over_limit()) {
        FailPermanent(took.status());
      } else {
        Fail(took.status());
      }
      return false;
    }
    rtt_max = std::max(rtt_max, driver->TakeSlowest());
    return *took;
  }

  // ---- commit: log, then send and acknowledge ----
  std::vector<std::pair<uint32_t, KeptFrame>> staged;

  void StageFrame(uint32_t d, bool end) {
    OutChannel& o = out[d];
    size_t n = o.builder.tuples();
    uint64_t emit = o.emit_us;
    uint64_t seq = o.tx.TakeSeq();
    std::string bytes = o.builder.Finish(seq, emit, end);
    ++frames_sent;
    bool duplicate = cfg.test_duplicate_every > 0 && n > 0 &&
                     frames_sent % cfg.test_duplicate_every == 0 && !end;
    if (duplicate) {
      // Test knob: the same tuples (same ids) once more, as a new frame.
      auto parsed = ParseTaskFrame(bytes);
      if (parsed.ok()) {
        DataFrameBuilder again;
        again.Begin(parsed->data);
        for (const auto& r : parsed->tuples) again.Add(r.origin, r.id, r.key, r.value);
        uint64_t seq2 = o.tx.TakeSeq();
        staged.emplace_back(d, KeptFrame{seq, std::move(bytes)});
        staged.emplace_back(d, KeptFrame{seq2, again.Finish(seq2, emit, false)});
        injected += n;
        return;
      }
    }
    staged.emplace_back(d, KeptFrame{seq, std::move(bytes)});
  }

  void BeginBuilders() {
    for (size_t d = 0; d < out.size(); ++d) {
      DataHeader h;
      h.job = cfg.job;
      h.from_stage = cfg.stage;
      h.from_task = cfg.task;
      h.incarnation = cfg.incarnation;
      h.ack_to = t->endpoint_;
      out[d].builder.Begin(h);
    }
  }

  // The "wm" and "in" entries of a log or checkpoint record: the watermarks processed
  // ([stage, task, origin, id]) and the input channels ([stage, task, sender run, processed
  // seq, ended]), the same in both so recovery reads either.
  void PackPositions(wire::Packer& pk) const {
    pk.pack("wm");
    pk.pack_array(static_cast<uint32_t>(dedup.processed().size()));
    for (const auto& [k, id] : dedup.processed()) {
      pk.pack_array(4);
      pk.pack_uint32(std::get<0>(k));
      pk.pack_uint32(std::get<1>(k));
      pk.pack_uint64(std::get<2>(k));
      pk.pack_bin(static_cast<uint32_t>(id.size()));
      pk.pack_bin_body(id.data(), static_cast<uint32_t>(id.size()));
    }
    pk.pack("in");
    pk.pack_array(static_cast<uint32_t>(in.size()));
    for (const auto& [k, ch] : in) {
      pk.pack_array(5);
      pk.pack_uint32(k.first);
      pk.pack_uint32(k.second);
      pk.pack_uint64(ch.rx.run());
      pk.pack_uint64(ch.rx.processed());
      pk.pack(ch.rx.ended());
    }
  }

  std::string LogRecord() {
    msgpack::sbuffer buf;
    wire::Packer pk(buf);
    pk.pack_map(4);
    PackPositions(pk);
    pk.pack("out");
    pk.pack_array(static_cast<uint32_t>(staged.size()));
    for (const auto& [d, p] : staged) {
      pk.pack_array(3);
      pk.pack_uint32(d);
      pk.pack_uint64(p.seq);
      pk.pack_bin(static_cast<uint32_t>(p.bytes.size()));
      pk.pack_bin_body(p.bytes.data(), static_cast<uint32_t>(p.bytes.size()));
    }
    pk.pack("acked");
    pk.pack_array(static_cast<uint32_t>(acked_since_commit.size()));
    for (const auto& [d, seq] : acked_since_commit) {
      pk.pack_array(2);
      pk.pack_uint32(d);
      pk.pack_uint64(seq);
    }
    return std::string(buf.data(), buf.size());
  }

  void Commit() {
    if (!dirty && staged.empty() && acked_since_commit.empty()) return;
    // Acks alone change nothing a rebuilt task would need urgently: log them with the next
    // commit, or within 10 ms.
    if (!dirty && staged.empty() && Clock::now() - last_commit < std::chrono::milliseconds(10)) {
      return;
    }
    last_commit = Clock::now();
    for (uint32_t d = 0; d < out.size(); ++d) {
      if (out[d].builder.tuples() > 0) StageFrame(d, false);
    }
    if (sink) {
      // The spool write belongs to the commit: output is visible only once it is logged.
      Status w = sink->WriteSpool();
      if (!w.ok()) {
        Fail(w);
        return;
      }
    }
    ++commits;
    if (cfg.exactly_once && log) {
      auto idx = log->Append(LogRecord());
      if (!idx.ok()) {
        Fail(Status::IOError("dedup log: " + idx.status().message()));
        return;
      }
      MaybeTrim();
    }
    if (sink) t->spool_committed_.fetch_add(sink->Committed());
    acked_since_commit.clear();
    for (auto& [d, p] : staged) {
      if (holds_outputs) {
        out[d].tx.Hold(std::move(p));
      } else {
        Release(d, std::move(p));
      }
    }
    staged.clear();
    for (auto& [key, ch] : in) {
      if (ch.rx.AckDue()) SendAck(ch);
    }
    dirty = false;
  }

  void Release(uint32_t d, KeptFrame p) {
    out[d].tx.Release(std::move(p), Clock::now());
    Flush(d);
  }

  // Acknowledges what is processed, and what the last durable checkpoint covers. Without
  // exactly-once (and at the sink, which is never rebuilt) processed is durable.
  void SendAck(InChannel& ch) {
    if (ch.ack_to.empty()) return;
    auto ack = ch.rx.TakeAck(!cfg.exactly_once || cfg.is_sink());
    Send(ch.ack_to, EncodeAck(AckFrame{cfg.job, cfg.stage, cfg.task, ack.run, ack.seq, ack.durable}));
  }

  // Keeps the log short: every record holds the full watermarks, so records before the oldest
  // one that still holds an unacknowledged frame carry nothing needed.
  uint64_t trim_counter = 0;
  void MaybeTrim() {
    if (++trim_counter % 1024 != 0) return;
    // Conservative: keep the last 1024 records when anything is unacknowledged.
    bool pending = false;
    for (const auto& o : out) pending |= !o.tx.kept().empty();
    uint64_t keep_from = log->next_index() - (pending ? 1024 : 1);
    Status s = log->TrimBefore(keep_from);
    if (!s.ok()) TaskLog("event=log_trim_failed error=\"" + s.message() + "\"");
  }

  void TakeRewires() {
    std::lock_guard<std::mutex> lock(t->rewire_mu_);
    for (auto& [d, endpoint] : t->rewires_) {
      if (d < out.size()) out[d].rewired_to = std::move(endpoint);
    }
    t->rewires_.clear();
  }

  void Resend() {
    TakeRewires();
    TimePoint now = Clock::now();
    for (uint32_t d = 0; d < out.size(); ++d) {
      OutChannel& o = out[d];
      auto send = [&](const std::string& b) { return Send(o.endpoint, b); };
      if (!o.rewired_to.empty()) {
        // The receiver was rebuilt elsewhere: it restored its checkpoint and expects every
        // frame above what that checkpoint covers (our `durable`) again.
        o.endpoint = std::move(o.rewired_to);
        o.rewired_to.clear();
        o.tx.Rewire(now);
        size_t n = o.tx.Flush(send);
        resent += n;
        TaskLog("event=rewired to=" + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
                " endpoint=" + o.endpoint + " resent=" + std::to_string(n));
        continue;
      }
      Flush(d);  // what a full socket queue refused earlier
      if (o.tx.Stalled(now, kStallTimeout)) {
        Fail(Status::Unavailable("task " + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
                                 " (" + o.endpoint + ") acknowledged nothing for " +
                                 std::to_string(ToMillis(kStallTimeout) / 1000) + " s"));
        return;
      }
      size_t n = o.tx.Resend(now, send);
      if (n == 0) continue;
      resent += n;
      TaskLog("event=resend to=" + std::to_string(cfg.stage + 1) + "." + std::to_string(d) +
              " frames=" + std::to_string(n) + " after_seq=" + std::to_string(o.tx.acked()));
    }
  }

  // ---- HyDFS: checkpoints and the sink's appends ----
  std::string CheckpointPrefix() const {
    return CheckpointFilePrefix(cfg.job, cfg.stage, cfg.task);
  }

  void Checkpoint() {
    if (!ckpt) return;  // without exactly-once, and at the sink (it lives on the leader)
    TimePoint now = Clock::now();
    switch (ckpt->Check(now)) {
      case CheckpointFiles::Poll::kBusy:
        return;
      case CheckpointFiles::Poll::kDurable:
        OnCheckpointDurable();
        break;
      case CheckpointFiles::Poll::kStalled:
        // A HyDFS write can hang on a replica that just failed; a stateful task holds its
        // outputs (and its inputs' durable acks) until a checkpoint lands, so it must not wait
        // for that write: the new generation is written now.
        last_ckpt = now - ckpt_interval;
        break;
      case CheckpointFiles::Poll::kIdle:
        break;
    }
    if (now - last_ckpt < ckpt_interval) return;
    std::string state;
    if (op && op->ready().stateful) {
      if (!batches.empty()) {
        want_drain = true;  // the state must match the watermarks: snapshot between batches
        return;
      }
      want_drain = false;
      TimePoint t0 = Clock::now();
      auto st = op->Snapshot();
      if (!st.ok()) {
        Fail(st.status());
        return;
      }
      if (st->size() > kMaxStateBytes) {
        FailPermanent(Status::InvalidArgument(
            "the operator's state is " + std::to_string(st->size()) + " bytes, over the " +
            std::to_string(kMaxStateBytes >> 20) + " MiB limit of a state (PROTOCOL.md Limits)"));
        return;
      }
      state = std::move(*st);
      // A large state is snapshotted less often, so that snapshots (and their HyDFS writes)
      // take at most about a tenth of the task's time; a small one every checkpoint_ms.
      ckpt_interval = std::max<Clock::duration>(std::chrono::milliseconds(cfg.checkpoint_ms),
                                                (Clock::now() - t0) * 10);
    }
    CheckpointRecord r;
    r.time_ms = WallMillis();
    r.log_index = log ? log->next_index() - 1 : 0;
    r.wm.reserve(dedup.processed().size());
    for (const auto& [k, id] : dedup.processed()) {
      r.wm.push_back({std::get<0>(k), std::get<1>(k), std::get<2>(k), id});
    }
    ckpt_processed.clear();
    for (const auto& [k, ch] : in) {
      r.in.push_back({k.first, k.second, ch.rx.run(), ch.rx.processed(), ch.rx.ended()});
      ckpt_processed[k] = ch.rx.processed();
      ckpt_incarnation[k] = ch.rx.run();
    }
    // Every output frame a rebuilt task must still deliver: sent and not covered by the
    // receiver's checkpoint, and held back.
    ckpt_held.assign(out.size(), 0);
    for (uint32_t d = 0; d < out.size(); ++d) {
      for (const auto* list : {&out[d].tx.kept(), &out[d].tx.held()}) {
        for (const auto& p : *list) r.pending.push_back({d, p.seq, p.bytes});
      }
      ckpt_held[d] = out[d].tx.held().size();
    }
    if (!state.empty()) r.state = state;
    r.spool_bytes = t->spool_committed_.load();
    r.tuples_in = processed_in;
    r.tuples_out = tuples_out;
    r.duplicates = duplicates;
    std::string rec;
    AppendCheckpointRecord(r, &rec);
    ++ckpts;
    ckpt->Write(std::move(rec), now);
    last_ckpt = now;
  }

  // The checkpoint just written is durable: upstream tasks may forget what it covers, and the
  // outputs it holds may go out.
  std::map<Upstream, uint64_t> ckpt_incarnation;
  void OnCheckpointDurable() {
    for (const auto& [k, processed] : ckpt_processed) {
      auto it = in.find(k);
      if (it != in.end() && it->second.rx.Durable(ckpt_incarnation[k], processed)) {
        SendAck(it->second);
      }
    }
    for (uint32_t d = 0; d < out.size() && d < ckpt_held.size(); ++d) {
      out[d].tx.ReleaseHeld(ckpt_held[d], Clock::now());
      Flush(d);
    }
    ckpt_held.clear();
  }

  // Blocking read of an input file as of its snapshot.
  Result<std::string> ReadSourceFile(const SourceFile& src) {
    if (!env.hydfs_get_source) return Status::FailedPrecondition("no HyDFS source reader");
    return WaitHydfs(src.name, [&](std::function<void(Result<std::string>)> cb) {
      env.hydfs_get_source(src, std::move(cb));
    });
  }

  // ---- recovery from the last checkpoint in HyDFS ----
  // Blocking HyDFS read for recovery; NotFound passes through.
  Result<std::string> ReadWhole(const std::string& name) {
    return WaitHydfs(name, [&](std::function<void(Result<std::string>)> cb) {
      env.hydfs_get(name, std::move(cb));
    });
  }

  // Starts a HyDFS read with `start` and waits for it (kHydfsTimeout, or the task's stop).
  Result<std::string> WaitHydfs(
      const std::string& name,
      const std::function<void(std::function<void(Result<std::string>)>)>& start) {
    auto res = std::make_shared<ReadResult>();
    start([res](Result<std::string> r) {
      std::lock_guard<std::mutex> lock(res->mu);
      res->done = true;
      res->status = r.status();
      if (r.ok()) res->data = std::move(*r);
    });
    TimePoint deadline = Clock::now() + kHydfsTimeout;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(res->mu);
        if (res->done) break;
      }
      if (t->stop_.load()) return Status::Unavailable("stopped");
      if (Clock::now() > deadline) return Status::Timeout("reading " + name);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::lock_guard<std::mutex> lock(res->mu);
    if (!res->status.ok()) return res->status;
    return std::move(res->data);
  }

  Status Recover() {
    // The newest generation of the checkpoint file: the failed run's last reported one (or the
    // one after it, should it have rolled over since), else a listing.
    std::optional<std::string> found;
    uint64_t gen = 1;
    for (uint64_t g : {cfg.ckpt_gen_hint + 1, cfg.ckpt_gen_hint}) {
      if (g == 0 || cfg.ckpt_gen_hint == 0) break;
      auto data = ReadWhole(ckpt->name(g));
      if (data.ok()) {
        gen = g;
        found = std::move(*data);
        break;
      }
      if (data.status().code() != StatusCode::kNotFound) return data.status();
    }
    if (!found && env.hydfs_list) {
      auto names = std::make_shared<
          std::pair<std::mutex, std::optional<Result<std::vector<std::string>>>>>();
      env.hydfs_list(CheckpointPrefix(), [names](Result<std::vector<std::string>> r) {
        std::lock_guard<std::mutex> lock(names->first);
        names->second = std::move(r);
      });
      TimePoint deadline = Clock::now() + kHydfsTimeout;
      while (true) {
        {
          std::lock_guard<std::mutex> lock(names->first);
          if (names->second) break;
        }
        if (t->stop_.load()) return Status::Unavailable("stopped");
        if (Clock::now() > deadline) return Status::Timeout("listing " + CheckpointPrefix());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::lock_guard<std::mutex> lock(names->first);
      if (!names->second->ok()) return names->second->status();
      uint64_t newest = 0;
      for (const auto& n : **names->second) {
        uint64_t g = 0;
        std::string tail = n.substr(CheckpointPrefix().size());
        auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), g);
        if (ec == std::errc() && p == tail.data() + tail.size()) newest = std::max(newest, g);
      }
      if (newest == 0) {
        TaskLog("event=task_recovered checkpoint=none (starting over; upstream replays all)");
        return Status::Ok();
      }
      gen = newest;
    }
    if (!found) {
      auto data = ReadWhole(ckpt->name(gen));
      if (data.status().code() == StatusCode::kNotFound) {
        TaskLog("event=task_recovered checkpoint=none (starting over; upstream replays all)");
        return Status::Ok();
      }
      if (!data.ok()) return data.status();
      found = std::move(*data);
    }
    ckpt->Resume(gen, found->size());
    // The last complete record wins (a torn tail is ignored).
    CheckpointRecords file = SplitCheckpointFile(*found);
    size_t records = file.records.size();
    if (records == 0) {
      TaskLog("event=task_recovered checkpoint=empty (starting over)");
      return Status::Ok();
    }
    auto rec = DecodeCheckpointRecord(file.records.back());
    if (!rec.ok()) return rec.status();
    for (const auto& w : rec->wm) {
      dedup.Restore(StreamKey{w.stage, w.task, w.origin}, w.id);
    }
    for (const auto& c : rec->in) {
      in[Upstream{c.stage, c.task}].rx.Restore(c.incarnation, c.processed, c.ended);
    }
    size_t replayed = 0;
    // Our outputs the receivers may lack, renumbered for this run (the receivers dedup by id).
    for (const auto& p : rec->pending) {
      if (p.to >= out.size()) continue;
      auto f = ParseTaskFrame(std::string(p.bytes));
      if (!f.ok()) return Status::Corruption("a frame in the checkpoint: " + f.status().message());
      OutChannel& o = out[p.to];
      DataFrameBuilder again;
      DataHeader h = f->data;
      h.incarnation = cfg.incarnation;
      h.ack_to = t->endpoint_;
      again.Begin(h);
      for (const auto& r : f->tuples) again.Add(r.origin, r.id, r.key, r.value);
      uint64_t seq = o.tx.TakeSeq();
      staged.emplace_back(p.to, KeptFrame{seq, again.Finish(seq, h.emit_us, h.end)});
      ++replayed;
    }
    for (auto& [d, p] : staged) Release(d, std::move(p));
    staged.clear();
    auto src = in.find(Upstream{0, cfg.task});
    if (src != in.end()) source_seq = src->second.rx.processed();
    // Counting goes on from the checkpoint: what it covers is not processed again.
    tuples_in = processed_in = last_in = rec->tuples_in;
    tuples_out = last_out = rec->tuples_out;
    duplicates = rec->duplicates;
    std::string state(rec->state.value_or(std::string_view()));
    if (!state.empty() && op && op->ready().stateful) {
      Status s = op->Restore(state);
      if (!s.ok()) return s;
    }
    TaskLog("event=task_recovered records=" + std::to_string(records) + " watermarks=" +
            std::to_string(dedup.processed().size()) + " channels=" + std::to_string(in.size()) +
            " replayed_frames=" + std::to_string(replayed) +
            " state_bytes=" + std::to_string(state.size()));
    Log()->info("event=task_recovered task={} records={} replayed_frames={} state_bytes={}",
                cfg.name(), records, replayed, state.size());
    return Status::Ok();
  }

  void SinkFlush(bool force) {
    if (!sink) return;
    Status s = sink->Flush(force, Clock::now());
    if (!s.ok()) Fail(s);
  }

  void ReportTick(bool force) {
    TimePoint now = Clock::now();
    auto dt = now - last_report;
    if (!force && dt < std::chrono::seconds(1)) return;
    double secs = std::max(1e-3, std::chrono::duration<double>(dt).count());
    rate_in = static_cast<double>(tuples_in - last_in) / secs;
    rate_out = static_cast<double>(tuples_out - last_out) / secs;
    last_in = tuples_in;
    last_out = tuples_out;
    last_report = now;
    char line[256];
    std::snprintf(line, sizeof(line),
                  "event=task_rate in=%.0f/s out=%.0f/s tuples_in=%llu tuples_out=%llu "
                  "duplicates=%llu",
                  rate_in, rate_out, static_cast<unsigned long long>(tuples_in),
                  static_cast<unsigned long long>(tuples_out),
                  static_cast<unsigned long long>(duplicates));
    // The oldest source time among the frames completed this second: where latency builds up.
    std::string text = std::string(line) + " age_max_us=" + std::to_string(latency_max_window) +
                       " rtt_max_us=" + std::to_string(rtt_max.count() / 1000);
    rtt_max = Clock::duration(0);
    latency_max_window = 0;
    TaskLog(text);
    Publish();
  }

  bool InputsEnded() const {
    if (has_source) {
      auto it = in.find(Upstream{0, cfg.task});
      return source_done && it != in.end() && it->second.rx.ended();
    }
    uint32_t ended = 0;
    for (const auto& [k, ch] : in) ended += ch.rx.ended() ? 1 : 0;
    return ended >= cfg.upstreams;
  }

  // True when the task has finished its work (done) or must stop.
  bool CheckDone() {
    if (!InputsEnded() || !queue.empty() || !batches.empty() || dirty) return false;
    if (!end_sent) {
      for (uint32_t d = 0; d < out.size(); ++d) StageFrame(d, true);
      end_sent = true;
      dirty = true;
      Commit();
      return false;
    }
    // Every output must be durable downstream (a rebuilt receiver would ask for it again).
    for (const auto& o : out) {
      if (!o.tx.Drained()) return false;
    }
    if (cfg.is_sink()) {
      SinkFlush(true);
      if (!sink->Flushed()) return false;
    }
    if (op) {
      Status s = op->Finish();
      if (!s.ok()) {
        Fail(s);
        return true;
      }
    }
    // Done: nothing of ours will ever be replayed, so the senders may forget everything.
    for (auto& [k, ch] : in) {
      ch.rx.Finish();
      SendAck(ch);
    }
    state = TaskState::kDone;
    return true;
  }

  void Wait(int timeout_ms) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({static_cast<void*>(*inbox), 0, ZMQ_POLLIN, 0});
    if (op) {
      if (op->in_flight() > 0) items.push_back({nullptr, op->stdout_fd(), ZMQ_POLLIN, 0});
      items.push_back({nullptr, op->stderr_fd(), ZMQ_POLLIN, 0});
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t&) {
    }
  }

  void Run() {
    Log()->info("event=task_start task={} node={} op=\"{}\" pid={} log={}", cfg.name(), env.node_id,
                cfg.argv.empty() ? "(sink)" : cfg.argv[0], op ? op->pid() : 0, t->log_path_);
    TaskLog("event=task_start task=" + cfg.name() +
            " exactly_once=" + (cfg.exactly_once ? "true" : "false"));
    last_report = last_ckpt = Clock::now();
    ckpt_interval = std::chrono::milliseconds(cfg.checkpoint_ms);
    holds_outputs = cfg.exactly_once && op && op->ready().stateful && cfg.upstreams > 1;
    if (cfg.exactly_once && !cfg.is_sink()) {
      CheckpointFiles::Io io;
      io.create = env.hydfs_create;
      io.append = env.hydfs_append;
      if (env.hydfs_remove) {
        io.remove = [this](const std::string& name) { env.hydfs_remove(name, [](Status) {}); };
      }
      io.log = [this](const std::string& line) { TaskLog(line); };
      ckpt.emplace(CheckpointPrefix(), std::move(io));
    }
    BeginBuilders();
    if (cfg.recover && cfg.exactly_once) {
      Status s = Recover();
      if (!s.ok() && !t->stop_.load()) Fail(Status(s.code(), "recovering: " + s.message()));
    }
    if (has_source && failed.ok()) {
      Status s = LoadSource();
      if (!s.ok()) {
        if (!t->stop_.load()) Fail(s);
      }
    }
    if (failed.ok()) state = TaskState::kRunning;
    Publish();
    while (failed.ok() && !t->stop_.load()) {
      ++loops;
      bool busy = DrainInbox();
      busy |= ReadSource();
      busy |= Feed();
      busy |= Collect();
      if (!failed.ok()) break;
      Commit();
      if (!failed.ok()) break;
      Resend();
      Checkpoint();
      SinkFlush(false);
      if (!failed.ok()) break;
      ReportTick(false);
      if (CheckDone()) break;
      if (!busy) {
        bool can_read =
            has_source && !source_done && WindowOpen() && queued_tuples < 2 * cfg.batch_tuples;
        int wait = batches.empty() ? 5 : 1;
        if (can_read) wait = std::min(wait, SourceWaitMs());
        Wait(wait);
      }
    }
    if (t->stop_.load() && failed.ok() && state != TaskState::kDone) state = TaskState::kStopped;
    if (state == TaskState::kDone) {
      TaskLog("event=task_done tuples_in=" + std::to_string(tuples_in) + " tuples_out=" +
              std::to_string(tuples_out) + " duplicates=" + std::to_string(duplicates) +
              " frames_in=" + std::to_string(frames_received) +
              " frames_out=" + std::to_string(frames_sent) +
              " operator_batches=" + std::to_string(driver ? driver->batches_sent() : 0) +
              " commits=" + std::to_string(commits) + " loops=" + std::to_string(loops) +
              " checkpoints=" + std::to_string(ckpts) +
              " checkpoint_bytes=" + std::to_string(ckpt ? ckpt->bytes_written() : 0));
      Log()->info("event=task_done task={} tuples_in={} tuples_out={} duplicates={}", cfg.name(),
                  tuples_in, tuples_out, duplicates);
    }
    ReportTick(true);
    op.reset();  // kills the operator if it still runs
  }
};

Task::Task(TaskConfig config, TaskEnv env) : config_(std::move(config)), env_(std::move(env)) {
  impl_ = std::make_unique<Impl>(this);
}

Task::~Task() {
  Stop();
  if (impl_ && impl_->log_fd >= 0) ::close(impl_->log_fd);
}

Status Task::Prepare(const std::vector<std::string>& argv) {
  Impl& m = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(env_.dir, ec);
  if (ec) return Status::IOError("creating " + env_.dir + ": " + ec.message());
  std::string base =
      env_.dir + "/task-" + std::to_string(config_.stage) + "-" + std::to_string(config_.task);
  log_path_ = base + ".log";
  m.log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (m.log_fd < 0) return Status::IOError("opening " + log_path_ + ": " + std::strerror(errno));

  transport::SocketOptions o;
  o.recv_hwm = 100000;
  o.max_message_bytes = 64 << 20;
  auto sock = transport::MakeSocket(zmq::socket_type::pull, o);
  if (!sock.ok()) return sock.status();
  m.inbox = std::make_unique<zmq::socket_t>(std::move(*sock));
  auto port = transport::Bind(*m.inbox, env_.host, 0);
  if (!port.ok()) return port.status();
  endpoint_ = "tcp://" + env_.host + ":" + std::to_string(*port);

  m.out.resize(config_.downstream.size());
  SenderChannel::Options so;
  so.window = config_.window;
  so.retain_windows = kRetainFactor;
  so.resend_after = std::chrono::milliseconds(config_.resend_ms);
  so.exactly_once = config_.exactly_once;
  for (size_t d = 0; d < m.out.size(); ++d) {
    m.out[d].endpoint = config_.downstream[d];
    m.out[d].tx = SenderChannel(so);
  }
  m.has_source = config_.stage == 1 && !config_.live;

  if (config_.exactly_once) {
    std::string dir = base + ".mdb";
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError("creating " + dir + ": " + ec.message());
    auto log = DedupLog::Open(dir);
    if (!log.ok()) return log.status();
    m.log = std::move(*log);
  }
  pid_ = ::getpid();
  if (config_.is_sink()) {
    spool_path_ = env_.dir + "/output.spool";
    int fd = ::open(spool_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IOError("opening " + spool_path_ + ": " + std::strerror(errno));
    Impl* impl = impl_.get();
    m.sink = std::make_unique<SinkOutput>(
        fd, config_.dest, std::chrono::milliseconds(config_.sink_flush_ms),
        [this](std::string data, std::function<void(Status)> done) {
          env_.hydfs_append(config_.dest, std::move(data), std::move(done));
        },
        [impl](const std::string& line) { impl->TaskLog(line); });
    return Status::Ok();
  }

  OperatorContext ctx;
  ctx.job = config_.job;
  ctx.stage = config_.stage - 1;
  ctx.stages = config_.stages;
  ctx.task = config_.task;
  ctx.tasks = config_.tasks;
  ctx.args.assign(config_.argv.begin() + (config_.argv.empty() ? 0 : 1), config_.argv.end());
  ctx.csv_header = config_.csv_header;
  std::vector<std::string> exe_argv = argv;  // argv[0] may become a copy the operator can reach
  OperatorProcessOptions po;
  po.log_path = log_path_;
  po.max_in_flight = kMaxInFlight;
  po.cwd = env_.dir;
  if (env_.sandbox) {
    auto launch = PrepareOperatorSandbox(*env_.sandbox, env_.dir, base + ".work");
    if (!launch.ok()) return launch.status();
    po.cwd = launch->cwd;
    po.env = launch->env;
    po.clear_env = true;
    po.credentials = launch->credentials;
    po.limits = launch->limits;
    if (!exe_argv.empty()) {
      auto exe = ReachableOperator(exe_argv[0], *launch);
      if (!exe.ok()) return exe.status();
      exe_argv[0] = *exe;
    }
  }
  auto op = OperatorProcess::Start(exe_argv, ctx, po);
  if (!op.ok()) return op.status();
  m.op = std::move(*op);
  m.driver = std::make_unique<OperatorDriver>(m.op.get(), config_.batch_tuples, kMaxInFlight);
  pid_ = m.op->pid();
  return Status::Ok();
}

void Task::Start() {
  thread_ = std::thread([this] {
    try {
      impl_->Run();
    } catch (const std::exception& e) {
      // Nothing in the loop is meant to throw; if something does, the task fails, not raind.
      impl_->Fail(Status::Internal(std::string("task loop: ") + e.what()));
      impl_->op.reset();
      impl_->Publish();
    }
  });
}

void Task::Rewire(uint32_t index, const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(rewire_mu_);
  rewires_.emplace_back(index, endpoint);
}

void Task::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

int64_t Task::pid() const { return pid_; }
bool Task::stateful() const { return impl_->op && impl_->op->ready().stateful; }
std::optional<uint64_t> Task::input_partition_column() const {
  return impl_->op ? impl_->op->ready().csv_column : std::nullopt;
}

TaskReport Task::Report() const {
  std::lock_guard<std::mutex> lock(report_mu_);
  return report_;
}

}  // namespace rs::stream
