#include "daemon/membership/swim.h"

#include <algorithm>
#include <cmath>

#include "daemon/membership/config.h"
#include "shared/util/hash.h"

namespace rs::membership {
namespace {

// Precedence of states at equal incarnation.
int Rank(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return 0;
    case MemberState::kSuspect:
      return 1;
    case MemberState::kFailed:
      return 2;
    case MemberState::kLeft:
      return 2;
  }
  return 0;
}

bool Final(MemberState s) { return s == MemberState::kFailed || s == MemberState::kLeft; }

milliseconds Ms(uint32_t v) { return milliseconds(v); }

}  // namespace

uint64_t Swim::RingId(const NodeId& id) { return StableHash64(id.str()); }

Swim::Swim(MemberRecord self, ClusterConfig config, uint64_t seed, TimePoint now)
    : self_(std::move(self)), config_(std::move(config)), rng_(seed) {
  self_.state = MemberState::kAlive;
  next_probe_ = now + Ms(config_.probe_interval_ms);
  next_heartbeat_ = now;
  next_gossip_ = now;
  next_cleanup_ = now;
  last_protocol_ = config_.protocol;
}

milliseconds Swim::ProbeTimeout() const {
  return Ms(std::min(config_.probe_timeout_ms, config_.probe_interval_ms / 2));
}

milliseconds Swim::HeartbeatTimeout() const {
  return Ms(std::max(config_.heartbeat_timeout_ms, 2 * config_.heartbeat_interval_ms));
}

// Lifeguard (Dadgar et al., 2018): every member that suspects a node on its own probes is an
// independent confirmation; a real failure is confirmed by several quickly, a lossy link to one
// prober rarely. With C confirmations beyond the first (at most K = 3), the timeout falls from
// max = suspicion_timeout_ms towards min = max / 2:
//   max - (max - min) * log(C + 1) / log(K + 1)
// so 1000 ms becomes 750, 604 and 500 ms with 1, 2 and 3 confirmations. Relayed gossip of one
// suspicion does not count again: confirmations are distinct suspecters. A cluster with fewer
// than K possible confirmers (under 5 members) keeps the full timeout, as memberlist does: there
// one slow member's probers are most of the cluster, and their suspicions are not independent.
milliseconds Swim::SuspicionTimeout(const Member& m) const {
  constexpr size_t kConfirmations = 3;
  double max = config_.suspicion_timeout_ms;
  double min = max / 2;
  // Who could confirm: the active members (members_ holds them, the suspect included, but not
  // us), plus us, minus the suspect and the first suspecter.
  size_t active = 0;
  for (const auto& [id, o] : members_) active += Active(o) ? 1 : 0;
  size_t confirmers = active > 0 ? active - 1 : 0;
  double k = static_cast<double>(kConfirmations);
  double c = m.suspecters.empty() ? 0 : static_cast<double>(m.suspecters.size() - 1);
  if (confirmers < kConfirmations || c < 1) return Ms(config_.suspicion_timeout_ms);
  c = std::min(c, k);
  double t = max - (max - min) * std::log(c + 1) / std::log(k + 1);
  return milliseconds(static_cast<int64_t>(std::max(min, t)));
}

void Swim::SuspectOwn(Member& m, TimePoint now, const std::string& detail) {
  if (m.record.state == MemberState::kAlive) {
    m.record.suspecter = self_.id;
    SetState(m, MemberState::kSuspect, m.record.incarnation, now, EventKind::kSuspect, detail);
    m.suspecters = {self_.id};
    Message tell = NewMessage(MsgKind::kGossip, m.record.id);
    Send(m.record.id, std::move(tell));  // lets the suspect refute quickly
    return;
  }
  if (m.record.state == MemberState::kSuspect && m.suspecters.insert(self_.id).second) {
    MemberRecord confirm = m.record;
    confirm.suspecter = self_.id;
    Enqueue(confirm);
  }
}

bool Swim::Active(const Member& m) const {
  return m.record.state == MemberState::kAlive || m.record.state == MemberState::kSuspect;
}

size_t Swim::ActiveCount() const {
  size_t n = (left_ || expelled_) ? 0 : 1;
  for (const auto& [id, m] : members_) n += Active(m) ? 1 : 0;
  return n;
}

