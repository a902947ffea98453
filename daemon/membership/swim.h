// Swim: the membership protocol as a pure state machine (no sockets, threads or clocks).
// Drive it with Step(message, now) for every datagram received and Tick(now) every few ms; take
// what to send with TakeOutbox() and what happened with TakeEvents(). Not thread-safe: one owner
// (MembershipService's loop thread, or a unit test with a manual clock).
//
// Failure detection, switchable at runtime through ClusterConfig:
//  * ping (SWIM): each probe_interval one member, taken round-robin from a shuffled list, gets a
//    Ping. No Ack within probe_timeout -> `indirect_probes` members get a PingReq and relay a
//    Ping/Ack. No ack by the end of the interval -> the member is suspected (suspicion on) or
//    failed (suspicion off).
//        t=0 Ping ──> B      t=probe_timeout PingReq ──> C,D,E ──Ping──> B
//        t=probe_interval: no Ack from anyone -> Suspect(B)
//  * gossip: each heartbeat_interval a node bumps its own heartbeat counter and sends its table
//    of (ring id, heartbeat) to gossip_fanout random members; receivers keep the maximum. A
//    member whose counter has not risen for heartbeat_timeout is suspected (or failed).
//
// Suspicion: a suspect is failed after suspicion_timeout unless it refutes, which it does on
// hearing of the suspicion by raising its incarnation and gossiping itself alive. A suspicion
// is also sent straight to the suspect, and again whenever the suspect shows signs of life
// without having refuted (its broadcasts may have been lost). A node that heard nothing for two
// periods was itself cut off: it extends its timers by the silence instead of convicting
// members for its own deafness (after Lifeguard's local health).
//
// A minority convicts nobody (swim_verdicts.cc): a verdict on our own evidence is first put to a
// canvass, and stands only if a majority of the active members answers and the accused does
// not; a node on the small side of a partition withholds its verdicts.
//
// Anti-entropy: every ~30 s (120 rounds) a node exchanges its whole list with one random member
// (kSync / kSyncReply over the direct channel), and at once with a gossip sender whose heartbeat
// table names members it has never heard of. Dissemination can lose an update; this cannot.
//
// Dissemination: every state change becomes a record in a broadcast queue; records ride on
// every datagram (at most max_piggyback, fewest-sent first) and, while the queue is non-empty,
// are pushed to gossip_fanout random members every gossip_interval. Each record is sent
// retransmit_mult * ceil(log2(N+1)) times, then dropped: bounded fanout, bounded retransmits.
//
// Order of records about one member: higher incarnation wins; at equal incarnation
// failed/left > suspect > alive. Failed and left are final for that member id; a restarted or
// rejoining process has a new id. A failed member that still sends us datagrams is told its
// verdict, and every 8th round one recently failed member is sent its verdict unasked (so a
// partition that heals does not leave a node alone forever); a node that learns it was declared
// failed reports kExpelled and stops probing (the service rejoins it under a new id). Removed
// ids are remembered for a day (TombstoneFor), so a node that was cut off for hours is still
// told its verdict instead of slipping back in under its old id.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "daemon/membership/types.h"
#include "shared/status.h"

namespace rs::membership {

struct Outgoing {
  NodeId to;
  Ports ports;  // the recipient's ports, as known when the message was made
  Message message;
};

struct Stats {
  uint64_t probes = 0;
  uint64_t indirect_probes = 0;
  uint64_t probe_failures = 0;
  uint64_t refutations = 0;
  // Members that turned suspect in this node's view (heard of, or its own probes), and the
  // suspicions its own probes raised.
  uint64_t suspicions = 0;
  uint64_t suspicions_raised = 0;
  // Verdicts this node held back because no majority of the cluster answered its canvass (it
  // was on the minority side of a partition), and canvasses it made.
  uint64_t verdicts_withheld = 0;
  uint64_t canvasses = 0;
};

class Swim {
 public:
  Swim(MemberRecord self, ClusterConfig config, uint64_t seed, TimePoint now);

  // Network input. Messages addressed to an older id of this process are ignored.
  void Step(const Message& message, TimePoint now);
  // Timers: probes, timeouts, heartbeats, dissemination, cleanup. Call every few ms.
  void Tick(TimePoint now);

