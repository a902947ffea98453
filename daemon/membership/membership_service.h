// MembershipService: the IO shell around Swim. Owns one EventLoop thread and every membership
// socket: a ROUTER (ping/ack/ping-req datagrams in), one DEALER per peer (datagrams out, connected
// as soon as the peer is known; at most 64 queued to a dead peer), a PUB (gossip out, topic =
// recipient's node id) and a SUB (gossip in, subscribed to our own id, connected to every member's
// PUB).
//
// Thread-safety: every public method may be called from any thread. Commands run on the loop
// thread; their `done` callbacks run there too and must not block (post back to your own loop).
// view() and EventsSince() read snapshots published by the loop thread.
//
// Lifecycle: Start() binds and runs the loop; then Found() or Join(); Leave() on SIGTERM; Stop().
// A node that leaves, or learns it was declared failed, is out of the cluster until the next
// Join(), which gives it a new NodeId (the crash-stop model: an old id never comes back). An
// expelled node rejoins by itself through the members it last knew, retrying with backoff (1 s
// doubling to 30 s) for up to 10 minutes; after that only `rainctl join` brings it back.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <unordered_map>

#include "daemon/membership/swim.h"
#include "daemon/membership/types.h"
#include "shared/ids.h"
#include "shared/transport/event_loop.h"
#include "shared/transport/rpc.h"

namespace rs::membership {

struct ServiceOptions {
  std::string host = "127.0.0.1";
  uint16_t control_port = 0;  // the node's public port (already bound by the control server)
  uint16_t swim_port = 0;     // 0: the OS picks
  uint16_t gossip_port = 0;
  ClusterConfig cluster;
  LocalOptions local;
};

struct TrafficStats {
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t messages_sent = 0, messages_received = 0;
  uint64_t dropped_injected = 0, malformed = 0;
  // Frames dropped undecoded from a connection that sent too many malformed ones (a flood).
  uint64_t flood_dropped = 0;
};

class MembershipService {
 public:
  explicit MembershipService(ServiceOptions options);
  ~MembershipService();

  // Binds the membership sockets, publishes the first view and starts the loop thread.
  // `extra_ports` are other services' ports, advertised in this node's member record.
  Status Start(const Ports& extra_ports);
  void Stop();

  void Found();  // become a one-member cluster
  void Join(const HostPort& introducer, std::function<void(Status)> done);
  void HandleJoinRequest(MemberRecord joiner, std::function<void(Result<JoinReply>)> done);
  // Marks self left, gossips it for leave_linger_ms, then calls done.
  void Leave(std::function<void()> done);
  void SetConfig(std::string key, std::string value, std::function<void(Status)> done);
  // Cluster-wide protocol and suspicion switch in one version.
  void Switch(Protocol protocol, bool suspicion, std::function<void(Status)> done);

  ViewPtr view() const;
  NodeId initial_id() const { return initial_id_; }  // the id this process started with
  std::vector<Event> EventsSince(uint64_t seq, size_t max) const;
  TrafficStats traffic() const;
  Stats swim_stats() const;
  const Ports& ports() const { return ports_; }

 private:
  void StartSwim(const NodeId& id, bool found);
  // Returns false for a malformed datagram (counted here).
  bool OnDatagram(std::string_view payload);
  // The ROUTER's frames, read in a bounded batch; a connection that floods malformed frames
  // has the rest of its frames dropped undecoded for the rest of the second.
  void DrainRouter();
  void DrainSub();
  struct SenderBudget {
    TimePoint window_start{};
    uint32_t malformed = 0;
  };
  void OnTick();
  void Flush();
  void Publish(bool force);
  void SyncPeers();
  zmq::socket_t* DealerFor(const NodeId& id, const Ports& ports);
  // Joins through `introducers` under a new id, retrying with backoff until give_up.
  void Rejoin(std::vector<HostPort> introducers, TimePoint give_up, Clock::duration backoff);
  void DoJoin(const std::vector<HostPort>& introducers, size_t index, TimePoint until,
              uint64_t attempt, std::function<void(Status)> done);
  NodeId NextId();
  Status ApplyConfigChange(const std::function<Status(ClusterConfig*, LocalOptions*)>& change);

  ServiceOptions options_;
  Ports ports_;
  transport::EventLoop loop_;
  std::unique_ptr<transport::AsyncRpcClient> rpc_;
  std::unique_ptr<zmq::socket_t> router_, pub_, sub_;
  std::map<NodeId, std::unique_ptr<zmq::socket_t>> dealers_;  // loop thread only
  std::set<std::string> sub_connected_;                       // loop thread only
  std::string subscribed_topic_;                              // loop thread only
  std::unique_ptr<Swim> swim_;                                // loop thread only; null when out
  NodeId self_id_;                                            // loop thread only
  NodeId initial_id_;                                         // constant after Start()
  bool id_used_ = false;  // self_id_ has been a member id; the next membership needs a new one
  bool leaving_ = false;
  bool joining_ = false;
  uint64_t join_attempt_ = 0;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, SenderBudget> budgets_;  // by ROUTER routing id; loop thread
  TimePoint last_publish_;
  std::map<NodeId, uint64_t> former_ids_;  // this process's ids before expulsions -> incarnation
  std::vector<HostPort> last_known_;  // control addresses of members, for rejoin after expulsion

  mutable std::mutex mu_;
  ViewPtr view_;                 // guarded by mu_
  std::deque<Event> history_;    // guarded by mu_
  uint64_t next_event_seq_ = 1;  // guarded by mu_
  TrafficStats traffic_;         // guarded by mu_
  Stats swim_stats_;             // guarded by mu_
};

}  // namespace rs::membership
