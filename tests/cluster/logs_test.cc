// Cluster tests of `rainctl logs`: `--follow` latency, joins, losses and filters; and the logs
// the nodes ship into HyDFS, which outlive their node and `rainctl grep --hydfs` reads. The
// distributed grep itself is in logquery_test.cc. Each TEST_CASE has its own tag and runs as its
// own meson test.
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/logquery.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// --- logs --follow ---

// Every `rainctl: <id>: following` line the follow printed for `ids`.
bool Following(Subprocess& follow, const std::vector<std::string>& ids, std::string* why) {
  std::string err = follow.Stderr();
  for (const auto& id : ids) {
    if (err.find("rainctl: " + id + ": following") == std::string::npos) {
      *why = id + " is not followed yet; stderr: " + err;
      return false;
    }
  }
  return true;
}

// The first line of the follow's stdout from `id` that contains every needle, or "".
std::string FollowLine(const std::string& out, const std::string& id,
                       const std::vector<std::string>& needles) {
  for (const std::string& line : SplitLines(out)) {
    if (line.rfind(id + " ", 0) != 0) continue;
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) return line;
  }
  return "";
}

constexpr size_t kTimestampChars = 23;  // 2026-03-01T00:12:07.331

TEST_CASE(
    "logs --follow shows a new line of every node within a second, picks up a joining node, "
    "reports a killed one LOST, and --grep passes only matching lines",
    "[logquery][logs-follow]") {
  Cluster c(3);
  REQUIRE_OK(c.Start());
  const std::string via = c.node(0).ControlAddress();
  Subprocess all, filtered;
  REQUIRE_OK(
      StartCtl({"--node", via, "--timeout", "2000", "logs", "--follow", "--for", "60"}, &all));
  REQUIRE_OK(StartCtl({"--node", via, "--timeout", "2000", "logs", "--follow", "--for", "60",
                       "--grep", "EVENT=CONFIG_SET", "-i", "-F"},
                      &filtered));
  std::vector<std::string> ids = IdsOf(c.Running());
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    return Following(all, ids, why) && Following(filtered, ids, why);
  });

  // A config change at node 1: it logs config_set, and every node logs the adopted config
  // (origin = node 1). Each line must be in the follow's output within 1 s of its timestamp.
  const std::string origin = c.node(1).Id();
  auto triggered = Clock::now();
  REQUIRE_EXIT(Ctl(c.node(1), {"config", "set", "probe_interval_ms", "260"}), 0);
  const std::vector<std::string> set_line = {"event=config_set key=probe_interval_ms value=260"};
  REQUIRE_EVENTUALLY_POLL(1s, 10ms, [&](std::string* why) {
    *why = "stdout:\n" + all.Stdout();
    return !FollowLine(all.Stdout(), origin, set_line).empty();
  });
  INFO("config_set at node 1 shown " << ToMillis(Clock::now() - triggered) << " ms after");
  std::map<std::string, std::string> verdict;  // id -> "" or how late its line was
  REQUIRE_EVENTUALLY_POLL(5s, 10ms, [&](std::string* why) {
    std::string out = all.Stdout();
    auto now = std::chrono::system_clock::now();
    for (const auto& id : ids) {
      if (verdict.count(id)) continue;
      std::string line = FollowLine(out, id, {"event=config member=" + id, "origin=" + origin});
      if (line.empty()) continue;
      std::string written = line.substr(id.size() + 1, kTimestampChars);
      verdict[id] = written < LogTimestamp(now - 1s)
                        ? "first seen at " + LogTimestamp(now) + ", written at " + written
                        : "";
    }
    *why = std::to_string(verdict.size()) + " of " + std::to_string(ids.size()) +
           " nodes have shown their config event; stdout:\n" + out;
    return verdict.size() == ids.size();
  });
  for (const auto& [id, late] : verdict) {
    INFO(id << ": " << late);
    CHECK(late.empty());
  }

  // A node that joins while the follow runs: followed, and its lines shown.
  auto added = c.AddNode();
  REQUIRE_OK(added.status());
  RaindProcess& joiner = **added;
  REQUIRE_OK(joiner.WaitReady(kReadyDeadline));
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    return Following(all, {joiner.Id()}, why) && Following(filtered, {joiner.Id()}, why);
  });
  REQUIRE_EXIT(Ctl(joiner, {"config", "set", "probe_interval_ms", "270"}), 0);
  REQUIRE_EVENTUALLY(5s, [&](std::string* why) {
    *why = "stdout:\n" + all.Stdout();
    return !FollowLine(all.Stdout(), joiner.Id(),
                       {"event=config_set key=probe_interval_ms value=270"})
                .empty() &&
           !FollowLine(filtered.Stdout(), joiner.Id(),
                       {"event=config_set key=probe_interval_ms value=270"})
                .empty() &&
           !FollowLine(all.Stdout(), c.node(0).Id(), {"origin=" + joiner.Id()}).empty();
  });

  // A SIGKILLed node is reported LOST (no keepalive for max(--timeout, 2000) ms), and only it.
  RaindProcess& victim = c.node(2);
  const std::string dead = victim.Id();
  victim.Kill();
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    *why = "stderr:\n" + all.Stderr();
    return all.Stderr().find("rainctl: " + dead + ": LOST") != std::string::npos &&
           filtered.Stderr().find("rainctl: " + dead + ": LOST") != std::string::npos;
  });

  all.Signal(SIGINT);
  filtered.Signal(SIGINT);
  auto all_exit = all.Wait(5s);
  auto filtered_exit = filtered.Wait(5s);
  std::string all_out = all.Stdout(), all_err = all.Stderr();
  std::string filtered_out = filtered.Stdout(), filtered_err = filtered.Stderr();
  INFO("follow stderr:\n"
       << all_err << "\nfiltered follow stdout:\n"
       << filtered_out << "\nfiltered follow stderr:\n"
       << filtered_err);
  REQUIRE(all_exit.has_value());
  REQUIRE(filtered_exit.has_value());
  CHECK(all_exit->ToString() == ExitStatus{0}.ToString());
  CHECK(filtered_exit->ToString() == ExitStatus{0}.ToString());
  CHECK(Occurrences(all_err, "LOST") == 1);
  CHECK(Occurrences(filtered_err, "LOST") == 1);

  // --grep -i -F EVENT=CONFIG_SET: exactly the config_set lines of the unfiltered follow.
  std::vector<std::string> expected;
  for (const std::string& line : SplitLines(all_out)) {
    if (line.find("event=config_set") != std::string::npos) expected.push_back(line);
  }
  std::vector<std::string> got = SplitLines(filtered_out);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  std::string diff = FirstDifference(got, expected);
  INFO(diff);
  CHECK(diff.empty());
  CHECK(expected.size() >= 2);
}

