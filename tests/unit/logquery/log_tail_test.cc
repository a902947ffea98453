// log.tail's reading of the log (daemon/logquery/log_tail.h).
#include "daemon/logquery/log_tail.h"

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/unit/temp_dir.h"

namespace rs::logquery {
namespace {

void Append(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::app) << text;
}

TEST_CASE("log.tail: whole lines from an offset, filtered, then what came since", "[logquery]") {
  test_util::TempDir dir;
  std::string log = dir.path() + "/raind.log";
  Append(log, "a event=ready\nb event=task_start\nc EVENT=READY\nd partial");
  auto all = TailLog(log, 0, "", false);
  REQUIRE(all.ok());
  CHECK(all->lines == std::vector<std::string>{"a event=ready", "b event=task_start",
                                               "c EVENT=READY"});
  CHECK(all->next == 47);  // the partial line waits for its newline
  CHECK(all->size == 56);
  auto ready = TailLog(log, 0, "event=rea.y", true);
  REQUIRE(ready.ok());
  CHECK(ready->lines == std::vector<std::string>{"a event=ready", "c EVENT=READY"});
  Append(log, " now whole\ne event=ready\n");
  auto more = TailLog(log, all->next, "event=ready", false);
  REQUIRE(more.ok());
  CHECK(more->lines == std::vector<std::string>{"e event=ready"});
  auto none = TailLog(log, more->next, "", false);
  REQUIRE(none.ok());
  CHECK(none->lines.empty());
  CHECK(none->next == more->next);
  // No offset: the last bytes, from a line start.
  auto tail = TailLog(log, std::nullopt, "", false, 1 << 20, 20);
  REQUIRE(tail.ok());
  CHECK(tail->lines == std::vector<std::string>{"e event=ready"});
  // Past the end (rotated): from the start again.
  auto rotated = TailLog(log, 1 << 20, "", false);
  REQUIRE(rotated.ok());
  CHECK(rotated->restarted);
  CHECK(rotated->lines.size() == 5);
  // A bad pattern and a missing file are errors, not crashes.
  CHECK(TailLog(log, 0, "a\\(", false).status().code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(TailLog(dir.path() + "/nope.log", 0, "", false).ok());
}

}  // namespace
}  // namespace rs::logquery
