// OperatorDriver and BatchSizer (daemon/stream/operator_driver.h): batch sizes follow the
// operator's time per tuple; a unit's outputs come back whole and in order through batches of
// any size, with a real operator process.
#include "daemon/stream/operator_driver.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

namespace rs::stream {
namespace {

using namespace std::chrono_literals;

std::string IdentityPath() {
  namespace fs = std::filesystem;
  fs::path p = fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
               "operators" / "builtin" / "rainop-identity";
  REQUIRE(fs::exists(p));
  return p.string();
}

}  // namespace

TEST_CASE("batch sizes start at one tuple, grow 4x per quick answer, and keep to ~50 ms",
          "[stream][operator_driver]") {
  SECTION("a fast operator reaches full batches in a few answers") {
    BatchSizer s(1024, 50ms);
    std::vector<size_t> sizes;
    for (int i = 0; i < 7; ++i) {
      sizes.push_back(s.Next());
      s.Answered(s.Next(), std::chrono::microseconds(2 * s.Next()));  // 2 us a tuple
    }
    CHECK(sizes == std::vector<size_t>{1, 4, 16, 64, 256, 1024, 1024});
  }
  SECTION("200 ms a tuple: batches of one") {
    BatchSizer s(1024, 50ms);
    for (int i = 0; i < 10; ++i) {
      CHECK(s.Next() == 1);
      s.Answered(1, 200ms);
    }
  }
  SECTION("1 ms a tuple settles at 50") {
    BatchSizer s(1024, 50ms);
    for (int i = 0; i < 20; ++i) s.Answered(s.Next(), std::chrono::milliseconds(s.Next()));
    CHECK(s.Next() == 50);
  }
  SECTION("an operator that slows down gets smaller batches at once") {
    BatchSizer s(1024, 50ms);
    for (int i = 0; i < 8; ++i) s.Answered(s.Next(), std::chrono::microseconds(s.Next()));
    REQUIRE(s.Next() == 1024);
    s.Answered(1024, 10s);  // ~10 ms a tuple now; the average halves the jump
    CHECK(s.Next() <= 10);
    CHECK(s.Next() >= 1);
  }
}

TEST_CASE("a driver answers units whole and in order, whatever its batch sizes",
          "[stream][operator_driver]") {
  ::signal(SIGPIPE, SIG_IGN);
  OperatorProcessOptions options;
  options.max_in_flight = 4;
  auto op = OperatorProcess::Start({IdentityPath()}, OperatorContext{}, options);
  REQUIRE(op.ok());
  OperatorDriver driver(op->get(), 1024, 4);
  // Three units: 1000 tuples, none, 300; the views point into `store`.
  std::vector<std::string> store;
  for (int i = 0; i < 1300; ++i) store.push_back(std::string("v").append(std::to_string(i)));
  auto unit = [&](int from, int to) {
    std::vector<TupleView> v;
    for (int i = from; i < to; ++i) v.emplace_back("k", store[static_cast<size_t>(i)]);
    return v;
  };
  driver.Add(unit(0, 1000));
  driver.Add({});
  driver.Add(unit(1000, 1300));
  std::vector<std::string> got;
  std::vector<size_t> unit_ends;
  size_t expected_first = 0;
  auto deadline = Clock::now() + 10s;
  while (unit_ends.size() < 3 && Clock::now() < deadline) {
    auto sent = driver.Send();
    REQUIRE(sent.ok());
    auto took = driver.Collect(
        [&](size_t first, ResultViews& r) {
          CHECK(first == expected_first);
          for (size_t i = 0; i + 1 < r.offsets.size(); ++i) {
            REQUIRE(r.offsets[i + 1] - r.offsets[i] == 1);
            got.emplace_back(r.tuples[r.offsets[i]].second);
          }
          expected_first += r.offsets.size() - 1;
        },
        [&] {
          unit_ends.push_back(got.size());
          expected_first = 0;
        });
    REQUIRE(took.ok());
  }
  REQUIRE(unit_ends == std::vector<size_t>{1000, 1000, 1300});
  CHECK(got == store);
  CHECK(driver.units() == 0);
  CHECK(driver.batches_sent() > 3);  // the first unit went in growing batches
}

}  // namespace rs::stream
