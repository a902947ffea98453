#include "daemon/stream/stream_service.h"

#include <filesystem>

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

void StreamService::Command(const std::string& cmd, const Args& args, Reply done) {
  if (!worker_) {
    done(Status::Unavailable("the stream engine is not running yet"), {});
    return;
  }
  if (cmd == "stream.start_task") {
    worker_->StartTask(ArgOf(args, "task"), std::move(done));
    return;
  }
  if (cmd == "stream.stop_job") {
    std::string job = ArgOf(args, "job");
    bool remove = ArgOf(args, "remove") == "1";
    // The id names a directory under this node's stream dir: nothing that could leave it.
    if (job.empty() || job.size() > 128 ||
        job.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            std::string::npos) {
      done(Status::InvalidArgument("stream.stop_job: not a job id: " + job.substr(0, 64)), {});
      return;
    }
    Worker* w = worker_.get();
    forwarder_->Submit([w, job, remove, done] {
      // The final reports travel back with the answer, so the leader never misses the last one.
      auto finals = std::make_shared<std::vector<TaskReport>>(w->StopJob(job, remove));
      done(Status::Ok(), [finals](wire::Packer& pk) {
        pk.pack_map(1);
        pk.pack("reports");
        pk.pack_array(static_cast<uint32_t>(finals->size()));
        for (const auto& r : *finals) PackTaskReport(pk, r);
      });
    });
    return;
  }
  if (cmd == "stream.stop_task" || cmd == "stream.rewire") {
    auto stage = ParseCount(ArgOf(args, "stage"), "stage", 1000);
    auto task = ParseCount(ArgOf(args, "task"), "task", 1000);
    if (!stage.ok() || !task.ok()) {
      done(!stage.ok() ? stage.status() : task.status(), {});
      return;
    }
    std::string job = ArgOf(args, "job"), endpoint = ArgOf(args, "endpoint");
    Worker* w = worker_.get();
    if (cmd == "stream.rewire") {
      size_t n =
          w->Rewire(job, static_cast<uint32_t>(*stage), static_cast<uint32_t>(*task), endpoint);
      done(Status::Ok(), [n](wire::Packer& pk) {
        pk.pack_map(1);
        pk.pack("tasks");
        pk.pack_uint64(n);
      });
      return;
    }
    forwarder_->Submit([w, job, stage, task, done] {
      auto r = w->StopTask(job, static_cast<uint32_t>(*stage), static_cast<uint32_t>(*task));
      if (!r.ok()) {
        done(r.status(), {});
        return;
      }
      TaskReport rep = *r;
      done(Status::Ok(), [rep](wire::Packer& pk) { PackTaskReport(pk, rep); });
    });
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
  if (cmd == "stream.report") {
    if (!leader_) {
      done(Status::FailedPrecondition("this node is not the leader"), {});
      return;
    }
    std::string bytes = ArgOf(args, "reports");
    std::vector<TaskReport> reports;
    try {
      auto oh = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr,
                                msgpack::unpack_limit(4096, 64, 64u << 10, 1u << 20, 0, 8));
      const msgpack::object& o = oh.get();
      if (o.type != msgpack::type::ARRAY) throw std::runtime_error("not an array");
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        auto r = ReadTaskReport(o.via.array.ptr[i]);
        if (!r.ok()) {
          done(Status::InvalidArgument(r.status().message()), {});
          return;
        }
        reports.push_back(std::move(*r));
      }
    } catch (const std::exception& e) {
      done(Status::InvalidArgument(std::string("reports do not decode: ") + e.what()), {});
      return;
    }
    leader_->OnReports(reports);
    done(Status::Ok(), {});
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

void StreamService::Forward(const std::string& cmd, const Args& args, Reply done) {
  std::string leader = options_.leader;
  forwarder_->Submit([leader, cmd, args, done] {
    auto deadline = cmd == "job.submit" ? std::chrono::seconds(120) : std::chrono::seconds(10);
    auto env = transport::CallOnce(
        "tcp://" + leader, wire::MsgType::kAdminCommand,
        [&](wire::Packer& pk) {
          pk.pack_map(2);
          pk.pack("cmd");
          pk.pack(cmd);
          pk.pack("args");
          pk.pack(args);
        },
        deadline);
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
