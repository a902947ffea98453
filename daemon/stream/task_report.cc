// A task's reports (README.md "Observability"): what it counts, published to the worker once a
// second, at once on a state change and when its backpressure crosses kBackpressured; and the
// backpressure itself, the time its output is blocked on a full window (NoteBlocked,
// SampleBlocked). Runs on the task's thread.
#include "daemon/stream/task_impl.h"

namespace rs::stream {

TaskReport Task::Impl::MakeReport() {
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
  r.busy = busy;
  r.rate_done = rate_done;
  r.source_left = source ? source->left() : 0;
  r.epoch = settled_epoch;
  r.input_ended = InputsEnded();
  r.backpressure = backpressure;
  r.backpressure_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(BlockedTotal(Clock::now())).count());
  r.checkpoints = ckpts_durable;
  r.checkpoint_bytes = ckpt_durable_bytes;
  if (ckpt) {
    r.checkpoint_last_bytes = ckpt->last_durable_bytes();
    r.checkpoint_last_us = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(ckpt->last_durable_took()).count());
  }
  r.checkpoint_seconds = ckpt_seconds.Take();
  if (sink) {
    r.output_lines = sink->lines();
    r.output_bytes = sink->bytes();
    r.latency_p50_us = sink->latency().Percentile(0.5);
    r.latency_p99_us = sink->latency().Percentile(0.99);
    r.latency_samples = sink->latency().samples;
    r.latency_seconds = sink->latency_buckets();
  }
  return r;
}

void Task::Impl::Publish() {
  TaskReport r = MakeReport();
  {
    std::lock_guard<std::mutex> lock(t->report_mu_);
    t->report_ = r;
  }
  if (env.report) env.report(r);
}

void Task::Impl::NoteBlocked() {
  bool now_blocked = !WindowOpen();
  if (now_blocked == blocked) return;
  TimePoint now = Clock::now();
  if (blocked) blocked_total += now - blocked_since;
  blocked_since = now;
  blocked = now_blocked;
}

Clock::duration Task::Impl::BlockedTotal(TimePoint now) const {
  return blocked_total + (blocked ? now - blocked_since : Clock::duration(0));
}

void Task::Impl::SampleBlocked(TimePoint now) {
  constexpr auto kEvery = std::chrono::milliseconds(100);
  constexpr auto kWindow = std::chrono::seconds(1);
  if (!blocked_samples.empty() && now - blocked_samples.back().first < kEvery) return;
  Clock::duration total = BlockedTotal(now);
  blocked_samples.emplace_back(now, total);
  while (blocked_samples.size() > 2 && now - blocked_samples[1].first >= kWindow) {
    blocked_samples.pop_front();
  }
  const auto& [t0, b0] = blocked_samples.front();
  double span = std::chrono::duration<double>(now - t0).count();
  double share = span <= 0 ? 0 : std::chrono::duration<double>(total - b0).count() / span;
  share = std::clamp(share, 0.0, 1.0);
  bool crossed = (share >= kBackpressured) != (backpressure >= kBackpressured);
  backpressure = share;
  if (crossed) Publish();  // the worker sends it to the leader at once
}

void Task::Impl::ReportTick(bool force) {
  TimePoint now = Clock::now();
  auto dt = now - last_report;
  if (!force && dt < std::chrono::seconds(1)) return;
  // An idle operator that died (killed, crashed) fails the task now: its rebuild need not wait
  // for input that may be long in coming.
  if (op && state == TaskState::kRunning) {
    Status alive = op->CheckIdle();
    if (!alive.ok()) Fail(alive);
  }
  double secs = std::max(1e-3, std::chrono::duration<double>(dt).count());
  rate_in = static_cast<double>(tuples_in - last_in) / secs;
  rate_out = static_cast<double>(tuples_out - last_out) / secs;
  busy =
      driver ? std::min(1.0, std::chrono::duration<double>(driver->TakeBusy()).count() / secs) : 0;
  rate_done = driver ? static_cast<double>(driver->TakeAnswered()) / secs : 0;
  last_in = tuples_in;
  last_out = tuples_out;
  last_report = now;
  char line[256];
  std::snprintf(line, sizeof(line),
                "event=task_rate in=%.0f/s out=%.0f/s busy=%.2f backpressure=%.2f tuples_in=%llu "
                "tuples_out=%llu duplicates=%llu",
                rate_in, rate_out, busy, backpressure, static_cast<unsigned long long>(tuples_in),
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

}  // namespace rs::stream
