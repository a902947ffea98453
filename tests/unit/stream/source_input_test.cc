// rainsource's input side (ctl/source_input.h): the bytes still to be cut into records, and
// what the writer offers as the target policy sees it (job.source_load).
#include "ctl/source_input.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

namespace rs::source {
namespace {

using std::chrono::milliseconds;

TEST_CASE("the reader counts the bytes it holds that are no record yet", "[source]") {
  InputReader r(false);
  r.Feed("ab\ncd\nef", 8);
  CHECK(r.Buffered() == 8);
  REQUIRE(r.Next(false, 1));
  CHECK(r.Buffered() == 5);
  REQUIRE(r.Next(false, 2));
  CHECK(r.Buffered() == 2);
  CHECK_FALSE(r.Next(false, 3));  // "ef" waits for its newline
  auto last = r.Next(true, 3);
  REQUIRE(last);
  CHECK(last->value == "ef");
  CHECK(r.Buffered() == 0);
}

TEST_CASE("the load meter turns bytes read into records offered and waiting", "[source]") {
  TimePoint t0 = Clock::now();
  LoadMeter m(t0);
  // A second of 10-byte records: 2,000 read (20,000 bytes), 1,500 cut, 500 still buffered.
  m.Read(20000);
  LoadMeter::Load l = m.Take(1500, 5000, t0 + milliseconds(1000));
  CHECK(l.offered == 2000);
  CHECK(l.backlog == 500);
  // The next second the writer stops; what was read is cut: nothing offered, no backlog.
  l = m.Take(2000, 0, t0 + milliseconds(2000));
  CHECK(l.offered == 0);
  CHECK(l.backlog == 0);
  // Before any record is cut the mean size is unknown: nothing is claimed.
  LoadMeter fresh(t0);
  fresh.Read(4096);
  l = fresh.Take(0, 4096, t0 + milliseconds(500));
  CHECK(l.offered == 0);
  CHECK(l.backlog == 0);
}

}  // namespace
}  // namespace rs::source
