#include "daemon/membership/codec.h"

#include <catch2/catch.hpp>
#include <random>

#include "daemon/membership/config.h"

namespace rs::membership {
namespace {

// A datagram from 127.0.0.1:7001 to 127.0.0.1:7002 with no updates.
Message Datagram(MsgKind kind, uint64_t incarnation, uint64_t seq) {
  Message m;
  m.kind = kind;
  m.from = MemberRecord{NodeId("127.0.0.1", 7001, 1732150000123ULL),
                        MemberState::kAlive,
                        incarnation,
                        {{"swim", 40001}, {"gossip", 40002}}};
  m.target = NodeId("127.0.0.1", 7002, 1732150000456ULL);
  m.seq = seq;
  return m;
}

}  // namespace

TEST_CASE("a datagram survives encode and decode", "[membership][codec]") {
  Message m = Datagram(MsgKind::kGossip, 4, 99);
  m.config_digest = 12345;
  m.updates.push_back(MemberRecord{
      NodeId("127.0.0.1", 7003, 1732150000789ULL), MemberState::kSuspect, 2, {{"swim", 40005}}});
  m.heartbeats = {{1, 2}, {0xffffffffU, 0xffffffffffffULL}};
  ClusterConfig c;
  c.version = 3;
  c.origin = m.from.id.str();
  c.protocol = Protocol::kGossip;
  c.suspicion = false;
  c.suspicion_timeout_ms = 2500;
  StampAll(&c, c.origin);
  m.config = c;

  auto env = wire::Decode(EncodeMessage(m));
  REQUIRE(env.ok());
  auto back = DecodeMessage(*env);
  REQUIRE(back.ok());
  CHECK(back->kind == MsgKind::kGossip);
  CHECK(back->from.id == m.from.id);
  CHECK(back->from.incarnation == 4);
  CHECK(back->from.ports == m.from.ports);
  CHECK(back->target == m.target);
  CHECK(back->seq == 99);
  CHECK(back->config_digest == 12345);
  REQUIRE(back->updates.size() == 1);
  CHECK(back->updates[0].state == MemberState::kSuspect);
  CHECK(back->heartbeats == m.heartbeats);
  REQUIRE(back->config.has_value());
  CHECK(back->config->Digest() == c.Digest());
  CHECK(back->config->stamps == c.stamps);
  CHECK(back->config->protocol == Protocol::kGossip);
  CHECK_FALSE(back->config->suspicion);
  CHECK(back->config->suspicion_timeout_ms == 2500);
}

TEST_CASE("a suspect record carries its suspecter; other records and older senders do not",
          "[membership][codec]") {
  Message m = Datagram(MsgKind::kGossip, 0, 1);
  NodeId suspecter("127.0.0.1", 7009, 1732150000999ULL);
  MemberRecord suspect{
      NodeId("127.0.0.1", 7003, 1732150000789ULL), MemberState::kSuspect, 2, {{"swim", 40005}}};
  suspect.suspecter = suspecter;
  MemberRecord alive = suspect;
  alive.state = MemberState::kAlive;  // its stale suspecter is not sent
  MemberRecord old_style = suspect;
  old_style.suspecter = NodeId();
  m.updates = {suspect, alive, old_style};
  auto env = wire::Decode(EncodeMessage(m));
  REQUIRE(env.ok());
  auto back = DecodeMessage(*env);
  REQUIRE(back.ok());
  REQUIRE(back->updates.size() == 3);
  CHECK(back->updates[0].suspecter == suspecter);
  CHECK(back->updates[1].suspecter.empty());
  CHECK(back->updates[2].suspecter.empty());
  CHECK(back->updates[2].state == MemberState::kSuspect);
}

TEST_CASE("a ping with one update stays small", "[membership][codec]") {
  Message m = Datagram(MsgKind::kPing, 0, 1000);
  m.config_digest = 0xfedcba9876543210ULL;
  CHECK(EncodeMessage(m).size() < 120);  // the bandwidth budget is 2 KB/s per node
}

TEST_CASE("corrupted datagrams are rejected without a crash", "[membership][codec]") {
  Message m = Datagram(MsgKind::kAck, 0, 5);
  m.updates.push_back(m.from);
  std::string valid = EncodeMessage(m);
  std::mt19937_64 rng(99);
  int accepted = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string bytes = valid;
    for (int k = 0; k < 2; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    auto env = wire::Decode(bytes);
    if (!env.ok()) continue;
    auto msg = DecodeMessage(*env);
    if (msg.ok()) {
      ++accepted;
      // Whatever is accepted is fully valid: it re-encodes and decodes to the same sender.
      CHECK(NodeId::Parse(msg->from.id.str()).ok());
      auto again = wire::Decode(EncodeMessage(*msg));
      REQUIRE(again.ok());
      auto back = DecodeMessage(*again);
      REQUIRE(back.ok());
      CHECK(back->from.id == msg->from.id);
    }
  }
  CHECK(accepted < 100000);  // most mutations are caught
}

TEST_CASE("a non-datagram type is not decoded as a datagram", "[membership][codec]") {
  auto env = wire::Decode(wire::Encode(wire::MsgType::kAdminCommand, 1));
  REQUIRE(env.ok());
  CHECK(DecodeMessage(*env).status().code() == StatusCode::kCorruption);
}

}  // namespace rs::membership
