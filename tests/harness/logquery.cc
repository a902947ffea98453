#include "tests/harness/logquery.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "tests/harness/ctl.h"

namespace rs::harness {
namespace {

constexpr size_t kDescribeBytes = 4000;

std::string Cap(const std::string& s) {
  if (s.size() <= kDescribeBytes) return s;
  return s.substr(0, kDescribeBytes) + "\n... (" + std::to_string(s.size() - kDescribeBytes) +
         " more bytes)";
}

bool ParseUint(const std::string& s, uint64_t* v) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  *v = std::strtoull(s.c_str(), nullptr, 10);
  return true;
}

}  // namespace

std::string GrepRun::Describe() const {
  std::string s = (result.timed_out ? "TIMED OUT, " : "") + result.status.ToString();
  if (!parse_error.empty()) s += " (output did not parse: " + parse_error + ")";
  return s + "\n--- stdout ---\n" + Cap(result.out) + "\n--- stderr ---\n" + Cap(result.err);
}

GrepRun RainGrep(const RaindProcess& via, const std::vector<std::string>& args, bool json,
                 int timeout_ms, Clock::duration kill_after) {
  std::vector<std::string> full = {"--node", via.ControlAddress(), "--timeout",
                                   std::to_string(timeout_ms)};
  if (json) full.push_back("--json");
  full.push_back("grep");
  full.insert(full.end(), args.begin(), args.end());
  GrepRun run;
  run.json = json;
  run.result = RunCtl(full, kill_after);
  if (json) {
    bool summary_seen = false;
    for (const std::string& line : SplitLines(run.result.out)) {
      auto j = Json::Parse(line);
      if (!j.ok()) {
        run.parse_error = "not JSON: " + line.substr(0, 200);
        break;
      }
      if (summary_seen) {
        run.parse_error = "a line after the summary: " + line.substr(0, 200);
        break;
      }
      if (j->Has("line")) {
        run.lines[(*j)["node"].Str()].push_back((*j)["line"].Str());
      } else if (j->Has("total")) {
        run.summary = *j;
        run.total = static_cast<int64_t>((*j)["total"].Uint());
        summary_seen = true;
      } else {
        run.parse_error = "neither a line nor the summary: " + line.substr(0, 200);
        break;
      }
    }
    return run;
  }
  bool count_mode = false;
  for (const auto& a : args) count_mode |= a == "-c";
  if (!count_mode) {
    for (const std::string& line : SplitLines(run.result.out)) {
      size_t space = line.find(' ');
      if (space == std::string::npos) {
        run.parse_error = "a stdout line without a node id: " + line.substr(0, 200);
        break;
      }
      run.lines[line.substr(0, space)].push_back(line.substr(space + 1));
    }
  }
  run.counts = ParseCounts(count_mode ? run.result.out : run.result.err, &run.total);
  return run;
}

LocalGrep GrepLocally(const std::string& dir, const std::vector<std::string>& flags,
                      const std::string& pattern, const std::vector<std::string>& files) {
  // env -C: grep names the files as given, relative to the node's log dir, as the node does.
  std::vector<std::string> argv = {"/usr/bin/env", "-C", dir, "grep", "-H", "--color=never"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"-e", pattern, "--"});
  argv.insert(argv.end(), files.begin(), files.end());
  LocalGrep g;
  g.result = RunCommand(argv, std::chrono::seconds(60));
  g.lines = SplitLines(g.result.out);
  bool count_mode = false;
  for (const auto& f : flags) count_mode |= f == "-c";
  if (!count_mode) {
    g.selected = g.lines.size();
  } else {
    for (const std::string& line : g.lines) {
      uint64_t n = 0;
      if (ParseUint(line.substr(line.rfind(':') + 1), &n)) g.selected += n;
    }
  }
  return g;
}

std::map<std::string, uint64_t> ParseCounts(const std::string& text, int64_t* total) {
  std::map<std::string, uint64_t> counts;
  *total = -1;
  for (const std::string& line : SplitLines(text)) {
    if (line.rfind("rainctl:", 0) == 0) continue;
    size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    std::string head = line.substr(0, space), rest = line.substr(space + 1);
    std::string number = rest.substr(0, rest.find(' '));
    uint64_t n = 0;
    if (!ParseUint(number, &n)) continue;
    if (head == "total") {
      *total = static_cast<int64_t>(n);
    } else {
      counts[head] = n;
    }
  }
  return counts;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

std::string LogTimestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm local {};
  localtime_r(&secs, &local);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &local);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03d", static_cast<int>(ms % 1000));
  return buf;
}

const std::vector<std::string>& LinesOf(const GrepRun& run, const std::string& id) {
  static const std::vector<std::string> kNone;
  auto it = run.lines.find(id);
  return it == run.lines.end() ? kNone : it->second;
}

int64_t CountOf(const GrepRun& run, const std::string& id) {
  auto it = run.counts.find(id);
  return it == run.counts.end() ? -1 : static_cast<int64_t>(it->second);
}

std::string FirstDifference(const std::vector<std::string>& got,
                            const std::vector<std::string>& want) {
  for (size_t k = 0; k < std::min(got.size(), want.size()); ++k) {
    if (got[k] != want[k]) {
      return "line " + std::to_string(k + 1) + ": got '" + got[k] + "', grep says '" + want[k] +
             "'";
    }
  }
  if (got.size() != want.size()) {
    return std::to_string(got.size()) + " lines, grep says " + std::to_string(want.size()) +
           (got.size() < want.size() ? "; first missing: '" + want[got.size()] + "'"
                                     : "; first extra: '" + got[want.size()] + "'");
  }
  return "";
}

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace rs::harness
