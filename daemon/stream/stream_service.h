// StreamService: the stream engine in one raind (README.md). Every node runs a Worker; the
// leader node also runs the Leader. Commands come from the admin service: "job.*" are answered
// by the leader (a non-leader forwards them), "stream.*" are the leader<->worker protocol.
// Thread-safety: Command() may be called from any thread; Start/Stop from the main thread.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "daemon/hydfs/hydfs_service.h"
#include "daemon/membership/membership_service.h"
#include "daemon/stream/leader.h"
#include "daemon/stream/worker.h"
#include "shared/util/worker_pool.h"

namespace rs::stream {

struct StreamOptions {
  std::string host = "127.0.0.1";
  std::string dir;  // <data_dir>/stream (emptied at start)
  // HOST:PORT of the leader's control port; empty: this node leads. Filled in by the node from
  // --leader, else the introducer.
  std::string leader;
  bool leader_hosts_tasks = false;
  TaskConfig knobs;  // window, batch_tuples, resend_ms, checkpoint_ms, sink_flush_ms, test knob
  SandboxOptions sandbox;  // the operator_* keys (operator_sandbox.h)
};

class StreamService {
 public:
  using Args = std::map<std::string, std::string>;

  explicit StreamService(StreamOptions options) : options_(std::move(options)) {}
  ~StreamService();

  // `self_endpoint` is this node's HOST:PORT (its control port).
  Status Start(const std::string& self_endpoint, membership::MembershipService* membership,
               hydfs::HydfsService* hydfs);
  void Stop();
  bool is_leader() const { return leader_ != nullptr; }

  void Command(const std::string& cmd, const Args& args, Reply done);

 private:
  void Forward(const std::string& cmd, const Args& args, Reply done);

  StreamOptions options_;
  std::string self_;
  membership::MembershipService* membership_ = nullptr;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Leader> leader_;
  std::unique_ptr<WorkerPool> forwarder_;
};

}  // namespace rs::stream