std::vector<MemberRecord> Swim::Records() const {
  std::vector<MemberRecord> out;
  out.push_back(self_);
  for (const auto& [id, m] : members_) out.push_back(m.record);
  return out;
}

std::map<NodeId, TimePoint> Swim::StateSince() const {
  std::map<NodeId, TimePoint> out;
  for (const auto& [id, m] : members_) out[id] = m.state_since;
  return out;
}

std::vector<Outgoing> Swim::TakeOutbox() { return std::exchange(outbox_, {}); }
std::vector<Event> Swim::TakeEvents() { return std::exchange(events_, {}); }

uint32_t Swim::RetransmitLimit() const {
  double n = static_cast<double>(ActiveCount());
  return config_.retransmit_mult * static_cast<uint32_t>(std::ceil(std::log2(n + 1)));
}

void Swim::Enqueue(const MemberRecord& record) {
  // A newer record about a member replaces any queued older one.
  broadcasts_.erase(std::remove_if(broadcasts_.begin(), broadcasts_.end(),
                                   [&](const Broadcast& b) { return b.record.id == record.id; }),
                    broadcasts_.end());
  broadcasts_.push_back(Broadcast{record, 0});
}

Message Swim::NewMessage(MsgKind kind, const NodeId& target) {
  Message m;
  m.kind = kind;
  m.from = self_;
  // Gossip's recipient is its PUB/SUB topic already; the field would only cost ~30 bytes.
  if (kind != MsgKind::kGossip) m.target = target;
  m.config_digest = config_.Digest();
  return m;
}

void Swim::Piggyback(Message* message) {
  if (!broadcasts_.empty()) {
    std::stable_sort(
        broadcasts_.begin(), broadcasts_.end(),
        [](const Broadcast& a, const Broadcast& b) { return a.transmits < b.transmits; });
    uint32_t limit = RetransmitLimit();
    size_t n = std::min<size_t>(config_.max_piggyback, broadcasts_.size());
    for (size_t i = 0; i < n; ++i) {
      message->updates.push_back(broadcasts_[i].record);
      ++broadcasts_[i].transmits;
    }
    broadcasts_.erase(std::remove_if(broadcasts_.begin(), broadcasts_.end(),
                                     [&](const Broadcast& b) { return b.transmits >= limit; }),
                      broadcasts_.end());
  }
  if (config_transmits_left_ > 0 && message->kind == MsgKind::kGossip && !message->config) {
    message->config = config_;
    --config_transmits_left_;
  }
}

void Swim::Send(const NodeId& to, Message message) {
  auto it = members_.find(to);
  if (it == members_.end()) return;
  Piggyback(&message);
  outbox_.push_back(Outgoing{to, it->second.record.ports, std::move(message)});
}

std::vector<NodeId> Swim::RandomMembers(size_t k, const std::vector<NodeId>& exclude) {
  std::vector<NodeId> pool;
  for (const auto& [id, m] : members_) {
    if (Active(m) && std::find(exclude.begin(), exclude.end(), id) == exclude.end()) {
      pool.push_back(id);
    }
  }
  std::shuffle(pool.begin(), pool.end(), rng_);
  if (pool.size() > k) pool.resize(k);
  return pool;
}

void Swim::SetState(Member& m, MemberState state, uint64_t incarnation, TimePoint now,
                    EventKind event, const std::string& detail) {
  if (state != MemberState::kSuspect) {
    m.record.suspecter = NodeId();
    m.suspecters.clear();
  }
  m.record.state = state;
  m.record.incarnation = incarnation;
  m.state_since = now;
  events_.push_back(Event{event, m.record.id, incarnation, detail});
  Enqueue(m.record);
}

void Swim::Refute(uint64_t seen_incarnation, TimePoint now) {
  (void)now;
  self_.incarnation = std::max(self_.incarnation, seen_incarnation) + 1;
  ++stats_.refutations;
  events_.push_back(Event{EventKind::kRefute, self_.id, self_.incarnation, "suspected; now alive"});
  Enqueue(self_);
}

