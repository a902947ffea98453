// Swim, part two: suspicion and verdicts. Who may declare a member failed, and when; how a
// convicted member that still talks learns its verdict. The rest of the protocol is in swim.cc.
//
// A minority convicts nobody. A member that cannot hear most of the cluster is the one cut off,
// not the others, so its failed probes are no evidence against them. Every verdict this node
// makes on its own evidence (a suspicion timing out; without suspicion, a failed probe or a stale
// heartbeat) is therefore put to a canvass first: a ping to enough live members to make up a
// majority, each also asked to probe the accused (PingReq), and a direct ping to the accused.
// The verdict stands only if, within the canvass window,
//
//   a strict majority of the active members (alive and suspect, ourselves included) answered,
//   or exactly half holding the lowest ring id (so of two equal halves exactly one may convict),
//   and the accused did not answer, directly or through any of them.
//
// Otherwise it is withheld and canvassed again, once a window, for as long as the suspicion
// lasts. Answers are replies to pings sent at the canvass's start, so they prove our link worked
// at that moment, when the accused was asked too, and through members that kept their own
// connections to it (after a heal, our connection to it may still wait on TCP's backoff).
//
//   t=0    link of X cut; X suspects A, B, C, D in turn (it hears nobody)
//   t=1s   X's suspicion of A is due: X canvasses, nobody answers -> withheld, A stays suspect
//          the other four suspect X; each canvasses, hears 3 of 4 others -> they convict X
//   heal   X's next probe reaches A, which answers with X's verdict: X rejoins under a new id
//
// The canvass starts one window before the verdict is due, so a dead member is not failed any
// later than before. Verdicts gossiped by others are applied as they come: each was made under
// the same rule by its maker.
#include <algorithm>
#include <cmath>

#include "daemon/membership/swim.h"

