#include "daemon/hydfs/ring.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "shared/util/hash.h"

namespace rs::hydfs {
namespace {

RingNode MakeNode(uint16_t port, uint64_t ring_id) {
  RingNode n;
  n.id = NodeId("10.0.0.1", port, 1700000000000);
  n.ring_id = ring_id;
  n.host = "10.0.0.1";
  n.control_port = port;
  n.hydfs_port = static_cast<uint16_t>(port + 1);
  n.data_port = static_cast<uint16_t>(port + 2);
  return n;
}

// The expected successors, computed without the ring: every node whose ring id is at or after
// `file_id` in ascending order, then the ones before it (the wrap), truncated to n.
std::vector<uint64_t> ExpectedSuccessors(std::vector<uint64_t> ring_ids, uint64_t file_id,
                                         size_t n) {
  std::sort(ring_ids.begin(), ring_ids.end());
  std::vector<uint64_t> after, before;
  for (uint64_t id : ring_ids) (id >= file_id ? after : before).push_back(id);
  after.insert(after.end(), before.begin(), before.end());
  if (after.size() > n) after.resize(n);
  return after;
}

std::vector<uint64_t> RingIds(const std::vector<RingNode>& nodes) {
  std::vector<uint64_t> out;
  for (const auto& n : nodes) out.push_back(n.ring_id);
  return out;
}

membership::MemberView Member(const std::string& host, uint16_t port, membership::MemberState state,
                              membership::Ports ports) {
  membership::MemberView m;
  m.record.id = NodeId(host, port, 1700000000000 + port);
  m.record.state = state;
  m.record.ports = std::move(ports);
  m.ring_id = StableHash64(m.record.id.str());
  return m;
}

}  // namespace

TEST_CASE("successors are the next nodes clockwise, wrapping past the top of the ring",
          "[hydfs][ring]") {
  // Given out of order: the ring sorts them.
  std::vector<uint64_t> ids = {400, 100, 300, 200};
  std::vector<RingNode> nodes;
  for (size_t i = 0; i < ids.size(); ++i) {
    nodes.push_back(MakeNode(static_cast<uint16_t>(7000 + 10 * i), ids[i]));
  }
  Ring ring(nodes);
  REQUIRE(ring.size() == 4);
  CHECK(RingIds(ring.nodes()) == std::vector<uint64_t>{100, 200, 300, 400});

  CHECK(RingIds(ring.Successors(150, 3)) == std::vector<uint64_t>{200, 300, 400});
  CHECK(RingIds(ring.Successors(200, 3)) == std::vector<uint64_t>{200, 300, 400});  // at = owns
  CHECK(RingIds(ring.Successors(350, 3)) == std::vector<uint64_t>{400, 100, 200});
  CHECK(RingIds(ring.Successors(401, 3)) == std::vector<uint64_t>{100, 200, 300});  // wrap
  CHECK(RingIds(ring.Successors(0, 2)) == std::vector<uint64_t>{100, 200});
  CHECK(RingIds(ring.Successors(UINT64_MAX, 2)) == std::vector<uint64_t>{100, 200});
  // More than the ring holds: every node once.
  CHECK(RingIds(ring.Successors(250, 10)) == std::vector<uint64_t>{300, 400, 100, 200});
  CHECK(ring.Successors(250, 0).empty());
  // The nodes come back whole.
  auto first = ring.Successors(150, 1);
  REQUIRE(first.size() == 1);
  CHECK(first[0].id == NodeId("10.0.0.1", 7030, 1700000000000));
  CHECK(first[0].hydfs_port == 7031);
  CHECK(first[0].data_port == 7032);
}

TEST_CASE("an empty ring has no successors and finds nothing", "[hydfs][ring]") {
  Ring ring;
  CHECK(ring.size() == 0);
  CHECK(ring.Successors(12345, 3).empty());
  CHECK_FALSE(ring.Find(NodeId("10.0.0.1", 7000, 1)).has_value());
  CHECK_FALSE(ring.FindByAddress("10.0.0.1:7000").has_value());
  Ring also_empty(std::vector<RingNode>{});
  CHECK(also_empty.Successors(0, 1).empty());
}

TEST_CASE("successors agree with an independent computation on random rings", "[hydfs][ring]") {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    size_t count = 1 + rng() % 12;
    std::vector<RingNode> nodes;
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < count; ++i) {
      // Small ids on some rounds so file ids often hit a node exactly.
      uint64_t id = round % 2 == 0 ? rng() : rng() % 64;
      if (std::find(ids.begin(), ids.end(), id) != ids.end()) continue;
      ids.push_back(id);
      nodes.push_back(MakeNode(static_cast<uint16_t>(7000 + 10 * i), id));
    }
    Ring ring(nodes);
    for (int probe = 0; probe < 20; ++probe) {
      uint64_t file = round % 2 == 0 ? rng() : rng() % 70;
      size_t n = rng() % (ids.size() + 3);
      INFO("round " << round << " file " << file << " n " << n);
      CHECK(RingIds(ring.Successors(file, n)) == ExpectedSuccessors(ids, file, n));
    }
  }
}

