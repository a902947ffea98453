// A simulated network for the Swim core: a manual clock, 1 ms latency, optional loss, dead,
// isolated or muted nodes, and partitions into sides. Every datagram goes through the real codec,
// so tests also exercise the wire form. Single-threaded, for unit tests only.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "daemon/membership/codec.h"
#include "daemon/membership/swim.h"

namespace rs::membership {

struct InFlight {
  TimePoint at;
  NodeId from;
  NodeId to;
  std::string bytes;
};

class SimNet {
 public:
  // RS_SIM_SEED=<n> in the environment shifts every seed, to explore other interleavings.
  explicit SimNet(ClusterConfig config, uint64_t seed = 7)
      : config_(config),
        rng_(seed + (std::getenv("RS_SIM_SEED")
                         ? std::strtoull(std::getenv("RS_SIM_SEED"), nullptr, 10)
                         : 0)) {}

  NodeId Add(bool found = false) {
    uint16_t port = static_cast<uint16_t>(7000 + nodes_.size() + 1);
    NodeId id("127.0.0.1", port, 1732150000000ULL + nodes_.size());
    MemberRecord rec{id,
                     MemberState::kAlive,
                     0,
                     {{"swim", static_cast<uint16_t>(port + 1000)},
                      {"gossip", static_cast<uint16_t>(port + 2000)}}};
    ClusterConfig config = config_;
    if (found || nodes_.empty()) {
      config.version = 1;
      config.origin = id.str();
    }
    auto swim = std::make_unique<Swim>(rec, config, rng_(), now_);
    if (!nodes_.empty()) {
      Swim& introducer = *nodes_.begin()->second;
      REQUIRE(introducer.AddMember(rec, now_).ok());
      swim->ApplyJoin(introducer.Records(), introducer.config(), now_);
    }
    order_.push_back(id);
    nodes_[id] = std::move(swim);
    return id;
  }

  Swim& node(const NodeId& id) { return *nodes_.at(id); }
  const std::vector<NodeId>& ids() const { return order_; }
  void Kill(const NodeId& id) { dead_.insert(id); }
  void Isolate(const NodeId& id, bool on) {
    if (on) {
      isolated_.insert(id);
    } else {
      isolated_.erase(id);
    }
  }
  void Mute(const NodeId& id, bool on) {  // its datagrams are lost; it still hears everything
    if (on) {
      muted_.insert(id);
    } else {
      muted_.erase(id);
    }
  }
  void Deafen(const NodeId& id, bool on) {  // datagrams to it are lost; it still sends
    if (on) {
      deaf_.insert(id);
    } else {
      deaf_.erase(id);
    }
  }
  void SetDrop(double p) { drop_ = p; }
  // Partitions: datagrams cross only between nodes on the same side (every node starts on 0).
  void SetSide(const NodeId& id, int side) { side_[id] = side; }
  void Heal() { side_.clear(); }
  int Side(const NodeId& id) const {
    auto it = side_.find(id);
    return it == side_.end() ? 0 : it->second;
  }
  TimePoint now() const { return now_; }

  void Run(milliseconds duration) {
    TimePoint end = now_ + duration;
    while (now_ < end) {
      now_ += milliseconds(1);
      Deliver();
      if ((now_.time_since_epoch() / milliseconds(1)) % 5 == 0) {
        for (const NodeId& id : order_) {
          if (dead_.count(id)) continue;
          nodes_[id]->Tick(now_);
          Collect(id);
        }
      }
    }
  }

  // Runs until pred() or the deadline; returns the simulated time it took.
  milliseconds RunUntil(const std::function<bool()>& pred, milliseconds deadline) {
    TimePoint start = now_;
    while (!pred() && now_ - start < deadline) Run(milliseconds(5));
    return std::chrono::duration_cast<milliseconds>(now_ - start);
  }

  std::optional<MemberState> StateAt(const NodeId& observer, const NodeId& subject) {
    for (const auto& r : node(observer).Records()) {
      if (r.id == subject) return r.state;
    }
    return std::nullopt;
  }

  bool AllAliveSee(const NodeId& subject, MemberState state) {
    for (const NodeId& id : order_) {
      if (dead_.count(id) || id == subject) continue;
      if (StateAt(id, subject) != state) return false;
    }
    return true;
  }

  // Every event seen by every live node, and datagrams sent by kind.
  std::vector<std::pair<NodeId, Event>> events;
  std::map<MsgKind, size_t> sent;

  size_t CountEvents(EventKind kind, const NodeId& subject) {
    size_t n = 0;
    for (const auto& [observer, e] : events) n += (e.kind == kind && e.member == subject) ? 1 : 0;
    return n;
  }

 private:
  void Collect(const NodeId& from) {
    for (auto& e : nodes_[from]->TakeEvents()) events.emplace_back(from, e);
    for (auto& out : nodes_[from]->TakeOutbox()) {
      if (isolated_.count(from) || muted_.count(from)) continue;
      ++sent[out.message.kind];
      in_flight_.push_back(
          InFlight{now_ + milliseconds(1), from, out.to, EncodeMessage(out.message)});
    }
  }

  // Like MembershipService: a node's SUB is connected only to members it lists alive or
  // suspect, so gossip from anyone else never reaches it.
  bool Subscribed(const NodeId& receiver, const NodeId& sender) {
    auto state = StateAt(receiver, sender);
    return state == MemberState::kAlive || state == MemberState::kSuspect;
  }

  void Deliver() {
    std::vector<InFlight> due;
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (it->at <= now_) {
        due.push_back(std::move(*it));
        it = in_flight_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& m : due) {
      if (dead_.count(m.to) || isolated_.count(m.to) || deaf_.count(m.to) || !nodes_.count(m.to)) {
        continue;
      }
      if (Side(m.from) != Side(m.to)) continue;
      if (drop_ > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < drop_) continue;
      auto env = wire::Decode(m.bytes);
      REQUIRE(env.ok());
      auto msg = DecodeMessage(*env);
      REQUIRE(msg.ok());
      if (msg->kind == MsgKind::kGossip && !Subscribed(m.to, msg->from.id)) continue;
      nodes_[m.to]->Step(*msg, now_);
      Collect(m.to);
    }
  }

  ClusterConfig config_;
  std::mt19937_64 rng_;
  TimePoint now_{};
  std::map<NodeId, std::unique_ptr<Swim>> nodes_;
  std::vector<NodeId> order_;
  std::set<NodeId> dead_, isolated_, muted_, deaf_;
  std::map<NodeId, int> side_;
  std::deque<InFlight> in_flight_;
  double drop_ = 0;
};

inline ClusterConfig Config(Protocol protocol, bool suspicion) {
  ClusterConfig c;
  c.protocol = protocol;
  c.suspicion = suspicion;
  return c;
}

inline bool EveryoneListsAllAlive(SimNet& net) {
  for (const NodeId& a : net.ids()) {
    for (const NodeId& b : net.ids()) {
      if (net.StateAt(a, b) != MemberState::kAlive) {
        UNSCOPED_INFO(a.str() << " sees " << b.str() << " as "
                              << (net.StateAt(a, b) ? StateName(*net.StateAt(a, b)) : "absent"));
        return false;
      }
    }
  }
  return true;
}

}  // namespace rs::membership
