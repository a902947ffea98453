// The majority rule (daemon/membership/swim_verdicts.cc) on a simulated network: a member cut
// off from most of the cluster convicts nobody, the majority side convicts it, and when the
// partition heals the cut-off side is the one told its verdict. Manual clock, real codec.
#include <catch2/catch.hpp>

#include "daemon/membership/swim.h"
#include "tests/unit/membership/sim_net.h"

namespace rs::membership {
namespace {

// Fail events made by observers in `by` about members in `about`.
size_t FailsBy(SimNet& net, const std::set<NodeId>& by, const std::set<NodeId>& about) {
  size_t n = 0;
  for (const auto& [observer, e] : net.events) {
    n += (e.kind == EventKind::kFail && by.count(observer) && about.count(e.member) &&
          e.detail.find(", by " + observer.str()) != std::string::npos)
             ? 1
             : 0;
  }
  return n;
}

// Any fail event, made or relayed, about a member of `about` (each is printed if a check fails).
size_t FailsAbout(SimNet& net, const std::set<NodeId>& about) {
  size_t n = 0;
  for (const auto& [observer, e] : net.events) {
    if (e.kind != EventKind::kFail || !about.count(e.member)) continue;
    ++n;
    UNSCOPED_INFO(observer.str() << " failed " << e.member.str() << ": " << e.detail);
  }
  return n;
}

bool SideSees(SimNet& net, const std::set<NodeId>& side, const std::set<NodeId>& subjects,
              MemberState state) {
  for (const NodeId& a : side) {
    for (const NodeId& b : subjects) {
      if (a != b && net.StateAt(a, b) != state) return false;
    }
  }
  return true;
}

struct Split {
  std::set<NodeId> majority, minority;
};

Split MakeSplit(SimNet& net, const std::vector<size_t>& minority_indexes) {
  Split s;
  for (size_t i = 0; i < net.ids().size(); ++i) {
    bool minor =
        std::find(minority_indexes.begin(), minority_indexes.end(), i) != minority_indexes.end();
    (minor ? s.minority : s.majority).insert(net.ids()[i]);
    if (minor) net.SetSide(net.ids()[i], 1);
  }
  return s;
}

}  // namespace

TEST_CASE("an isolated member convicts nobody, the others convict it, and on the heal it is told",
          "[membership][swim][partition]") {
  auto protocol = GENERATE(Protocol::kPing, Protocol::kGossip);
  auto suspicion = GENERATE(true, false);
  CAPTURE(ProtocolName(protocol), suspicion);
  SimNet net(Config(protocol, suspicion));
  for (int i = 0; i < 5; ++i) net.Add();
  net.Run(milliseconds(2000));
  REQUIRE(EveryoneListsAllAlive(net));
  Split s = MakeSplit(net, {2});
  NodeId x = *s.minority.begin();
  net.Run(milliseconds(12000));
  // x heard nobody: every verdict it would have made is withheld.
  CHECK(FailsBy(net, s.minority, s.majority) == 0);
  CHECK(net.node(x).stats().verdicts_withheld > 0);
  CHECK(SideSees(net, s.majority, s.minority, MemberState::kFailed));
  net.Heal();
  net.RunUntil([&] { return net.node(x).expelled(); }, milliseconds(10000));
  CHECK(net.node(x).expelled());
  net.Run(milliseconds(3000));
  CHECK(FailsAbout(net, s.majority) == 0);
  CHECK(SideSees(net, s.majority, s.majority, MemberState::kAlive));
  for (const NodeId& id : s.majority) CHECK_FALSE(net.node(id).expelled());
}

TEST_CASE("a 2-3 split: the three convict the two, the two convict nobody",
          "[membership][swim][partition]") {
  auto protocol = GENERATE(Protocol::kPing, Protocol::kGossip);
  auto suspicion = GENERATE(true, false);
  CAPTURE(ProtocolName(protocol), suspicion);
  SimNet net(Config(protocol, suspicion), 11);
  for (int i = 0; i < 5; ++i) net.Add();
  net.Run(milliseconds(2000));
  Split s = MakeSplit(net, {0, 3});  // the introducer is on the small side
  net.Run(milliseconds(8000));
  CHECK(FailsBy(net, s.minority, s.majority) == 0);
  CHECK(SideSees(net, s.majority, s.minority, MemberState::kFailed));
  // The two still list the three as members (suspected or alive, never failed).
  for (const NodeId& a : s.minority) {
    for (const NodeId& b : s.majority) CHECK(net.StateAt(a, b) != MemberState::kFailed);
  }
  net.Heal();
  net.RunUntil(
      [&] {
        for (const NodeId& id : s.minority) {
          if (!net.node(id).expelled()) return false;
        }
        return true;
      },
      milliseconds(10000));
  for (const NodeId& id : s.minority) CHECK(net.node(id).expelled());
  net.Run(milliseconds(3000));
  CHECK(FailsAbout(net, s.majority) == 0);
  for (const NodeId& id : s.majority) CHECK_FALSE(net.node(id).expelled());
}

TEST_CASE("of two equal halves only the one holding the lowest ring id convicts",
          "[membership][swim][partition]") {
  SimNet net(Config(Protocol::kPing, true), 5);
  for (int i = 0; i < 4; ++i) net.Add();
  net.Run(milliseconds(2000));
  std::vector<NodeId> by_ring = net.ids();
  std::sort(by_ring.begin(), by_ring.end(),
            [](const NodeId& a, const NodeId& b) { return Swim::RingId(a) < Swim::RingId(b); });
  // The lowest ring id and one other on side 0; the two others on side 1.
  std::set<NodeId> keeper = {by_ring[0], by_ring[2]}, other = {by_ring[1], by_ring[3]};
  for (const NodeId& id : other) net.SetSide(id, 1);
  net.Run(milliseconds(8000));
  CHECK(FailsBy(net, other, keeper) == 0);
  CHECK(SideSees(net, keeper, other, MemberState::kFailed));
  net.Heal();
  net.Run(milliseconds(5000));
  for (const NodeId& id : other) CHECK(net.node(id).expelled());
  for (const NodeId& id : keeper) CHECK_FALSE(net.node(id).expelled());
}

TEST_CASE("a three-way split with no majority anywhere convicts nobody and heals to one cluster",
          "[membership][swim][partition]") {
  auto protocol = GENERATE(Protocol::kPing, Protocol::kGossip);
  CAPTURE(ProtocolName(protocol));
  SimNet net(Config(protocol, true), 9);
  for (int i = 0; i < 5; ++i) net.Add();
  net.Run(milliseconds(2000));
  net.SetSide(net.ids()[1], 1);
  net.SetSide(net.ids()[2], 1);
  net.SetSide(net.ids()[3], 2);
  net.SetSide(net.ids()[4], 2);  // 1 + 2 + 2 of 5
  net.Run(milliseconds(8000));
  std::set<NodeId> all(net.ids().begin(), net.ids().end());
  CHECK(FailsAbout(net, all) == 0);
  net.Heal();
  auto took = net.RunUntil([&] { return EveryoneListsAllAlive(net); }, milliseconds(10000));
  CHECK(EveryoneListsAllAlive(net));
  CHECK(took < milliseconds(5000));
  CHECK(FailsAbout(net, all) == 0);
}

TEST_CASE("however long an isolation lasts, the heal never fails a member of the majority",
          "[membership][swim][partition]") {
  // The race this guards: the isolated member's suspicions timed out while it heard nobody;
  // when the link returns it hears the majority again before some suspects have spoken to it.
  auto protocol = GENERATE(Protocol::kPing, Protocol::kGossip);
  auto suspicion = GENERATE(true, false);
  CAPTURE(ProtocolName(protocol), suspicion);
  for (int cut_ms = 300; cut_ms <= 4000; cut_ms += 185) {
    CAPTURE(cut_ms);
    SimNet net(Config(protocol, suspicion), 100 + cut_ms);
    for (int i = 0; i < 7; ++i) net.Add();
    net.Run(milliseconds(2000));
    Split s = MakeSplit(net, {static_cast<size_t>(cut_ms % 7)});
    net.Run(milliseconds(cut_ms));
    net.Heal();
    net.Run(milliseconds(6000));
    CHECK(FailsAbout(net, s.majority) == 0);
    for (const NodeId& id : s.majority) CHECK_FALSE(net.node(id).expelled());
    CHECK(SideSees(net, s.majority, s.majority, MemberState::kAlive));
  }
}

TEST_CASE("a killed member is still failed promptly in a large cluster under the majority rule",
          "[membership][swim][partition]") {
  auto protocol = GENERATE(Protocol::kPing, Protocol::kGossip);
  CAPTURE(ProtocolName(protocol));
  SimNet net(Config(protocol, true), 21);
  for (int i = 0; i < 20; ++i) net.Add();
  net.RunUntil([&] { return EveryoneListsAllAlive(net); }, milliseconds(20000));
  REQUIRE(EveryoneListsAllAlive(net));
  NodeId victim = net.ids()[7];
  net.Kill(victim);
  auto took = net.RunUntil([&] { return net.AllAliveSee(victim, MemberState::kFailed); },
                           milliseconds(10000));
  CHECK(net.AllAliveSee(victim, MemberState::kFailed));
  CHECK(took < milliseconds(4000));
  size_t withheld = 0;
  for (const NodeId& id : net.ids()) {
    if (id != victim) withheld += net.node(id).stats().verdicts_withheld;
  }
  CHECK(withheld == 0);
}

}  // namespace rs::membership

