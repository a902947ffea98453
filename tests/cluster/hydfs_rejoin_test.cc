// Cluster tests of HyDFS when membership changes under it: a node expelled by a wrong verdict
// rejoins under a new id and must lose nothing (its old copies are quarantined as legacy copies,
// handed over, then dropped); a node joining while appends run must leave no copy outside the
// replica set and no repair work behind; a write cut off from its quorum fails naming it.
// Real raind processes, real rainctl.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

constexpr auto kDetect = 15s;  // failure detection (and a rejoin) on a loaded 2-core machine
constexpr auto kRepair = 30s;  // settle + a few scans + transfers of small files

// Every append is one 128-byte line naming its writer: the content splits back into appends.
std::string Record(const std::string& tag) {
  std::string line = tag;
  line.resize(127, '.');
  return line + "\n";
}

std::vector<std::string> Lines(const std::string& data) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < data.size()) {
    size_t nl = data.find('\n', at);
    if (nl == std::string::npos) nl = data.size() - 1;
    out.push_back(data.substr(at, nl - at + 1));
    at = nl + 1;
  }
  return out;
}

struct Tracked {
  std::string name;
  std::vector<std::string> acked;  // acknowledged appends (the create first)
  std::set<std::string> maybe;     // appends that failed: they may appear, at most once
};

// The file's content holds the create first, every acknowledged append exactly once, failed
// ones at most once, and nothing else.
bool ContentExact(const Tracked& t, const std::string& data, std::string* why) {
  auto lines = Lines(data);
  std::map<std::string, int> seen;
  for (const auto& l : lines) ++seen[l];
  if (lines.empty() || lines[0] != t.acked[0]) return (*why = t.name + ": create not first"), false;
  for (const auto& a : t.acked) {
    if (seen[a] != 1) {
      *why = t.name + ": acknowledged append " + a.substr(0, 40) + " appears " +
             std::to_string(seen[a]) + " times";
      return false;
    }
  }
  for (const auto& [line, n] : seen) {
    bool known = std::find(t.acked.begin(), t.acked.end(), line) != t.acked.end();
    if (!known && (!t.maybe.count(line) || n > 1)) {
      *why = t.name + ": unexpected content " + line.substr(0, 40);
      return false;
    }
  }
  return true;
}

std::string Local(Cluster& c, const std::string& name) { return c.dir() + "/files/" + name; }

Status Write(Cluster& c, RaindProcess& via, Tracked& t, const std::string& tag, bool create) {
  static int n = 0;
  std::string path = Local(c, "w-" + std::to_string(++n));
  std::string rec = Record(tag);
  RS_RETURN_IF_ERROR(WriteLocal(path, rec));
  auto r = create ? HydfsCreate(via, path, t.name) : HydfsAppend(via, path, t.name);
  if (r.ok()) {
    t.acked.push_back(rec);
  } else {
    t.maybe.insert(rec);
  }
  return r.status();
}

// A client that retries a failed write as a new append (a distinct record: the failed one may
// still appear once), for a while: membership may be moving under the cluster.
Status WriteRetrying(Cluster& c, RaindProcess& via, Tracked& t, const std::string& tag) {
  Status last;
  auto wait = Eventually(
      [&](std::string* why) {
        static int attempt = 0;
        last = Write(c, via, t, tag + " try " + std::to_string(++attempt), false);
        *why = last.ToString();
        return last.ok();
      },
      20s, 500ms);
  return wait.ok ? Status::Ok() : last;
}

bool AllReadable(Cluster& c, const std::vector<Tracked>& files, std::string* why) {
  static int n = 0;
  auto nodes = c.Running();
  for (size_t i = 0; i < files.size(); ++i) {
    auto got =
        HydfsGet(*nodes[i % nodes.size()], files[i].name, Local(c, "got-" + std::to_string(++n)));
    if (!got.ok()) return (*why = files[i].name + ": " + got.status().ToString()), false;
    if (!ContentExact(files[i], got->data, why)) return false;
  }
  return true;
}

