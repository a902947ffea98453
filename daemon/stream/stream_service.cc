#include "daemon/stream/stream_service.h"

#include <filesystem>

#include "daemon/stream/messages.h"
#include "shared/logging.h"
#include "shared/stream/job_spec.h"
#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

std::string ArgOf(const StreamService::Args& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

}  // namespace

StreamService::~StreamService() { Stop(); }

Status StreamService::Start(const std::string& self_endpoint,
                            membership::MembershipService* membership, hydfs::HydfsService* hydfs) {
  self_ = self_endpoint;
  membership_ = membership;
  std::error_code ec;
  std::filesystem::remove_all(options_.dir, ec);
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Status::IOError("creating " + options_.dir + ": " + ec.message());
  RS_RETURN_IF_ERROR(MakeTraversable(options_.dir));
  WorkerOptions wo;
  wo.host = options_.host;
  wo.dir = options_.dir;
  wo.self_endpoint = self_;
  wo.sandbox = options_.sandbox;
  bool leads = options_.leader.empty() || options_.leader == self_;
  worker_ = std::make_unique<Worker>(
      wo, hydfs, [membership] { return membership->view()->self.str(); },
      [this](std::vector<TaskReport> reports) {
        if (leader_) leader_->OnReports(reports);
      });
  if (leads) {
    LeaderOptions lo;
    lo.self_endpoint = self_;
    lo.hosts_tasks = options_.leader_hosts_tasks;
    lo.knobs = options_.knobs;
    lo.operator_dirs = options_.sandbox.dirs;
    leader_ = std::make_unique<Leader>(lo, worker_.get(), hydfs, membership);
  }
  forwarder_ = std::make_unique<WorkerPool>(4);
  Log()->info("event=stream_start leader={} role={}", leads ? self_ : options_.leader,
              leads ? "leader" : "worker");
  return Status::Ok();
}

void StreamService::Stop() {
  if (leader_) leader_->Stop();
  if (worker_) worker_->Stop();
  forwarder_.reset();
}

std::vector<TaskReport> StreamService::TaskReports() const {
  return worker_ ? worker_->Reports() : std::vector<TaskReport>{};
}

std::vector<JobMetrics> StreamService::JobsMetrics() const {
  return leader_ ? leader_->Metrics() : std::vector<JobMetrics>{};
}

void StreamService::Command(const std::string& cmd, const Args& args, Reply done) {
  if (!worker_) {
    done(Status::Unavailable("the stream engine is not running yet"), {});
    return;
  }
  if (cmd == "stream.kill_task") {
    auto pid = ParseCount(ArgOf(args, "pid"), "pid", INT32_MAX);
    if (!pid.ok()) {
      done(pid.status(), {});
      return;
    }
    auto killed = worker_->KillTask(static_cast<int64_t>(*pid));
    if (!killed.ok()) {
      done(killed.status(), {});
      return;
    }
    std::string name = *killed;
    uint64_t p = *pid;
    done(Status::Ok(), [name, p](wire::Packer& pk) {
      pk.pack_map(2);
      pk.pack("task");
      pk.pack(name);
      pk.pack("pid");
      pk.pack_uint64(p);
    });
    return;
  }
  if (cmd.rfind("job.", 0) == 0) {
    if (leader_) {
      leader_->Command(cmd, args, std::move(done));
    } else {
      Forward(cmd, args, std::move(done));
    }
    return;
  }
  done(Status::Unimplemented("unknown command " + cmd), {});
}

const std::vector<wire::MsgType>& StreamService::MessageTypes() {
  static const std::vector<wire::MsgType> types = {kStartTaskType, kStopJobType, kStopTaskType,
                                                   kRewireType,    kReportType,  kRegroupType};
  return types;
}

void StreamService::Handle(wire::MsgType type, const msgpack::object& body, Reply done) {
  if (!worker_) {
    done(Status::Unavailable("the stream engine is not running yet"), {});
    return;
  }
  Worker* w = worker_.get();
  switch (type) {
    case kStartTaskType: {
      auto req = DecodeStartTaskRequest(body);
      if (!req.ok()) {
        done(req.status(), {});
        return;
      }
      w->StartTask(std::move(req->config), [done](Result<StartTaskReply> r) {
        if (!r.ok()) {
          done(r.status(), {});
          return;
        }
        done(Status::Ok(), [reply = std::move(*r)](wire::Packer& pk) { Pack(pk, reply); });
      });
      return;
    }
    case kStopJobType: {
      auto req = DecodeStopJobRequest(body);
      if (!req.ok()) {
        done(req.status(), {});
        return;
      }
      forwarder_->Submit([w, req = std::move(*req), done] {
        // The final reports travel back with the answer, so the leader never misses the last.
        StopJobReply reply{w->StopJob(req.job, req.remove)};
        done(Status::Ok(), [reply = std::move(reply)](wire::Packer& pk) { Pack(pk, reply); });
      });
      return;
    }
    case kStopTaskType: {
      auto req = DecodeStopTaskRequest(body);
      if (!req.ok()) {
        done(req.status(), {});
        return;
      }
      forwarder_->Submit([w, req = std::move(*req), done] {
        auto r = w->StopTask(req.job, req.stage, req.task);
        if (!r.ok()) {
          done(r.status(), {});
          return;
        }
        done(Status::Ok(), [reply = StopTaskReply{*r}](wire::Packer& pk) { Pack(pk, reply); });
      });
      return;
    }
    case kRewireType: {
      auto req = DecodeRewireRequest(body);
      if (!req.ok()) {
        done(req.status(), {});
        return;
      }
      RewireReply reply{w->Rewire(req->job, req->stage, req->task, req->endpoint)};
      done(Status::Ok(), [reply](wire::Packer& pk) { Pack(pk, reply); });
      return;
    }
    case kRegroupType: {
      auto req = DecodeRegroupRequest(body);
      if (!req.ok()) {
        done(req.status(), {});
        return;
      }
      RegroupReply reply{w->Regroup(req->job, req->order, req->stage_only)};
      done(Status::Ok(), [reply](wire::Packer& pk) { Pack(pk, reply); });
      return;
    }
    case kReportType: {
      if (!leader_) {
        done(Status::FailedPrecondition("this node is not the leader"), {});
        return;
      }
      auto msg = DecodeReportMessage(body);
      if (!msg.ok()) {
        done(msg.status(), {});
        return;
      }
      leader_->OnReports(msg->reports);
      done(Status::Ok(), {});
      return;
    }
    default:
      done(Status::Unimplemented("not a stream message: type " +
                                 std::to_string(static_cast<int>(type))),
           {});
  }
}

void StreamService::Forward(const std::string& cmd, const Args& args, Reply done) {
  std::string leader = options_.leader;
  forwarder_->Submit([leader, cmd, args, done] {
    auto deadline = cmd == "job.submit" || cmd == "job.rescale" ? std::chrono::seconds(120)
                                                                : std::chrono::seconds(10);
    auto env = ForwardAdminCommand(leader, cmd, args, deadline);
    if (!env.ok()) {
      done(Status::Unavailable("the leader " + leader +
                               " did not answer: " + env.status().message()),
           {});
      return;
    }
    auto payload = wire::ReplyPayload(*env);
    if (!payload.ok()) {
      done(payload.status(), {});
      return;
    }
    auto keep = std::make_shared<wire::Envelope>(std::move(*env));
    msgpack::object obj = *payload;
    done(Status::Ok(), [keep, obj](wire::Packer& pk) { pk.pack(obj); });
  });
}

}  // namespace rs::stream