namespace rs::membership {
namespace {

// After a split heals, the cut-off members rejoin under new ids, and one may join through
// another that still lists the first one's old id as alive (its view is from the cut). The old
// id must not wait out a suspicion: its own process buries it at once, and says so.
TEST_CASE("a rejoined member buries its former id at once, even when its introducer lists it",
          "[membership][partition]") {
  ClusterConfig c = Config(Protocol::kPing, true);
  c.version = 1;
  c.origin = "test";
  auto record = [](uint16_t port, uint64_t start_ms, uint64_t incarnation) {
    return MemberRecord{NodeId("10.0.0.1", port, start_ms),
                        MemberState::kAlive,
                        incarnation,
                        {{"swim", static_cast<uint16_t>(port + 1000)}}};
  };
  MemberRecord old_self = record(7001, 1000, 0);
  MemberRecord peer = record(7002, 1001, 0);
  MemberRecord new_self = record(7001, 5000, 0);
  // The introducer's view: our old id alive at incarnation 1 (it refuted a suspicion once);
  // our old id ended at incarnation 2.
  MemberRecord listed_old = old_self;
  listed_old.incarnation = 1;
  TimePoint t0{};
  Swim s(new_self, c, 7, t0);
  s.SetFormerIds({{old_self.id, 2}});
  s.ApplyJoin({peer, listed_old}, c, t0);

  std::optional<MemberRecord> buried;
  for (const auto& r : s.Records()) {
    if (r.id == old_self.id) buried = r;
  }
  REQUIRE(buried.has_value());
  CHECK(buried->state == MemberState::kFailed);
  CHECK(buried->incarnation == 2);  // above anything the cluster may have seen of it
  bool event = false;
  for (const auto& e : s.TakeEvents()) {
    event |= e.kind == EventKind::kFail && e.member == old_self.id &&
             e.detail.find("former id") != std::string::npos;
  }
  CHECK(event);
  // The verdict is gossiped: the next message carries it.
  s.Tick(t0 + std::chrono::milliseconds(5000));
  bool carried = false;
  for (const auto& out : s.TakeOutbox()) {
    CHECK(out.to != old_self.id);  // nobody to tell at our own address
    for (const auto& u : out.message.updates) {
      carried |= u.id == old_self.id && u.state == MemberState::kFailed && u.incarnation == 2;
    }
  }
  CHECK(carried);

  // The peer, which still believed the old id alive, takes the verdict.
  Swim p(peer, c, 8, t0);
  p.ApplyJoin({listed_old}, c, t0);
  Message m;
  m.kind = MsgKind::kGossip;
  m.from = new_self;
  MemberRecord verdict = *buried;
  m.updates.push_back(verdict);
  p.Step(m, t0 + std::chrono::milliseconds(10));
  std::optional<MemberState> seen;
  for (const auto& r : p.Records()) {
    if (r.id == old_self.id) seen = r.state;
  }
  CHECK(seen == MemberState::kFailed);
}

}  // namespace
}  // namespace rs::membership
