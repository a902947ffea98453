// Hostile input: junk on every socket a raind binds (control ROUTER, swim ROUTER, gossip PUB, and
// its gossip SUB through a fake member's PUB) must never crash it, never change its view of the
// real members, and must be counted as malformed. Also rainctl's handling of bad arguments.
// Floods of the swim port are in bad_input_flood_test.cc; the junk itself is in
// tests/harness/bad_input.h, pseudo-random with a fixed seed, so a failure reproduces.
#include "tests/harness/bad_input.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
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

TEST_CASE_METHOD(
    JunkTargetFixture,
    "junk on every socket raind binds leaves it alive, answering and with a correct list",
    "[membership][bad-input]") {
  const std::vector<std::pair<std::string, uint16_t>> ports = {{"control", target.ControlPort()},
                                                               {"swim", target.SwimPort()},
                                                               {"gossip", target.GossipPort()}};

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
      RequireServing("raw TCP on the " + name + " port");
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
    RequireServing("junk frames on the control port");
    CHECK(Counter(target, "malformed_control_frames") > before);
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
    RequireServing("junk on the gossip port");
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
    RequireServing("junk on the SUB side");

    // The fake never answers a ping: it is failed, and it is the only casualty.
    REQUIRE_EVENTUALLY(15s, [&](std::string* why) {
      return AllSee(nodes, {fake_id}, {"failed", "absent"}, why);
    });
  }

  CheckMembershipIntact();
}

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
  std::mt19937_64 rng(kJunkSeed + 3);
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

// One rainctl run that must fail: `expected` exit code (0: any non-zero), stdout empty, and a
// one-line "rainctl: ..." error on stderr (CLI usage errors may add a "Run with --help" hint).
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