  // Introducer side of a join: adds (or revives nothing: a removed id is refused).
  Status AddMember(const MemberRecord& joiner, TimePoint now);
  // Joiner side: the member list and config handed back by the introducer.
  void ApplyJoin(const std::vector<MemberRecord>& members, const ClusterConfig& config,
                 TimePoint now);
  // Ids this process held before `self` (it was expelled and rejoined), each with the last
  // incarnation it had (only an id's owner raises it, so no member knows a higher one). They are
  // dead for certain: a record of one, from a join reply or gossip of a member that still
  // believes in it, is buried at once (failed, and gossiped as failed), where it would otherwise
  // wait for a suspicion to time out and keep the cluster from converging after a heal.
  // Call before ApplyJoin.
  void SetFormerIds(std::map<NodeId, uint64_t> former) { former_ = std::move(former); }
  // Graceful leave: self becomes left (incarnation + 1) and the record is pushed at once.
  void Leave(TimePoint now);
  // A local config change: validated, versioned above every version seen, then gossiped.
  Status UpdateConfig(const ClusterConfig& desired, TimePoint now);

  std::vector<Outgoing> TakeOutbox();
  std::vector<Event> TakeEvents();

  // Records of every member still listed (including self), for join replies and views.
  std::vector<MemberRecord> Records() const;
  // Time of the last state change of each listed member.
  std::map<NodeId, TimePoint> StateSince() const;
  const MemberRecord& self() const { return self_; }
  const ClusterConfig& config() const { return config_; }
  bool expelled() const { return expelled_; }
  // Who told us we were declared failed (a member of the side that convicted us, reachable).
  const NodeId& expelled_by() const { return expelled_by_; }
  size_t ActiveCount() const;  // alive + suspect, self included
  const Stats& stats() const { return stats_; }
  static uint64_t RingId(const NodeId& id);

 private:
  struct Member {
    MemberRecord record;
    uint64_t ring_id = 0;
    TimePoint state_since;
    TimePoint learned;  // when this node first listed it
    uint64_t heartbeat = 0;
    TimePoint heartbeat_seen;
    // While suspect: the distinct members that suspected it on their own (Lifeguard's
    // independent confirmations; SuspicionTimeout()).
    std::set<NodeId> suspecters;
    // Last sign of this member being up: a datagram from it, an ack from it (direct, or relayed
    // by a member we asked), or its heartbeat rising.
    TimePoint heard{};
    // A verdict under way (see "A minority convicts nobody" in swim_verdicts.cc): when it was
    // last put to a canvass (zero: not yet), whether it was counted as withheld, and, without
    // suspicion, since when a failed probe or stale heartbeat makes its failure pending (zero:
    // none), when that failure is due, and what the evidence was, for the fail event.
    TimePoint canvassed_at{};
    bool withheld = false;
    TimePoint pending_since{};
    TimePoint due{};
    std::string evidence;
  };
  // One round of asking the cluster, shared by every verdict due at the time: a ping to enough
  // members to make up a majority, each also asked to probe the accused (PingReq), and a direct
  // ping to each accused. Acks with seq in [seq_lo, seq_hi] prove whom we can reach.
  struct Canvass {
    TimePoint at{};
    uint64_t seq_lo = 0, seq_hi = 0;
    std::set<NodeId> answered;
  };
  struct Probe {
    NodeId target;
    uint64_t seq = 0;
    TimePoint started;
    bool indirect_sent = false;
    bool acked = false;
  };
  struct Relay {
    NodeId requester;
    uint64_t requester_seq = 0;
    NodeId target;
    TimePoint expires;
  };
  struct Broadcast {
    MemberRecord record;
    uint32_t transmits = 0;
  };

