#include "daemon/hydfs/retry.h"

#include <catch2/catch.hpp>
#include <optional>
#include <vector>

#include "daemon/hydfs/merge.h"

namespace rs::hydfs {
namespace {

using namespace std::chrono_literals;

TEST_CASE("a transient write failure is retried with a growing backoff, at most 3 attempts",
          "[hydfs]") {
  WriteRetryPolicy p;
  REQUIRE(p.Next(1, 0ms, true) == std::optional(250ms));
  REQUIRE(p.Next(2, 2400ms, true) == std::optional(500ms));
  CHECK_FALSE(p.Next(3, 4000ms, true));  // the third attempt was the last
  p.max_attempts = 10;
  CHECK(p.Next(4, 0ms, true) == std::optional(2000ms));  // 250 * 2^3 = 2000: the cap
  CHECK(p.Next(9, 0ms, true) == std::optional(2000ms));
}

TEST_CASE("a definitive write failure is never retried", "[hydfs]") {
  WriteRetryPolicy p;
  CHECK_FALSE(p.Next(1, 0ms, false));
  for (auto code : {StatusCode::kAlreadyExists, StatusCode::kInvalidArgument,
                    StatusCode::kIOError, StatusCode::kFailedPrecondition,
                    StatusCode::kCorruption}) {
    CHECK_FALSE(TransientWriteError(code));
  }
  for (auto code : {StatusCode::kTimeout, StatusCode::kUnavailable, StatusCode::kNotFound}) {
    CHECK(TransientWriteError(code));
  }
}

TEST_CASE("no retry starts after the window, counted from the first attempt", "[hydfs]") {
  WriteRetryPolicy p;
  CHECK(p.Next(1, p.window - 250ms, true) == std::optional(250ms));
  CHECK_FALSE(p.Next(1, p.window - 249ms, true));
  CHECK_FALSE(p.Next(2, p.window, true));
}

AppendMeta A(const std::string& client, uint64_t seq, uint64_t gen = 42) {
  AppendMeta a;
  a.id = AppendId(gen, client, seq);
  a.client = client;
  a.seq = seq;
  a.size = 10;
  a.chunk_size = 1000;
  a.crcs = {static_cast<uint32_t>(a.id)};
  return a;
}

Manifest Copy(std::vector<AppendMeta> appends) {
  Manifest m;
  m.file = FileMeta{"f", 42, 1000, "c"};
  m.appends = std::move(appends);
  return m;
}

// The reason a retry keeps the append id: one replica committed the failed attempt, the retry
// reached the others; the merge lists the append once. Under a new seq it would list it twice.
TEST_CASE("an append committed by one replica and retried under its id merges to one copy",
          "[hydfs]") {
  AppendMeta create = A("c", 0), first = A("n1", 1), retry_same = A("n1", 1);
  auto plan = PlanMerge({Copy({create, first}), Copy({create, retry_same}),
                         Copy({create, retry_same})});
  REQUIRE(plan.ok());
  CHECK(plan->order.size() == 2);

  AppendMeta retry_new = A("n1", 2);  // what a caller's retry without the id amounts to
  auto twice = PlanMerge({Copy({create, first}), Copy({create, retry_new}),
                          Copy({create, retry_new})});
  REQUIRE(twice.ok());
  CHECK(twice->order.size() == 3);
}

}  // namespace
}  // namespace rs::hydfs
