// Which end of each socket is the CurveZMQ server (shared/security/README.md), and the libzmq
// race that rule avoids: a connecting CURVE server whose session re-handshakes while the socket
// disconnects makes libzmq 4.3.4 abort the process (zap_client.cpp:78). A node's gossip SUB was
// such a socket, and a node expelled just after a partition healed died of it. The race below
// aborted this test in its first round with the old roles (SUB as server).
//
// The test process holds a node's keys (TestKeysDir), so MakeSocket gives node sockets here.
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <thread>

#include "shared/security/keys.h"
#include "shared/transport/security.h"
#include "shared/transport/sockets.h"
#include "tests/harness/cluster.h"

namespace rs::harness {
namespace {
using namespace std::chrono_literals;

zmq::socket_t Made(zmq::socket_type type, transport::SocketOptions o = {}) {
  auto s = transport::MakeSocket(type, o);
  REQUIRE(s.ok());
  return std::move(s.value());
}

std::string Bound(zmq::socket_t& s, const std::string& endpoint = "") {
  if (!endpoint.empty()) {
    for (int i = 0; i < 2000; ++i) {  // the port was just released: TIME_WAIT is not an issue
      try {
        s.bind(endpoint);
        return endpoint;
      } catch (const zmq::error_t&) {
        std::this_thread::sleep_for(1ms);
      }
    }
    FAIL("cannot bind " << endpoint << " again");
  }
  auto port = transport::Bind(s, "127.0.0.1", 0);
  REQUIRE(port.ok());
  return "tcp://127.0.0.1:" + std::to_string(*port);
}

// One round of the race: `connecting` (already connected to `endpoint`) sees its peer close and
// come back on the same port a few times, so its session handshakes again and again; then it
// drops the endpoint, and is closed, at a random moment of the latest handshake.
template <typename MakePeer>
void ChurnAndDrop(zmq::socket_t& connecting, const std::string& endpoint, zmq::socket_t peer,
                  const MakePeer& make_peer, std::mt19937& rng) {
  std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 3000));
  for (int k = 0; k < 5; ++k) {
    peer.close();
    peer = make_peer();
    Bound(peer, endpoint);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1500));
  }
  (void)transport::Disconnect(connecting, endpoint);
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
  connecting.close();
}

TEST_CASE("curve roles: the binding end serves; a connecting server never redials",
          "[curve-roles]") {
  TestKeysDir();  // installs this process's node keys
  REQUIRE(transport::SecurityEnabled());
  auto server = [](zmq::socket_type type, bool to_client = false) {
    transport::SocketOptions o;
    o.to_client = to_client;
    zmq::socket_t s = Made(type, o);
    return s.get(zmq::sockopt::curve_server) == 1;
  };

  SECTION("a node's ROUTER, PULL and PUB serve; DEALER, PUSH and SUB are clients") {
    CHECK(server(zmq::socket_type::router));
    CHECK(server(zmq::socket_type::pull));
    CHECK(server(zmq::socket_type::pub));
    CHECK(server(zmq::socket_type::xpub));
    CHECK_FALSE(server(zmq::socket_type::dealer));
    CHECK_FALSE(server(zmq::socket_type::push));
    CHECK_FALSE(server(zmq::socket_type::sub));
    CHECK_FALSE(server(zmq::socket_type::xsub));
    // The one connecting server sends to a client process, and dials once.
    CHECK(server(zmq::socket_type::push, true));
    transport::SocketOptions to_client;
    to_client.to_client = true;
    CHECK(Made(zmq::socket_type::push, to_client).get(zmq::sockopt::reconnect_ivl) == -1);
    CHECK(Made(zmq::socket_type::push).get(zmq::sockopt::reconnect_ivl) > 0);
    CHECK(Made(zmq::socket_type::sub).get(zmq::sockopt::reconnect_ivl) > 0);
  }

  SECTION("gossip: a SUB that re-handshakes and is dropped meanwhile does not abort") {
    std::mt19937 rng(std::random_device{}());
    transport::SocketOptions o;
    o.reconnect_ms = 1;  // redials within the round's few milliseconds
    for (int round = 0; round < 150; ++round) {
      zmq::socket_t pub = Made(zmq::socket_type::pub);
      std::string endpoint = Bound(pub);
      zmq::socket_t sub = Made(zmq::socket_type::sub, o);
      REQUIRE(transport::Connect(sub, endpoint).ok());
      ChurnAndDrop(sub, endpoint, std::move(pub),
                   [] { return Made(zmq::socket_type::pub); }, rng);
    }
    SUCCEED("150 rounds without an abort");
  }

  SECTION("to a client: a PUSH whose client comes and goes is dropped without an abort") {
    // The client's PULL is a CURVE client with the admin key, as in rainctl.
    auto admin = security::ReadKeyFile(TestKeysDir() + "/admin.key");
    auto cluster = security::ReadKeyFile(TestKeysDir() + "/cluster.key");
    REQUIRE(admin.ok());
    REQUIRE(cluster.ok());
    auto client_pull = [&] {
      zmq::socket_t s = Made(zmq::socket_type::pull);
      s.set(zmq::sockopt::curve_serverkey, cluster->keys.public_key);
      s.set(zmq::sockopt::curve_publickey, admin->keys.public_key);
      s.set(zmq::sockopt::curve_secretkey, admin->keys.secret_key);
      return s;
    };
    transport::SocketOptions o;
    o.to_client = true;
    o.reconnect_ms = 1;  // what to_client overrides: were it kept, it would redial at once
    std::mt19937 rng(std::random_device{}());
    for (int round = 0; round < 150; ++round) {
      zmq::socket_t pull = client_pull();
      std::string endpoint = Bound(pull);
      zmq::socket_t push = Made(zmq::socket_type::push, o);
      REQUIRE(transport::Connect(push, endpoint).ok());
      ChurnAndDrop(push, endpoint, std::move(pull), client_pull, rng);
    }
    // And the one dial does deliver, through the handshake and ZAP.
    zmq::socket_t pull = client_pull();
    std::string endpoint = Bound(pull);
    zmq::socket_t push = Made(zmq::socket_type::push, o);
    REQUIRE(transport::Connect(push, endpoint).ok());
    REQUIRE(transport::TrySend(push, std::string("hello")));
    pull.set(zmq::sockopt::rcvtimeo, 5000);
    zmq::message_t got;
    REQUIRE(pull.recv(got).has_value());
    CHECK(got.to_string() == "hello");
  }
}

}  // namespace
}  // namespace rs::harness
