// The partition checker's core (tests/harness/append_check.h) on hand-made histories.
#include "tests/harness/append_check.h"

#include <catch2/catch.hpp>

namespace rs::harness {
namespace {

AppendAttempt A(uint32_t client, uint64_t seq, AppendOutcome outcome, const std::string& file = "f") {
  AppendAttempt a;
  a.client = client;
  a.seq = seq;
  a.file = file;
  a.outcome = outcome;
  return a;
}

constexpr auto kAck = AppendOutcome::kAcked;
constexpr auto kFail = AppendOutcome::kFailed;

std::string Content(std::initializer_list<std::pair<uint32_t, uint64_t>> records) {
  std::string s = HeaderLine("f");
  for (auto [c, q] : records) s += RecordLine(c, q);
  return s;
}

TEST_CASE("a file holding every acknowledged record once, in each client's order, passes",
          "[harness][append-check]") {
  std::vector<AppendAttempt> h = {A(0, 1, kAck), A(1, 1, kAck), A(0, 2, kAck), A(1, 2, kFail),
                                  A(0, 3, kAck, "other")};
  // Clients interleave freely; a failed append may land once.
  FileVerdict v = CheckFileContent("f", Content({{1, 1}, {0, 1}, {1, 2}, {0, 2}}), h);
  INFO(v.problems.size());
  CHECK(v.ok());
  CHECK(v.acked == 3);
  CHECK(v.acked_present == 3);
  CHECK(v.unacked_present == 1);
  CHECK(MissingAcked("f", Content({{1, 1}, {0, 1}}), h) == 1);
}

TEST_CASE("a lost, duplicated, reordered or phantom record is a violation",
          "[harness][append-check]") {
  std::vector<AppendAttempt> h = {A(0, 1, kAck), A(0, 2, kAck), A(1, 1, kFail)};
  SECTION("lost") {
    FileVerdict v = CheckFileContent("f", Content({{0, 1}}), h);
    CHECK(v.lost == 1);
    CHECK(!v.ok());
  }
  SECTION("an acknowledged record twice") {
    FileVerdict v = CheckFileContent("f", Content({{0, 1}, {0, 2}, {0, 1}}), h);
    CHECK(v.duplicated == 1);
    CHECK(!v.ok());
  }
  SECTION("a failed record twice") {
    FileVerdict v = CheckFileContent("f", Content({{0, 1}, {1, 1}, {0, 2}, {1, 1}}), h);
    CHECK(v.duplicated == 1);
    CHECK(!v.ok());
  }
  SECTION("a client's records out of order") {
    FileVerdict v = CheckFileContent("f", Content({{0, 2}, {0, 1}}), h);
    CHECK(v.reordered == 1);
    CHECK(v.lost == 0);
    CHECK(!v.ok());
  }
  SECTION("a record never appended to this file, a torn line, a missing header") {
    CHECK(CheckFileContent("f", Content({{0, 1}, {0, 2}, {5, 1}}), h).garbage == 1);
    CHECK(!CheckFileContent("f", Content({{0, 1}, {0, 2}}) + "client-0 se", h).ok());
    CHECK(!CheckFileContent("f", RecordLine(0, 1) + RecordLine(0, 2), h).ok());
    CHECK(CheckFileContent("f", Content({{0, 1}, {0, 2}}) + "client-00 seq-1\n", h).garbage == 1);
  }
}

}  // namespace
}  // namespace rs::harness
