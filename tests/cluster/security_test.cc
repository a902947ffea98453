// Security on a local cluster (shared/security/README.md): only keys on the keyring get an
// answer, a read key cannot change anything, a revoked key is refused without a restart, and a
// node will not start with a secret key others can read. The cluster runs with the harness's
// keys (TestKeysDir); the strangers' keys are made here.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "shared/clock.h"
#include "shared/security/keys.h"
#include "shared/transport/rpc.h"
#include "shared/wire/envelope.h"
#include "shared/wire/message_types.h"
#include "tests/harness/cluster.h"
#include "tests/harness/eventually.h"

namespace rs::harness {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A key of this cluster not on its keyring (tests/harness/cluster.h).
std::string MakeClientKey(const std::string& dir, const std::string& name,
                          const std::string& kind) {
  auto path = MakeUnlistedKey(dir, name, kind);
  REQUIRE(path.ok());
  return *path;
}

std::string PublicOf(const std::string& key_file) {
  auto f = security::ReadKeyFile(key_file);
  REQUIRE(f.ok());
  return f->keys.public_key;
}

CommandResult As(const std::string& key, const std::string& node, std::vector<std::string> args) {
  std::vector<std::string> argv = {"--key", key, "--node", node, "--timeout", "1500"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCtl(argv);
}

// True once no node answers `key` (each is asked list_mem).
bool RefusedEverywhere(Cluster& c, const std::string& key, std::string* why) {
  for (size_t i = 0; i < c.size(); ++i) {
    CommandResult r = As(key, c.node(i).ControlAddress(), {"list_mem"});
    if (r.code() == 0) {
      *why = "node " + std::to_string(i + 1) + " still answers the key";
      return false;
    }
  }
  return true;
}

TEST_CASE("keys: strangers get nothing, a read key looks, a revoked key is refused", "[security]") {
  Cluster c(3);
  REQUIRE(c.Start().ok());
  std::string node = c.node(0).ControlAddress();
  std::string dir = c.dir() + "/clients";
  fs::create_directories(dir);

  // The admin key of the harness works (it is what RunCtl uses by default).
  CommandResult admin = RunCtl({"--node", node, "list_mem"});
  REQUIRE(admin.code() == 0);

  SECTION("a key of another cluster, and an unlisted key of this one, get no answer") {
    std::string other = c.dir() + "/other-cluster";
    REQUIRE(security::MakeClusterKeys(other, WallMillis()).ok());
    CommandResult r = As(other + "/admin.key", node, {"list_mem"});
    CHECK(r.code() == 3);  // no answer: refused at the handshake
    std::string unlisted = MakeClientKey(dir, "mallory", "admin");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"list_mem"}, {"ls"}, {"rm", "x"}, {"leave"}, {"config", "set", "drop_rate", "50"}}) {
      r = As(unlisted, node, args);
      CHECK(r.code() == 3);
    }
    r = RunCtl({"--insecure", "--node", node, "--timeout", "1500", "list_mem"});
    CHECK(r.code() == 3);  // plain text to a secure node
    CHECK(r.err.find("insecure") != std::string::npos);
    // Each node logged the refusals, and the cluster is whole.
    CHECK(ReadFile(c.node(0).LogPath()).find("event=refused_handshake") != std::string::npos);
    CHECK(RunCtl({"--node", node, "list_mem"}).code() == 0);
  }

  SECTION("a read key may look but not change; revoking it takes effect without a restart") {
    std::string reader = MakeClientKey(dir, "reader", "read");
    REQUIRE(RunCtl({"--node", node, "keys", "add", "read", PublicOf(reader), "reader"}).code() ==
            0);
    // Every node learns it (pushed at once, and kept level every 2 s).
    auto known = Eventually(
        [&](std::string* why) {
          for (size_t i = 0; i < c.size(); ++i) {
            if (As(reader, c.node(i).ControlAddress(), {"list_mem"}).code() != 0) {
              *why = "node " + std::to_string(i + 1) + " does not answer the read key yet";
              return false;
            }
          }
          return true;
        },
        10s, 200ms);
    REQUIRE(known.ok);
    std::string local = c.dir() + "/data.txt";
    { std::ofstream(local) << "hello\n"; }
    REQUIRE(RunCtl({"--node", node, "create", local, "f.txt"}).code() == 0);
    CHECK(As(reader, node, {"ls"}).code() == 0);
    CHECK(As(reader, node, {"cat", "f.txt"}).out == "hello\n");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"create", local, "g.txt"},
             {"append", local, "f.txt"},
             {"rm", "f.txt"},
             {"config", "set", "drop_rate", "50"},
             {"switch", "gossip", "nosuspect"},
             {"leave"},
             {"keys", "add", "admin", PublicOf(reader), "escalate"},
             {"job", "submit", "--stage", "identity", "--src", "f.txt", "--dest", "o.txt",
              "--detach"}}) {
      CommandResult r = As(reader, node, args);
      CHECK(r.code() == 1);
      CHECK(r.err.find("permission_denied") != std::string::npos);
    }
    CHECK(RunCtl({"--node", node, "cat", "f.txt"}).out == "hello\n");  // untouched

    // The stream engine's messages between daemons take a member key: an admin client key (and
    // a read key) sending one directly (tests/harness/zmq_probe) is refused; a member's works.
    const char* probe = std::getenv("ZMQ_PROBE");
    REQUIRE(probe != nullptr);
    for (const std::string& key : {TestKeysDir() + "/admin.key", reader}) {
      CommandResult r = RunCommand({probe, "--endpoint", "tcp://" + node, "--key", key,
                                    "--stop-job", "j1-0000", "--wait-ms", "3000"},
                                   10s);
      INFO(key << ": " << r.Describe());
      CHECK(r.out.find("reply permission_denied") != std::string::npos);
    }
    // The gossip PUB admits member keys only: a client key, even an admin's, cannot listen in.
    std::string gossip = "tcp://" + node.substr(0, node.rfind(':')) + ":" +
                         std::to_string(c.node(0).GossipPort());
    auto listen_in = [&](const std::string& key) {
      CommandResult r = RunCommand({probe, "--endpoint", gossip, "--type", "sub", "--key", key,
                                    "--wait-ms", "3000"},
                                   10s);
      INFO(key << " on the gossip port: " << r.Describe());
      CHECK(r.code() == 0);
      return r.out;
    };
    for (const std::string& key : {TestKeysDir() + "/admin.key", reader}) {
      CHECK(listen_in(key).find("handshake refused") != std::string::npos);
    }
    CHECK(listen_in(TestKeysDir() + "/node.key").find("handshake accepted") != std::string::npos);
    auto member = transport::CallOnce(
        "tcp://" + node, wire::MsgType::kStreamStopJob,
        [](wire::Packer& pk) {
          pk.pack_map(2);
          pk.pack("job");
          pk.pack("j1-0000");
          pk.pack("remove");
          pk.pack(true);
        },
        5s);
    REQUIRE(member.ok());
    CHECK(wire::ReplyPayload(*member).ok());  // no such job here: nothing to stop, and no error

    REQUIRE(RunCtl({"--node", c.node(1).ControlAddress(), "keys", "revoke", "reader"}).code() == 0);
    auto refused =
        Eventually([&](std::string* why) { return RefusedEverywhere(c, reader, why); }, 10s, 200ms);
    CHECK(refused.ok);
    CHECK(RunCtl({"--node", node, "list_mem"}).code() == 0);
  }
}

TEST_CASE("keys: a node will not start with a secret key others can read", "[security]") {
  std::string dir = TestKeysDir() + "-loose";
  fs::remove_all(dir);
  fs::copy(TestKeysDir(), dir);
  ::chmod((dir + "/node.key").c_str(), 0644);
  auto raind = RaindBinary();
  REQUIRE(raind.ok());
  CommandResult r =
      RunCommand({*raind, "--port", "0", "--data-dir", dir + "/data", "--keys-dir", dir}, 10s);
  fs::remove_all(dir);
  CHECK(r.code() == 1);
  CHECK(r.err.find("mode 0644") != std::string::npos);
}

}  // namespace
}  // namespace rs::harness
