// The leader's placement and recovery decisions (daemon/stream/scheduler.h), alone.
#include "daemon/stream/scheduler.h"

#include <catch2/catch.hpp>

namespace rs::stream {
namespace {

NodeRef N(int i) { return NodeRef{"node" + std::to_string(i), "10.0.0." + std::to_string(i) + ":7000"}; }

TEST_CASE("task hosts: alive members, the leader only when asked or alone", "[stream][scheduler]") {
  NodeRef self = N(1);
  std::vector<MemberRef> members = {{N(1), true}, {N(2), true}, {N(3), false}, {N(4), true}};
  CHECK(TaskHosts(members, self, false) == std::vector<NodeRef>{N(2), N(4)});
  CHECK(TaskHosts(members, self, true) == std::vector<NodeRef>{N(1), N(2), N(4)});
  std::vector<MemberRef> alone = {{N(1), true}, {N(3), false}};
  CHECK(TaskHosts(alone, self, false) == std::vector<NodeRef>{N(1)});
}

TEST_CASE("placement spreads each stage over the least loaded nodes", "[stream][scheduler]") {
  std::vector<NodeRef> hosts = {N(1), N(2), N(3)};
  Load load = {{N(1).address, 5}, {N(2).address, 0}, {N(3).address, 1}};
  auto placed = PlaceJob(hosts, load, 2, 3);
  REQUIRE(placed.size() == 6);
  // Stage 1 over 2 (0), 3 (1), 1 (5): each node gets one.
  CHECK(placed[0].node == N(2));
  CHECK(placed[1].node == N(3));
  CHECK(placed[2].node == N(1));
  std::set<std::string> stage2;
  for (size_t i = 3; i < 6; ++i) {
    CHECK(placed[i].stage == 2);
    CHECK(placed[i].task == i - 3);
    stage2.insert(placed[i].node.address);
  }
  CHECK(stage2.size() == 3);  // a stage's tasks on different nodes
  // More tasks than nodes: round robin.
  auto many = PlaceJob({N(1), N(2)}, {}, 1, 5);
  size_t on1 = 0;
  for (const auto& p : many) on1 += p.node == N(1);
  CHECK(on1 == 3);
  CHECK(PlaceJob({}, {}, 1, 3).empty());
}

TEST_CASE("a failed task restarts in place twice, then moves; its 5th failure fails the job",
          "[stream][scheduler]") {
  CHECK(PlanRebuild(1, false) == RebuildAction::kInPlace);
  CHECK(PlanRebuild(2, false) == RebuildAction::kInPlace);
  CHECK(PlanRebuild(3, false) == RebuildAction::kElsewhere);
  CHECK(PlanRebuild(4, false) == RebuildAction::kElsewhere);
  CHECK(PlanRebuild(5, false) == RebuildAction::kFailJob);
  CHECK(PlanRebuild(1, true) == RebuildAction::kElsewhere);  // its node is gone
  CHECK(PlanRebuild(5, true) == RebuildAction::kFailJob);
}

TEST_CASE("a moved task goes to the least loaded node it may use", "[stream][scheduler]") {
  std::vector<NodeRef> hosts = {N(1), N(2), N(3)};
  Load load = {{N(1).address, 0}, {N(2).address, 4}, {N(3).address, 1}};
  CHECK(PickHost(hosts, {}, load) == N(1));
  CHECK(PickHost(hosts, {N(1).address}, load) == N(3));
  CHECK(PickHost(hosts, {N(1).address, N(3).address}, load) == N(2));
  CHECK(!PickHost(hosts, {N(1).address, N(2).address, N(3).address}, load));
}

}  // namespace
}  // namespace rs::stream