void Swim::Apply(const MemberRecord& rec, const NodeId& via, TimePoint now) {
  if (rec.id == self_.id) {
    if (left_ || expelled_) return;
    if (rec.state == MemberState::kFailed) {
      // Failed is final for an id at every incarnation (others will never take us back), even
      // if we refuted a suspicion since: a paused process can wake to a verdict older than its
      // latest refutation.
      expelled_ = true;
      events_.push_back(Event{EventKind::kExpelled, self_.id, rec.incarnation,
                              "declared failed, reported by " + via.str()});
    } else if (rec.state == MemberState::kSuspect && rec.incarnation >= self_.incarnation) {
      Refute(rec.incarnation, now);
    }
    return;
  }
  if (removed_.count(rec.id)) return;
  auto it = members_.find(rec.id);
  if (it == members_.end()) {
    if (Final(rec.state)) {
      removed_[rec.id] = now + 10 * Ms(config_.cleanup_ms);  // never knew it; remember the end
      return;
    }
    Member m;
    m.record = rec;
    m.ring_id = RingId(rec.id);
    m.state_since = now;
    m.heartbeat_seen = now;
    by_short_id_[ShortId(m.ring_id)] = rec.id;
    auto& inserted = members_[rec.id] = m;
    events_.push_back(Event{EventKind::kJoin, rec.id, rec.incarnation, "via " + via.str()});
    if (rec.state == MemberState::kSuspect) {
      events_.push_back(Event{EventKind::kSuspect, rec.id, rec.incarnation, "via " + via.str()});
    }
    Enqueue(inserted.record);
    return;
  }
  Member& m = it->second;
  if (Final(m.record.state)) return;
  bool newer = rec.incarnation > m.record.incarnation ||
               (rec.incarnation == m.record.incarnation && Rank(rec.state) > Rank(m.record.state));
  if (!newer) {
    // Another member's own suspicion of a suspect we know: an independent confirmation,
    // gossiped on so every member counts it.
    if (rec.state == MemberState::kSuspect && m.record.state == MemberState::kSuspect &&
        rec.incarnation == m.record.incarnation && !rec.suspecter.empty() &&
        rec.suspecter != rec.id && m.suspecters.insert(rec.suspecter).second) {
      Enqueue(rec);
    }
    return;
  }
  if (rec.state == MemberState::kAlive) {
    bool was_suspect = m.record.state == MemberState::kSuspect;
    m.record.ports = rec.ports;
    if (was_suspect) {
      SetState(m, MemberState::kAlive, rec.incarnation, now, EventKind::kAlive,
               "refuted, via " + via.str());
    } else {
      m.record.incarnation = rec.incarnation;  // an alive member bumped its incarnation
      Enqueue(m.record);
    }
    m.heartbeat_seen = now;
  } else if (rec.state == MemberState::kSuspect) {
    m.record.suspecter = rec.suspecter;
    SetState(m, MemberState::kSuspect, rec.incarnation, now, EventKind::kSuspect,
             "via " + via.str());
    m.suspecters.clear();
    if (!rec.suspecter.empty() && rec.suspecter != rec.id) m.suspecters.insert(rec.suspecter);
  } else if (rec.state == MemberState::kFailed) {
    SetState(m, MemberState::kFailed, rec.incarnation, now, EventKind::kFail, "via " + via.str());
  } else {
    SetState(m, MemberState::kLeft, rec.incarnation, now, EventKind::kLeave, "via " + via.str());
  }
}

void Swim::ApplyConfig(const ClusterConfig& incoming, TimePoint now) {
  ClusterConfig merged = config_;
  if (!MergeConfig(&merged, incoming)) return;
  AdoptConfig(std::move(merged), now);
}

void Swim::AdoptConfig(ClusterConfig next, TimePoint now) {
  ClusterConfig old = std::move(config_);
  config_ = std::move(next);
  config_transmits_left_ = RetransmitLimit();
  std::string detail = std::string("version=") + std::to_string(config_.version) +
                       " origin=" + config_.origin + " protocol=" + ProtocolName(config_.protocol) +
                       " suspicion=" + (config_.suspicion ? "true" : "false");
  events_.push_back(Event{EventKind::kConfig, self_.id, config_.version, detail});
  if (old.protocol != config_.protocol) {
    // Fresh timers for the new detector: nobody is blamed for the switch itself.
    for (auto& [id, m] : members_) m.heartbeat_seen = now;
    probe_.reset();
    next_probe_ = now + Ms(config_.probe_interval_ms);
    next_heartbeat_ = now;
  }
}

