// rainsource: the live source of a job (ctl/rainsource.h says how it works). This file: setup,
// batching, acknowledgements, the poll loop and the flags.
#include "ctl/rainsource.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <msgpack.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ctl/client.h"
#include "ctl/output.h"
#include "ctl/security.h"
#include "ctl/source_input.h"
#include "shared/clock.h"
#include "shared/ids.h"
#include "shared/stream/channel.h"
#include "shared/stream/job_spec.h"
#include "shared/stream/limits.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"
#include "shared/util/malloc_tuning.h"
#include "shared/wire/fields.h"
#include "shared/wire/message_types.h"

namespace rs::source {
namespace {
volatile std::sig_atomic_t g_interrupts = 0;
void OnInterrupt(int) { g_interrupts = g_interrupts + 1; }
}  // namespace

uint64_t WallMicros() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Status Source::Setup(int* code) {
  ctl::Outcome out = ctl::Command(o_.ctx, "job.source", {{"job", o_.job}});
  if (!out.ok()) {
    *code = out.usage ? kExitUsage : out.remote ? kExitRemoteError : kExitUnreachable;
    return out.status;
  }
  const msgpack::object& p = out.reply.payload;
  const msgpack::object* eps = wire::MapGet(p, "endpoints");
  *code = kExitRemoteError;
  if (eps == nullptr || eps->type != msgpack::type::ARRAY || eps->via.array.size == 0) {
    return Status::Corruption("job.source reply has no stage-1 endpoints");
  }
  const msgpack::object* runs = wire::MapGet(p, "incarnations");
  uint64_t window = ctl::Uint(p, "window");
  window_ = window == 0 ? kDefaultWindow : std::min<uint64_t>(window, 1u << 16);
  exactly_once_ = wire::MapGet(p, "exactly_once") == nullptr || ctl::Bool(p, "exactly_once");
  autoscale_ = wire::MapGet(p, "autoscale") != nullptr && ctl::Bool(p, "autoscale");
  uint64_t staying = wire::MapGet(p, "tasks") != nullptr ? ctl::Uint(p, "tasks") : UINT64_MAX;
  // The job's INPUT_RATE caps the lines, unless --rate says otherwise.
  if (uint64_t rate = ctl::Uint(p, "input_rate"); o_.rate == 0 && rate != 0) {
    limiter_ = RateLimiter(rate);
  }

  // Our ack inbox, on the address the workers reach us at.
  auto resolved = ctl::ResolveEndpoint(o_.ctx);
  std::string host = "127.0.0.1";
  if (resolved.ok()) {
    auto hp = HostPort::Parse(resolved->substr(6));  // "tcp://" + HOST:PORT
    if (hp.ok()) host = hp->host;
  }
  std::string local = ctl::LocalAddressToward(host);
  if (local.empty()) local = host;
  transport::SocketOptions po;
  po.recv_hwm = 100000;
  po.max_message_bytes = 1 << 20;
  auto pull = transport::MakeSocket(zmq::socket_type::pull, po);
  *code = kExitUnreachable;
  if (!pull.ok()) return pull.status();
  pull_ = std::move(pull.value());
  auto port = transport::Bind(pull_, local, 0);
  if (!port.ok()) return port.status();
  ack_to_ = "tcp://" + local + ":" + std::to_string(*port);

  push_options_.send_hwm = static_cast<int>(std::min<uint64_t>(window_ * 2 + 16, 1u << 20));
  push_options_.linger_ms = 0;
  channels_.resize(eps->via.array.size);
  TimePoint now = Clock::now();
  channel_options_.window = window_;
  channel_options_.retain_windows = kRetainWindows;
  channel_options_.resend_after = kResendAfter;
  channel_options_.exactly_once = exactly_once_;
  for (uint32_t i = 0; i < eps->via.array.size; ++i) {
    Channel& c = channels_[i];
    std::string endpoint;
    if (!wire::ReadString(eps->via.array.ptr[i], &endpoint) || endpoint.empty()) {
      *code = kExitRemoteError;
      return Status::Corruption("job.source reply: endpoint " + std::to_string(i) +
                                " is not a string");
    }
    uint64_t run = 0;
    if (runs != nullptr && runs->type == msgpack::type::ARRAY && i < runs->via.array.size &&
        runs->via.array.ptr[i].type == msgpack::type::POSITIVE_INTEGER) {
      run = runs->via.array.ptr[i].via.u64;
    }
    Status opened = Open(c, endpoint, run);
    if (!opened.ok()) return opened;
    c.leaving = i >= staying;
  }
  next_lookup_ = now;

  // The run's incarnation: wall-clock microseconds with 8 random low bits. Tasks take a lower
  // incarnation than the one they know for an old run of the sender, so a later run must be
  // higher; the random bits keep two sources started in the same microsecond apart.
  std::random_device rd;
  incarnation_ = (WallMicros() << 8) | (rd() & 0xff);
  header_.job = o_.job;
  header_.from_stage = 0;
  header_.from_task = 0;
  header_.incarnation = incarnation_;
  header_.ack_to = ack_to_;
  *code = kExitOk;
  return Status::Ok();
}

void Source::QueueFrame(Channel& c, std::string bytes, uint64_t seq, TimePoint now) {
  c.tx.Release(stream::KeptFrame{seq, std::move(bytes)}, now);
  ++frames_;
  Flush(c);
}

// Strict round robin over the tasks still taking input: the next batch waits for its
// channel's room, so every stage-1 task gets the same share of the input and a slow task slows
// the source (back-pressure) instead of being skipped. A task leaving the stage is skipped.
void Source::OpenBatch() {
  for (size_t tries = 0; tries < channels_.size(); ++tries) {
    Channel& c = channels_[rr_];
    if (c.end_queued || c.leaving || c.endpoint.empty()) {
      rr_ = (rr_ + 1) % channels_.size();
      continue;
    }
    if (!c.tx.HasRoom()) return;
    batch_channel_ = static_cast<int>(rr_);
    rr_ = (rr_ + 1) % channels_.size();
    builder_.Begin(header_);
    return;
  }
}

void Source::FlushBatch() {
  if (batch_channel_ < 0) return;
  Channel& c = channels_[static_cast<size_t>(batch_channel_)];
  batch_channel_ = -1;
  if (builder_.tuples() == 0) {  // nothing to send: the channel keeps its turn
    rr_ = static_cast<size_t>(&c - channels_.data());
    return;
  }
  uint64_t seq = c.tx.TakeSeq();
  QueueFrame(c, builder_.Finish(seq, batch_emit_us_, /*end=*/false), seq, Clock::now());
}

// Hands the channel's unsent frames to ZeroMQ until its queue is full (retried later).
void Source::Flush(Channel& c) {
  c.tx.Flush([&](const std::string& b) { return transport::TrySend(c.push, b); });
}

Status Source::Open(Channel& c, const std::string& endpoint, uint64_t run) {
  auto push = transport::MakeSocket(zmq::socket_type::push, push_options_);
  if (!push.ok()) return push.status();
  Status connected = transport::Connect(push.value(), endpoint);
  if (!connected.ok()) return connected;
  c = Channel{};
  c.push = std::move(push.value());
  c.endpoint = endpoint;
  c.run = run;
  c.tx = stream::SenderChannel(channel_options_);
  return Status::Ok();
}

void Source::QueueEnds(bool input_done, TimePoint now) {
  for (size_t i = 0; i < channels_.size(); ++i) {
    Channel& c = channels_[i];
    if (c.end_queued || c.endpoint.empty() || !(input_done || c.leaving) || !c.tx.HasRoom() ||
        batch_channel_ == static_cast<int>(i)) {
      continue;
    }
    // Its own builder: builder_ may hold the open batch of another channel (a leaving task's
    // end goes while the others take lines; resetting builder_ lost that batch's lines).
    stream::DataFrameBuilder end;
    end.Begin(header_);
    uint64_t seq = c.tx.TakeSeq();
    QueueFrame(c, end.Finish(seq, WallMicros(), /*end=*/true), seq, now);
    c.end_queued = true;
  }
}

void Source::ReceiveAcks(TimePoint now) {
  std::vector<zmq::message_t> parts;
  while (transport::TryRecv(pull_, &parts)) {
    if (parts.size() != 1) {
      ++bad_acks_;
      continue;
    }
    auto f = stream::ParseTaskFrame(std::string(parts[0].to_string_view()));
    if (!f.ok() || f->type != static_cast<uint16_t>(wire::MsgType::kTaskAck) ||
        f->ack.job != o_.job || f->ack.incarnation != incarnation_ || f->ack.stage != 1 ||
        f->ack.task >= channels_.size()) {
      ++bad_acks_;
      continue;
    }
    Channel& c = channels_[f->ack.task];
    if (c.tx.OnAck(f->ack.seq, f->ack.durable, now) == stream::SenderChannel::AckResult::kBogus) {
      ++bad_acks_;  // acknowledges a frame never sent
    }
  }
}

int Source::Run() {
  int code = kExitOk;
  Status set = Setup(&code);
  if (!set.ok()) return Fail("job " + o_.job + ": " + set.ToString(), code);

  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  TimePoint started = Clock::now();
  TimePoint last_progress = started, next_job_check = started + kAskJobEvery;
  bool eof = false;         // stdin is exhausted (or Ctrl-C)
  bool input_done = false;  // every record is in a frame
  std::vector<char> chunk(kReadChunk);
  int exit_code = kExitOk;

  for (;;) {
    TimePoint now = Clock::now();
    if (g_interrupts >= 2) {
      return Fail(
          "interrupted; " + std::to_string(Outstanding()) + " frame(s) were not acknowledged",
          kExitInterrupted);
    }
    if (g_interrupts == 1 && !eof) {
      std::fprintf(stderr, "rainsource: ending the input (Ctrl-C again to quit at once)\n");
      eof = true;
    }

    // Records into batches, while a channel has room and the rate allows.
    bool want_input = false;
    while (!input_done) {
      if (batch_channel_ < 0) OpenBatch();
      if (batch_channel_ < 0) break;  // every channel is full: back-pressure
      if (!limiter_.Ready(now)) break;
      auto r = reader_.Next(eof, lines_ + 1);
      if (!r) {
        if (!reader_.error().ok()) {
          std::fprintf(stderr, "rainsource: %s; ending the input there\n",
                       reader_.error().ToString().c_str());
          exit_code = kExitUsage;
          eof = true;
          input_done = true;
        } else if (eof) {
          if (reader_.HasLeftover()) {
            std::fprintf(stderr, "rainsource: the input ends inside a MessagePack record\n");
            exit_code = kExitUsage;
          }
          input_done = true;
        } else {
          want_input = true;
        }
        break;
      }
      if (r->key.size() + r->value.size() > stream::kMaxTupleBytes) {
        std::fprintf(stderr,
                     "rainsource: line %" PRIu64
                     " is %zu bytes, over the %zu MiB limit of a "
                     "tuple; ending the input there\n",
                     lines_ + 1, r->value.size(), stream::kMaxTupleBytes >> 20);
        exit_code = kExitUsage;
        eof = true;
        input_done = true;
        break;
      }
      limiter_.Spend();
      ++lines_;
      if (builder_.tuples() == 0) {  // the batch's first line: its age and emit time start now
        batch_started_ = now;
        batch_emit_us_ = WallMicros();
      }
      std::string id = exactly_once_ ? stream::SourceId(0, lines_) : std::string();
      uint64_t origin = exactly_once_ ? static_cast<uint64_t>(batch_channel_) : 0;
      builder_.Add(origin, /*group=*/0, id, r->key, r->value);
      if (builder_.tuples() >= o_.batch || builder_.bytes() >= kMaxFrameBytes) FlushBatch();
    }
    // A partial batch goes after kFlushAfter; an empty one does not hold its channel.
    if (batch_channel_ >= 0 &&
        (input_done || builder_.tuples() == 0 || now - batch_started_ >= kFlushAfter)) {
      FlushBatch();
    }
    QueueEnds(input_done, now);

    bool unsent = false;
    for (auto& c : channels_) {
      Flush(c);
      resent_ +=
          c.tx.Resend(now, [&](const std::string& b) { return transport::TrySend(c.push, b); });
      unsent |= c.tx.Unsent();
    }
    size_t outstanding = Outstanding();
    bool all_ended = std::all_of(channels_.begin(), channels_.end(), [](const Channel& c) {
      return c.end_queued || c.endpoint.empty();
    });
    if (input_done && all_ended && outstanding == 0) {
      // Stage 1 may have grown meanwhile: a task added must get our end too. Asked until no
      // task is starting (bounded: the leader adds none once a stage-1 task reported the end).
      if (!autoscale_ || final_lookups_ >= kFinalLookups) break;
      if (final_lookups_++ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      size_t before = channels_.size(), opened = added_;
      LookupTasks(now);
      if (!starting_ && channels_.size() == before && added_ == opened) break;
      continue;
    }

    if (outstanding == 0) last_progress = now;
    if (now - std::max(last_progress, working_) >= kGiveUp) {
      return Fail("no acknowledgement from job " + o_.job + "'s stage-1 tasks, and no output " +
                      "from them, for " + std::to_string(ToMillis(kGiveUp) / 1000) + " s (" +
                      std::to_string(outstanding) + " frame(s) outstanding); giving up",
                  kExitUnreachable);
    }
    bool stalled = std::any_of(channels_.begin(), channels_.end(),
                               [&](const Channel& c) { return c.tx.Stalled(now, kResendAfter); });
    if ((stalled || autoscale_) && now >= next_lookup_) {
      next_lookup_ = now + kLookupEvery;
      LookupTasks(now);
      if (autoscale_) ReportLoad(now);
      now = Clock::now();
    }
    if (now - last_progress >= kAskJobEvery && now >= next_job_check) {
      next_job_check = now + kAskJobEvery;
      if (auto ended = CheckJob()) return *ended;
    }

    // Wait for acks, input, or the next deadline.
    Clock::duration wait = std::chrono::milliseconds(200);
    if (batch_channel_ >= 0 && builder_.tuples() > 0) {
      wait = std::min(wait, batch_started_ + kFlushAfter - now);
    }
    for (const auto& c : channels_) {
      TimePoint resend = c.tx.NextResend();
      if (resend != TimePoint::max()) wait = std::min(wait, resend - now);
    }
    if (unsent) wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(2));
    bool throttled = !input_done && !want_input && !limiter_.Ready(now);
    if (throttled) wait = std::min(wait, limiter_.Wait(now));
    bool read_stdin = !eof && (want_input || reader_.Buffered() < kReadAhead);
    zmq::pollitem_t items[2] = {{static_cast<void*>(pull_), 0, ZMQ_POLLIN, 0},
                                {nullptr, STDIN_FILENO, ZMQ_POLLIN, 0}};
    long ms = std::max<long>(0, static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(
                                                      std::max(wait, Clock::duration::zero()))
                                                      .count()));
    int rc = zmq_poll(items, read_stdin ? 2 : 1, ms);
    if (rc < 0 && zmq_errno() != EINTR) {
      return Fail(std::string("poll: ") + zmq_strerror(zmq_errno()), kExitUnreachable);
    }
    now = Clock::now();
    size_t before = Outstanding();
    ReceiveAcks(now);
    if (Outstanding() < before) last_progress = now;
    if (read_stdin && rc > 0 && (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) {
      ssize_t n = ::read(STDIN_FILENO, chunk.data(), chunk.size());
      if (n > 0) {
        reader_.Feed(chunk.data(), static_cast<size_t>(n));
        load_.Read(static_cast<size_t>(n));
      } else if (n == 0) {
        eof = true;
      } else if (errno != EINTR && errno != EAGAIN) {
        std::fprintf(stderr, "rainsource: reading stdin: %s; ending the input there\n",
                     std::strerror(errno));
        exit_code = kExitUsage;
        eof = true;
      }
    }
  }

  double secs = std::chrono::duration<double>(Clock::now() - started).count();
  std::fprintf(
      stderr,
      "rainsource: %" PRIu64 " %s sent to job %s in %.1f s (%" PRIu64 " frames over %zu task(s)",
      lines_, o_.msgpack ? "records" : "lines", o_.job.c_str(), secs, frames_, channels_.size());
  if (resent_ != 0) std::fprintf(stderr, ", %" PRIu64 " resent", resent_);
  if (rewires_ != 0) std::fprintf(stderr, ", %" PRIu64 " task rebuild(s) followed", rewires_);
  if (bad_acks_ != 0) std::fprintf(stderr, ", %" PRIu64 " malformed acks ignored", bad_acks_);
  std::fprintf(stderr, ")\n");
  return exit_code;
}

}  // namespace rs::source

