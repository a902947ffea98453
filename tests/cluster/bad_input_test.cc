// Hostile input: junk on every socket a raind binds (control ROUTER, swim ROUTER, gossip PUB, and
// its gossip SUB through a fake member's PUB) must never crash it, never change its view of the
// real members, and must be counted as malformed. Also rainctl's handling of bad arguments.
// The junk is pseudo-random with a fixed seed, so a failure reproduces.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <msgpack.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "shared/transport/data_stream.h"
#include "shared/transport/sockets.h"
#include "shared/wire/envelope.h"
#include "tests/harness/checks.h"
#include "tests/harness/eventually.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;
using wire::MsgType;

constexpr uint64_t kSeed = 20261121;

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

// An envelope with an arbitrary (possibly wrong) header.
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

// A member record as FORMAT.md lays it out: [id, state, incarnation, {port name: port}].
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

// Single-frame payloads that no socket may accept: none decodes to a valid message for any of
// raind's sockets (datagram, admin command or join request).
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
  return out;
}

// A ZeroMQ socket of the test process connected to one of raind's ports.
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

// Blocking (bounded) multipart send; false when it could not be queued.
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

// Receives one whole message within `deadline`.
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

// Opens a TCP connection, writes `bytes`, reads whatever comes back for a moment, closes.
void RawTcp(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval tv{0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the peer hung up on us: fine
      off += static_cast<size_t>(n);
    }
    char buf[512];
    (void)!recv(fd, buf, sizeof(buf), 0);
  }
  close(fd);
}

// A ZMTP 3.0 greeting (NULL mechanism), valid up to where the junk starts.
std::string ZmtpGreeting() {
  std::string g = Hex({0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0});
  std::string mechanism = "NULL";
  mechanism.resize(20, '\0');
  g += mechanism;
  g += std::string(1, '\0');   // as-server
  g += std::string(31, '\0');  // filler
  return g;
}

uint64_t Counter(const RaindProcess& n, const char* key) {
  auto stats = Stats(n.ControlAddress());
  REQUIRE_OK(stats.status());
  return (*stats)[key].Uint();
}

