// Security across hosts: a cluster of 3 hosts in network namespaces and a 4th host outside it
// (tests/harness/netns.h). From the outside host, with no key, a key of another cluster, a key
// of this cluster that is not on its keyring, or a revoked key, nothing gets in: no join, no
// rainctl answer (reads included), no datagram, gossip or control frame decoded, no HyDFS data
// stream, no stream-task inbox. Each check has its positive control (the same probe with a listed
// key does get in), so a broken check fails instead of passing vacuously.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "shared/clock.h"
#include "shared/local_cluster.h"
#include "shared/security/keys.h"
#include "tests/harness/checks.h"
#include "tests/harness/cluster.h"
#include "tests/harness/eventually.h"
#include "tests/harness/metrics.h"
#include "tests/harness/netns.h"
#include "tests/harness/stream.h"

namespace rs::harness {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr size_t kStranger = 3;  // the host outside the cluster (hosts 0-2 run its nodes)

std::string ProbeBinary() {
  const char* env = std::getenv("ZMQ_PROBE");
  return env != nullptr ? env : "";
}

// A key of this cluster not on its keyring (tests/harness/cluster.h).
std::string UnlistedKey(const std::string& dir, const std::string& name, const std::string& kind) {
  auto path = MakeUnlistedKey(dir, name, kind);
  REQUIRE(path.ok());
  return *path;
}

uint64_t Counter(const std::string& node, const char* name) {
  auto stats = Stats(node);
  REQUIRE_OK(stats.status());
  return (*stats)[name].Uint();
}

TEST_CASE("a host outside the keyring cannot join, ask, gossip or stream", "[security-hosts]") {
  REQUIRE(!ProbeBinary().empty());
  auto made = Network::Create(4);
  REQUIRE_OK(made.status());
  Network& net = **made;
  Cluster c(3);
  c.set_placement(net.Placement());
  REQUIRE_OK(c.Start());
  auto rainctl = RainctlBinary();
  auto raind = RaindBinary();
  REQUIRE_OK(rainctl.status());
  REQUIRE_OK(raind.status());

  std::string dir = c.dir() + "/stranger";
  fs::create_directories(dir);
  std::string other = dir + "/other-cluster";
  REQUIRE(security::MakeClusterKeys(other, WallMillis()).ok());
  std::string unlisted = UnlistedKey(dir, "mallory", "admin");
  std::string local = c.dir() + "/data.txt";
  { std::ofstream(local) << "secret\n"; }
  REQUIRE(RunCtl({"--node", c.node(0).ControlAddress(), "create", local, "f.txt"}).code() == 0);

  // Commands run on the outside host; a batch of them at once (most wait out a deadline).
  auto on_outside = [&](std::vector<std::string> argv) {
    std::vector<std::string> full = net.Exec(kStranger);
    full.insert(full.end(), argv.begin(), argv.end());
    return full;
  };
  auto ctl_argv = [&](const std::vector<std::string>& auth, const std::string& node,
                      const std::vector<std::string>& args) {
    std::vector<std::string> argv = {*rainctl};
    argv.insert(argv.end(), auth.begin(), auth.end());
    argv.insert(argv.end(), {"--node", node, "--timeout", "1500"});
    argv.insert(argv.end(), args.begin(), args.end());
    return on_outside(argv);
  };
  auto ctl = [&](const std::vector<std::string>& auth, const std::string& node,
                 const std::vector<std::string>& args) {
    return RunCommand(ctl_argv(auth, node, args), 20s);
  };
  // tests/harness/zmq_probe from the outside host: 10 junk frames to `endpoint` through a socket
  // of `type`. `probes` runs a batch at once and gives each one's verdict line ("handshake
  // accepted" / "refused" / "none").
  struct Probe {
    std::string what, endpoint, type;
    std::vector<std::string> auth;
  };
  auto probes = [&](const std::vector<Probe>& batch) {
    std::vector<std::vector<std::string>> argvs;
    for (const Probe& p : batch) {
      std::vector<std::string> argv = {ProbeBinary(), "--endpoint", p.endpoint, "--type", p.type,
                                       "--frames",    "10",         "--wait-ms",  "2000"};
      argv.insert(argv.end(), p.auth.begin(), p.auth.end());
      argvs.push_back(on_outside(argv));
    }
    std::vector<CommandResult> results = RunCommands(argvs, 20s);
    std::vector<std::string> verdicts;
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO(batch[i].what << " with " << batch[i].auth.back() << ": " << results[i].Describe());
      REQUIRE(results[i].code() == 0);
      verdicts.push_back(results[i].out);
    }
    return verdicts;
  };
  const std::vector<std::vector<std::string>> stranger_keys = {
      {"--insecure"}, {"--key", other + "/node.key"}, {"--key", unlisted}};