Status Swim::UpdateConfig(const ClusterConfig& desired, TimePoint now) {
  RS_RETURN_IF_ERROR(ValidateConfig(desired));
  ClusterConfig next = config_;
  uint64_t version = config_.version + 1;
  uint64_t stamp = MakeStamp(version, self_.id.str());
  LocalOptions unused;
  bool changed = false;
  for (const auto& key : ConfigKeys()) {
    if (!key.cluster_wide) continue;
    auto want = GetConfigValue(desired, unused, key.name);
    if (!want.ok() || want.value() == GetConfigValue(config_, unused, key.name).value()) continue;
    RS_RETURN_IF_ERROR(SetConfigValue(&next, &unused, key.name, *want, /*validate=*/false));
    next.stamps[key.name] = stamp;  // only the keys this change sets
    changed = true;
  }
  if (!changed) return Status::Ok();
  next.version = version;
  next.origin = self_.id.str();
  AdoptConfig(std::move(next), now);
  return Status::Ok();
}

void Swim::HeardAfterSilence(TimePoint now) {
  // Local health (after Lifeguard): if we heard nothing for several periods, we were the one cut
  // off. Our suspicion and heartbeat timers ran while we were deaf; do not let them convict
  // members who had no chance to reach us.
  uint32_t period = config_.protocol == Protocol::kPing ? config_.probe_interval_ms
                                                        : config_.heartbeat_interval_ms;
  if (last_heard_ != TimePoint{} && now - last_heard_ > 2 * Ms(period)) {
    auto gap = now - last_heard_;
    for (auto& [id, m] : members_) {
      if (m.record.state == MemberState::kSuspect)
        m.state_since = std::min(now, m.state_since + gap);
      m.heartbeat_seen = std::min(now, m.heartbeat_seen + gap);
    }
  }
  last_heard_ = now;
}

void Swim::SeenAlive(const NodeId& id, TimePoint now) {
  // Evidence that a suspect is up but has not refuted: it has not heard of the suspicion (the
  // broadcasts may have been lost). Tell it directly, at most every gossip interval.
  auto it = members_.find(id);
  if (it == members_.end() || it->second.record.state != MemberState::kSuspect) return;
  auto& last = told_suspect_[id];
  if (now - last < Ms(config_.gossip_interval_ms)) return;
  last = now;
  Message tell = NewMessage(MsgKind::kGossip, id);
  tell.updates.push_back(it->second.record);
  Send(id, std::move(tell));
}

bool Swim::TellTheDead(const MemberRecord& sender, TimePoint now) {
  // A member we declared failed is still talking: it missed its own conviction. Tell it, so it
  // can rejoin under a new id, instead of leaving it in a cluster of one.
  MemberRecord verdict;
  auto it = members_.find(sender.id);
  if (it != members_.end() && it->second.record.state == MemberState::kFailed) {
    verdict = it->second.record;
  } else if (it == members_.end() && removed_.count(sender.id)) {
    verdict = sender;
    verdict.state = MemberState::kFailed;
  } else {
    return false;
  }
  auto& last = told_suspect_[sender.id];
  if (now - last >= Ms(config_.gossip_interval_ms)) {
    last = now;
    // Verdicts travel as seq-0 pings over the direct channel: the convicted node's gossip
    // subscriptions to us may be gone (it may have convicted us in turn).
    Message tell = NewMessage(MsgKind::kPing, sender.id);
    tell.updates.push_back(verdict);
    outbox_.push_back(Outgoing{sender.id, sender.ports, std::move(tell)});
  }
  return true;
}