TEST_CASE("junk on every socket raind binds leaves it alive, answering and with a correct list",
          "[membership][bad-input]") {
  Cluster c(3);
  REQUIRE_OK(c.Start());
  RaindProcess& target = c.node(1);
  auto nodes = c.Running();
  auto ids = IdsOf(nodes);
  std::mt19937_64 rng(kSeed);
  const auto junk = JunkPayloads(rng);
  const std::vector<std::pair<std::string, uint16_t>> ports = {{"control", target.ControlPort()},
                                                               {"swim", target.SwimPort()},
                                                               {"gossip", target.GossipPort()}};

  auto still_serving = [&](const std::string& phase) {
    INFO("after " << phase);
    REQUIRE(target.Running());
    auto self = CtlJson(target.ControlAddress(), {"list_self"});
    REQUIRE_OK(self.status());
    REQUIRE((*self)["id"].Str() == target.Id());
  };

  SECTION("raw TCP bytes") {
    for (const auto& [name, port] : ports) {
      INFO(name << " port " << port);
      for (int i = 0; i < 10; ++i) RawTcp(port, RandomBytes(rng, 1 + rng() % 8192));
      RawTcp(port, "");                                       // connect and hang up
      RawTcp(port, Hex({0xff}) + RandomBytes(rng, 100));      // a signature start, then junk
      RawTcp(port, ZmtpGreeting() + RandomBytes(rng, 1000));  // a greeting, then junk commands
      RawTcp(port, ZmtpGreeting() + Hex({0x06, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) +
                       "READY");                                    // a 9-exabyte command frame
      RawTcp(port, ZmtpGreeting() + Hex({0x04, 5}) + "\x05READY");  // READY without properties
      RawTcp(port, "GET / HTTP/1.1\r\nHost: raind\r\n\r\n");
      RawTcp(port, std::string(1 << 20, 'A'));  // a megabyte of nothing
      still_serving("raw TCP on the " + name + " port");
    }
  }

  SECTION("ZeroMQ frames of junk to the control port each get an error reply") {
    uint64_t before = Counter(target, "malformed_control_frames");
    zmq::socket_t dealer = Connected(zmq::socket_type::dealer, target.ControlPort());
    size_t i = 0;
    for (const std::string& payload : junk) {
      INFO("payload #" << i++ << " of " << payload.size() << " bytes");
      REQUIRE(SendParts(dealer, {payload}));
      auto reply = Receive(dealer, 5s);
      REQUIRE(reply.has_value());
      REQUIRE(reply->size() == 1);
      auto env = wire::Decode((*reply)[0]);
      REQUIRE_OK(env.status());
      CHECK(env->type == static_cast<uint16_t>(MsgType::kReply));
      auto payload_or_error = wire::ReplyPayload(*env);
      CHECK_FALSE(payload_or_error.ok());  // an error, never a result
    }
    // Multi-part junk: one error reply each.
    for (int k = 2; k <= 5; ++k) {
      std::vector<std::string> parts;
      for (int p = 0; p < k; ++p) parts.push_back(RandomBytes(rng, rng() % 64));
      REQUIRE(SendParts(dealer, parts));
      auto reply = Receive(dealer, 5s);
      REQUIRE(reply.has_value());
      auto env = wire::Decode((*reply)[0]);
      REQUIRE_OK(env.status());
      CHECK_FALSE(wire::ReplyPayload(*env).ok());
    }
    // A burst without waiting, then a frame above the 4 MB limit (the connection is dropped).
    for (int k = 0; k < 2000; ++k) REQUIRE(SendParts(dealer, {RandomBytes(rng, rng() % 256)}));
    zmq::socket_t big = Connected(zmq::socket_type::dealer, target.ControlPort());
    REQUIRE(SendParts(big, {std::string(5 << 20, 'x')}));
    still_serving("junk frames on the control port");
    CHECK(Counter(target, "malformed_control_frames") > before);
  }

  SECTION("ZeroMQ frames of junk to the swim port are counted as malformed or flood-dropped") {
    uint64_t before =
        Counter(target, "malformed_datagrams") + Counter(target, "flood_dropped_datagrams");
    uint64_t flood_before = Counter(target, "flood_dropped_datagrams");
    zmq::socket_t dealer = Connected(zmq::socket_type::dealer, target.SwimPort());
    uint64_t sent = 0;
    for (const std::string& payload : junk) {
      REQUIRE(SendParts(dealer, {payload}));
      ++sent;
    }
    // Valid control-plane envelopes are junk here too.
    REQUIRE(SendParts(dealer, {wire::Encode(MsgType::kAdminCommand, 7,
                                            [](wire::Packer& pk) { PackAdmin(pk, "leave"); })}));
    REQUIRE(SendParts(dealer, {wire::Encode(MsgType::kJoinRequest, 7, [](wire::Packer& pk) {
                        PackRecord(pk, "127.0.0.1:9#0000000000009", 10, 11);
                      })}));
    sent += 2;
    for (int k = 2; k <= 5; ++k) {
      std::vector<std::string> parts;
      for (int p = 0; p < k; ++p) parts.push_back(RandomBytes(rng, rng() % 64));
      REQUIRE(SendParts(dealer, parts));
      ++sent;
    }
    for (int k = 0; k < 2000; ++k) {
      REQUIRE(SendParts(dealer, {Hex({0xc1}) + RandomBytes(rng, rng() % 256)}));
      ++sent;
    }
    zmq::socket_t big = Connected(zmq::socket_type::dealer, target.SwimPort());
    REQUIRE(SendParts(big, {std::string(2 << 20, 'x')}));  // above the 1 MB datagram limit
    REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
      uint64_t seen = Counter(target, "malformed_datagrams") +
                      Counter(target, "flood_dropped_datagrams") - before;
      *why = std::to_string(seen) + " of " + std::to_string(sent) + " counted";
      return seen == sent;
    });
    // The burst of 2000 from one connection went over its budget: most were never decoded.
    CHECK(Counter(target, "flood_dropped_datagrams") - flood_before > 1000);
    still_serving("junk frames on the swim port");
  }

  SECTION("a sustained junk flood on the swim port does not get the node failed") {
    // Four connections send junk for 4 s (16 probe periods of every peer), paced at about 40 K
    // frames a second so the flooder does not starve the machine itself: the node must keep
    // answering probes in time. (A suspicion refuted in time is tolerated: on a 2-core machine
    // with CPU hogs beside it, the node's thread can be descheduled for a probe timeout.)
    std::vector<zmq::socket_t> flooders;
    for (int k = 0; k < 4; ++k) {
      flooders.push_back(Connected(zmq::socket_type::dealer, target.SwimPort()));
      flooders.back().set(zmq::sockopt::sndtimeo, 0);  // drop at the high-water mark
    }
    uint64_t flood_before = Counter(target, "flood_dropped_datagrams");
    auto end = std::chrono::steady_clock::now() + 4s;
    uint64_t sent = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (auto& f : flooders) {
        for (int k = 0; k < 100; ++k) {
          sent += SendParts(f, {junk[rng() % junk.size()]}) ? 1 : 0;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    INFO(sent << " junk frames sent");
    CHECK(sent > 10000);
    CHECK(Counter(target, "flood_dropped_datagrams") > flood_before);
    INFO(Join(EventsAbout(nodes, {target.Id()}, {"suspect"})));
    auto verdicts = EventsAbout(nodes, {target.Id()}, {"fail", "expelled"});
    INFO(Join(verdicts));
    CHECK(verdicts.empty());
    still_serving("a sustained flood on the swim port");
  }

  SECTION("junk toward the gossip PUB port") {
    // XSUB may send anything upstream: junk subscriptions, unsubscriptions and plain frames.
    zmq::socket_t xsub = Connected(zmq::socket_type::xsub, target.GossipPort());
    for (int k = 0; k < 500; ++k) {
      std::string frame = RandomBytes(rng, rng() % 300);
      if (k % 3 == 0) frame = Hex({0x01}) + frame;
      if (k % 3 == 1) frame = Hex({0x00}) + frame;
      REQUIRE(SendParts(xsub, {frame}));
    }
    REQUIRE(SendParts(xsub, {"a", "b", "c"}));
    // A subscriber to everything overhears gossip; a DEALER is the wrong peer type for a PUB.
    zmq::socket_t sub = Connected(zmq::socket_type::sub, target.GossipPort());
    sub.set(zmq::sockopt::subscribe, "");
    zmq::socket_t dealer = Connected(zmq::socket_type::dealer, target.GossipPort());
    (void)SendParts(dealer, {"hello"});
    still_serving("junk on the gossip port");
  }

  SECTION("junk published to the node's SUB by a fake member") {
    // Our PUB (an XPUB, to see the node subscribe) and a swim ROUTER that never answers.
    auto xpub_made = transport::MakeSocket(zmq::socket_type::xpub);
    auto router_made = transport::MakeSocket(zmq::socket_type::router);
    REQUIRE_OK(xpub_made.status());
    REQUIRE_OK(router_made.status());
    zmq::socket_t xpub = std::move(xpub_made.value());
    zmq::socket_t router = std::move(router_made.value());
    xpub.set(zmq::sockopt::sndhwm, 100000);
    auto gossip_port = transport::Bind(xpub, "127.0.0.1", 0);
    auto swim_port = transport::Bind(router, "127.0.0.1", 0);
    REQUIRE_OK(gossip_port.status());
    REQUIRE_OK(swim_port.status());
    std::string fake_id =
        "127.0.0.1:" + std::to_string(*swim_port) + "#" + std::to_string(WallMillis());

    zmq::socket_t control = Connected(zmq::socket_type::dealer, target.ControlPort());
    REQUIRE(SendParts(control, {wire::Encode(MsgType::kJoinRequest, 42, [&](wire::Packer& pk) {
                        PackRecord(pk, fake_id, *swim_port, *gossip_port);
                      })}));
    auto reply = Receive(control, 5s);
    REQUIRE(reply.has_value());
    auto env = wire::Decode((*reply)[0]);
    REQUIRE_OK(env.status());
    REQUIRE(env->request_id == 42);
    REQUIRE_OK(wire::ReplyPayload(*env).status());  // admitted

    // The node's SUB connects to our PUB and subscribes to its own id.
    std::string want = Hex({0x01}) + target.Id();
    REQUIRE_EVENTUALLY(5s, [&](std::string* why) {
      while (auto sub = Receive(xpub, 100ms)) {
        if ((*sub)[0] == want) return true;
        *why += "saw subscription '" + (*sub)[0].substr(1) + "'; ";
      }
      return false;
    });

    uint64_t before = Counter(target, "malformed_datagrams");
    uint64_t sent = 0;
    const std::string& topic = target.Id();
    for (const std::string& payload : junk) {
      REQUIRE(SendParts(xpub, {topic, payload}));
      ++sent;
    }
    for (int k = 0; k < 200; ++k) {
      REQUIRE(SendParts(xpub, {topic + RandomBytes(rng, rng() % 100)}));  // one part only
      REQUIRE(SendParts(xpub, {topic, RandomBytes(rng, 10), RandomBytes(rng, 10)}));  // three
      sent += 2;
    }
    REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
      uint64_t seen = Counter(target, "malformed_datagrams") - before;
      *why = std::to_string(seen) + " of " + std::to_string(sent) + " counted";
      return seen == sent;
    });
    still_serving("junk on the SUB side");

    // The fake never answers a ping: it is failed, and it is the only casualty.
    REQUIRE_EVENTUALLY(15s, [&](std::string* why) {
      return AllSee(nodes, {fake_id}, {"failed", "absent"}, why);
    });
  }

  // Whatever was thrown at it, the node still runs, answers, keeps its id, and every node still
  // lists exactly the real members alive, with nobody ever failed.
  still_serving("all junk");
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