  SECTION("no key, another cluster's key, an unlisted key: no rainctl answer, reads included") {
    const std::vector<std::vector<std::string>> strangers = {
        {"--insecure"}, {"--key", other + "/admin.key"}, {"--key", unlisted}};
    std::vector<std::string> what;
    std::vector<std::vector<std::string>> argvs;
    for (const auto& auth : strangers) {
      for (size_t i = 0; i < c.size(); ++i) {
        for (const auto& args : std::vector<std::vector<std::string>>{
                 {"list_mem"}, {"cat", "f.txt"}, {"rm", "f.txt"}}) {
          what.push_back(auth.back() + " " + args[0] + " on node " + std::to_string(i + 1));
          argvs.push_back(ctl_argv(auth, c.node(i).ControlAddress(), args));
        }
      }
    }
    std::vector<CommandResult> results = RunCommands(argvs, 20s);
    for (size_t i = 0; i < results.size(); ++i) {
      INFO(what[i] << ": " << results[i].Describe());
      CHECK(results[i].code() == 3);
      CHECK(results[i].out.find("secret") == std::string::npos);
    }
    // Positive control: the outside host reaches the nodes with the admin key.
    CHECK(ctl({"--key", TestKeysDir() + "/admin.key"}, c.node(0).ControlAddress(), {"cat", "f.txt"})
              .out == "secret\n");
  }

  SECTION("junk on every port: refused at the handshake, never decoded; a member's is decoded") {
    std::string node = c.node(0).ControlAddress();
    auto ready = ReadReadyFile(c.node(0).DataDir() + "/ready");
    REQUIRE_OK(ready.status());
    std::string host = net.Address(0);
    struct Port {
      std::string name, type, port;
    };
    const std::vector<Port> ports = {
        {"control", "dealer", ready->at("port")},
        {"swim", "dealer", ready->at("swim_port")},
        {"hydfs", "dealer", ready->at("hydfs_port")},
        {"hydfs_data", "push", ready->at("hydfs_data_port")},
    };
    auto probe_of = [&](const Port& p, const std::vector<std::string>& auth) {
      return Probe{p.name, "tcp://" + host + ":" + p.port, p.type, auth};
    };
    uint64_t refused0 = Counter(node, "refused_handshakes");
    uint64_t datagrams0 = Counter(node, "malformed_datagrams");
    uint64_t control0 = Counter(node, "malformed_control_frames");
    std::vector<Probe> batch;
    for (const Port& p : ports) {
      for (const auto& auth : stranger_keys) batch.push_back(probe_of(p, auth));
    }
    std::vector<std::string> verdicts = probes(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO(batch[i].what << " with " << batch[i].auth.back() << ": " << verdicts[i]);
      CHECK(verdicts[i].find("handshake accepted") == std::string::npos);
    }
    CHECK(Counter(node, "refused_handshakes") > refused0);  // the unlisted keys reached ZAP
    CHECK(Counter(node, "malformed_datagrams") == datagrams0);
    CHECK(Counter(node, "malformed_control_frames") == control0);
    // Positive control: the member key's junk gets in and is counted as junk.
    batch.clear();
    const std::vector<std::string> member = {"--key", TestKeysDir() + "/node.key"};
    for (const Port& p : ports) batch.push_back(probe_of(p, member));
    verdicts = probes(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO(batch[i].what << ": " << verdicts[i]);
      CHECK(verdicts[i].find("handshake accepted") != std::string::npos);
    }
    auto decoded = Eventually(
        [&](std::string* why) {
          bool ok = Counter(node, "malformed_datagrams") > datagrams0 &&
                    Counter(node, "malformed_control_frames") > control0;
          if (!ok) *why = "the member's junk was not counted";
          return ok;
        },
        10s, 200ms);
    CHECK(decoded.ok);
    CHECK(RunCtl({"--node", node, "cat", "f.txt"}).out == "secret\n");  // unharmed
  }

