// Cluster tests of the membership layer: real raind processes on 127.0.0.1, driven and observed
// through the real rainctl. Each TEST_CASE has its own tag and runs as its own meson test (see
// meson.build). Deadlines are generous (a noisy 2-core machine): these tests check what the
// cluster decides, the benchmark measures how fast.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// Detection must happen well within this on a loaded machine (defaults: ~1-3 s).
constexpr auto kDetect = 10s;
// Dissemination of a leave, a config change, a join.
constexpr auto kSpread = 10s;

void StartCluster(Cluster& c) { REQUIRE_OK(c.Start()); }

// Switches the cluster's detector at `at` and waits until every node reports it.
void SwitchAndWait(Cluster& c, RaindProcess& at, const std::string& protocol, bool suspicion) {
  REQUIRE_EXIT(Ctl(at, {"switch", protocol, suspicion ? "suspect" : "nosuspect"}), 0);
  auto nodes = c.Running();
  REQUIRE_EVENTUALLY(kSpread, [&](std::string* why) {
    return AllReportProtocol(nodes, protocol, suspicion, why);
  });
}

// Kills one node of a 5-node cluster running `protocol`/`suspicion` and checks every survivor
// marks it failed, no survivor is failed, and the configured detector is what found it.
void CrashIsDetected(const std::string& protocol, bool suspicion) {
  Cluster c(5);
  StartCluster(c);
  if (protocol != "ping" || !suspicion) SwitchAndWait(c, c.node(1), protocol, suspicion);

  RaindProcess& victim = c.node(3);
  std::string victim_id = victim.Id();
  ExitStatus killed = victim.Kill();
  REQUIRE(killed.signaled);
  auto survivors = c.Running();
  REQUIRE(survivors.size() == 4);

  REQUIRE_EVENTUALLY(
      kDetect, [&](std::string* why) { return AllSee(survivors, {victim_id}, {"failed"}, why); });
  if (suspicion) {
    // Nobody else was blamed. (Without suspicion one late ack is a failure by design, so on a
    // loaded machine that mode may legitimately fail a live node; it is not asserted there.)
    std::string why;
    bool ok = AllSee(survivors, IdsOf(survivors), {"alive", "suspect"}, &why);
    INFO(why);
    CHECK(ok);
    CHECK(EventsAbout(survivors, IdsOf(survivors), {"fail", "expelled"}).empty());
  }

  // The configured detector found it. The event details are the daemon's own words
  // (daemon/membership/swim.cc): ping blames a missed ack, gossip a stale heartbeat.
  auto about_victim = EventsAbout(survivors, {victim_id}, {"suspect", "fail"});
  std::string history = Join(about_victim);
  INFO("events about the victim:\n" << history);
  std::string clue = protocol == "ping" ? "no ack" : "heartbeat stale";
  CHECK(history.find(clue) != std::string::npos);
  auto suspects = EventsAbout(survivors, {victim_id}, {"suspect"});
  if (suspicion) {
    CHECK(!suspects.empty());  // suspected first, failed after the suspicion timeout
  } else {
    CHECK(suspects.empty());  // failed at once
  }
}

TEST_CASE("five nodes join and each lists all five alive", "[membership][join]") {
  Cluster c(5);
  StartCluster(c);  // waits until every node lists every node alive
  auto nodes = c.Running();
  REQUIRE(nodes.size() == 5);
  for (RaindProcess* n : nodes) {
    auto list = ListMem(n->ControlAddress());
    REQUIRE_OK(list.status());
    INFO(list->ToString());
    CHECK(list->self == n->Id());
    CHECK(list->in_cluster);
    CHECK(list->members.size() == 5);
    for (RaindProcess* other : nodes) CHECK(list->StateOf(other->Id()) == "alive");
    // Ids are host:port#13-digit start time, and the port is the control port.
    CHECK(n->Id().rfind("127.0.0.1:" + std::to_string(n->ControlPort()) + "#", 0) == 0);
    CHECK(n->Id().size() - n->Id().find('#') - 1 == 13);
  }
  // list_mem_ids agrees (alive + suspect members).
  auto ids = CtlJson(c.node(4).ControlAddress(), {"list_mem_ids"});
  REQUIRE_OK(ids.status());
  CHECK((*ids)["members"].size() == 5);
}