// One rainctl run that must fail: `expected` exit code (0: any non-zero), stdout empty, and a
// one-line "rainctl: ..." error on stderr (CLI usage errors may add a "Run with --help" hint).
// A port from the node's ready file ("hydfs_port=N").
uint16_t ReadyPort(const RaindProcess& n, const std::string& key) {
  std::ifstream in(n.DataDir() + "/ready");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0)
      return static_cast<uint16_t>(std::stoi(line.substr(key.size() + 1)));
  }
  return 0;
}

TEST_CASE("junk on the HyDFS sockets gets error replies or is dropped, and files still work",
          "[hydfs][hydfs-junk]") {
  Cluster c(3, {"--set", "log_ship_interval_ms=0"});
  REQUIRE_OK(c.Start());
  // Membership converged; HyDFS builds its ring from the view a little later.
  std::vector<RaindProcess*> everyone = c.Running();
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) { return RingsHave(everyone, 3, why); });
  RaindProcess& target = c.node(1);
  uint16_t rpc_port = ReadyPort(target, "hydfs_port");
  uint16_t data_port = ReadyPort(target, "hydfs_data_port");
  REQUIRE(rpc_port != 0);
  REQUIRE(data_port != 0);
  std::mt19937_64 rng(kSeed + 3);
  const auto junk = JunkPayloads(rng);
  std::string local = c.dir() + "/file";
  std::ofstream(local, std::ios::binary) << RandomBytes(rng, 300000);

  auto files_still_work = [&](const std::string& phase) {
    INFO("after " << phase);
    REQUIRE(target.Running());
    std::string name = "after-" + std::to_string(rng() % 1000000);
    CommandResult w = RunCtl({"--node", target.ControlAddress(), "create", local, name});
    INFO(w.Describe());
    REQUIRE(w.code() == 0);
    CommandResult r = RunCtl({"--node", c.node(0).ControlAddress(), "get", name, local + ".out"});
    INFO(r.Describe());
    REQUIRE(r.code() == 0);
  };

  for (uint16_t port : {rpc_port, data_port}) {
    INFO("raw TCP to port " << port);
    for (int i = 0; i < 10; ++i) RawTcp(port, RandomBytes(rng, 1 + rng() % 8192));
    RawTcp(port, ZmtpGreeting() + RandomBytes(rng, 1000));
    RawTcp(port, std::string(1 << 20, 'A'));
  }
  files_still_work("raw TCP junk");

  // The control ROUTER answers every frame, junk or a hydfs message with a broken body, with an
  // error.
  zmq::socket_t dealer = Connected(zmq::socket_type::dealer, rpc_port);
  std::vector<std::string> payloads = junk;
  for (int type = 30; type <= 37; ++type) {
    payloads.push_back(RawEnvelope(1, type, {}));  // nil body
    payloads.push_back(RawEnvelope(1, type, [&](wire::Packer& pk) {
      pk.pack_map(4);
      pk.pack("name");
      pk.pack_uint64(7);  // wrong type
      pk.pack("items");
      pk.pack("not an array");
      pk.pack("stream");
      pk.pack(-1);
      pk.pack("file");
      pk.pack_array(0);
    }));
    payloads.push_back(RawEnvelope(1, type, [&](wire::Packer& pk) {
      pk.pack_map(3);
      pk.pack("name");
      pk.pack("../../etc/passwd");
      pk.pack("items");
      pk.pack_array(1);
      pk.pack_array(3);
      pk.pack_uint64(rng());
      pk.pack_uint64(5);
      pk.pack_uint64(1);  // from > to
      pk.pack("gen");
      pk.pack_uint64(1);
    }));
  }
  size_t i = 0;
  for (const std::string& payload : payloads) {
    INFO("payload #" << i << " of " << payload.size() << " bytes"
                     << (i >= junk.size()
                             ? ", hydfs type " + std::to_string(30 + (i - junk.size()) / 3) +
                                   " variant " + std::to_string((i - junk.size()) % 3)
                             : std::string()));
    ++i;
    REQUIRE(SendParts(dealer, {payload}));
    auto reply = Receive(dealer, 5s);
    REQUIRE(reply.has_value());
    auto env = wire::Decode((*reply)[0]);
    REQUIRE_OK(env.status());
    // A list request ignores keys it does not know: with no usable prefix it lists everything.
    bool list = i > junk.size() && (i - 1 - junk.size()) / 3 == 7;
    if (!list) CHECK_FALSE(wire::ReplyPayload(*env).ok());
  }
  files_still_work("junk frames on the HyDFS control port");

  // The data PULL drops junk, malformed stream frames and frames of streams nobody opened.
  zmq::socket_t push = Connected(zmq::socket_type::push, data_port);
  for (const std::string& payload : junk) REQUIRE(SendParts(push, {payload}));
  for (int k = 0; k < 200; ++k) {
    zmq::message_t chunk = transport::ChunkFrame(rng(), k, 0, k % 2 == 0, RandomBytes(rng, 5000));
    zmq::message_t ack = transport::AckFrame(rng(), k, 1);
    zmq::message_t end = transport::EndFrame(rng(), 3, Status::Corruption("junk"));
    REQUIRE(transport::TrySend(push, &chunk, 1));
    REQUIRE(transport::TrySend(push, &ack, 1));
    REQUIRE(transport::TrySend(push, &end, 1));
  }
  files_still_work("junk on the HyDFS data port");
}

