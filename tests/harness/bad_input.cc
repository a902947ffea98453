#include "tests/harness/bad_input.h"

#include <algorithm>
#include <chrono>
#include <msgpack.hpp>

#include "shared/transport/sockets.h"
#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;
using wire::MsgType;

// A membership datagram body [from, target, seq, config_stamp, updates, heartbeats, config]
// with a broken sender record.
void PackBrokenDatagram(wire::Packer& pk) {
  pk.pack_array(7);
  pk.pack_array(4);
  pk.pack("not-a-node-id");
  pk.pack_uint8(9);
  pk.pack_uint64(0);
  pk.pack_map(0);
  pk.pack("");
  pk.pack_uint64(1);
  pk.pack_uint64(1);
  pk.pack_array(0);
  pk.pack_array(1);
  pk.pack_array(1);  // a heartbeat table entry of the wrong shape
  pk.pack_uint64(1);
  pk.pack_nil();
}

// `c` once started (its nodes exist only then).
Cluster& Started(Cluster& c) {
  REQUIRE_OK(c.Start());
  return c;
}

}  // namespace

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

std::string Hex(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s += static_cast<char>(b);
  return s;
}

std::string RawEnvelope(int64_t version, int64_t type, const wire::BodyWriter& body) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_array(4);
  pk.pack_int64(version);
  pk.pack_int64(type);
  pk.pack_uint64(7);
  if (body) {
    body(pk);
  } else {
    pk.pack_nil();
  }
  return std::string(buf.data(), buf.size());
}

void PackAdmin(wire::Packer& pk, const std::string& cmd) {
  pk.pack_map(2);
  pk.pack("cmd");
  pk.pack(cmd);
  pk.pack("args");
  pk.pack_map(0);
}

void PackRecord(wire::Packer& pk, const std::string& id, uint16_t swim, uint16_t gossip) {
  pk.pack_array(4);
  pk.pack(id);
  pk.pack_uint8(0);
  pk.pack_uint64(0);
  pk.pack_map(2);
  pk.pack("gossip");
  pk.pack_uint16(gossip);
  pk.pack("swim");
  pk.pack_uint16(swim);
}

