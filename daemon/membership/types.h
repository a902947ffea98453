// Value types of the membership layer: member records (what gossip carries), the cluster-wide
// configuration, the decoded datagram, membership events and the published view.
// Plain data; thread-compatible. Wire layouts are in shared/wire/FORMAT.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/ids.h"

namespace rs::membership {

enum class MemberState : uint8_t { kAlive = 0, kSuspect = 1, kFailed = 2, kLeft = 3 };
enum class Protocol : uint8_t { kPing = 0, kGossip = 1 };

const char* StateName(MemberState state);
const char* ProtocolName(Protocol protocol);

// Named ports a member listens on besides its control port ("swim", "gossip", later "hydfs"...).
using Ports = std::map<std::string, uint16_t>;

// One member as gossiped: the unit of dissemination. Higher incarnation wins; at equal
// incarnation failed/left > suspect > alive (see Swim::Apply).
struct MemberRecord {
  NodeId id;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  Ports ports;
  // For a suspect record: the member whose own probe (or heartbeat timer) suspected it. Distinct
  // suspecters are independent confirmations that shorten the suspicion timeout (Lifeguard).
  // Empty for other states, and from nodes that do not send it.
  NodeId suspecter = NodeId();
};

// Settings every node of a cluster shares. Each key is a last-writer-wins register: a change
// made at any node stamps the keys it changes with (version << 20 | hash(origin) & 0xFFFFF),
// version being one more than the highest seen (a Lamport clock), and spreads by gossip; a merge
// keeps, per key, the value with the higher stamp, so concurrent changes of different keys at
// different nodes all survive. Every datagram carries Digest(), so a node that missed a change
// is repaired by the first peer that notices. Field docs (unit, default, tradeoff) are in
// daemon/membership/config.cc next to each key.
struct ClusterConfig {
  uint64_t version = 0;                    // the highest version among the keys' stamps
  std::string origin;                      // node id that made the latest change
  std::map<std::string, uint64_t> stamps;  // per cluster-wide key; absent = 0
  Protocol protocol = Protocol::kPing;
  bool suspicion = true;
  uint32_t probe_interval_ms = 250;
  uint32_t probe_timeout_ms = 100;
  uint32_t indirect_probes = 3;
  uint32_t gossip_interval_ms = 100;
  uint32_t gossip_fanout = 3;
  uint32_t heartbeat_interval_ms = 200;
  uint32_t heartbeat_timeout_ms = 1000;
  uint32_t suspicion_timeout_ms = 1000;
  uint32_t retransmit_mult = 3;
  uint32_t max_piggyback = 8;
  uint32_t cleanup_ms = 30000;

  // A hash of every (key, stamp): equal digests mean equal configs.
  uint64_t Digest() const;
};

// Node-local knobs (not gossiped).
struct LocalOptions {
  double drop_rate = 0;             // % of received membership datagrams dropped (fault injection)
  uint32_t join_timeout_ms = 3000;  // how long a join keeps retrying before it fails
  uint32_t leave_linger_ms = 300;   // how long a leaving node keeps gossiping its departure
};

// kGossip travels over PUB/SUB; every other kind over the direct DEALER/ROUTER channel.
enum class MsgKind : uint8_t { kPing, kAck, kPingReq, kGossip, kSync, kSyncReply };

// One membership datagram, decoded. `target` is the intended recipient for kPing (a restarted
// process on the same port must not answer for its predecessor), the member to probe for
// kPingReq, the member proven alive for kAck, and the recipient for kGossip.
struct Message {
  MsgKind kind = MsgKind::kGossip;
  MemberRecord from;
  NodeId target;
  uint64_t seq = 0;
  uint64_t config_digest = 0;
  std::vector<MemberRecord> updates;
  std::vector<std::pair<uint32_t, uint64_t>> heartbeats;  // (short id, heartbeat), gossip mode
  std::optional<ClusterConfig> config;
};

// What an introducer hands a joiner: every listed member and the cluster config.
struct JoinReply {
  std::vector<MemberRecord> members;
  ClusterConfig config;
};

enum class EventKind : uint8_t {
  kJoin,      // a new member appeared
  kSuspect,   // a member is suspected
  kAlive,     // a suspected member refuted (higher incarnation)
  kFail,      // a member was declared failed
  kLeave,     // a member left voluntarily
  kRemove,    // a failed/left entry was cleaned up
  kRefute,    // this node refuted a suspicion about itself
  kExpelled,  // this node learned it was declared failed
  kConfig,    // the cluster configuration changed
  kWithheld,  // this node would fail a member but hears no majority: it may be the one cut off
};
const char* EventName(EventKind kind);

struct Event {
  EventKind kind;
  NodeId member;
  uint64_t incarnation = 0;
  std::string detail;    // e.g. who reported it, or the config change
  uint64_t wall_ms = 0;  // stamped by the service
  uint64_t seq = 0;      // position in the node's event history, stamped by the service
};

struct MemberView {
  MemberRecord record;
  uint64_t ring_id = 0;
  uint64_t since_ms = 0;  // wall time of the last state change seen here
};

// Immutable snapshot published by the membership service after every change.
struct View {
  NodeId self;
  MemberState self_state = MemberState::kLeft;
  bool in_cluster = false;
  ClusterConfig config;
  LocalOptions local;
  std::vector<MemberView> members;  // includes self; sorted by id
};
using ViewPtr = std::shared_ptr<const View>;

}  // namespace rs::membership