void ExpectCtlError(const std::vector<std::string>& args, int expected) {
  CommandResult r = RunCtl(args);
  std::string what;
  for (const auto& a : args) what += " " + a;
  INFO("rainctl" << what << "\n" << r.Describe());
  CHECK_FALSE(r.timed_out);
  if (expected == 0) {
    CHECK(r.code() != 0);
  } else {
    CHECK(r.code() == expected);
  }
  CHECK(r.out.empty());
  std::vector<std::string> lines;
  std::string line;
  std::istringstream in(r.err);
  while (std::getline(in, line)) lines.push_back(line);
  REQUIRE(!lines.empty());
  CHECK(lines[0].rfind("rainctl: ", 0) == 0);
  CHECK(lines[0].size() > 9);
  CHECK(lines.size() <= 2);
  if (lines.size() == 2) CHECK(lines[1] == "Run with --help for usage.");
}

TEST_CASE("rainctl rejects bad arguments with a non-zero exit and a one-line error",
          "[membership][bad-args]") {
  Cluster c(2);
  REQUIRE_OK(c.Start());
  const std::string node = c.node(1).ControlAddress();
  auto at = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--node", node});
    return args;
  };

  // Usage errors (exit 2), caught before anything is sent.
  ExpectCtlError({}, 2);
  ExpectCtlError(at({"bogus"}), 2);
  ExpectCtlError(at({"switch"}), 2);
  ExpectCtlError(at({"switch", "gossip"}), 2);
  ExpectCtlError(at({"switch", "foo", "bar"}), 2);
  ExpectCtlError(at({"switch", "gossip", "maybe"}), 2);
  ExpectCtlError(at({"drop"}), 2);
  ExpectCtlError(at({"drop", "150"}), 2);
  ExpectCtlError(at({"drop", "-5"}), 2);
  ExpectCtlError(at({"drop", "abc"}), 2);
  ExpectCtlError(at({"config"}), 2);
  ExpectCtlError(at({"config", "frob"}), 2);
  ExpectCtlError(at({"config", "set", "suspicion_timeout_ms"}), 2);
  ExpectCtlError({"--node", node, "--timeout", "0", "list_mem"}, 2);
  ExpectCtlError(at({"members", "--watch", "--for", "-1"}), 2);

  // The node refuses (exit 1) and says why.
  ExpectCtlError(at({"config", "get", "no_such_key"}), 1);
  ExpectCtlError(at({"config", "set", "no_such_key", "1"}), 1);
  ExpectCtlError(at({"config", "set", "suspicion_timeout_ms", "abc"}), 1);
  ExpectCtlError(at({"config", "set", "suspicion_timeout_ms", "1"}), 1);  // below the minimum
  ExpectCtlError(at({"config", "set", "probe_timeout_ms", "200"}), 1);    // > probe_interval / 2
  ExpectCtlError(at({"config", "set", "protocol", "carrier-pigeon"}), 1);
  ExpectCtlError(at({"config", "set", "drop_rate", "101"}), 1);
  ExpectCtlError(at({"join"}), 1);  // already a member

  // No node to talk to (exit 3), within about the --timeout given.
  TimePoint start = Clock::now();
  ExpectCtlError({"--node", "127.0.0.1:1", "--timeout", "300", "list_mem"}, 3);
  CHECK(ToMillis(Clock::now() - start) < 3000);
  // A malformed --node is a usage error too.
  ExpectCtlError({"--node", "nonsense", "list_mem"}, 2);
  ExpectCtlError({"--node", "127.0.0.1:99999", "list_mem"}, 2);

  // With --json a remote error is also a JSON object on stdout.
  CommandResult r = RunCtl({"--node", node, "--json", "config", "get", "no_such_key"});
  INFO(r.Describe());
  CHECK(r.code() == 1);
  auto j = Json::Parse(r.out.substr(0, r.out.find('\n')));
  REQUIRE_OK(j.status());
  CHECK((*j)["error"]["code"].Str() == "not_found");
  CHECK((*j)["error"]["message"].Str().find("no_such_key") != std::string::npos);

  // None of it changed anything.
  auto nodes = c.Running();
  std::string why;
  bool same = AllReportProtocol(nodes, "ping", true, &why);
  INFO(why);
  CHECK(same);
  for (const char* key : {"suspicion_timeout_ms", "probe_timeout_ms", "drop_rate"}) {
    auto v = ConfigGet(node, key);
    REQUIRE_OK(v.status());
    CHECK(*v == (std::string(key) == "suspicion_timeout_ms" ? "1000"
                 : std::string(key) == "probe_timeout_ms"   ? "100"
                                                            : "0"));
  }
  bool alive = AllAlive(nodes, &why);
  INFO(why);
  CHECK(alive);
}

}  // namespace
}  // namespace rs::harness