std::vector<std::string> JunkPayloads(std::mt19937_64& rng) {
  std::vector<std::string> out;
  out.push_back("");           // an empty frame
  out.push_back(Hex({0xc1}));  // the byte MessagePack never uses
  for (int i = 0; i < 40; ++i) out.push_back(RandomBytes(rng, 1 + rng() % 2048));
  for (int i = 0; i < 10; ++i) out.push_back(Hex({0x94}) + RandomBytes(rng, 1 + rng() % 64));

  // Truncated envelopes: every strict prefix of a valid admin command and of a datagram.
  std::string admin =
      wire::Encode(MsgType::kAdminCommand, 7, [](wire::Packer& pk) { PackAdmin(pk, "list_mem"); });
  for (size_t n = 1; n < admin.size(); ++n) out.push_back(admin.substr(0, n));
  out.push_back(admin + Hex({0x00}));  // trailing bytes
  std::string ping = wire::Encode(MsgType::kPing, 0, [](wire::Packer& pk) {
    pk.pack_array(7);
    PackRecord(pk, "127.0.0.1:1#0000000000001", 2, 3);
    pk.pack("127.0.0.1:4#0000000000004");
    pk.pack_uint64(1);
    pk.pack_uint64(1);
    pk.pack_array(0);
    pk.pack_array(0);
  });  // 6 of 7 elements: itself truncated
  for (size_t n = 1; n <= ping.size(); n += 3) out.push_back(ping.substr(0, n));

  // Bad headers.
  out.push_back(RawEnvelope(2, 10, nullptr));     // unknown wire version
  out.push_back(RawEnvelope(1, 70000, nullptr));  // type beyond uint16
  out.push_back(RawEnvelope(1, -1, nullptr));     // negative type
  out.push_back(RawEnvelope(-1, 10, nullptr));    // negative version
  {
    msgpack::sbuffer buf;
    wire::Packer pk(buf);
    pk.pack_array(2);
    pk.pack_uint8(1);
    pk.pack_uint16(10);
    out.push_back(std::string(buf.data(), buf.size()));  // a 2-element "envelope"
  }
  out.push_back(Hex({0xa3, 'a', 'b', 'c'}));  // a bare string
  out.push_back(Hex({0xc0}));                 // nil
  out.push_back(Hex({0x80}));                 // an empty map

  // Huge length headers with (almost) nothing behind them.
  out.push_back(Hex({0xdd, 0xff, 0xff, 0xff, 0xff}));                          // array32 of 4G
  out.push_back(Hex({0x94, 0x01, 0x0a, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff}));  // body of 4G
  out.push_back(Hex({0x94, 0x01, 0x0a, 0x01, 0xdd, 0x00, 0x0f, 0xff, 0xff}));  // body of 1M-1
  {
    std::string nested;
    for (int i = 0; i < 40; ++i) nested += Hex({0xdd, 0x00, 0x0f, 0xff, 0xff});
    out.push_back(nested);  // 40 nested arrays of 1M-1 elements each
  }
  out.push_back(Hex({0xdf, 0xff, 0xff, 0xff, 0xff}));                          // map32 of 4G
  out.push_back(Hex({0x94, 0x01, 0x0a, 0x01, 0xdf, 0x00, 0x00, 0xff, 0xff}));  // 64K-entry map
  out.push_back(Hex({0xdb, 0xff, 0xff, 0xff, 0xff}));                          // str32 of 4G
  out.push_back(Hex({0x94, 0x01, 0x0a, 0x01, 0xdb, 0x00, 0xff, 0xff, 0xff}));  // 16M string
  out.push_back(Hex({0xc6, 0xff, 0xff, 0xff, 0xff}));                          // bin32 of 4G
  out.push_back(Hex({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}));                    // ext32 of 4G
  out.push_back(std::string(100000, static_cast<char>(0x91)));  // arrays nested 100000 deep
  out.push_back(Hex({0x94, 0x01, 0x0a, 0x01}) + std::string(1000, static_cast<char>(0x91)) +
                Hex({0xc0}));

  // Well-formed envelopes of a type no raind socket accepts, or with a body of the wrong shape
  // for its type.
  out.push_back(wire::Encode(MsgType::kReply, 7, [](wire::Packer& pk) {
    pk.pack_array(3);
    pk.pack_uint8(0);
    pk.pack("");
    pk.pack_nil();
  }));
  out.push_back(RawEnvelope(1, 999, nullptr));
  out.push_back(RawEnvelope(1, 0, nullptr));
  for (MsgType t : {MsgType::kPing, MsgType::kAck, MsgType::kPingReq, MsgType::kGossip}) {
    out.push_back(wire::Encode(t, 0));  // nil body
    out.push_back(wire::Encode(t, 0, PackBrokenDatagram));
  }
  out.push_back(wire::Encode(MsgType::kJoinRequest, 7, [](wire::Packer& pk) {
    pk.pack_array(4);
    pk.pack("127.0.0.1:0#0000000000001");  // port 0: not a node id
    pk.pack_uint8(0);
    pk.pack_uint64(0);
    pk.pack_map(0);
  }));
  out.push_back(wire::Encode(MsgType::kJoinRequest, 7, [](wire::Packer& pk) {
    pk.pack_array(4);
    pk.pack("127.0.0.1:5#0000000000001");
    pk.pack_uint8(0);
    pk.pack_uint64(0);
    pk.pack_map(1);
    pk.pack("swim");
    pk.pack_uint32(70000);  // not a port
  }));
  out.push_back(wire::Encode(MsgType::kJoinRequest, 7, [](wire::Packer& pk) { pk.pack("me"); }));
  out.push_back(wire::Encode(MsgType::kAdminCommand, 7, [](wire::Packer& pk) { pk.pack(42); }));
  out.push_back(wire::Encode(MsgType::kAdminCommand, 7, [](wire::Packer& pk) {
    pk.pack_map(2);
    pk.pack("cmd");
    pk.pack(12);  // not a string
    pk.pack("args");
    pk.pack_map(0);
  }));
  out.push_back(wire::Encode(MsgType::kAdminCommand, 7, [](wire::Packer& pk) {
    pk.pack_map(2);
    pk.pack("cmd");
    pk.pack("config_set");
    pk.pack("args");
    pk.pack_map(1);
    pk.pack("key");
    pk.pack_array(0);  // not a string
  }));
  out.push_back(wire::Encode(MsgType::kAdminCommand, 7, [](wire::Packer& pk) {
    PackAdmin(pk, std::string(100, 'x'));  // an unknown command
  }));
  // The stream engine's messages between daemons (daemon/stream/messages.h): no body, wrong
  // shapes, a job id that would leave the stream directory, a report that is not one.
  for (MsgType t : {MsgType::kStreamStartTask, MsgType::kStreamStopJob, MsgType::kStreamStopTask,
                    MsgType::kStreamRewire, MsgType::kStreamReport}) {
    out.push_back(wire::Encode(t, 7));
    out.push_back(wire::Encode(t, 7, [](wire::Packer& pk) { pk.pack_array(0); }));
  }
  out.push_back(wire::Encode(MsgType::kStreamStopJob, 7, [](wire::Packer& pk) {
    pk.pack_map(2);
    pk.pack("job");
    pk.pack("../../etc");
    pk.pack("remove");
    pk.pack(true);
  }));
  out.push_back(wire::Encode(MsgType::kStreamStartTask, 7, [](wire::Packer& pk) {
    pk.pack_map(1);
    pk.pack("config");
    pk.pack_map(1);
    pk.pack("job");
    pk.pack_array(3);  // not a string, and nothing else
    pk.pack(1);
    pk.pack(2);
    pk.pack(3);
  }));
  out.push_back(wire::Encode(MsgType::kStreamReport, 7, [](wire::Packer& pk) {
    pk.pack_map(1);
    pk.pack("reports");
    pk.pack_array(1);
    pk.pack("not a report");
  }));
  return out;
}