void Swim::Step(const Message& msg, TimePoint now) {
  if (left_ || expelled_) return;
  if (msg.from.id == self_.id) return;
  HeardAfterSilence(now);
  if (TellTheDead(msg.from, now)) {
    // Nothing a convicted member says about others counts; what it says about us still does.
    for (const auto& rec : msg.updates) {
      if (rec.id == self_.id) Apply(rec, msg.from.id, now);
    }
    return;
  }
  // The sender is alive (it just spoke); its record also teaches us its ports.
  Apply(msg.from, msg.from.id, now);
  SeenAlive(msg.from.id, now);
  for (const auto& rec : msg.updates) Apply(rec, msg.from.id, now);
  if (msg.config) ApplyConfig(*msg.config, now);
  if (expelled_) return;

  // Anti-entropy for the cluster config: a peer whose config differs gets ours (at most once a
  // second); it merges, we merge its next one, and both converge on the per-key maximum.
  if (msg.config_digest != config_.Digest() && members_.count(msg.from.id)) {
    auto& last = config_pushed_[msg.from.id];
    if (now - last >= milliseconds(1000)) {
      last = now;
      Message repair = NewMessage(MsgKind::kGossip, msg.from.id);
      repair.config = config_;
      Send(msg.from.id, std::move(repair));
    }
  }

  switch (msg.kind) {
    case MsgKind::kPing: {
      if (msg.target != self_.id) return;  // meant for a previous process on this port
      Message ack = NewMessage(MsgKind::kAck, self_.id);
      ack.seq = msg.seq;
      Send(msg.from.id, std::move(ack));
      break;
    }
    case MsgKind::kPingReq: {
      if (!members_.count(msg.target)) return;
      uint64_t seq = ++seq_;
      relays_[seq] = Relay{msg.from.id, msg.seq, msg.target, now + Ms(config_.probe_interval_ms)};
      Message ping = NewMessage(MsgKind::kPing, msg.target);
      ping.seq = seq;
      Send(msg.target, std::move(ping));
      break;
    }
    case MsgKind::kAck: {
      if (probe_ && !probe_->acked && msg.seq == probe_->seq && msg.target == probe_->target) {
        probe_->acked = true;
        break;
      }
      auto relay = relays_.find(msg.seq);
      if (relay != relays_.end() && relay->second.target == msg.target) {
        Message fwd = NewMessage(MsgKind::kAck, msg.target);
        fwd.seq = relay->second.requester_seq;
        NodeId requester = relay->second.requester;
        relays_.erase(relay);
        Send(requester, std::move(fwd));
      }
      break;
    }
    case MsgKind::kSync: {
      // Its records were applied above; answer with ours (push-pull).
      Message reply = NewMessage(MsgKind::kSyncReply, msg.from.id);
      reply.updates = SyncRecords();
      Send(msg.from.id, std::move(reply));
      break;
    }
    case MsgKind::kSyncReply:
      break;  // its records were applied above
    case MsgKind::kGossip: {
      bool unknown = false;
      for (const auto& [ring, hb] : msg.heartbeats) {
        auto id = by_short_id_.find(ring);
        if (id == by_short_id_.end()) {
          unknown = unknown || ring != ShortId(RingId(self_.id));
          continue;
        }
        auto m = members_.find(id->second);
        if (m == members_.end()) continue;
        if (hb > m->second.heartbeat) {
          m->second.heartbeat = hb;
          m->second.heartbeat_seen = now;
          SeenAlive(m->first, now);
        }
      }
      // The sender lists members we never heard of (their joins may have been gossiped before
      // we could hear them): pull its whole list.
      if (unknown) RequestSync(msg.from.id, now);
      break;
    }
  }
}

Status Swim::AddMember(const MemberRecord& joiner, TimePoint now) {
  if (left_ || expelled_) return Status::Unavailable("this node is not in a cluster");
  if (joiner.id == self_.id) return Status::InvalidArgument("a node cannot join itself");
  if (removed_.count(joiner.id)) {
    return Status::FailedPrecondition("member " + joiner.id.str() + " was removed; restart it");
  }
  auto it = members_.find(joiner.id);
  if (it != members_.end() && Final(it->second.record.state)) {
    return Status::FailedPrecondition("member " + joiner.id.str() + " is " +
                                      StateName(it->second.record.state) + "; restart it");
  }
  MemberRecord rec = joiner;
  rec.state = MemberState::kAlive;
  Apply(rec, self_.id, now);
  return Status::Ok();
}