TEST_CASE("a SIGKILLed node is marked failed by every survivor (ping, suspicion)",
          "[membership][detect-ping-sus]") {
  CrashIsDetected("ping", true);
}

TEST_CASE("a SIGKILLed node is marked failed by every survivor (ping, no suspicion)",
          "[membership][detect-ping-nosus]") {
  CrashIsDetected("ping", false);
}

TEST_CASE("a SIGKILLed node is marked failed by every survivor (gossip, suspicion)",
          "[membership][detect-gossip-sus]") {
  CrashIsDetected("gossip", true);
}

TEST_CASE("a SIGKILLed node is marked failed by every survivor (gossip, no suspicion)",
          "[membership][detect-gossip-nosus]") {
  CrashIsDetected("gossip", false);
}

TEST_CASE("three simultaneous crashes among eight nodes are all detected and no survivor is failed",
          "[membership][multi-kill]") {
  Cluster c(8);
  StartCluster(c);
  std::vector<RaindProcess*> victims = {&c.node(2), &c.node(4), &c.node(7)};
  std::vector<std::string> victim_ids = IdsOf(victims);
  for (RaindProcess* v : victims) v->Kill();
  auto survivors = c.Running();
  REQUIRE(survivors.size() == 5);
  auto survivor_ids = IdsOf(survivors);

  REQUIRE_EVENTUALLY(
      kDetect, [&](std::string* why) { return AllSee(survivors, victim_ids, {"failed"}, why); });
  std::string why;
  bool ok = AllSee(survivors, survivor_ids, {"alive", "suspect"}, &why);
  INFO(why);
  CHECK(ok);
  // Nobody ever declared a survivor failed (a suspicion refuted in time is fine), and no
  // survivor was expelled and rejoined under a new id.
  auto wrong = EventsAbout(survivors, survivor_ids, {"fail", "expelled"});
  INFO(Join(wrong));
  CHECK(wrong.empty());
  for (RaindProcess* s : survivors) CHECK(SelfId(*s) == s->Id());
}

TEST_CASE("a graceful leave (SIGTERM or rainctl leave) is seen as left, not failed",
          "[membership][leave]") {
  Cluster c(5);
  StartCluster(c);
  RaindProcess& stopped = c.node(4);
  RaindProcess& detached = c.node(3);
  std::vector<std::string> leavers = {stopped.Id(), detached.Id()};

  auto exit = stopped.Stop(10s);
  REQUIRE_OK(exit.status());
  INFO(exit->ToString());
  CHECK(*exit == ExitStatus{0, 0, false});

  REQUIRE_EXIT(Ctl(detached, {"leave"}), 0);
  // The process keeps running, out of the cluster.
  CHECK(detached.Running());
  auto self = CtlJson(detached.ControlAddress(), {"list_self"});
  REQUIRE_OK(self.status());
  CHECK_FALSE((*self)["in_cluster"].Bool());
  CHECK((*self)["state"].Str() == "left");

  std::vector<RaindProcess*> stayers = {&c.node(0), &c.node(1), &c.node(2)};
  REQUIRE_EVENTUALLY(kSpread,
                     [&](std::string* why) { return AllSee(stayers, leavers, {"left"}, why); });
  auto failures = EventsAbout(stayers, leavers, {"fail"});
  INFO(Join(failures));
  CHECK(failures.empty());
  std::string why;
  bool ok = AllAlive(stayers, &why);
  INFO(why);
  CHECK(ok);

  // A node out of the cluster still shuts down cleanly.
  auto later = detached.Stop(10s);
  REQUIRE_OK(later.status());
  CHECK(later->code == 0);
}

