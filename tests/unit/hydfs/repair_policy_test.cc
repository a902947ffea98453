// The repair scan's decision per copy (repair_policy.h) over plain heads, and the per-file
// backoff, with a manual clock.
#include "daemon/hydfs/repair_policy.h"

#include <catch2/catch.hpp>

namespace rs::hydfs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kGen = 7, kDigest = 100;

ReplicaHead Holder(uint64_t digest = kDigest, uint64_t lacks = 0, uint64_t gen = kGen) {
  ReplicaHead h;
  h.answered = h.has_copy = true;
  h.gen = gen;
  h.digest = digest;
  h.ids_checked = true;
  h.lacks = lacks;
  return h;
}

ReplicaHead Empty() {
  ReplicaHead h;
  h.answered = true;
  h.ids_checked = true;
  h.lacks = 5;
  return h;
}

ReplicaHead Silent() { return ReplicaHead{}; }

ReplicaHead Self() {
  ReplicaHead h;
  h.self = h.answered = true;
  return h;
}

CopyFacts Facts(CopyKind kind, std::vector<ReplicaHead> replicas) {
  CopyFacts f;
  f.kind = kind;
  f.gen = kGen;
  f.digest = kDigest;
  f.full_count = 3;
  f.replicas = std::move(replicas);
  return f;
}

ScanAction Decide(const CopyFacts& f) { return DecideCopy(f).action; }

}  // namespace

TEST_CASE("an extra copy whose replicas hold all its appends in another order is dropped",
          "[hydfs][repair-policy]") {
  // The bug: the replicas merged (other digest) or took new appends; comparing digests kept
  // the extra copy forever and repaired it hundreds of times a second.
  auto f = Facts(CopyKind::kExtra, {Holder(201), Holder(202), Holder(203)});
  CHECK(Decide(f) == ScanAction::kDropSafe);
}

TEST_CASE("an extra copy holding an append a replica lacks is handed over, never dropped",
          "[hydfs][repair-policy]") {
  auto f = Facts(CopyKind::kExtra, {Holder(201), Holder(202, /*lacks=*/1), Holder(203)});
  CHECK(Decide(f) == ScanAction::kHandOver);
  f.replicas[1] = Empty();  // a new replica without a copy yet
  CHECK(Decide(f) == ScanAction::kHandOver);
}

TEST_CASE("a copy outside the replica set waits while a replica is silent",
          "[hydfs][repair-policy]") {
  for (CopyKind kind : {CopyKind::kExtra, CopyKind::kLegacy}) {
    auto f = Facts(kind, {Holder(), Silent(), Holder()});
    CHECK(Decide(f) == ScanAction::kWait);
  }
}

TEST_CASE("a copy outside the replica set is kept while the replica set is not full",
          "[hydfs][repair-policy]") {
  auto f = Facts(CopyKind::kLegacy, {Holder(), Holder()});  // the ring lists only 2 successors
  CHECK(Decide(f) == ScanAction::kWait);
}

TEST_CASE("a head without the append-id check never allows a drop", "[hydfs][repair-policy]") {
  auto f = Facts(CopyKind::kExtra, {Holder(), Holder(), Holder()});
  f.replicas[2].ids_checked = false;  // an old replica that ignores the ids
  CHECK(Decide(f) == ScanAction::kHandOver);
}

TEST_CASE("a removed generation drops any copy, a replica's too", "[hydfs][repair-policy]") {
  for (CopyKind kind : {CopyKind::kReplica, CopyKind::kExtra, CopyKind::kLegacy}) {
    auto f = Facts(kind, {Empty(), Empty(), Silent()});
    if (kind == CopyKind::kReplica) f.replicas[0] = Self();
    f.replicas[1].removed = true;
    CHECK(Decide(f) == ScanAction::kDropRemoved);
  }
}

