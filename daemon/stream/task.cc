#include "daemon/stream/task_impl.h"
#include "shared/util/thread_name.h"

namespace rs::stream {

void Task::Impl::TaskLog(const std::string& line) {
  if (log_fd < 0) return;
  std::string s = UtcStamp() + " " + line + "\n";
  ssize_t w = ::write(log_fd, s.data(), s.size());
  (void)w;
}

// A failure the same input repeats (a size limit, shared/stream/limits.h): the leader fails
// the job at once instead of rebuilding the task.
void Task::Impl::FailPermanent(Status s) {
  if (failed.ok()) permanent = true;
  Fail(std::move(s));
}

void Task::Impl::Fail(Status s) {
  if (!failed.ok()) return;
  failed = std::move(s);
  state = TaskState::kFailed;
  TaskLog("event=task_failed reason=\"" + failed.message() + "\"");
  Log()->warn("event=task_failed task={} reason=\"{}\"", cfg.name(), failed.message());
}

void Task::Impl::OnAck(const AckFrame& a) {
  if (a.job != cfg.job || a.incarnation != cfg.incarnation || a.stage != cfg.stage + 1 ||
      a.task >= out.size()) {
    return;
  }
  OutChannel& o = out[a.task];
  if (o.tx.OnAck(a.seq, a.durable, Clock::now()) == SenderChannel::AckResult::kBogus) {
    Malformed("an ack of frame " + std::to_string(a.seq) + " from " + std::to_string(a.stage) +
              "." + std::to_string(a.task) + ", never sent");
    return;
  }
}

void Task::Impl::OnData(TaskFrame f) {
  const DataHeader& h = f.data;
  uint32_t expect_stage = cfg.stage - 1;
  // A rescalable job's stages grow up to origin_radix tasks (README.md "Autoscaling").
  uint32_t senders = cfg.stage == 1   ? 1
                     : cfg.rescalable ? std::max(upstream_count, cfg.origin_radix)
                                      : upstream_count;
  if (h.job != cfg.job || h.from_stage != expect_stage || h.from_task >= senders ||
      (cfg.stage == 1 && !cfg.live) || h.incarnation == 0) {
    Malformed("a frame from " + std::to_string(h.from_stage) + "." + std::to_string(h.from_task) +
              " of job '" + h.job + "', not an upstream task");
    return;
  }
  // Routed by a group table we have not heard of: its order may be queued here still (the
  // leader tells us before the stage before, but our loop looks once per turn), else it is on
  // its way. Not taken: the sender resends it (README.md "Autoscaling").
  if (keyed_in && h.epoch > KnownEpoch()) {
    TakeRegroups();
    if (h.epoch > KnownEpoch()) {
      ++early_frames;
      return;
    }
  }
  // Every tuple must belong to one of this task's key groups (group 0 into stage 1 and the
  // sink). Checked before the channel takes the frame, so a misrouted frame is refused whole
  // (its resends too, until the sender's stall timeout fails it), never half processed.
  const KeyGroupMap& table = TableAt(h.epoch);
  for (const auto& r : f.tuples) {
    if (keyed_in ? !table.Owns(cfg.task, r.group) : r.group != 0) {
      Malformed("a tuple of key group " + std::to_string(r.group) + " from " +
                std::to_string(h.from_stage) + "." + std::to_string(h.from_task) +
                ", a group this task does not own");
      return;
    }
  }
  if (cfg.is_sink() && cfg.exactly_once && !SinkFences(h)) return;  // a replaced run's
  Upstream key{h.from_stage, h.from_task};
  InChannel& ch = in[key];
  switch (ch.rx.Take(h.incarnation, h.seq, cfg.exactly_once)) {
    case ReceiverChannel::Offer::kNext:
      if (cfg.is_sink() && h.order) SinkKeepsOrder(h);
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
  fr.epoch = h.epoch;
  fr.hold = f.bytes;
  fr.tuples = std::move(f.tuples);
  if (cfg.exactly_once) duplicates += dedup.Admit(key, &fr.tuples);
  tuples_in += fr.tuples.size();
  bool end = fr.end;
  TakeInput(std::move(fr));
  if (end && InputsEnded()) Publish();  // input_ended: the leader hears it at once
}

bool Task::Impl::WindowOpen() const {
  for (const auto& o : out) {
    // In flight at the receiver, and everything kept for a replay, are both bounded.
    if (!o.tx.HasRoom()) return false;
  }
  return true;
}

bool Task::Impl::Feed() {
  // The rest of the units already taken goes on whatever else waits (a drain for a
  // snapshot needs them answered).
  bool sent = !cfg.is_sink() && SendBatches();
  if (queue.empty() || want_drain || RegroupHoldsInput()) return sent;
  // What a rebuild would replay stays bounded: no more input until a checkpoint covers it (a
  // replay, which takes no checkpoint, goes on).
  if (logs_order && !replay && order_log.next() - order_durable >= kMaxUndurableRuns) {
    return sent;
  }
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
  std::vector<uint32_t> groups;
  views.reserve(b.tuples);
  const bool keyed_state = op->ready().keyed_state;
  if (keyed_state) groups.reserve(b.tuples);
  for (const auto& fr : b.frames) {
    if (logs_order && !fr.logged) order_log.Record(fr.from.second, fr.tuples);
    for (const auto& r : fr.tuples) {
      views.emplace_back(r.key, r.value);
      if (keyed_state) groups.push_back(r.group);
    }
  }
  driver->Add(std::move(views), std::move(groups));
  batches.push_back(std::move(b));
  SendBatches();
  return true;
}

// Hands the operator the next batches of the queued units (OperatorDriver sizes them).
bool Task::Impl::SendBatches() {
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
uint64_t Task::Impl::OriginOut(uint64_t origin, const Upstream& from) const {
  if (!cfg.exactly_once || cfg.stage < 3) return origin;
  return origin * (cfg.origin_radix > 0 ? cfg.origin_radix : cfg.tasks) + from.second;
}

// The key group of an output (the next operator's partitioning: its key, or a CSV column of
// its value), and the downstream task that owns the group. Into the sink: group 0, its task.
Task::Impl::Routed Task::Impl::Route(std::string_view key, std::string_view value) {
  if (!keyed_out) return Routed{0, 0};
  uint64_t h =
      cfg.partition_column
          ? StableHash64(CsvField(value, static_cast<size_t>(*cfg.partition_column), &scratch))
          : StableHash64(key);
  uint32_t g = KeyGroupOf(h, cfg.key_groups);
  return Routed{out_groups.Owner(g), g};
}

void Task::Impl::Emit(Routed to, uint64_t origin, std::string_view id, std::string_view key,
                      std::string_view value, uint64_t emit_us) {
  uint32_t d = to.task;
  OutChannel& o = out[d];
  if (o.builder.tuples() == 0) {
    o.emit_us = emit_us;
  } else {
    o.emit_us = std::min(o.emit_us, emit_us);
  }
  o.builder.Add(origin, to.group, id, key, value);
  ++tuples_out;
  if (o.builder.bytes() >= kMaxFrameBytes) StageFrame(d, false);
}

void Task::Impl::CompleteFrames(const OpBatch& b) {
  uint64_t now_us = NowUs();
  for (const auto& fr : b.frames) {
    processed_in += fr.tuples.size();
    if (!fr.tuples.empty() && fr.emit_us > 0 && now_us > fr.emit_us) {
      latency_max_window = std::max(latency_max_window, now_us - fr.emit_us);
    }
    if (cfg.exactly_once) dedup.Processed(fr.from, fr.tuples);
    if (fr.epoch > 0) {
      uint64_t& c = cut_epoch[fr.from];
      c = std::max(c, fr.epoch);
    }
    Completed(fr);
  }
  dirty = true;
}

bool Task::Impl::Collect() {
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
              std::to_string(kMaxTupleBytes >> 20) + " MiB limit of a tuple (PROTOCOL.md Limits)"));
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

void Task::Impl::SinkFlush(bool force) {
  if (!sink) return;
  Status s = sink->Flush(force, Clock::now());
  if (!s.ok()) Fail(s);
}

bool Task::Impl::InputsEnded() const {
  if (has_source) {
    auto it = in.find(Upstream{0, cfg.task});
    return source_done && it != in.end() && it->second.rx.ended();
  }
  if (retired) return true;  // it owns no group: nothing more comes (README.md "Autoscaling")
  // Every upstream task there is ended, and every one that left the stage too.
  for (uint32_t u = 0; u < upstream_count; ++u) {
    auto it = in.find(Upstream{cfg.stage - 1, u});
    if (it == in.end() || !it->second.rx.ended()) return false;
  }
  for (const auto& [k, ch] : in) {
    if (!ch.rx.ended()) return false;
  }
  return true;
}

// True when the task has finished its work (done) or must stop.
bool Task::Impl::CheckDone() {
  if (replay) return false;  // pieces of replayed frames wait
  if (!InputsEnded() || !queue.empty() || !batches.empty() || dirty) return false;
  if (!end_sent) {
    for (uint32_t d = 0; d < out.size(); ++d) {
      if (d >= out_retired.size() || !out_retired[d]) StageFrame(d, true);
    }
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

void Task::Impl::Run() {
  Log()->info("event=task_start task={} node={} op=\"{}\" pid={} log={}", cfg.name(), env.node_id,
              cfg.argv.empty() ? "(sink)" : cfg.argv[0], op ? op->pid() : 0, t->log_path_);
  last_report = last_ckpt = Clock::now();
  ckpt_interval = std::chrono::milliseconds(cfg.checkpoint_ms);
  // A rebuilt task sees its inputs in the order the failed run saw them only when it reads one
  // channel whose order is fixed: a stage-1 task's source, or a stage-2 task fed by the one
  // stage-1 task. Further down, an upstream task that merges several channels replays them in
  // another interleaving after its own rebuild, so a stateful task there holds its outputs.
  // A stateful task of the last stage logs its input order instead: the sink keeps it.
  // (A rescalable job's stage 1 may grow: no fixed order past it.)
  bool order_fixed = cfg.stage == 1 || (cfg.stage == 2 && cfg.upstreams == 1 && !cfg.rescalable);
  bool unordered = cfg.exactly_once && op && op->ready().stateful && !order_fixed;
  logs_order = unordered && cfg.stage == cfg.stages && out.size() == 1;
  holds_outputs = unordered && !logs_order;
  replays_outputs = cfg.exactly_once && !cfg.is_sink() && !holds_outputs && !logs_order;
  TaskLog("event=task_start task=" + cfg.name() +
          " exactly_once=" + (cfg.exactly_once ? "true" : "false") + " outputs=" +
          (holds_outputs     ? "held"
           : replays_outputs ? "replayed"
                             : "sent") +
          (logs_order ? " order=logged" : ""));
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
  uint64_t restored_epoch = 0;
  if (cfg.recover && cfg.exactly_once) {
    Status s = Recover(&restored_epoch);
    if (s.ok() && logs_order) s = StartReplay();
    if (!s.ok() && !t->stop_.load()) Fail(Status(s.code(), "recovering: " + s.message()));
  }
  if (failed.ok()) StartFromConfig(restored_epoch);
  if (has_source && failed.ok()) {
    Status s = LoadSource(restored_epoch);
    if (!s.ok()) {
      if (!t->stop_.load()) Fail(s);
    }
  }
  if (failed.ok()) state = TaskState::kRunning;
  Publish();
  while (failed.ok() && !t->stop_.load()) {
    ++loops;
    TakeRegroups();
    bool busy = DrainInbox();
    busy |= RegroupStep();
    busy |= PieceStep();
    busy |= ReadSource();
    busy |= Feed();
    busy |= Collect();
    if (!failed.ok()) break;
    Commit();
    NoteBlocked();
    SampleBlocked(Clock::now());
    if (!failed.ok()) break;
    Resend();
    Checkpoint();
    SinkFlush(false);
    if (!failed.ok()) break;
    ReportTick(false);
    if (!failed.ok()) break;
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
    TaskLog(
        "event=task_done tuples_in=" + std::to_string(tuples_in) +
        " tuples_out=" + std::to_string(tuples_out) + " duplicates=" + std::to_string(duplicates) +
        " frames_in=" + std::to_string(frames_received) +
        " frames_out=" + std::to_string(frames_sent) +
        " local_in=" + std::to_string(local_received) + " local_out=" + std::to_string(local_sent) +
        " operator_batches=" + std::to_string(driver ? driver->batches_sent() : 0) +
        " commits=" + std::to_string(commits) + " loops=" + std::to_string(loops) +
        " early_frames=" + std::to_string(early_frames) + " checkpoints=" + std::to_string(ckpts) +
        " checkpoint_bytes=" + std::to_string(ckpt ? ckpt->bytes_written() : 0));
    Log()->info(
        "event=task_done task={} tuples_in={} tuples_out={} duplicates={} frames_out={} "
        "commits={} checkpoints={} checkpoint_bytes={}",
        cfg.name(), tuples_in, tuples_out, duplicates, frames_sent, commits, ckpts,
        ckpt ? ckpt->bytes_written() : 0);
  }
  ReportTick(true);
  op.reset();  // kills the operator if it still runs
}

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
  m.local_inbox = LocalInbox::Register(endpoint_, o.recv_hwm);

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
  m.out_options = so;
  m.out_retired.assign(m.out.size(), false);
  m.upstream_count = config_.upstreams;
  m.has_source = config_.stage == 1 && !config_.live;
  m.keyed_in = config_.stage >= 2 && !config_.is_sink();
  if (m.keyed_in) {
    // The table in force (the one before it while a rescale is not settled: StartFromConfig).
    const auto& owners =
        config_.in_prev_owners.empty() ? config_.in_owners : config_.in_prev_owners;
    auto table = TableOf(owners, config_.key_groups, config_.tasks);
    if (!table.ok()) return table.status();
    m.in_groups = std::move(*table);
    m.in_epoch = config_.in_prev_owners.empty() ? config_.in_epoch
                 : config_.in_epoch > 0         ? config_.in_epoch - 1
                                                : 0;
  }
  m.keyed_out = config_.stage < config_.stages && !m.out.empty();
  if (m.keyed_out) {
    auto table = TableOf(config_.out_owners, config_.key_groups,
                         static_cast<uint32_t>(config_.downstream.size()));
    if (!table.ok()) return table.status();
    m.out_groups = std::move(*table);
    m.out_epoch = config_.out_epoch;
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
  ctx.key_groups = m.keyed_in ? config_.key_groups : 0;
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
    SetThreadName("task" + std::to_string(config_.stage) + "." + std::to_string(config_.task));
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
  if (impl_ && impl_->local_inbox) impl_->local_inbox->Close();  // senders fall back to the socket
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