// --- log shipping ---

TEST_CASE(
    "a node's shipped log outlives it in HyDFS: a prefix of its log holding every line older "
    "than a second before the kill, readable and searchable through the survivors",
    "[logquery][logs-shipped]") {
  Cluster c(3, {"--set", "log_ship_interval_ms=500"});
  REQUIRE_OK(StartHydfs(c));
  RaindProcess& x = c.node(1);
  const std::string id = x.Id();
  const std::string shipped_name = "logs/" + id;
  auto cat = [&](RaindProcess& via) { return Ctl(via, {"cat", shipped_name}, 30s); };
  auto brief = [](const CommandResult& r) {
    return r.status.ToString() + ", " + std::to_string(r.out.size()) + " bytes, stderr: " + r.err;
  };

  // A distinctive line at X: the client of a create logs op_start with the file's name.
  const std::string marker = "shipmarker-5f1e2d";
  const std::string local = c.dir() + "/files/marker";
  REQUIRE_OK(WriteLocal(local, "marker\n"));
  REQUIRE_OK(HydfsCreate(x, local, marker).status());
  REQUIRE_FALSE(LogLinesWith(x, {"event=op_start", marker}).empty());
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    CommandResult r = cat(c.node(2));
    *why = brief(r);
    return r.code() == 0 && r.out.find(marker) != std::string::npos;
  });

  // X keeps logging (a create every iteration, op_start and op_done at X) until it is killed,
  // so there are lines from just before and just after "a second before the kill".
  auto busy_until = Clock::now() + 1500ms;
  for (int k = 0; Clock::now() < busy_until; ++k) {
    REQUIRE_OK(HydfsCreate(x, local, "tick-" + std::to_string(k)).status());
  }
  auto killed_at = std::chrono::system_clock::now();
  x.Kill();
  const std::string log = ReadFile(x.LogPath());  // one start: all of it is this process's

  CommandResult got;
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    got = cat(c.node(0));
    *why = brief(got);
    return got.code() == 0;
  });
  const std::string& shipped = got.out;
  INFO("shipped " << shipped.size() << " bytes of a " << log.size() << "-byte log");
  REQUIRE_FALSE(shipped.empty());
  CHECK(shipped.back() == '\n');
  // A prefix by lines: every shipped line is the local log's line at the same place.
  CHECK(shipped.size() <= log.size());
  CHECK(log.compare(0, shipped.size(), shipped) == 0);
  // Every line written more than a second before the kill was shipped (interval 500 ms).
  const std::string cutoff = LogTimestamp(killed_at - 1s);
  size_t must = 0, offset = 0;
  std::string last_old;
  for (const std::string& line : SplitLines(log)) {
    offset += line.size() + 1;
    if (line.size() >= kTimestampChars && line.substr(0, kTimestampChars) < cutoff) {
      must = offset;
      last_old = line;
    }
  }
  INFO("the last line older than " << cutoff << ": " << last_old);
  CHECK(must > 0);
  CHECK(shipped.size() >= must);
  // The other survivor reads the same bytes.
  CommandResult again = cat(c.node(2));
  INFO(brief(again));
  CHECK(again.code() == 0);
  CHECK(again.out == shipped);

  // grep --hydfs finds the marker under X's id, labelled with the HyDFS name.
  std::vector<std::string> expected;
  for (const std::string& line : SplitLines(shipped)) {
    if (line.find(marker) != std::string::npos) expected.push_back(shipped_name + ":" + line);
  }
  REQUIRE_FALSE(expected.empty());
  GrepRun run = RainGrep(c.node(2), {"--hydfs", marker}, /*json=*/false);
  INFO(run.Describe());
  CHECK(run.code() == 0);
  std::string diff = FirstDifference(LinesOf(run, id), expected);
  INFO(diff);
  CHECK(diff.empty());
  CHECK(CountOf(run, id) == static_cast<int64_t>(expected.size()));
}

}  // namespace
}  // namespace rs::harness