TEST_CASE(
    "a legacy copy is handed over when the replicas lack its appends, dropped once they "
    "hold them",
    "[hydfs][repair-policy]") {
  // This node rejoined under a new id and is itself one of the replicas: its own live copy
  // counts like any other replica's.
  ReplicaHead self = Self();
  self.has_copy = true;
  self.gen = kGen;
  self.ids_checked = true;
  self.lacks = 2;
  auto f = Facts(CopyKind::kLegacy, {Holder(300, 2), self, Holder(300, 2)});
  CHECK(Decide(f) == ScanAction::kHandOver);
  f.replicas[0].lacks = f.replicas[1].lacks = f.replicas[2].lacks = 0;
  CHECK(Decide(f) == ScanAction::kDropSafe);
}

TEST_CASE("a legacy copy of a generation the replicas replaced is dropped, not resurrected",
          "[hydfs][repair-policy]") {
  auto f = Facts(CopyKind::kLegacy, {Holder(1, 4, /*gen=*/9), Holder(1, 4, 9), Holder(1, 4, 9)});
  CHECK(Decide(f) == ScanAction::kDropSuperseded);
  // No replica holds any copy (the file was lost there): hand the copy over, recreating it.
  auto g = Facts(CopyKind::kLegacy, {Empty(), Empty(), Empty()});
  CHECK(Decide(g) == ScanAction::kHandOver);
}

TEST_CASE("a replica repairs only when it is the first holder and the file is quiet",
          "[hydfs][repair-policy]") {
  auto f = Facts(CopyKind::kReplica, {Self(), Holder(), Holder()});
  CHECK(Decide(f) == ScanAction::kNone);  // identical
  f.replicas[2] = Empty();
  CHECK(Decide(f) == ScanAction::kRepair);
  f.recently_written = true;
  CHECK(Decide(f) == ScanAction::kWait);
  auto g = Facts(CopyKind::kReplica, {Holder(5), Self(), Empty()});
  CHECK(Decide(g) == ScanAction::kWait);  // the primary coordinates
  auto h = Facts(CopyKind::kReplica, {Empty(), Self(), Holder(5)});
  CHECK(Decide(h) == ScanAction::kRepair);  // the first holder is this node
}

TEST_CASE(
    "a repair that changes nothing backs off exponentially up to a bound; a useful one "
    "clears it",
    "[hydfs][repair-policy]") {
  RepairBackoff b(2s, 60s);
  TimePoint t0{};
  CHECK(b.Ready("f", t0));
  b.Record("f", t0, /*useful=*/false);
  CHECK(b.Delay("f") == 2s);
  CHECK_FALSE(b.Ready("f", t0 + 1s));
  CHECK(b.Ready("f", t0 + 2s));
  CHECK(b.Ready("g", t0));  // per file
  std::vector<Clock::duration> delays;
  for (int i = 0; i < 8; ++i) {
    b.Record("f", t0, false);
    delays.push_back(b.Delay("f"));
  }
  CHECK(delays[0] == 4s);
  CHECK(delays[1] == 8s);
  CHECK(delays[3] == 32s);
  CHECK(delays.back() == 60s);  // bounded
  b.Record("f", t0, /*useful=*/true);
  CHECK(b.Ready("f", t0));
  CHECK(b.Delay("f") == Clock::duration::zero());
  CHECK(b.waiting() == 0);
}

TEST_CASE(
    "with backoff an extra copy that cannot be dropped is repaired a bounded number of "
    "times",
    "[hydfs][repair-policy]") {
  // A minute of scans every 2 s of a copy whose hand-over keeps changing nothing: the old loop
  // ran 100-460 repairs a second; with the backoff it is a handful.
  RepairBackoff b(2s, 60s);
  auto f = Facts(CopyKind::kExtra, {Holder(1), Holder(2, 1), Holder(3)});
  int repairs = 0;
  TimePoint t0{};
  for (auto t = t0; t < t0 + 60s; t += 100ms) {
    if (Decide(f) != ScanAction::kHandOver || !b.Ready("f", t)) continue;
    ++repairs;
    b.Record("f", t, /*useful=*/false);
  }
  CHECK(repairs <= 6);
  CHECK(repairs >= 4);
}

}  // namespace rs::hydfs