int main(int argc, char** argv) {
  rs::TuneMallocForStreams();
  std::signal(SIGPIPE, SIG_IGN);
  rs::source::Options o;
  CLI::App app{"rainsource: feed stdin lines (or MessagePack [key, value] arrays) to a live job"};
  app.add_option("--job", o.job, "the job (submitted with job submit --live)")->required();
  app.add_option("--node", o.ctx.node, "HOST:PORT of any node (default: $RAIN_NODE, else node1)");
  app.add_option("--rate", o.rate,
                 "at most N lines/s (default: the job's INPUT_RATE; without one, as fast as the "
                 "job takes them)");
  app.add_flag("--msgpack", o.msgpack, "stdin is a stream of MessagePack [key, value] arrays");
  app.add_option("--batch", o.batch, "lines per frame, at most")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  app.add_option("--timeout", o.ctx.timeout_ms, "deadline of each request to the node, in ms")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  rs::ctl::AddSecurityOptions(app, o.ctx);
  app.footer(
      "Exit codes: 0 every line acknowledged, 1 the node refused (unknown job, not live, job "
      "ended), 2 usage or undecodable input, 3 no node answered or the tasks stopped "
      "acknowledging (30 s), 130 interrupted twice.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "rainsource: %s\nRun with --help for usage.\n", e.what());
    return rs::ctl::kExitUsage;
  }
  rs::source::Source source(std::move(o));
  return source.Run();
}