  SECTION("a stream task's inbox refuses a stranger at the handshake; a member gets in") {
    // A live job: its tasks listen until rainsource attaches, so their inboxes stay open.
    JobRun run = RunJob(c.node(0), {"job", "submit", "--live", "--stage", "identity", "--tasks",
                                    "2", "--dest", "live-out.txt", "--detach"});
    INFO(run.result.Describe());
    REQUIRE(!run.job.empty());
    std::vector<std::string> inboxes;
    REQUIRE_EVENTUALLY(std::chrono::seconds(30), [&](std::string* why) {
      auto tasks = JobTasks(c.node(0), run.job);
      if (!tasks.ok()) {
        *why = tasks.status().ToString();
        return false;
      }
      inboxes.clear();
      for (const Json& t : *tasks) {
        std::string inbox = t["inbox"].Str();
        if (t["stage"].Uint() == 1 && !inbox.empty()) inboxes.push_back(inbox);
      }
      *why = std::to_string(inboxes.size()) + " of 2 stage-1 inboxes listed";
      return inboxes.size() == 2;
    });
    // Strangers, and as the positive control a member key, against every inbox at once.
    std::vector<Probe> batch;
    for (const std::string& inbox : inboxes) {
      // The tasks run on the cluster's hosts, not on the outside one.
      CHECK(inbox.find(net.Address(kStranger) + ":") == std::string::npos);
      for (const auto& auth : stranger_keys) {
        batch.push_back({"task inbox " + inbox, inbox, "push", auth});
      }
      batch.push_back(
          {"task inbox " + inbox, inbox, "push", {"--key", TestKeysDir() + "/node.key"}});
    }
    std::vector<std::string> verdicts = probes(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO(batch[i].what << " with " << batch[i].auth.back() << ": " << verdicts[i]);
      bool member = batch[i].auth.back() == TestKeysDir() + "/node.key";
      CHECK((verdicts[i].find("handshake accepted") != std::string::npos) == member);
    }
    std::string state;
    bool running = JobIn(c.node(0), run.job, {"running"}, &state);
    INFO(state);
    CHECK(running);  // the junk did not harm the job
    CHECK(RunCtl({"--node", c.node(0).ControlAddress(), "job", "cancel", run.job}).code() == 0);
  }

  SECTION("a node with an unlisted member key, or another cluster's keys, cannot join") {
    std::string keys = dir + "/keys-unlisted";
    fs::create_directories(keys);
    fs::copy_file(TestKeysDir() + "/cluster.key", keys + "/cluster.key");
    fs::copy_file(TestKeysDir() + "/keyring", keys + "/keyring");
    fs::copy_file(UnlistedKey(dir, "intruder", "member"), keys + "/node.key");
    const std::vector<std::string> key_dirs = {keys, other};
    std::vector<std::vector<std::string>> argvs;
    for (const std::string& kd : key_dirs) {
      argvs.push_back(on_outside({*raind, "--host", net.Address(kStranger), "--port", "0",
                                  "--data-dir", dir + "/data-" + fs::path(kd).filename().string(),
                                  "--keys-dir", kd, "--introducer", c.node(0).ControlAddress()}));
    }
    std::vector<CommandResult> joins = RunCommands(argvs, 30s);
    for (size_t i = 0; i < joins.size(); ++i) {
      INFO(key_dirs[i] << ": " << joins[i].Describe());
      CHECK(joins[i].code() == 2);  // the join failed
    }
    for (size_t i = 0; i < c.size(); ++i) {
      auto members = ListMem(c.node(i).ControlAddress());
      REQUIRE_OK(members.status());
      for (const auto& [id, m] : members->members) {
        CHECK(id.find(net.Address(kStranger) + ":") == std::string::npos);
      }
    }
  }

  SECTION("a key revoked while the outside host uses it is refused within seconds") {
    std::string reader = UnlistedKey(dir, "reader", "read");
    auto file = security::ReadKeyFile(reader);
    REQUIRE(file.ok());
    REQUIRE(RunCtl({"--node", c.node(0).ControlAddress(), "keys", "add", "read",
                    file->keys.public_key, "reader"})
                .code() == 0);
    auto works = Eventually(
        [&](std::string* why) {
          for (size_t i = 0; i < c.size(); ++i) {
            if (ctl({"--key", reader}, c.node(i).ControlAddress(), {"cat", "f.txt"}).out !=
                "secret\n") {
              *why = "node " + std::to_string(i + 1) + " does not serve the read key yet";
              return false;
            }
          }
          return true;
        },
        15s, 250ms);
    REQUIRE(works.ok);
    REQUIRE(RunCtl({"--node", c.node(2).ControlAddress(), "keys", "revoke", "reader"}).code() == 0);
    TimePoint revoked = Clock::now();
    auto refused = Eventually(
        [&](std::string* why) {
          for (size_t i = 0; i < c.size(); ++i) {
            if (ctl({"--key", reader}, c.node(i).ControlAddress(), {"list_mem"}).code() == 0) {
              *why = "node " + std::to_string(i + 1) + " still answers the revoked key";
              return false;
            }
          }
          return true;
        },
        15s, 250ms);
    CHECK(refused.ok);
    INFO("refused everywhere " << ToMillis(Clock::now() - revoked) << " ms after the revoke");
    CHECK(Clock::now() - revoked < 15s);
  }
}

}  // namespace
}  // namespace rs::harness

