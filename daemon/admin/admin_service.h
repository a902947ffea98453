// AdminService: the node's control endpoint. Serves rainctl's kAdminCommand requests and peers'
// kJoinRequest on the node's public ROUTER (its HOST:PORT). Runs on its own EventLoop so a slow
// command never stalls membership; membership commands are posted to the membership loop and
// answered when they complete. Reads use the membership view snapshot.
// Thread-safety: construct, Start() and Stop() from the main thread only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/admin/keyring_sync.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/logquery/logquery_service.h"
#include "daemon/membership/membership_service.h"
#include "daemon/stream/stream_service.h"
#include "shared/transport/event_loop.h"
#include "shared/transport/rpc.h"

namespace rs::admin {

struct NodeInfo {
  std::string data_dir;
  std::string log_file;
  uint64_t started_ms = 0;
  std::string introducer;  // HOST:PORT given at start, or empty
};

// Where a console command's answer goes: rainctl's request (a Responder), or an HTTP request
// of the web console (AdminService::Run). Answered once, on the admin loop; the payload is
// written during the call.
class CommandReply {
 public:
  using Fn = std::function<void(const Status&, const wire::BodyWriter&)>;
  explicit CommandReply(Fn fn) : fn_(std::make_shared<Fn>(std::move(fn))) {}
  void Reply(const Status& status, const wire::BodyWriter& payload = {}) const {
    (*fn_)(status, payload);
  }
  void Ok(const wire::BodyWriter& payload = {}) const { Reply(Status::Ok(), payload); }

 private:
  std::shared_ptr<Fn> fn_;
};

class AdminService {
 public:
  using Args = std::map<std::string, std::string>;

  AdminService(std::string host, uint16_t port, NodeInfo info);
  ~AdminService();

  // Binds the control port; returns the port actually bound.
  Result<uint16_t> Bind();
  // Serves requests once membership and HyDFS exist; starts the loop thread. Commands named
  // "hydfs.*" are forwarded to `hydfs` and answered when it completes them; "log.*" go to
  // `logquery`; "job.*" and "stream.*" to `stream`.
  void Start(membership::MembershipService* membership, hydfs::HydfsService* hydfs,
             logquery::LogQueryService* logquery, stream::StreamService* stream);
  void Stop();
  uint64_t malformed_frames() const { return server_ ? server_->malformed_frames() : 0; }
  // Runs console command `cmd` for a caller whose key has `role` (the HTTP console's token), as
  // though rainctl had sent it: the same roles are checked, the same payload answers. Any
  // thread, after Start; `done` runs on the admin loop.
  void Run(const std::string& cmd, Args args, security::Role role, CommandReply done);

 private:
  void OnCommand(const wire::Envelope& env, const transport::Responder& responder);
  // Every console command, on the admin loop: the role check, then the command.
  void Dispatch(const std::string& cmd, Args args, security::Role caller,
                const CommandReply& responder);
  void OnJoinRequest(const wire::Envelope& env, const transport::Responder& responder);
  // Runs `done` on the admin loop once the membership loop has finished.
  void ReplyStatusLater(const CommandReply& responder,
                        const std::function<void(std::function<void(Status)>)>& start);

  std::string host_;
  uint16_t port_;
  NodeInfo info_;
  transport::EventLoop loop_;
  std::unique_ptr<transport::RpcServer> server_;
  membership::MembershipService* membership_ = nullptr;
  hydfs::HydfsService* hydfs_ = nullptr;
  logquery::LogQueryService* logquery_ = nullptr;
  stream::StreamService* stream_ = nullptr;
  std::unique_ptr<KeyringSync> keys_;
  uint64_t denied_commands_ = 0;  // loop thread only
};

}  // namespace rs::admin