// Every replica `ls` names answered with a copy of the file's version.
bool ReplicasIdentical(RaindProcess& via, const std::string& name, std::string* why) {
  auto ls = HydfsLs(via, name);
  if (!ls.ok()) return (*why = name + ": " + ls.status().ToString()), false;
  if ((*ls)["replicas"].size() != kHydfsReplicas) return (*why = name + ": replicas"), false;
  for (const Json& r : (*ls)["replicas"].items()) {
    if (!r["answered"].Bool() || !r["has_copy"].Bool() ||
        r["version"].Str() != (*ls)["version"].Str()) {
      *why = name + ": replica " + r["node"].Str() + " version " + r["version"].Str() +
             " differs from " + (*ls)["version"].Str();
      return false;
    }
  }
  return true;
}

Result<uint64_t> Stat(RaindProcess& n, const std::string& key) {
  auto s = HydfsStats(n);
  if (!s.ok()) return s.status();
  if (!(*s).Has(key)) return Status::NotFound("hydfs-stats has no " + key);
  return (*s)[key].Uint();
}

}  // namespace

TEST_CASE(
    "a node expelled by a wrong verdict rejoins under a new id and loses nothing: its old copies "
    "are handed over and then dropped",
    "[hydfs][hydfs-rejoin-keeps-data]") {
  Cluster c(4, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  RaindProcess& x = c.node(1);
  std::vector<RaindProcess*> others = {&c.node(0), &c.node(2), &c.node(3)};
  std::vector<Tracked> files;
  for (int i = 0; i < 8; ++i) {
    Tracked t{"rejoin/file-" + std::to_string(i), {}, {}};
    REQUIRE_OK(Write(c, c.node(i % 4), t, t.name + " create", /*create=*/true));
    REQUIRE_OK(Write(c, c.node((i + 1) % 4), t, t.name + " before", false));
    files.push_back(t);
  }
  // Each file on its 3 successors; x holds about 3/4 of them (its share depends on the ids).
  REQUIRE_EVENTUALLY(kRepair,
                     [&](std::string* why) { return PlacementExact(c, NamesOf(files), why); });
  auto stored = StoredNames(x);
  REQUIRE_OK(stored.status());
  std::set<std::string> held = *stored;
  REQUIRE_FALSE(held.empty());
  std::string old_id = SelfId(x);
  REQUIRE_FALSE(old_id.empty());

  // A wrong verdict: x hears no membership datagram, so the others declare it failed. x hears
  // no majority, so it convicts nobody (daemon/membership/README.md) and keeps all 4 on its
  // ring; only membership datagrams are dropped, so its HyDFS traffic still flows.
  REQUIRE_EXIT(Ctl(x, {"drop", "100"}), 0);
  REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) { return RingsHave(others, 3, why); });
  auto mine = Stat(x, "ring_nodes");
  REQUIRE_OK(mine.status());
  CHECK(*mine == 4);
  // Meanwhile clients write on both sides: the majority to every file, x (placing by its ring
  // of 4) to the files it holds. x's writes that are acknowledged must survive like the rest.
  for (auto& t : files) {
    REQUIRE_OK(WriteRetrying(c, *others[0], t, t.name + " during-majority"));
    if (held.count(t.name)) (void)Write(c, x, t, t.name + " during-x", false);
    REQUIRE_OK(WriteRetrying(c, *others[1], t, t.name + " during-majority-2"));
  }
  // One file x holds is removed meanwhile: x's old copy must not bring it back.
  const std::string removed = *held.begin();
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    auto r = Ctl(*others[0], {"rm", removed});
    *why = r.Describe();
    return r.code() == 0;
  });
  files.erase(std::find_if(files.begin(), files.end(),
                           [&](const Tracked& t) { return t.name == removed; }));

  REQUIRE_EXIT(Ctl(x, {"drop", "0"}), 0);
  std::string new_id;
  REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) {
    new_id = SelfId(x);
    *why = "x reports " + new_id;
    return !new_id.empty() && new_id != old_id;
  });
  auto everyone = c.Running();
  REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) { return RingsHave(everyone, 4, why); });

  // The old copies were quarantined, not wiped; their appends reach the current replicas (the
  // appends only x took are on no other node) and then they are dropped: disk usage returns.
  // While x is cut off it may get the others expelled too (they then quarantine theirs), and
  // between hearing them again and learning its own verdict x may push its appends over as a
  // plain replica: so the hand-overs are counted over the cluster, and the data checked below.
  CHECK(LogLinesWith(x, {"event=store_wiped"}).empty());
  CHECK_FALSE(LogLinesWith(x, {"event=store_quarantined"}).empty());
  REQUIRE_EVENTUALLY(kRepair, [&](std::string* why) {
    for (RaindProcess* n : c.Running()) {
      auto s = HydfsStats(*n);
      if (!s.ok()) return (*why = s.status().ToString()), false;
      *why = n->name() + ": legacy_files=" + (*s)["legacy_files"].Str() +
             " legacy_used_bytes=" + (*s)["legacy_used_bytes"].Str();
      if (!(*s).Has("legacy_files") || (*s)["legacy_files"].Uint() != 0 ||
          (*s)["legacy_used_bytes"].Uint() != 0) {
        return false;
      }
    }
    return true;
  });
  auto stats = HydfsStats(x);
  REQUIRE_OK(stats.status());
  CHECK((*stats)["legacy_quarantined"].Uint() >= 1);
  CHECK((*stats)["legacy_dropped"].Uint() >= 1);
  auto sums = SumStats(c, {"legacy_quarantined", "legacy_handed_over", "legacy_dropped"});
  REQUIRE_OK(sums.status());
  std::fprintf(stderr,
               "rejoin: x held %zu files, quarantined %llu, handed over %llu, dropped %llu; "
               "cluster: quarantined %llu, handed over %llu, dropped %llu\n",
               held.size(), (unsigned long long)(*stats)["legacy_quarantined"].Uint(),
               (unsigned long long)(*stats)["legacy_handed_over"].Uint(),
               (unsigned long long)(*stats)["legacy_dropped"].Uint(),
               (unsigned long long)(*sums)["legacy_quarantined"],
               (unsigned long long)(*sums)["legacy_handed_over"],
               (unsigned long long)(*sums)["legacy_dropped"]);

  // Every file is readable everywhere with every acknowledged append exactly once, both sides'.
  REQUIRE_EVENTUALLY(kRepair, [&](std::string* why) { return AllReadable(c, files, why); });
  for (RaindProcess* n : c.Running()) {
    auto gone = HydfsLs(*n, removed);
    INFO(n->name() << ": ls " << removed << " -> " << gone.status().ToString());
    CHECK(gone.status().message().find("no such file") != std::string::npos);
    auto names = StoredNames(*n);
    REQUIRE_OK(names.status());
    CHECK(names->count(removed) == 0);
  }
  // merge makes the replicas identical.
  for (const auto& t : files) {
    REQUIRE_EXIT(Ctl(c.node(0), {"merge", t.name}), 0);
    REQUIRE_EVENTUALLY(10s,
                       [&](std::string* why) { return ReplicasIdentical(c.node(2), t.name, why); });
  }
  std::string why;
  CHECK(AllReadable(c, files, &why));
  INFO(why);
}