namespace rs::harness {
namespace {

std::string TokenOf(const std::string& key) {
  auto t = HttpToken(key);
  REQUIRE_OK(t.status());
  return *t;
}

}  // namespace

TEST_CASE("HTTP off loopback: nothing without a token, a read token reads, admin acts",
          "[http-hosts]") {
  auto made = Network::Create(2);
  REQUIRE_OK(made.status());
  Network& net = **made;
  // HTTP on every address of the node's host (its veth and its own loopback).
  Cluster c(1, {"--set", "http_bind=0.0.0.0"});
  c.set_placement(net.Placement());
  REQUIRE_OK(c.Start());
  RaindProcess& n = c.node(0);
  std::string base = "http://" + net.Address(0) + ":" + std::to_string(n.HttpPort());
  auto from = [&](size_t host, const std::string& url, const std::string& method = "GET",
                  const std::string& token = "", const std::string& form = "") {
    auto r = HttpRequest(url, method, token, form, net.Exec(host));
    INFO(method << " " << url << " from host " << host);
    REQUIRE_OK(r.status());
    return *r;
  };
  std::string reader = *MakeUnlistedKey(c.dir(), "reader", "read");
  auto rf = security::ReadKeyFile(reader);
  REQUIRE_OK(rf.status());
  REQUIRE(
      RunCtl({"--node", n.ControlAddress(), "keys", "add", "read", rf->keys.public_key, "reader"})
          .code() == 0);
  std::string read_token = TokenOf(reader);
  std::string admin_token = TokenOf("");

  // Another host, no token: every path is refused, the page and /metrics too. The page's
  // refusal is the token form (a browser's first visit), with nothing of the cluster in it.
  for (const char* path : {"/api/v1/cmd/list_mem", "/metrics", "/", "/console.js"}) {
    HttpReply r = from(1, base + path);
    CHECK(r.status == 401);
    CHECK(r.body.find("token is needed") != std::string::npos);
    bool page = std::string_view(path) == "/";
    CHECK((r.body.find("<form method=\"get\"") != std::string::npos) == page);
    CHECK(r.body.find(n.ControlAddress()) == std::string::npos);
  }
  // The form's submission: the page itself, with the token in the query.
  HttpReply opened = from(1, base + "/?token=" + read_token);
  CHECK(opened.status == 200);
  CHECK(opened.body.find("id=\"tokenbar\"") != std::string::npos);
  // The positive controls: a read token reads from there, and the node's own loopback reads
  // without one.
  HttpReply listed = from(1, base + "/api/v1/cmd/list_mem", "GET", read_token);
  CHECK(listed.status == 200);
  CHECK(listed.body.find(n.ControlAddress()) != std::string::npos);
  CHECK(from(1, base + "/metrics", "GET", read_token).status == 200);
  std::string own = "http://127.0.0.1:" + std::to_string(n.HttpPort());
  CHECK(from(0, own + "/api/v1/cmd/list_mem").status == 200);
  // Acting: a read token may not; an admin token passes the role check (the job is unknown).
  CHECK(from(1, base + "/api/v1/cmd/job.cancel", "POST", read_token, "job=j9").status == 403);
  HttpReply acted = from(1, base + "/api/v1/cmd/job.cancel", "POST", admin_token, "job=j9");
  CHECK(acted.status == 404);
  CHECK(acted.body.find("no job j9") != std::string::npos);
  // A forged token from there: 401.
  std::string forged = admin_token;
  forged.back() = forged.back() == '0' ? '1' : '0';
  CHECK(from(1, base + "/api/v1/cmd/list_mem", "GET", forged).status == 401);
}

TEST_CASE("HTTP off loopback needs keys: an insecure node will not bind it", "[http-hosts]") {
  auto raind = RaindBinary();
  REQUIRE(raind.ok());
  std::string dir = TestKeysDir() + "-insecure-http";
  CommandResult r = RunCommand(
      {*raind, "--insecure", "--port", "0", "--data-dir", dir, "--set", "http_bind=0.0.0.0"}, 10s);
  fs::remove_all(dir);
  CHECK(r.code() != 0);
  CHECK(r.err.find("off loopback") != std::string::npos);
}

}  // namespace rs::harness
