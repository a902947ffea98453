// DedupLog on a real LMDB environment in a temp dir: numbering from 1, ordered iteration (also
// past 255, where the big-endian keys matter), trimming from the front, reopening,
// large and empty records.
#include "daemon/stream/dedup_log.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace rs::stream {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;  // tests/unit/temp_dir.h

std::unique_ptr<DedupLog> MustOpen(const std::string& dir) {
  auto log = DedupLog::Open(dir);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  return std::move(log).value();
}

uint64_t MustAppend(DedupLog& log, std::string_view record) {
  auto i = log.Append(record);
  INFO(i.status().ToString());
  REQUIRE(i.ok());
  return *i;
}

std::vector<std::pair<uint64_t, std::string>> All(const DedupLog& log) {
  std::vector<std::pair<uint64_t, std::string>> out;
  Status s =
      log.ForEach([&](uint64_t i, std::string_view r) { out.emplace_back(i, std::string(r)); });
  INFO(s.ToString());
  REQUIRE(s.ok());
  return out;
}

std::string Record(uint64_t i) { return "record " + std::to_string(i); }

}  // namespace

TEST_CASE("an empty dedup log has nothing and numbers from 1", "[stream][dedup_log]") {
  TempDir dir;
  auto log = MustOpen(dir.path());
  CHECK(log->next_index() == 1);
  CHECK(log->first_index() == 1);
  CHECK(log->bytes_appended() == 0);
  CHECK(All(*log).empty());
  // Trimming an empty log is harmless and does not move the numbering.
  CHECK(log->TrimBefore(10).ok());
  CHECK(All(*log).empty());
  CHECK(MustAppend(*log, "first") == 1);
  log.reset();
  // Reopened: the same single record.
  log = MustOpen(dir.path());
  auto all = All(*log);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == std::make_pair(uint64_t{1}, std::string("first")));
}

TEST_CASE("dedup log records are numbered from 1 and visited in order", "[stream][dedup_log]") {
  TempDir dir;
  auto log = MustOpen(dir.path());
  uint64_t bytes = 0;
  // Past 255 and 511: the keys are big-endian, so byte order is numeric order.
  const uint64_t n = 600;
  for (uint64_t i = 1; i <= n; ++i) {
    std::string r = Record(i);
    bytes += r.size();
    REQUIRE(MustAppend(*log, r) == i);
  }
  CHECK(log->next_index() == n + 1);
  CHECK(log->first_index() == 1);
  CHECK(log->bytes_appended() == bytes);
  auto all = All(*log);
  REQUIRE(all.size() == n);
  for (uint64_t i = 1; i <= n; ++i) {
    if (all[i - 1].first != i || all[i - 1].second != Record(i)) {
      FAIL("record " << i << " is " << all[i - 1].first << " '" << all[i - 1].second << "'");
    }
  }
}

TEST_CASE("dedup log records may be empty or binary", "[stream][dedup_log]") {
  TempDir dir;
  auto log = MustOpen(dir.path());
  std::string binary("\0\xff\0\x01\x80", 5);
  CHECK(MustAppend(*log, "") == 1);
  CHECK(MustAppend(*log, binary) == 2);
  CHECK(log->bytes_appended() == 5);
  auto all = All(*log);
  REQUIRE(all.size() == 2);
  CHECK(all[0].second.empty());
  CHECK(all[1].second == binary);
}

TEST_CASE("TrimBefore deletes the records before an index, and only those", "[stream][dedup_log]") {
  TempDir dir;
  auto log = MustOpen(dir.path());
  for (uint64_t i = 1; i <= 10; ++i) MustAppend(*log, Record(i));

  REQUIRE(log->TrimBefore(4).ok());
  CHECK(log->first_index() == 4);
  CHECK(log->next_index() == 11);
  auto all = All(*log);
  REQUIRE(all.size() == 7);
  CHECK(all.front().first == 4);
  CHECK(all.front().second == Record(4));
  CHECK(all.back().first == 10);

  // Trimming before what is already gone changes nothing.
  REQUIRE(log->TrimBefore(2).ok());
  REQUIRE(log->TrimBefore(4).ok());
  CHECK(log->first_index() == 4);
  CHECK(All(*log).size() == 7);

  // Appending goes on after the last record.
  CHECK(MustAppend(*log, Record(11)) == 11);
  REQUIRE(log->TrimBefore(11).ok());
  all = All(*log);
  REQUIRE(all.size() == 1);
  CHECK(all[0] == std::make_pair(uint64_t{11}, Record(11)));

  // Past the end: everything goes, the numbering does not restart.
  REQUIRE(log->TrimBefore(100).ok());
  CHECK(All(*log).empty());
  CHECK(log->first_index() == 12);
  CHECK(MustAppend(*log, Record(12)) == 12);
  all = All(*log);
  REQUIRE(all.size() == 1);
  CHECK(all[0].first == 12);
}

TEST_CASE("a reopened dedup log continues numbering after its last record", "[stream][dedup_log]") {
  TempDir dir;
  {
    auto log = MustOpen(dir.path());
    for (uint64_t i = 1; i <= 300; ++i) MustAppend(*log, Record(i));
    REQUIRE(log->TrimBefore(290).ok());
  }
  auto log = MustOpen(dir.path());
  CHECK(log->first_index() == 290);
  CHECK(log->next_index() == 301);
  CHECK(log->bytes_appended() == 0);  // counts this run's appends
  auto all = All(*log);
  REQUIRE(all.size() == 11);
  CHECK(all.front() == std::make_pair(uint64_t{290}, Record(290)));
  CHECK(all.back() == std::make_pair(uint64_t{300}, Record(300)));
  CHECK(MustAppend(*log, Record(301)) == 301);
  log.reset();

  // Once more, without a trim in between.
  log = MustOpen(dir.path());
  CHECK(log->first_index() == 290);
  CHECK(log->next_index() == 302);
  all = All(*log);
  REQUIRE(all.size() == 12);
  CHECK(all.back() == std::make_pair(uint64_t{301}, Record(301)));
}

TEST_CASE("a dedup log holds large records intact", "[stream][dedup_log]") {
  TempDir dir;
  std::mt19937_64 rng(99);
  std::vector<std::string> records;
  for (int k = 0; k < 4; ++k) {
    std::string r((1u << 20) + static_cast<size_t>(k), '\0');  // 1 MiB and a little more
    for (auto& c : r) c = static_cast<char>(rng());
    records.push_back(std::move(r));
  }
  {
    auto log = MustOpen(dir.path());
    for (size_t k = 0; k < records.size(); ++k) {
      CHECK(MustAppend(*log, records[k]) == 2 * k + 1);
      MustAppend(*log, "small " + std::to_string(k));  // small ones between the large ones
    }
    CHECK(log->bytes_appended() > 4 * (1u << 20));
  }
  auto log = MustOpen(dir.path());
  auto all = All(*log);
  REQUIRE(all.size() == 8);
  for (size_t k = 0; k < records.size(); ++k) {
    CHECK(all[2 * k].first == 2 * k + 1);
    CHECK(all[2 * k].second == records[k]);
    CHECK(all[2 * k + 1].second == "small " + std::to_string(k));
  }
  REQUIRE(log->TrimBefore(7).ok());
  all = All(*log);
  REQUIRE(all.size() == 2);
  CHECK(all[0].second == records[3]);
}

}  // namespace rs::stream