TEST_CASE("a ring from a view keeps alive and suspected members that serve hydfs",
          "[hydfs][ring]") {
  using membership::MemberState;
  membership::Ports both = {{"hydfs", 8001}, {"hydfs_data", 8002}, {"swim", 8003}};
  membership::View view;
  view.members.push_back(Member("10.0.0.1", 7001, MemberState::kAlive, both));
  view.members.push_back(Member("10.0.0.2", 7002, MemberState::kSuspect, both));
  view.members.push_back(Member("10.0.0.3", 7003, MemberState::kFailed, both));
  view.members.push_back(Member("10.0.0.4", 7004, MemberState::kLeft, both));
  view.members.push_back(Member("10.0.0.5", 7005, MemberState::kAlive, {{"hydfs", 8001}}));
  view.members.push_back(Member("10.0.0.6", 7006, MemberState::kAlive, {{"hydfs_data", 8002}}));
  view.members.push_back(Member("10.0.0.7", 7007, MemberState::kAlive, {{"swim", 8003}}));

  Ring ring = Ring::FromView(view);
  REQUIRE(ring.size() == 2);
  for (const auto& node : ring.nodes()) {
    CHECK((node.host == "10.0.0.1" || node.host == "10.0.0.2"));
    CHECK(node.ring_id == StableHash64(node.id.str()));
    CHECK(node.control_port == node.id.port());
    CHECK(node.hydfs_port == 8001);
    CHECK(node.data_port == 8002);
    CHECK(node.rpc_endpoint() == "tcp://" + node.host + ":8001");
    CHECK(node.data_endpoint() == "tcp://" + node.host + ":8002");
  }
  CHECK(ring.nodes()[0].ring_id <= ring.nodes()[1].ring_id);
  CHECK(ring.Find(view.members[0].record.id).has_value());
  CHECK(ring.Find(view.members[1].record.id).has_value());
  CHECK_FALSE(ring.Find(view.members[2].record.id).has_value());
}

TEST_CASE("a node is found by its id, its control host:port or its hydfs endpoint",
          "[hydfs][ring]") {
  Ring ring({MakeNode(7000, 10), MakeNode(7100, 20)});
  const NodeId id("10.0.0.1", 7100, 1700000000000);

  auto by_id = ring.FindByAddress(id.str());
  REQUIRE(by_id.has_value());
  CHECK(by_id->id == id);
  auto by_control = ring.FindByAddress("10.0.0.1:7100");
  REQUIRE(by_control.has_value());
  CHECK(by_control->id == id);
  auto by_endpoint = ring.FindByAddress("tcp://10.0.0.1:7101");
  REQUIRE(by_endpoint.has_value());
  CHECK(by_endpoint->id == id);

  CHECK_FALSE(ring.FindByAddress("10.0.0.1:7101").has_value());        // hydfs port, no scheme
  CHECK_FALSE(ring.FindByAddress("tcp://10.0.0.1:7100").has_value());  // control port endpoint
  CHECK_FALSE(ring.FindByAddress("tcp://10.0.0.1:7102").has_value());  // data endpoint
  CHECK_FALSE(ring.FindByAddress("10.0.0.2:7100").has_value());        // other host
  CHECK_FALSE(ring.FindByAddress("10.0.0.1:7100#1700000000001").has_value());  // other start
  CHECK_FALSE(ring.FindByAddress("").has_value());
}