  // Merges one record (from gossip, a join, or a datagram's sender); queues it for
  // re-broadcast when it changed anything. `via` names who told us, for the event log.
  void Apply(const MemberRecord& record, const NodeId& via, TimePoint now);
  void BuryFormer(const MemberRecord& record, TimePoint now);
  void ApplyConfig(const ClusterConfig& config, TimePoint now);  // merges
  void AdoptConfig(ClusterConfig next, TimePoint now);
  // Effective timeouts: a merge of concurrent changes may pair values no single change could.
  milliseconds ProbeTimeout() const;
  milliseconds HeartbeatTimeout() const;
  // How long a suspect has to refute: suspicion_timeout_ms, shortened by independent
  // confirmations down to a quarter of it (Lifeguard's dynamic suspicion).
  milliseconds SuspicionTimeout(const Member& m) const;
  // We suspect `m` on our own evidence (probe or heartbeat): a new suspicion, or a confirmation
  // of one we heard, which is gossiped so the others count it too.
  void SuspectOwn(Member& m, TimePoint now, const std::string& detail);
  // Our own probe or heartbeat timer found `m` unresponsive: suspect it (suspicion on), or
  // make its failure pending on the majority rule (suspicion off).
  void OwnEvidence(Member& m, TimePoint now, const std::string& detail);
  // A member we have never heard from (with gossip: whose heartbeat we never saw rise), listed
  // less than JoinGrace() ago, may still be making its connections (CurveZMQ handshakes with
  // every member, on a host where many nodes start at once): a missed probe or a still
  // heartbeat is not yet evidence against it.
  bool StillConnecting(const Member& m, TimePoint now) const;
  milliseconds JoinGrace() const;  // 3 detection timeouts, at least 3 s
  void Heard(const NodeId& id, TimePoint now);
  void Acked(const NodeId& id);  // it answered a probe: a pending failure is off (ping)
  // The majority rule: the current canvass was answered by a strict majority of the active
  // members, ourselves included (at exactly half: the half holding the lowest ring id).
  bool CanvassMajority() const;
  void StartCanvass(const std::vector<NodeId>& accused, TimePoint now);
  // How long a canvass waits for answers before it is judged.
  milliseconds CanvassWindow() const;
  Canvass canvass_;
  milliseconds DetectionPeriod() const;  // probe_interval_ms or heartbeat_interval_ms
  void TickVerdicts(TimePoint now);
  void Convict(Member& m, TimePoint now, const std::string& why);
  void SetState(Member& m, MemberState state, uint64_t incarnation, TimePoint now, EventKind event,
                const std::string& detail);
  void Enqueue(const MemberRecord& record);
  void Refute(uint64_t seen_incarnation, TimePoint now);
  void HeardAfterSilence(TimePoint now);
  void SeenAlive(const NodeId& id, TimePoint now);
  bool TellTheDead(const MemberRecord& sender, TimePoint now);
  void ContactTheDead();
  void RequestSync(const NodeId& peer, TimePoint now);
  void SyncWithRandomMember(TimePoint now);
  std::vector<MemberRecord> SyncRecords() const;
  // How long a removed id is remembered (and refused, and told its verdict if it speaks): at
  // least a day, as serf keeps trying to reconnect for a day, so a member cut off for hours
  // still learns it was expelled instead of slipping back in under its old id.
  Clock::duration TombstoneFor() const {
    return std::max<Clock::duration>(10 * milliseconds(config_.cleanup_ms), std::chrono::hours(24));
  }
  static constexpr size_t kMaxSyncRecords = 180;
  static constexpr uint64_t kSyncEvery = 120;       // rounds between push-pull syncs (~30 s)
  static constexpr uint64_t kDeadContactEvery = 8;  // probe/heartbeat rounds between contacts

  void TickProbe(TimePoint now);
  void TickHeartbeat(TimePoint now);
  void TickGossip(TimePoint now);
  void TickCleanup(TimePoint now);
  void ProbeFailed(const NodeId& target, TimePoint now);

  Message NewMessage(MsgKind kind, const NodeId& target);
  void Send(const NodeId& to, Message message);
  void Piggyback(Message* message);
  uint32_t RetransmitLimit() const;
  std::vector<NodeId> RandomMembers(size_t k, const std::vector<NodeId>& exclude);
  bool Active(const Member& m) const;

  MemberRecord self_;
  ClusterConfig config_;
  std::mt19937_64 rng_;
  bool expelled_ = false;
  bool left_ = false;

  std::map<NodeId, Member> members_;  // others; self is in self_
  // Heartbeat tables name members by the top 32 bits of their ring id (8 bytes an entry on the
  // wire instead of ~14). Two of ~100 members collide with odds of about 1e-6.
  static uint32_t ShortId(uint64_t ring_id) { return static_cast<uint32_t>(ring_id >> 32); }
  std::unordered_map<uint32_t, NodeId> by_short_id_;  // short id -> member, for heartbeats
  std::map<NodeId, TimePoint> removed_;               // tombstones: id -> forget-after time
  NodeId expelled_by_;
  std::map<NodeId, uint64_t> former_;  // this process's earlier ids -> their last incarnation
  std::deque<Broadcast> broadcasts_;
  uint32_t config_transmits_left_ = 0;
  std::map<NodeId, TimePoint> config_pushed_;  // last direct config repair per peer
  std::map<NodeId, TimePoint> told_suspect_;   // last direct "you are suspected" per peer
  std::map<NodeId, TimePoint> synced_;         // last sync request per peer
  TimePoint last_heard_{};                     // last datagram received from anyone

  std::vector<NodeId> probe_order_;
  size_t probe_index_ = 0;
  std::optional<Probe> probe_;
  TimePoint next_probe_;
  std::map<uint64_t, Relay> relays_;
  uint64_t seq_ = 0;
  uint64_t probe_rounds_ = 0;

  uint64_t heartbeat_ = 0;
  TimePoint next_heartbeat_;
  TimePoint next_gossip_;
  TimePoint next_cleanup_;
  Protocol last_protocol_;

  std::vector<Outgoing> outbox_;
  std::vector<Event> events_;
  Stats stats_;
};

}  // namespace rs::membership