namespace rs::membership {
namespace {

milliseconds Ms(uint32_t v) { return milliseconds(v); }

}  // namespace

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

milliseconds Swim::DetectionPeriod() const {
  return Ms(config_.protocol == Protocol::kPing ? config_.probe_interval_ms
                                                : config_.heartbeat_interval_ms);
}

milliseconds Swim::JoinGrace() const {
  milliseconds detection =
      config_.protocol == Protocol::kPing ? Ms(config_.probe_interval_ms) : HeartbeatTimeout();
  return std::max(milliseconds(3000), 3 * detection);
}

bool Swim::StillConnecting(const Member& m, TimePoint now) const {
  // With gossip, a datagram from it proves only one of its links: wait for its heartbeat (0
  // until its counter was first seen rising), which then flows on every link it has.
  bool silent = config_.protocol == Protocol::kGossip ? m.heartbeat == 0 : m.heard == TimePoint{};
  return silent && now - m.learned < JoinGrace();
}

void Swim::Heard(const NodeId& id, TimePoint now) {
  auto it = members_.find(id);
  if (it == members_.end()) return;
  it->second.heard = now;
  // Without suspicion, a member whose failure was pending has just shown it is up: with
  // gossip, any word from it (its heartbeat rose); with ping, only an ack (Acked), since a
  // member that can send but not hear would otherwise clear its own verdict with its probes.
  if (config_.protocol == Protocol::kGossip) it->second.pending_since = TimePoint{};
}

void Swim::Acked(const NodeId& id) {
  auto it = members_.find(id);
  if (it != members_.end()) it->second.pending_since = TimePoint{};
}

bool Swim::CanvassMajority() const {
  size_t active = 1, answered = 1;  // ourselves
  uint64_t lowest = RingId(self_.id);
  bool lowest_answered = true;
  for (const auto& [id, m] : members_) {
    if (!Active(m)) continue;
    ++active;
    bool a = canvass_.answered.count(id) > 0;
    answered += a ? 1 : 0;
    if (m.ring_id < lowest) {
      lowest = m.ring_id;
      lowest_answered = a;
    }
  }
  return 2 * answered > active || (2 * answered == active && lowest_answered);
}

milliseconds Swim::CanvassWindow() const {
  // A probe timeout: the answers are one or two round trips. The accused is also asked through
  // the helpers, whose connections to it are not the ones a partition just cut, so a healed link
  // of ours that TCP has not yet resent on cannot make it look silent.
  return ProbeTimeout();
}

void Swim::StartCanvass(const std::vector<NodeId>& accused, TimePoint now) {
  constexpr size_t kMaxAccused = 4;  // PingReqs per helper; the rest wait for the next canvass
  std::vector<NodeId> asked(
      accused.begin(), accused.begin() + static_cast<long>(std::min(accused.size(), kMaxAccused)));
  canvass_ = Canvass{now, seq_ + 1, 0, {}};
  std::vector<NodeId> helpers;
  for (const auto& [id, m] : members_) {
    if (m.record.state == MemberState::kAlive && m.pending_since == TimePoint{}) {
      helpers.push_back(id);
    }
  }
  std::shuffle(helpers.begin(), helpers.end(), rng_);
  size_t need = ActiveCount() / 2 + 1;  // a spare beyond the bare majority
  if (helpers.size() > need) helpers.resize(need);
  for (const NodeId& h : helpers) {
    Message ping = NewMessage(MsgKind::kPing, h);
    ping.seq = ++seq_;
    Send(h, std::move(ping));
    for (const NodeId& a : asked) {
      Message req = NewMessage(MsgKind::kPingReq, a);
      req.seq = ++seq_;
      Send(h, std::move(req));
    }
  }
  for (const NodeId& a : asked) {
    Message ping = NewMessage(MsgKind::kPing, a);
    ping.seq = ++seq_;
    Send(a, std::move(ping));
    Member& m = members_.at(a);
    m.canvassed_at = now;
    if (m.record.state == MemberState::kSuspect) {
      told_suspect_.erase(a);
      SeenAlive(a, now);  // tells it of the suspicion, so it can refute
    }
  }
  canvass_.seq_hi = seq_;
  ++stats_.canvasses;
}

void Swim::SuspectOwn(Member& m, TimePoint now, const std::string& detail) {
  if (m.record.state == MemberState::kAlive) {
    ++stats_.suspicions_raised;
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

void Swim::OwnEvidence(Member& m, TimePoint now, const std::string& detail) {
  if (config_.suspicion) {
    SuspectOwn(m, now, detail);
  } else if (m.record.state == MemberState::kAlive && m.pending_since == TimePoint{}) {
    m.pending_since = now;  // TickVerdicts canvasses and fails it
    m.evidence = detail;
    m.canvassed_at = TimePoint{};
    m.withheld = false;
    // A failed probe is due at once; a stale heartbeat when it is HeartbeatTimeout old (it was
    // made pending a canvass window early).
    m.due = config_.protocol == Protocol::kPing
                ? now
                : std::max(now, m.heartbeat_seen + HeartbeatTimeout());
  }
}

void Swim::Convict(Member& m, TimePoint now, const std::string& why) {
  SetState(m, MemberState::kFailed, m.record.incarnation, now, EventKind::kFail,
           why + ", by " + self_.id.str());
}

void Swim::TickVerdicts(TimePoint now) {
  const milliseconds window = CanvassWindow();
  std::vector<NodeId> to_canvass;
  for (auto& [id, m] : members_) {
    bool suspect = m.record.state == MemberState::kSuspect;
    bool pending =
        !suspect && m.record.state == MemberState::kAlive && m.pending_since != TimePoint{};
    if (!suspect && !pending) continue;
    TimePoint due = suspect ? m.state_since + SuspicionTimeout(m) : m.due;
    if (now + window < due) continue;  // not yet time to ask
    // It answered: it is up (a suspect was told to refute). With ping, an answer is an ack to
    // the canvass's probes, direct or relayed: a member that can send but not hear (a one-way
    // cut) keeps sending us its own probes, and those must not clear it, or it is never failed.
    // With gossip, a heartbeat that rose is the answer.
    bool answered = config_.protocol == Protocol::kPing
                        ? m.canvassed_at == canvass_.at && canvass_.answered.count(id) > 0
                        : m.heard >= m.canvassed_at;
    if (m.canvassed_at != TimePoint{} && answered) {
      m.canvassed_at = TimePoint{};
      m.pending_since = TimePoint{};
      continue;
    }
    bool current = m.canvassed_at != TimePoint{} && m.canvassed_at == canvass_.at;
    if (!current) {
      to_canvass.push_back(id);
    } else if (now - m.canvassed_at >= window) {
      if (CanvassMajority()) {
        if (now < due) continue;
        if (suspect) {
          Convict(m, now,
                  "suspicion timed out (" + std::to_string(m.suspecters.size()) + " suspecters)");
        } else {
          SetState(m, MemberState::kFailed, m.record.incarnation, now, EventKind::kFail,
                   m.evidence);
        }
        continue;
      }
      to_canvass.push_back(id);  // no majority answered: we may be the one cut off
      if (!m.withheld && now >= due) {
        m.withheld = true;
        ++stats_.verdicts_withheld;
        events_.push_back(Event{EventKind::kWithheld, id, m.record.incarnation,
                                std::to_string(canvass_.answered.size() + 1) + " of " +
                                    std::to_string(ActiveCount()) +
                                    " members answered the canvass, by " + self_.id.str()});
      }
    }
  }
  if (!to_canvass.empty() && (canvass_.at == TimePoint{} || now - canvass_.at >= window)) {
    StartCanvass(to_canvass, now);
  }
}

void Swim::HeardAfterSilence(TimePoint now) {
  // Local health (after Lifeguard): if we heard nothing for several periods, we were the one cut
  // off. Our suspicion and heartbeat timers ran while we were deaf; do not let them convict
  // members who had no chance to reach us.
  if (last_heard_ != TimePoint{} && now - last_heard_ > 2 * DetectionPeriod()) {
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

void Swim::ContactTheDead() {
  // A member failed during a partition may be alive on the other side and, having failed us in
  // turn, never speak again. Now and then send one recently failed member its verdict: if it is
  // alive it learns it was expelled (and rejoins under a new id); if it is dead this is one lost
  // datagram. Left members are not contacted.
  std::vector<NodeId> failed;
  for (const auto& [id, m] : members_) {
    // Our own former ids live at our own address: there is nobody else to tell.
    if (m.record.state == MemberState::kFailed && !former_.count(id)) failed.push_back(id);
  }
  if (failed.empty()) return;
  const NodeId& to = failed[std::uniform_int_distribution<size_t>(0, failed.size() - 1)(rng_)];
  Message verdict = NewMessage(MsgKind::kPing, to);  // seq 0: a verdict, not a probe
  verdict.updates.push_back(members_.at(to).record);
  Send(to, std::move(verdict));
}

void Swim::ProbeFailed(const NodeId& target, TimePoint now) {
  auto it = members_.find(target);
  if (it == members_.end() || !Active(it->second) || StillConnecting(it->second, now)) return;
  ++stats_.probe_failures;
  OwnEvidence(it->second, now, "no ack (direct or indirect), by " + self_.id.str());
}

}  // namespace rs::membership