TEST_CASE("rings fingerprint equal exactly when they hold the same members", "[hydfs][ring]") {
  RingNode a = MakeNode(7000, 10), b = MakeNode(7100, 20), c = MakeNode(7200, 30);
  Ring abc({a, b, c});
  Ring cba({c, b, a});
  Ring ab({a, b});
  Ring abd({a, b, MakeNode(7300, 30)});
  CHECK(abc.Fingerprint() == cba.Fingerprint());
  CHECK(abc.Fingerprint() != ab.Fingerprint());
  CHECK(abc.Fingerprint() != abd.Fingerprint());
  CHECK(Ring().Fingerprint() != ab.Fingerprint());
  CHECK(Ring().Fingerprint() == Ring().Fingerprint());

  // From views: the order members are listed in does not matter, a failure does.
  using membership::MemberState;
  membership::Ports ports = {{"hydfs", 8001}, {"hydfs_data", 8002}};
  membership::View v1, v2;
  for (uint16_t p = 7001; p <= 7005; ++p) {
    v1.members.push_back(Member("10.0.0.1", p, MemberState::kAlive, ports));
  }
  v2.members.assign(v1.members.rbegin(), v1.members.rend());
  CHECK(Ring::FromView(v1).Fingerprint() == Ring::FromView(v2).Fingerprint());
  v2.members[0].record.state = MemberState::kSuspect;  // still on the ring
  CHECK(Ring::FromView(v1).Fingerprint() == Ring::FromView(v2).Fingerprint());
  v2.members[0].record.state = MemberState::kFailed;
  CHECK(Ring::FromView(v1).Fingerprint() != Ring::FromView(v2).Fingerprint());
}

TEST_CASE("ten nodes share ten thousand files with every node a primary for some",
          "[hydfs][ring]") {
  using membership::MemberState;
  membership::View view;
  for (int i = 0; i < 10; ++i) {
    view.members.push_back(Member("172.22.94." + std::to_string(10 + i), 7000, MemberState::kAlive,
                                  {{"hydfs", 7001}, {"hydfs_data", 7002}}));
  }
  Ring ring = Ring::FromView(view);
  REQUIRE(ring.size() == 10);
  std::map<std::string, int> primary;
  std::map<std::string, int> replica;  // as any of the first 3 successors
  for (int f = 0; f < 10000; ++f) {
    auto succ = ring.Successors(FileId("file-" + std::to_string(f) + ".txt"), 3);
    REQUIRE(succ.size() == 3);
    CHECK(succ[0].id != succ[1].id);
    CHECK(succ[1].id != succ[2].id);
    CHECK(succ[0].id != succ[2].id);
    ++primary[succ[0].id.str()];
    for (const auto& s : succ) ++replica[s.id.str()];
  }
  int min_p = 10000, max_p = 0, min_r = 30000, max_r = 0;
  for (const auto& node : ring.nodes()) {
    min_p = std::min(min_p, primary[node.id.str()]);
    max_p = std::max(max_p, primary[node.id.str()]);
    min_r = std::min(min_r, replica[node.id.str()]);
    max_r = std::max(max_r, replica[node.id.str()]);
  }
  INFO("files per node as first successor: min "
       << min_p << " max " << max_p << "; as one of 3 replicas: min " << min_r << " max " << max_r);
  CHECK(primary.size() == 10);
  CHECK(min_p >= 1);
  CHECK(min_r >= 1);
}

TEST_CASE("file ids and hex are stable", "[hydfs][ring]") {
  CHECK(FileId("a") == StableHash64("a"));
  CHECK(Hex64(0) == "0000000000000000");
  CHECK(Hex64(0xdeadbeefULL) == "00000000deadbeef");
  CHECK(Hex64(UINT64_MAX) == "ffffffffffffffff");
}

}  // namespace rs::hydfs