TEST_CASE("a restarted node rejoins as a new member and its old id stays dead",
          "[membership][restart]") {
  Cluster c(4);
  StartCluster(c);
  RaindProcess& n = c.node(2);
  std::vector<RaindProcess*> others = {&c.node(0), &c.node(1), &c.node(3)};

  SECTION("crash, then restart at once on the same control port") {
    std::string old_id = n.Id();
    uint16_t old_port = n.ControlPort();
    n.Kill();
    REQUIRE_OK(n.Restart(/*same_port=*/true));
    REQUIRE_OK(n.WaitReady(kReadyDeadline));
    std::string new_id = n.Id();
    CHECK(n.ControlPort() == old_port);
    CHECK(new_id != old_id);
    CHECK(new_id.rfind("127.0.0.1:" + std::to_string(old_port) + "#", 0) == 0);

    auto everyone = c.Running();
    REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) {
      return AllSee(everyone, {new_id}, {"alive"}, why) &&
             AllSee(everyone, {old_id}, {"failed", "absent"}, why);
    });
    std::string why;
    bool ok = AllAlive(everyone, &why);
    INFO(why);
    CHECK(ok);
    // The new process never answered for its predecessor: the old id was failed, never
    // refuted back to alive.
    CHECK(EventsAbout(others, {old_id}, {"alive"}).empty());
    CHECK(EventsAbout(everyone, IdsOf(everyone), {"fail", "expelled"}).empty());
  }

  SECTION("graceful stop, then restart on a new port") {
    std::string old_id = n.Id();
    auto exit = n.Stop(10s);
    REQUIRE_OK(exit.status());
    CHECK(exit->code == 0);
    REQUIRE_OK(n.Restart(/*same_port=*/false));
    REQUIRE_OK(n.WaitReady(kReadyDeadline));
    std::string new_id = n.Id();
    CHECK(new_id != old_id);

    auto everyone = c.Running();
    REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) {
      return AllSee(everyone, {new_id}, {"alive"}, why) && AllSee(others, {old_id}, {"left"}, why);
    });
    std::string why;
    bool ok = AllAlive(everyone, &why);
    INFO(why);
    CHECK(ok);
    CHECK(EventsAbout(others, {old_id}, {"fail"}).empty());
  }
}

// The verdict is gossiped while the node is paused; it learns it afterwards from the periodic
// verdicts to failed members (and even though it refuted a suspicion at a higher incarnation).
TEST_CASE("a node declared failed while paused learns it on resuming and rejoins under a new id",
          "[membership][pause-rejoin]") {
  Cluster c(4);
  StartCluster(c);
  RaindProcess& n = c.node(2);
  std::string old_id = n.Id();
  std::vector<RaindProcess*> others = {&c.node(0), &c.node(1), &c.node(3)};

  n.Pause();
  REQUIRE_EVENTUALLY(kDetect,
                     [&](std::string* why) { return AllSee(others, {old_id}, {"failed"}, why); });
  n.Resume();

  // daemon/membership/membership_service.h: "An expelled node rejoins by itself through the
  // members it last knew" under a new id, so a false failure costs a rejoin, not a node.
  std::string new_id;
  REQUIRE_EVENTUALLY(15s, [&](std::string* why) {
    new_id = SelfId(n);
    auto list = ListMem(n.ControlAddress());
    *why = "it reports id " + new_id + "; " + (list.ok() ? list->ToString() : "");
    return !new_id.empty() && new_id != old_id;
  });
  auto everyone = c.Running();
  REQUIRE_EVENTUALLY(kSpread, [&](std::string* why) {
    return AllSee(everyone, {new_id}, {"alive"}, why) && AllAlive(others, why) &&
           AllSee(others, {old_id}, {"failed", "absent"}, why);
  });
}

TEST_CASE("a protocol switch and a suspicion toggle issued at one node reach every node",
          "[membership][switch]") {
  Cluster c(4);
  StartCluster(c);
  auto nodes = c.Running();
  REQUIRE_EVENTUALLY(kSpread,
                     [&](std::string* why) { return AllReportProtocol(nodes, "ping", true, why); });

  SwitchAndWait(c, c.node(1), "gossip", false);
  REQUIRE_EXIT(Ctl(c.node(2), {"enable_sus"}), 0);
  REQUIRE_EVENTUALLY(
      kSpread, [&](std::string* why) { return AllReportProtocol(nodes, "gossip", true, why); });
  REQUIRE_EXIT(Ctl(c.node(3), {"disable_sus"}), 0);
  REQUIRE_EVENTUALLY(
      kSpread, [&](std::string* why) { return AllReportProtocol(nodes, "gossip", false, why); });
  SwitchAndWait(c, c.node(0), "ping", true);

  // Every node agrees on the version too, and status_sus says the same in words.
  std::set<uint64_t> versions;
  for (RaindProcess* n : nodes) {
    auto p = DisplayProtocol(n->ControlAddress());
    REQUIRE_OK(p.status());
    versions.insert(p->config_version);
    auto sus = Ctl(*n, {"status_sus"});
    REQUIRE_EXIT(sus, 0);
    CHECK(sus.out == "suspicion=on\n");
  }
  CHECK(versions.size() == 1);
  CHECK(*versions.begin() >= 5);  // founded at 1, four changes since

  // Switching detectors back and forth blamed nobody.
  std::string why;
  bool ok = AllAlive(nodes, &why);
  INFO(why);
  CHECK(ok);
  CHECK(EventsAbout(nodes, IdsOf(nodes), {"fail", "expelled"}).empty());
}