void Swim::ApplyJoin(const std::vector<MemberRecord>& members, const ClusterConfig& config,
                     TimePoint now) {
  ApplyConfig(config, now);
  for (const auto& rec : members) {
    if (rec.id == self_.id) continue;
    Apply(rec, rec.id, now);
  }
  // Our own arrival must spread even if the introducer's broadcasts are lost.
  Enqueue(self_);
}

void Swim::Leave(TimePoint now) {
  if (left_ || expelled_) return;
  self_.state = MemberState::kLeft;
  ++self_.incarnation;
  broadcasts_.clear();
  Enqueue(self_);
  for (const NodeId& to : RandomMembers(config_.gossip_fanout, {})) {
    Send(to, NewMessage(MsgKind::kGossip, to));
  }
  left_ = true;
  // The record stays queued: TickGossip keeps pushing it while the service lingers.
  next_gossip_ = now + Ms(config_.gossip_interval_ms);
}

void Swim::ProbeFailed(const NodeId& target, TimePoint now) {
  auto it = members_.find(target);
  if (it == members_.end() || !Active(it->second)) return;
  ++stats_.probe_failures;
  Member& m = it->second;
  if (config_.suspicion) {
    SuspectOwn(m, now, "no ack (direct or indirect), by " + self_.id.str());
  } else {
    SetState(m, MemberState::kFailed, m.record.incarnation, now, EventKind::kFail,
             "no ack (direct or indirect), by " + self_.id.str());
  }
}

void Swim::RequestSync(const NodeId& peer, TimePoint now) {
  auto& last = synced_[peer];
  if (last != TimePoint{} && now - last < milliseconds(1000)) return;
  last = now;
  Message sync = NewMessage(MsgKind::kSync, peer);
  sync.updates = SyncRecords();
  Send(peer, std::move(sync));
}

std::vector<MemberRecord> Swim::SyncRecords() const {
  // Self first, then the rest, within what one datagram may carry (the codec takes 256 records,
  // piggybacked updates included).
  std::vector<MemberRecord> records = Records();
  if (records.size() > kMaxSyncRecords) records.resize(kMaxSyncRecords);
  return records;
}

void Swim::SyncWithRandomMember(TimePoint now) {
  for (const NodeId& peer : RandomMembers(1, {})) RequestSync(peer, now);
}

void Swim::ContactTheDead() {
  // A member failed during a partition may be alive on the other side and, having failed us in
  // turn, never speak again. Now and then send one recently failed member its verdict: if it is
  // alive it learns it was expelled (and rejoins under a new id); if it is dead this is one lost
  // datagram. Left members are not contacted.
  std::vector<NodeId> failed;
  for (const auto& [id, m] : members_) {
    if (m.record.state == MemberState::kFailed) failed.push_back(id);
  }
  if (failed.empty()) return;
  const NodeId& to = failed[std::uniform_int_distribution<size_t>(0, failed.size() - 1)(rng_)];
  Message verdict = NewMessage(MsgKind::kPing, to);  // seq 0: a verdict, not a probe
  verdict.updates.push_back(members_.at(to).record);
  Send(to, std::move(verdict));
}

void Swim::TickProbe(TimePoint now) {
  if (probe_ && !probe_->acked && !probe_->indirect_sent &&
      now >= probe_->started + ProbeTimeout()) {
    probe_->indirect_sent = true;
    for (const NodeId& helper : RandomMembers(config_.indirect_probes, {probe_->target})) {
      Message req = NewMessage(MsgKind::kPingReq, probe_->target);
      req.seq = probe_->seq;
      ++stats_.indirect_probes;
      Send(helper, std::move(req));
    }
  }
  if (now < next_probe_) return;
  next_probe_ = now + Ms(config_.probe_interval_ms);
  if (probe_ && !probe_->acked) ProbeFailed(probe_->target, now);
  probe_.reset();
  if (++probe_rounds_ % kDeadContactEvery == 0) ContactTheDead();
  if (probe_rounds_ % kSyncEvery == 0) SyncWithRandomMember(now);

  // Next target: round-robin over a shuffled list, reshuffled after each pass (SWIM 4.3).
  for (size_t tries = 0; tries < 2; ++tries) {
    while (probe_index_ < probe_order_.size()) {
      const NodeId& id = probe_order_[probe_index_++];
      auto it = members_.find(id);
      if (it == members_.end() || !Active(it->second)) continue;
      probe_ = Probe{id, ++seq_, now, false, false};
      ++stats_.probes;
      Message ping = NewMessage(MsgKind::kPing, id);
      ping.seq = probe_->seq;
      Send(id, std::move(ping));
      return;
    }
    probe_order_.clear();
    for (const auto& [id, m] : members_) {
      if (Active(m)) probe_order_.push_back(id);
    }
    std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
    probe_index_ = 0;
  }
}

