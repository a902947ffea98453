// StreamService: the stream engine in one raind (README.md). Every node runs a Worker; the
// leader node also runs the Leader. From the admin service come the clients' commands ("job.*",
// answered by the leader, which a non-leader forwards them to, and "stream.kill_task") and the
// typed messages between daemons (messages.h: the leader's calls to workers, the reports).
// Thread-safety: Command() and Handle() may be called from any thread; Start/Stop from the main
// thread.
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
  // For GET /metrics: the last reports of the tasks this node hosts, and (on the leader) every
  // job's counts. Any thread, after Start.
  std::vector<TaskReport> TaskReports() const;
  std::vector<JobMetrics> JobsMetrics() const;

  void Command(const std::string& cmd, const Args& args, Reply done);
  // One typed message (`type` one of messages.h's, `body` its decoded envelope body, read
  // before this returns); `done` gets the reply.
  void Handle(wire::MsgType type, const msgpack::object& body, Reply done);
  // The message types Handle takes.
  static const std::vector<wire::MsgType>& MessageTypes();

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