TEST_CASE("joining through a dead introducer fails with exit code 2 and the cluster is unharmed",
          "[membership][dead-introducer]") {
  // Four nodes: after the kill and a leave, two survivors still outnumber the dead one (a
  // lone survivor of two may not convict the other; daemon/membership/README.md).
  Cluster c(4);
  StartCluster(c);
  RaindProcess& dead = c.node(2);
  std::string dead_id = dead.Id();
  std::string dead_address = dead.ControlAddress();
  dead.Kill();
  std::vector<RaindProcess*> survivors = {&c.node(0), &c.node(1), &c.node(3)};

  // `retries`: the introducer gives no answer, so the joiner retries for join_timeout_ms.
  auto join_fails = [&](const std::string& introducer, bool retries) {
    RaindOptions options;
    options.introducer = introducer;
    RaindProcess& joiner = c.NewNode(std::move(options));
    TimePoint start = Clock::now();
    REQUIRE_OK(joiner.Start());
    // join_timeout_ms is 3000; allow for a slow machine.
    auto exit = joiner.Wait(15s);
    int64_t took_ms = ToMillis(Clock::now() - start);
    std::string err = ReadFile(joiner.StderrPath());
    INFO("joiner via " << introducer << " took " << took_ms << " ms; stderr:\n" << err);
    REQUIRE(exit.has_value());
    CHECK(*exit == ExitStatus{2, 0, false});
    if (retries) {
      CHECK(took_ms >= 2500);  // it retried for join_timeout_ms (3000) before giving up
      CHECK(err.find("join failed") != std::string::npos);
    } else {
      CHECK(err.find("refused") != std::string::npos);
    }
    CHECK(err.find(introducer) != std::string::npos);
  };

  SECTION("the introducer's process is gone") { join_fails(dead_address, true); }

  SECTION("the introducer runs but has left the cluster: refused at once") {
    REQUIRE_EXIT(Ctl(c.node(1), {"leave"}), 0);
    survivors = {&c.node(0), &c.node(3)};
    join_fails(c.node(1).ControlAddress(), false);
  }

  SECTION("the introducer's port accepts TCP but never speaks") {
    // A listening socket that never accepts: the kernel completes the handshake, nothing more.
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(fd, 16) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    std::string mute = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    join_fails(mute, true);
    close(fd);
  }

  // The existing members keep working: they answer, they list each other alive, the dead
  // introducer failed, and the would-be joiner was never admitted.
  REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) {
    return AllAlive(survivors, why) && AllSee(survivors, {dead_id}, {"failed"}, why);
  });
  for (RaindProcess* s : survivors) {
    auto list = ListMem(s->ControlAddress());
    REQUIRE_OK(list.status());
    INFO(list->ToString());
    // The four started (one left in a section, and is still listed) and no joiner.
    CHECK(list->members.size() == 4);
  }
}