zmq::socket_t Connected(zmq::socket_type type, uint16_t port) {
  transport::SocketOptions opts;
  opts.send_hwm = 100000;
  opts.recv_hwm = 100000;
  auto s = transport::MakeSocket(type, opts);
  REQUIRE_OK(s.status());
  zmq::socket_t socket = std::move(s.value());
  socket.set(zmq::sockopt::sndtimeo, 5000);
  REQUIRE_OK(transport::Connect(socket, "tcp://127.0.0.1:" + std::to_string(port)));
  return socket;
}

bool SendParts(zmq::socket_t& socket, const std::vector<std::string>& parts) {
  try {
    for (size_t i = 0; i < parts.size(); ++i) {
      zmq::message_t m(parts[i].data(), parts[i].size());
      auto flags = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!socket.send(m, flags)) return false;
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

std::optional<std::vector<std::string>> Receive(zmq::socket_t& socket, Clock::duration deadline) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::duration_cast<milliseconds>(deadline));
  if (!(item.revents & ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> parts;
  if (!transport::TryRecv(socket, &parts)) return std::nullopt;
  std::vector<std::string> out;
  for (auto& p : parts) out.push_back(p.to_string());
  return out;
}

uint64_t Counter(const RaindProcess& n, const char* key) {
  auto stats = Stats(n.ControlAddress());
  REQUIRE_OK(stats.status());
  return (*stats)[key].Uint();
}

JunkTargetFixture::JunkTargetFixture() : c(3), target(Started(c).node(1)) {
  nodes = c.Running();
  ids = IdsOf(nodes);
  junk = JunkPayloads(rng);
}

void JunkTargetFixture::RequireServing(const std::string& phase) {
  INFO("after " << phase);
  REQUIRE(target.Running());
  auto self = CtlJson(target.ControlAddress(), {"list_self"});
  REQUIRE_OK(self.status());
  REQUIRE((*self)["id"].Str() == target.Id());
}

void JunkTargetFixture::CheckMembershipIntact() {
  RequireServing("all junk");
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) { return AllAlive(nodes, why); });
  REQUIRE_EXIT(Ctl(target, {"list_mem"}), 0);
  auto failures = EventsAbout(nodes, ids, {"fail", "expelled"});
  INFO(Join(failures));
  CHECK(failures.empty());
  for (RaindProcess* n : nodes) {
    auto list = ListMem(n->ControlAddress());
    REQUIRE_OK(list.status());
    for (const auto& [id, m] : list->members) {
      bool real = std::find(ids.begin(), ids.end(), id) != ids.end();
      INFO(list->ToString());
      CHECK((real || m.state == "failed"));  // nothing but the fake member, failed, besides
    }
  }
}

}  // namespace rs::harness
