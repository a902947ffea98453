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
  } else if (m.record.state != MemberState::kSuspect) {
    ++stats_.suspicions;
  }
  m.canvassed_at = TimePoint{};
  m.withheld = false;
  m.pending_since = TimePoint{};
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
      expelled_by_ = via;
      events_.push_back(Event{EventKind::kExpelled, self_.id, rec.incarnation,
                              "declared failed, reported by " + via.str()});
    } else if (rec.state == MemberState::kSuspect && rec.incarnation >= self_.incarnation) {
      Refute(rec.incarnation, now);
    }
    return;
  }
  if (removed_.count(rec.id)) return;
  if (former_.count(rec.id)) {
    BuryFormer(rec, now);
    return;
  }
  auto it = members_.find(rec.id);
  if (it == members_.end()) {
    if (Final(rec.state)) {
      removed_[rec.id] = now + TombstoneFor();  // never knew it; remember the end
      return;
    }
    Member m;
    m.record = rec;
    m.ring_id = RingId(rec.id);
    m.state_since = m.learned = now;
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

void Swim::BuryFormer(const MemberRecord& rec, TimePoint now) {
  uint64_t incarnation = std::max(rec.incarnation, former_[rec.id]);
  std::string why = "a former id of this process, now " + self_.id.str();
  auto it = members_.find(rec.id);
  if (it != members_.end()) {
    if (!Final(it->second.record.state)) {
      SetState(it->second, MemberState::kFailed, incarnation, now, EventKind::kFail, why);
    }
    return;
  }
  if (Final(rec.state)) {
    removed_[rec.id] = now + TombstoneFor();
    return;
  }
  // Listed as failed (so the verdict is gossiped and cleaned up like any other).
  Member m;
  m.record = rec;
  m.record.state = MemberState::kFailed;
  m.record.incarnation = incarnation;
  m.record.suspecter = NodeId();
  m.ring_id = RingId(rec.id);
  m.state_since = now;
  m.heartbeat_seen = now;
  by_short_id_[ShortId(m.ring_id)] = rec.id;
  auto& inserted = members_[rec.id] = m;
  events_.push_back(Event{EventKind::kFail, rec.id, incarnation, why});
  Enqueue(inserted.record);
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
  Heard(msg.from.id, now);
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
      if (canvass_.seq_lo != 0 && msg.seq >= canvass_.seq_lo && msg.seq <= canvass_.seq_hi) {
        canvass_.answered.insert(msg.from.id);
        // Relayed by a helper: the accused answered the helper's probe.
        if (msg.target != msg.from.id) canvass_.answered.insert(msg.target);
      }
      if (msg.target != msg.from.id) Heard(msg.target, now);  // relayed: the target is up
      Acked(msg.target);  // the target answered a probe (ours, or a helper's for us)
      if (probe_ && !probe_->acked && msg.seq == probe_->seq && msg.target == probe_->target) {
        probe_->acked = true;
        Heard(probe_->target, now);  // directly, or relayed: either way it is up
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
          Heard(m->first, now);
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
  // Without suspicion a stale heartbeat is put to a canvass a little before it is due, so the
  // verdict comes on time (TickVerdicts).
  const Clock::duration lead = config_.suspicion ? milliseconds(0) : CanvassWindow();
  for (auto& [id, m] : members_) {
    if (m.record.state != MemberState::kAlive || m.pending_since != TimePoint{}) continue;
    if (now - m.heartbeat_seen < HeartbeatTimeout() - lead || StillConnecting(m, now)) continue;
    ++stats_.probe_failures;
    OwnEvidence(m, now, "heartbeat stale, by " + self_.id.str());
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
      removed_[it->first] = now + TombstoneFor();
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
  TickVerdicts(now);
  TickGossip(now);
  TickCleanup(now);
}

}  // namespace rs::membership