TEST_CASE(
    "a cluster-wide config change at one node reaches all, and members --watch shows "
    "join and fail events",
    "[membership][config-watch]") {
  Cluster c(4);
  StartCluster(c);
  auto nodes = c.Running();

  // Watch node1 for a few seconds while the config changes (at node0) and a new node joins. A
  // watch without --history skips what happened before its first poll, and nothing says when
  // that poll is: a change made right after the start can fall before it and never show (seen
  // in CI). With --history the watch prints the joins so far at once, which proves it is past
  // its first poll; the change is made after that.
  Subprocess watch;
  REQUIRE_OK(StartCtl({"--node", c.node(1).ControlAddress(), "--json", "members", "--watch",
                       "--history", "--for", "10"},
                      &watch));
  REQUIRE_EVENTUALLY(5s, [&](std::string* why) {
    *why = watch.Stdout() + watch.Stderr();
    return watch.Stdout().find("\"event\":\"join\"") != std::string::npos;
  });
  REQUIRE(watch.Stdout().find("version=2") == std::string::npos);  // not changed yet
  REQUIRE_EXIT(Ctl(c.node(0), {"config", "set", "suspicion_timeout_ms", "2500"}), 0);
  REQUIRE_EVENTUALLY(kSpread, [&](std::string* why) {
    for (RaindProcess* n : nodes) {
      auto v = ConfigGet(n->ControlAddress(), "suspicion_timeout_ms");
      if (!v.ok() || *v != "2500") {
        *why = n->name() + ": " + (v.ok() ? *v : v.status().ToString());
        return false;
      }
    }
    return true;
  });
  REQUIRE_EVENTUALLY(5s, [&](std::string* why) {
    *why = watch.Stdout();
    return why->find("version=2") != std::string::npos;  // the change, live
  });
  auto joiner = c.AddNode();
  REQUIRE_OK(joiner.status());
  REQUIRE_OK((*joiner)->WaitReady(kReadyDeadline));
  std::string joiner_id = (*joiner)->Id();
  auto watch_exit = watch.Wait(20s);
  REQUIRE(watch_exit.has_value());
  INFO("watch stdout:\n" << watch.Stdout() << "\nstderr:\n" << watch.Stderr());
  CHECK(watch_exit->code == 0);
  auto events = ParseEvents(watch.Stdout());
  REQUIRE_OK(events.status());
  bool saw_join = false;
  for (const auto& e : *events) saw_join = saw_join || (e.event == "join" && e.member == joiner_id);
  CHECK(saw_join);
  // The joiner got the changed config from its introducer.
  auto v = ConfigGet((*joiner)->ControlAddress(), "suspicion_timeout_ms");
  REQUIRE_OK(v.status());
  CHECK(*v == "2500");

  // Node-local keys stay local.
  REQUIRE_EXIT(Ctl(c.node(0), {"config", "set", "join_timeout_ms", "4000"}), 0);
  auto local = ConfigGet(c.node(0).ControlAddress(), "join_timeout_ms");
  auto elsewhere = ConfigGet(c.node(1).ControlAddress(), "join_timeout_ms");
  REQUIRE_OK(local.status());
  REQUIRE_OK(elsewhere.status());
  CHECK(*local == "4000");
  CHECK(*elsewhere == "3000");

  // A fail event while watching node2 (detection now takes up to ~4 s: suspicion is 2.5 s).
  Subprocess watch_fail;
  REQUIRE_OK(StartCtl(
      {"--node", c.node(2).ControlAddress(), "--json", "members", "--watch", "--for", "20"},
      &watch_fail));
  std::string victim_id = c.node(3).Id();
  c.node(3).Kill();
  REQUIRE_EVENTUALLY(15s, [&](std::string* why) {
    auto events = ParseEvents(watch_fail.Stdout());
    *why = watch_fail.Stdout() + watch_fail.Stderr();
    if (!events.ok() || !watch_fail.Running()) return false;
    for (const auto& e : *events) {
      if (e.event == "fail" && e.member == victim_id) return true;
    }
    return false;
  });
  watch_fail.Kill();  // seen; no need to sit out the rest of --for
}

TEST_CASE("config changes of different keys made at two nodes at once both reach every node",
          "[membership][config-concurrent]") {
  Cluster c(4);
  StartCluster(c);
  auto nodes = c.Running();
  Subprocess a, b;
  REQUIRE_OK(StartCtl(
      {"--node", c.node(0).ControlAddress(), "config", "set", "suspicion_timeout_ms", "2000"}, &a));
  REQUIRE_OK(StartCtl(
      {"--node", c.node(3).ControlAddress(), "config", "set", "probe_interval_ms", "400"}, &b));
  for (Subprocess* p : {&a, &b}) {
    auto exit = p->Wait(20s);
    REQUIRE(exit.has_value());
    CHECK(exit->code == 0);
  }
  REQUIRE_EVENTUALLY(kSpread, [&](std::string* why) {
    for (RaindProcess* n : nodes) {
      auto sus = ConfigGet(n->ControlAddress(), "suspicion_timeout_ms");
      auto probe = ConfigGet(n->ControlAddress(), "probe_interval_ms");
      if (!sus.ok() || !probe.ok() || *sus != "2000" || *probe != "400") {
        *why = n->name() + ": suspicion_timeout_ms=" + (sus.ok() ? *sus : "?") +
               " probe_interval_ms=" + (probe.ok() ? *probe : "?");
        return false;
      }
    }
    return true;
  });
}

}  // namespace
}  // namespace rs::harness