void Swim::TickHeartbeat(TimePoint now) {
  if (now >= next_heartbeat_) {
    next_heartbeat_ = now + Ms(config_.heartbeat_interval_ms);
    ++heartbeat_;
    std::vector<std::pair<uint32_t, uint64_t>> table;
    table.emplace_back(ShortId(RingId(self_.id)), heartbeat_);
    for (const auto& [id, m] : members_) {
      if (Active(m)) table.emplace_back(ShortId(m.ring_id), m.heartbeat);
    }
    for (const NodeId& to : RandomMembers(config_.gossip_fanout, {})) {
      Message hb = NewMessage(MsgKind::kGossip, to);
      hb.heartbeats = table;
      Send(to, std::move(hb));
    }
    if (++probe_rounds_ % kDeadContactEvery == 0) ContactTheDead();
    if (probe_rounds_ % kSyncEvery == 0) SyncWithRandomMember(now);
  }
  for (auto& [id, m] : members_) {
    if (m.record.state != MemberState::kAlive) continue;
    if (now - m.heartbeat_seen < HeartbeatTimeout()) continue;
    ++stats_.probe_failures;
    if (config_.suspicion) {
      SuspectOwn(m, now, "heartbeat stale, by " + self_.id.str());
    } else {
      SetState(m, MemberState::kFailed, m.record.incarnation, now, EventKind::kFail,
               "heartbeat stale, by " + self_.id.str());
    }
  }
}

void Swim::TickSuspects(TimePoint now) {
  for (auto& [id, m] : members_) {
    if (m.record.state == MemberState::kSuspect && now - m.state_since >= SuspicionTimeout(m)) {
      SetState(m, MemberState::kFailed, m.record.incarnation, now, EventKind::kFail,
               "suspicion timed out (" + std::to_string(m.suspecters.size()) +
                   " suspecters), by " + self_.id.str());
    }
  }
}

void Swim::TickGossip(TimePoint now) {
  if (now < next_gossip_) return;
  next_gossip_ = now + Ms(config_.gossip_interval_ms);
  if (broadcasts_.empty() && config_transmits_left_ == 0) return;
  for (const NodeId& to : RandomMembers(config_.gossip_fanout, {})) {
    Send(to, NewMessage(MsgKind::kGossip, to));
  }
}

void Swim::TickCleanup(TimePoint now) {
  if (now < next_cleanup_) return;
  next_cleanup_ = now + milliseconds(100);
  for (auto it = members_.begin(); it != members_.end();) {
    Member& m = it->second;
    if (Final(m.record.state) && now - m.state_since >= Ms(config_.cleanup_ms)) {
      events_.push_back(Event{EventKind::kRemove, it->first, m.record.incarnation,
                              std::string("was ") + StateName(m.record.state)});
      removed_[it->first] = now + 10 * Ms(config_.cleanup_ms);
      by_short_id_.erase(ShortId(m.ring_id));
      told_suspect_.erase(it->first);
      config_pushed_.erase(it->first);
      synced_.erase(it->first);
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = removed_.begin(); it != removed_.end();) {
    if (now >= it->second) {
      told_suspect_.erase(it->first);
      it = removed_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = relays_.begin(); it != relays_.end();) {
    it = now >= it->second.expires ? relays_.erase(it) : std::next(it);
  }
}

void Swim::Tick(TimePoint now) {
  if (expelled_) return;
  if (left_) {
    TickGossip(now);  // keep spreading our departure while the service lingers
    return;
  }
  if (config_.protocol == Protocol::kPing) {
    TickProbe(now);
  } else {
    TickHeartbeat(now);
  }
  TickSuspects(now);
  TickGossip(now);
  TickCleanup(now);
}

}  // namespace rs::membership