TEST_CASE(
    "after a node joins while appends run, no copy stays outside the replica set and the "
    "repair work stops",
    "[hydfs][hydfs-join-quiet]") {
  Cluster c(4, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  std::vector<Tracked> files;
  for (int i = 0; i < 8; ++i) {
    Tracked t{"joinq/file-" + std::to_string(i), {}, {}};
    REQUIRE_OK(Write(c, c.node(i % 4), t, t.name + " create", /*create=*/true));
    files.push_back(t);
  }
  auto added = c.AddNode();
  REQUIRE_OK(added.status());
  // Appends run while the node joins and the ring moves under them (failures are tolerated
  // here: a failed append may or may not appear, once).
  auto start = Clock::now();
  int round = 0;
  while (Clock::now() - start < 10s) {
    for (size_t i = 0; i < files.size(); ++i) {
      (void)Write(c, c.node((round + i) % 4), files[i],
                  files[i].name + " r" + std::to_string(round), false);
    }
    ++round;
  }
  REQUIRE_OK((*added)->WaitReady(kReadyDeadline));
  auto everyone = c.Running();
  REQUIRE_EVENTUALLY(kDetect, [&](std::string* why) { return RingsHave(everyone, 5, why); });
  size_t acked = 0;
  for (const auto& t : files) acked += t.acked.size();
  INFO(acked << " writes acknowledged in " << round << " rounds");
  REQUIRE(acked > files.size() * 3);

  // No copy outside the replica set remains.
  REQUIRE_EVENTUALLY(kRepair,
                     [&](std::string* why) { return PlacementExact(c, NamesOf(files), why); });
  // A quiet cluster does no repair work: within a bounded time the repair counters stop rising
  // (unchanged over 6 s, three scan periods), and then stay put.
  uint64_t after = 0;
  auto settled = Eventually(
      [&](std::string* why) {
        auto a = SumStat(c, "repairs_started");
        if (!a.ok()) return (*why = a.status().ToString()), false;
        after = *a;
        auto held = Consistently(
            [&](std::string* w) {
              auto b = SumStat(c, "repairs_started");
              *w = b.ok() ? "repairs_started " + std::to_string(after) + " -> " + std::to_string(*b)
                          : b.status().ToString();
              return b.ok() && *b == after;
            },
            6s, 500ms);
        *why = held.last;
        return held.ok;
      },
      40s);
  INFO("waited " << settled.ToString());
  REQUIRE(settled.ok);
  std::fprintf(stderr, "repair counters settled after %lld ms\n",
               static_cast<long long>(settled.waited_ms));
  auto sums = SumStats(c, {"extras_dropped", "repairs_empty", "repair_scans"});
  REQUIRE_OK(sums.status());
  uint64_t dropped = (*sums)["extras_dropped"], empty = (*sums)["repairs_empty"],
           scans = (*sums)["repair_scans"];
  std::fprintf(stderr,
               "join under appends: %zu acked, repairs_started=%llu empty=%llu "
               "extras_dropped=%llu scans=%llu\n",
               acked, (unsigned long long)after, (unsigned long long)empty,
               (unsigned long long)dropped, (unsigned long long)scans);
  WARN("join under appends: " << acked << " writes acknowledged; repairs started " << after
                              << ", of which changed nothing " << empty << "; extras dropped "
                              << dropped << "; scans " << scans);
  // The files that moved onto the new node left a copy behind on the node they moved off, and
  // that copy was dropped. Where the new node sits decides how many moved: its ring id is
  // random, and a node that lands just after another can take none of 8 files.
  size_t moved = 0;
  for (const auto& t : files) {
    auto ls = HydfsLs(c.node(0), t.name);
    REQUIRE_OK(ls.status());
    auto ids = ReplicaIds(*ls);
    moved += std::count(ids.begin(), ids.end(), (*added)->Id());
  }
  INFO(moved << " of " << files.size() << " files have the new node among their replicas");
  if (moved > 0) {
    CHECK(dropped >= 1);
  } else {
    WARN("the new node took none of the files: nothing moved, no copy to drop");
  }
  REQUIRE_EVENTUALLY(kRepair, [&](std::string* why) { return AllReadable(c, files, why); });
}

TEST_CASE(
    "a write that cannot reach its quorum fails naming the quorum and changes nothing; reads "
    "still answer from the reachable replica",
    "[hydfs][hydfs-quorum-error]") {
  // Suspected members stay on the ring: with a long suspicion timeout two stopped nodes stay
  // replicas, as right after a partition cuts them off.
  Cluster c(3, HydfsArgs({"--set", "suspicion_timeout_ms=60000"}));
  REQUIRE_OK(StartHydfs(c));
  Tracked t{"quorum/file", {}, {}};
  REQUIRE_OK(Write(c, c.node(0), t, "quorum create", /*create=*/true));
  c.node(1).Pause();
  c.node(2).Pause();
  Status st = Write(c, c.node(0), t, "quorum lost append", /*create=*/false);
  INFO(st.ToString());
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("unavailable: 1 of 3 replicas reachable, write quorum is 2") !=
        std::string::npos);
  auto got = HydfsGet(c.node(0), t.name, Local(c, "quorum-got-1"));
  REQUIRE_OK(got.status());
  CHECK(got->data == t.acked[0]);  // the failed append left nothing
  c.node(1).Resume();
  c.node(2).Resume();
  REQUIRE_OK(Write(c, c.node(1), t, "quorum append after", /*create=*/false));
  got = HydfsGet(c.node(2), t.name, Local(c, "quorum-got-2"));
  REQUIRE_OK(got.status());
  t.maybe.clear();  // the failed append was aborted before any commit: it must not appear
  std::string why;
  CHECK(ContentExact(t, got->data, &why));
  INFO(why);
}

}  // namespace rs::harness
