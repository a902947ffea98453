#include "daemon/hydfs/op_metrics.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace rs::hydfs {
namespace {

using namespace std::chrono_literals;

TEST_CASE("an operation counts under its own kind and outcome, bytes only when it succeeded",
          "[hydfs]") {
  OpMetrics m;
  m.Record(OpKind::kCreate, true, 1000, 3ms);
  m.Record(OpKind::kAppend, true, 250, 700us);
  m.Record(OpKind::kAppend, false, 4096, 2s);
  m.Record(OpKind::kGet, true, 1250, 20ms);

  OpCounts create = m.Take(OpKind::kCreate);
  CHECK(create.ok == 1);
  CHECK(create.error == 0);
  CHECK(create.bytes == 1000);
  OpCounts append = m.Take(OpKind::kAppend);
  CHECK(append.ok == 1);
  CHECK(append.error == 1);
  CHECK(append.bytes == 250);  // the failed append wrote nothing
  CHECK(append.duration.Count() == 2);
  CHECK(append.duration.sum_seconds == Approx(2.0007));
  CHECK(m.Take(OpKind::kGet).bytes == 1250);
  for (OpKind k : {OpKind::kGetPrefix, OpKind::kMerge, OpKind::kLs, OpKind::kRm}) {
    OpCounts c = m.Take(k);
    CHECK(c.ok + c.error == 0);
    CHECK(c.duration.Count() == 0);
  }
}

TEST_CASE("an operation's duration lands in the bucket of the shared latency bounds", "[hydfs]") {
  OpMetrics m;
  m.Record(OpKind::kLs, true, 0, 3ms);   // (2.5 ms, 5 ms]
  m.Record(OpKind::kLs, true, 0, 5ms);   // a bound is inclusive: still (2.5 ms, 5 ms]
  m.Record(OpKind::kLs, false, 0, 90s);  // over 60 s: +Inf
  HistogramSnapshot h = m.Take(OpKind::kLs).duration;
  REQUIRE(h.counts.size() == kLatencyBounds.size() + 1);
  CHECK(h.counts[3] == 2);  // kLatencyBounds[3] = 0.005
  CHECK(h.counts.back() == 1);
  CHECK(h.Count() == 3);
  CHECK(h.sum_seconds == Approx(90.008));
}

TEST_CASE("every operation kind has its own snake_case label, and only data moves count bytes",
          "[hydfs]") {
  std::set<std::string> names;
  for (OpKind k : kAllOpKinds) {
    std::string n(OpKindName(k));
    CHECK(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
    names.insert(n);
  }
  CHECK(names.size() == kOpKinds);
  CHECK(OpKindName(OpKind::kGetFromReplica) == "get_from_replica");
  std::set<std::string> with_bytes;
  for (OpKind k : kAllOpKinds) {
    if (CarriesPayload(k)) with_bytes.insert(std::string(OpKindName(k)));
  }
  CHECK(with_bytes == std::set<std::string>{"create", "append", "get", "get_prefix", "get_snapshot",
                                            "get_from_replica"});
}

TEST_CASE("operations recorded from several threads are all counted", "[hydfs]") {
  OpMetrics m;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kPerThread; ++i) m.Record(OpKind::kGet, (i + t) % 2 == 0, 10, 1ms);
    });
  }
  for (auto& th : threads) th.join();
  OpCounts c = m.Take(OpKind::kGet);
  CHECK(c.ok == kPerThread);
  CHECK(c.error == kPerThread);
  CHECK(c.bytes == 10ull * kPerThread);
  CHECK(c.duration.Count() == 2ull * kPerThread);
}

}  // namespace
}  // namespace rs::hydfs
