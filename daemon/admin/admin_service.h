// AdminService: the node's control endpoint. Serves rainctl's kAdminCommand requests and peers'
// kJoinRequest on the node's public ROUTER (its HOST:PORT). Runs on its own EventLoop so a slow
// command never stalls membership; membership commands are posted to the membership loop and
// answered when they complete. Reads use the membership view snapshot.
// Thread-safety: construct, Start() and Stop() from the main thread only.
#pragma once

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

class AdminService {
 public:
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

 private:
  void OnCommand(const wire::Envelope& env, const transport::Responder& responder);
  void OnJoinRequest(const wire::Envelope& env, const transport::Responder& responder);
  // Runs `done` on the admin loop once the membership loop has finished.
  void ReplyStatusLater(const transport::Responder& responder,
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
