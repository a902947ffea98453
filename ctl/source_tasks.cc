// rainsource's view of the job (ctl/rainsource.h): job.tasks lookups that follow rebuilds and
// rescales of stage 1, job.source_load reports, and job.status while stalled.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "ctl/rainsource.h"
#include "shared/stream/job_spec.h"
#include "shared/stream/limits.h"
#include "shared/wire/fields.h"

namespace rs::source {

Status Source::Rewire(Channel& c, const std::string& endpoint, TimePoint now) {
  auto push = transport::MakeSocket(zmq::socket_type::push, push_options_);
  if (!push.ok()) return push.status();
  Status connected = transport::Connect(push.value(), endpoint);
  if (!connected.ok()) return connected;
  c.push = std::move(push.value());  // the old socket closes without lingering
  c.endpoint = endpoint;
  // The new run restored its checkpoint: it expects every frame above `durable` again.
  c.tx.Rewire(now);
  resent_ += c.tx.kept().size();
  ++rewires_;
  Flush(c);
  return Status::Ok();
}

void Source::LookupTasks(TimePoint now) {
  ctl::Context ctx = o_.ctx;
  ctx.timeout_ms = std::min(ctx.timeout_ms, kLookupTimeoutMs);
  ctl::Outcome out = ctl::Command(ctx, "job.tasks", {{"job", o_.job}});
  if (!out.ok()) return;  // the node is slow or down: CheckJob and the ack deadline decide
  const msgpack::object* tasks = wire::MapGet(out.reply.payload, "tasks");
  if (tasks == nullptr || tasks->type != msgpack::type::ARRAY) return;
  uint64_t stage1_out = 0;
  for (uint32_t i = 0; i < tasks->via.array.size; ++i) {
    const msgpack::object& t = tasks->via.array.ptr[i];
    if (t.type == msgpack::type::MAP && ctl::Uint(t, "stage") == 1) {
      stage1_out += ctl::Uint(t, "tuples_out");
    }
  }
  if (stage1_out != stage1_out_) {
    stage1_out_ = stage1_out;
    working_ = now;
  }
  starting_ = false;
  std::vector<bool> listed(channels_.size(), false);
  for (uint32_t i = 0; i < tasks->via.array.size; ++i) {
    const msgpack::object& t = tasks->via.array.ptr[i];
    if (t.type != msgpack::type::MAP || ctl::Uint(t, "stage") != 1) continue;
    uint64_t index = ctl::Uint(t, "task");
    std::string inbox = ctl::Str(t, "inbox");
    uint64_t run = ctl::Uint(t, "incarnation");
    bool leaving = ctl::Bool(t, "leaving");
    if (index >= stream::kMaxTasksPerStage) continue;
    if (index >= channels_.size()) {
      channels_.resize(index + 1);
      listed.resize(index + 1, false);
    }
    listed[index] = true;
    if (inbox.empty()) {
      starting_ = starting_ || !leaving;  // a task a rescale adds, not started yet
      continue;
    }
    Channel& c = channels_[index];
    // A task a rescale added, or an index that left the stage and is back (its task began at a
    // later run than the one we fed): a new task, a new channel.
    if (c.endpoint.empty() || ctl::Uint(t, "first_run") > c.run) {
      Status s = Open(c, inbox, run);
      if (!s.ok()) {
        std::fprintf(stderr, "rainsource: connecting to task 1.%" PRIu64 " at %s: %s\n", index,
                     inbox.c_str(), s.ToString().c_str());
        continue;  // the next lookup tries again
      }
      c.leaving = leaving;
      ++added_;
      continue;
    }
    if (leaving) c.leaving = true;  // its end goes once its batch is out (QueueEnds)
    if (inbox == c.endpoint && (run == c.run || c.run == 0)) {
      c.run = run;
      continue;
    }
    std::fprintf(stderr,
                 "rainsource: task 1.%" PRIu64 " was rebuilt (run %" PRIu64
                 ", %s); "
                 "sending it the %zu frame(s) its checkpoint does not cover\n",
                 index, run, inbox.c_str(), c.tx.kept().size());
    Status s = Rewire(c, inbox, now);
    if (!s.ok()) {
      std::fprintf(stderr, "rainsource: reconnecting to %s: %s\n", inbox.c_str(),
                   s.ToString().c_str());
      continue;  // the next lookup tries again
    }
    c.run = run;
  }
  // A task that left and is no longer listed was retired once done: it processed everything,
  // our end included (its last durable ack may have been lost as it stopped).
  for (size_t i = 0; i < listed.size(); ++i) {
    Channel& c = channels_[i];
    if (!listed[i] && c.leaving && c.end_queued) c = Channel{};
  }
}

void Source::ReportLoad(TimePoint now) {
  LoadMeter::Load l = load_.Take(lines_, reader_.Buffered(), now);
  ctl::Context ctx = o_.ctx;
  ctx.timeout_ms = std::min(ctx.timeout_ms, kLookupTimeoutMs);
  ctl::Command(ctx, "job.source_load",
               {{"job", o_.job},
                {"offered", std::to_string(l.offered)},
                {"backlog", std::to_string(l.backlog)}});
}

std::optional<int> Source::CheckJob() {
  ctl::Outcome out = ctl::Command(o_.ctx, "job.status", {{"job", o_.job}});
  if (!out.ok()) {
    if (out.remote) {
      return Fail("job " + o_.job + ": " + out.status.ToString(), kExitRemoteError);
    }
    return std::nullopt;  // the node is slow or down: the ack deadline decides
  }
  std::string state = ctl::Str(out.reply.payload, "state");
  bool all_ended = std::all_of(channels_.begin(), channels_.end(),
                               [](const Channel& c) { return c.end_queued || c.endpoint.empty(); });
  if (state == "done" && all_ended) {
    // A live job is done only once every stage-1 task processed our end frame, so it processed
    // every frame; the last acks were lost as the tasks closed their sockets.
    for (auto& c : channels_) c.tx.ForgetAll();
    return std::nullopt;
  }
  if (state == "done" || state == "failed" || state == "cancelled") {
    std::string reason = ctl::Str(out.reply.payload, "reason");
    return Fail("job " + o_.job + " is " + state + (reason.empty() ? "" : ": " + reason) + "; " +
                    std::to_string(Outstanding()) + " frame(s) were never acknowledged",
                kExitRemoteError);
  }
  return std::nullopt;
}
}  // namespace rs::source
