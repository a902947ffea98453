// Cluster tests of the distributed grep: `rainctl grep` over generated log files in every node's
// data dir (which is its log dir), compared line for line with GNU grep run here in the same dir
// (the oracle); partial results when a node dies before or during a query; a paused reader.
// `rainctl logs` (follow, shipping into HyDFS) is in logs_test.cc. Each TEST_CASE has its own
// tag and runs as its own meson test.
// Generated data uses fixed seeds, so a failure reproduces.
#include "tests/harness/logquery.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Log shipping off where it is not under test: it only adds HyDFS traffic.
const std::vector<std::string> kNoShipping = {"--set", "log_ship_interval_ms=0"};

// --- generated application logs: app.1.log and app.2.log in every node's log dir ---

constexpr size_t kLinesPerFile = 2000;
const std::vector<std::string> kAppFiles = {"app.1.log", "app.2.log"};
const std::string kAppGlob = "app.*.log";

// Lines like `2026-03-01T00:12:07.331 INFO svc=api node=n2 seq=727 code=404 msg=...`. Tokens:
// INFO on ~88% of lines (frequent), PANIC on ~0.3% (rare), code=NNN (for regexes), `unicorn`
// only on node 2, `shard-beta` only on nodes 0 and 3, `heartbeat` everywhere, timeout in mixed
// case and inside longer words (-i, -w), cat as a word and inside words (-w), `a.b*c[1]` with
// regex metacharacters beside strings its regex reading matches (-F), and `--verbose` (a pattern
// that looks like an option).
std::string AppLog(size_t node, size_t file) {
  std::mt19937_64 rng(7919 * (node + 1) + file);
  std::uniform_real_distribution<double> unit(0, 1);
  auto chance = [&](double p) { return unit(rng) < p; };
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  static const std::vector<std::string> kCodes = {"200", "200", "200", "201", "204", "301",
                                                  "404", "404", "418", "429", "500", "503"};
  static const std::vector<std::string> kTimeouts = {"timeout", "Timeout",  "TIMEOUT",
                                                     "TimeOut", "timeouts", "readtimeout"};
  static const std::vector<std::string> kCats = {"cat",     "concat", "cats", "cat-food",
                                                 "cat_box", "bobcat", "Cat"};
  std::string out;
  for (size_t k = 0; k < kLinesPerFile; ++k) {
    double r = unit(rng);
    const char* level = r < 0.88 ? "INFO" : r < 0.97 ? "WARN" : "ERROR";
    char head[160];
    std::snprintf(head, sizeof(head),
                  "2026-03-0%zuT%02zu:%02zu:%02zu.%03u %s svc=api node=n%zu seq=%zu code=%s msg=",
                  file, k / 3600, k / 60 % 60, k % 60, static_cast<unsigned>(rng() % 1000), level,
                  node, k, pick(kCodes).c_str());
    std::string line = head;
    std::vector<std::string> words;
    if (chance(0.003)) words.push_back("PANIC");
    if (node == 2 && chance(0.05)) words.push_back("unicorn");
    if ((node == 0 || node == 3) && chance(0.1)) words.push_back("shard-beta");
    if (chance(0.15)) words.push_back("heartbeat");
    if (chance(0.12)) words.push_back(pick(kTimeouts));
    if (chance(0.12)) words.push_back(pick(kCats));
    if (chance(0.02)) words.push_back("a.b*c[1]");
    if (chance(0.02)) words.push_back("aXc1");
    if (chance(0.02)) words.push_back("a.bbc1");
    if (chance(0.02)) words.push_back("--verbose");
    if (words.empty()) words.push_back("ok");
    for (size_t w = 0; w < words.size(); ++w) line += (w ? " " : "") + words[w];
    out += line + "\n";
  }
  return out;
}

void WriteAppLogs(Cluster& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    for (size_t f = 0; f < kAppFiles.size(); ++f) {
      REQUIRE_OK(WriteLocal(c.node(i).DataDir() + "/" + kAppFiles[f], AppLog(i, f + 1)));
    }
  }
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

struct Query {
  std::vector<std::string> flags;
  std::string pattern;
  std::string ToString() const {
    std::string s = "grep";
    for (const auto& f : flags) s += " " + f;
    return s + " '" + pattern + "'";
  }
};

// Checks one `rainctl grep --files app.*.log` run against GNU grep on each of `nodes` (all of
// which must have answered): the same lines in the same order, the same per-node count and exit
// code, the total their sum, rainctl's exit 0 when something was selected and 1 otherwise.
void CheckExact(const GrepRun& run, const Query& q, const std::vector<RaindProcess*>& nodes) {
  INFO(q.ToString() << (run.json ? " --json" : "") << ": " << run.Describe());
  REQUIRE(run.parse_error.empty());
  bool count_mode = Has(q.flags, "-c");
  uint64_t sum = 0;
  bool any = false;
  std::set<std::string> ids;
  for (RaindProcess* node : nodes) {
    const std::string& id = node->Id();
    ids.insert(id);
    LocalGrep want = GrepLocally(node->DataDir(), q.flags, q.pattern, kAppFiles);
    INFO(node->name() << " " << id << ": local grep " << want.result.Describe());
    REQUIRE(want.code() <= 1);  // the oracle itself ran
    sum += want.selected;
    any |= want.code() == 0;
    if (count_mode) {
      CHECK(LinesOf(run, id).empty());
    } else {
      std::string diff = FirstDifference(LinesOf(run, id), want.lines);
      INFO(diff);
      CHECK(diff.empty());
    }
    if (run.json) {
      const Json* entry = nullptr;
      for (const Json& n : run.summary["nodes"].items()) {
        if (n["node"].Str() == id) entry = &n;
      }
      REQUIRE(entry != nullptr);
      CHECK((*entry)["answered"].Bool());
      CHECK((*entry)["selected"].Uint() == want.selected);
      CHECK(static_cast<int>((*entry)["exit"].Uint()) == want.code());
      CHECK((*entry)["error"].Str().empty());
    } else {
      auto it = run.counts.find(id);
      REQUIRE(it != run.counts.end());
      CHECK(it->second == want.selected);
    }
  }
  for (const auto& [id, lines] : run.lines) {
    INFO("lines from " << id);
    CHECK(ids.count(id) == 1);
  }
  if (run.json) {
    CHECK(run.summary["nodes"].size() == nodes.size());
    CHECK_FALSE(run.summary["partial"].Bool());
  } else {
    CHECK(run.counts.size() == nodes.size());
  }
  CHECK(run.total == static_cast<int64_t>(sum));
  CHECK(run.code() == (any ? 0 : 1));
}

TEST_CASE(
    "grep on every node selects exactly what GNU grep selects in each node's files, for "
    "every option, with per-node counts and exit codes like grep's",
    "[logquery][grep-exact]") {
  Cluster c(4, kNoShipping);
  REQUIRE_OK(c.Start());
  WriteAppLogs(c);
  std::vector<RaindProcess*> all = c.Running();

  const std::vector<Query> queries = {
      {{}, "INFO"},
      {{"-c"}, "INFO"},
      {{"-m", "3"}, "INFO"},
      {{"-v"}, "INFO"},
      {{"-m", "0"}, "INFO"},
      {{}, "PANIC"},
      {{"-n"}, "PANIC"},
      {{"-v", "-c"}, "PANIC"},
      {{}, "code=4[0-9][0-9]"},
      {{"-n"}, "code=4[0-9][0-9]"},
      {{"-c"}, "code=4[0-9][0-9]"},
      {{}, "code=4[0-9]\\{2\\}"},
      {{"-E"}, "code=(404|418)"},
      {{"-E"}, "code=4[0-9]{2}"},
      {{"-E", "-c"}, "code=4(0[0-9]|1[0-9])"},
      {{}, "unicorn"},
      {{"-c"}, "unicorn"},
      {{"-w", "-n"}, "unicorn"},
      {{}, "shard-beta"},
      {{"-n"}, "shard-beta"},
      {{"-F"}, "shard-beta"},
      {{}, "heartbeat"},
      {{"-m", "3"}, "heartbeat"},
      {{"-w", "-m", "2"}, "heartbeat"},
      {{}, "timeout"},
      {{"-i"}, "timeout"},
      {{"-i", "-n"}, "timeout"},
      {{"-i", "-c"}, "TIMEOUT"},
      {{"-w"}, "timeout"},
      {{"-i", "-w"}, "timeout"},
      {{}, "cat"},
      {{"-w"}, "cat"},
      {{"-w", "-m", "2"}, "cat"},
      {{"-w", "-c"}, "cat"},
      {{"-w", "-i"}, "CAT"},
      {{}, "a.b*c[1]"},
      {{"-F"}, "a.b*c[1]"},
      {{"-F", "-n"}, "a.b*c[1]"},
      {{"-F", "-c"}, "a.b*c[1]"},
      {{}, "--verbose"},
      {{"-F", "-w"}, "--verbose"},
      {{}, "no-such-token"},
      {{"-c"}, "no-such-token"},
      {{"-v", "-n", "-E"}, "INFO|WARN"},
      {{"-E", "-i"}, "UNICORN|panic"},
  };
  for (size_t k = 0; k < queries.size(); ++k) {
    const Query& q = queries[k];
    std::vector<std::string> args = {"--files", kAppGlob};
    args.insert(args.end(), q.flags.begin(), q.flags.end());
    args.push_back("--");  // as with grep, a pattern may then start with '-'
    args.push_back(q.pattern);
    GrepRun run = RainGrep(c.node(k % c.size()), args, /*json=*/true);
    CheckExact(run, q, all);
  }

  // The plain output: `<node id> <grep's line>` on stdout and the counts on stderr, or with -c
  // the counts alone on stdout.
  const std::vector<Query> plain = {
      {{}, "heartbeat"}, {{"-i", "-n"}, "timeout"}, {{"-w", "-c"}, "cat"}, {{"-c"}, "PANIC"}};
  for (const Query& q : plain) {
    std::vector<std::string> args = {"--files", kAppGlob};
    args.insert(args.end(), q.flags.begin(), q.flags.end());
    args.push_back(q.pattern);
    GrepRun run = RainGrep(c.node(1), args, /*json=*/false);
    CheckExact(run, q, all);
    if (Has(q.flags, "-c")) {
      INFO(run.Describe());
      CHECK(SplitLines(run.result.out).size() == all.size() + 1);  // the counts and the total
    }
  }
}

TEST_CASE(
    "an invalid pattern, files that match nothing and conflicting or unknown flags exit 2 "
    "with each node's reason, and the nodes answer normally afterwards",
    "[logquery][grep-bad]") {
  Cluster c(4, kNoShipping);
  REQUIRE_OK(c.Start());
  WriteAppLogs(c);
  std::vector<RaindProcess*> all = c.Running();

  // Invalid regexes: grep's own message, once per node, and no line.
  const std::vector<Query> invalid = {{{"-E"}, "a(b"}, {{}, "a\\(b"}, {{"-E"}, "a{2,1}"}};
  for (const Query& q : invalid) {
    for (bool json : {false, true}) {
      std::vector<std::string> args = {"--files", kAppGlob};
      args.insert(args.end(), q.flags.begin(), q.flags.end());
      args.push_back(q.pattern);
      GrepRun run = RainGrep(c.node(0), args, json);
      INFO(q.ToString() << (json ? " --json" : "") << ": " << run.Describe());
      CHECK(run.code() == 2);
      CHECK(run.lines.empty());
      for (RaindProcess* n : all) {
        LocalGrep want = GrepLocally(n->DataDir(), q.flags, q.pattern, kAppFiles);
        INFO(n->name() << " " << n->Id() << ": local grep " << want.result.Describe());
        REQUIRE(want.code() == 2);
        std::string message = FirstLine(want.result.err);
        REQUIRE_FALSE(message.empty());
        if (json) {
          bool found = false;
          for (const Json& e : run.summary["nodes"].items()) {
            if (e["node"].Str() != n->Id()) continue;
            found = true;
            CHECK(e["exit"].Uint() == 2);
            CHECK(e["selected"].Uint() == 0);
            CHECK(FirstLine(e["error"].Str()) == message);
          }
          CHECK(found);
        } else {
          CHECK(Occurrences(run.result.err, "rainctl: " + n->Id() + ": " + message + "\n") == 1);
        }
      }
    }
  }

  // A glob that matches no file: every node says so.
  {
    GrepRun run = RainGrep(c.node(1), {"--files", "nothing-*.log", "INFO"}, false);
    INFO(run.Describe());
    CHECK(run.code() == 2);
    CHECK(run.result.out.empty());
    for (RaindProcess* n : all) {
      CHECK(run.result.err.find("rainctl: " + n->Id() + ": ") != std::string::npos);
    }
    CHECK(Occurrences(run.result.err, "no file in the log directory matches 'nothing-*.log'") ==
          all.size());
  }
  // A glob with a '/' is refused (no escaping the log dir).
  {
    GrepRun run = RainGrep(c.node(1), {"--files", "../node1/app.*.log", "INFO"}, false);
    INFO(run.Describe());
    CHECK(run.code() == 2);
    CHECK(run.result.out.empty());
  }
  // Flags: -E with -F, an unknown flag, a negative -m, no pattern.
  const std::vector<std::vector<std::string>> usage = {{"-E", "-F", "--files", kAppGlob, "x"},
                                                       {"-x", "--files", kAppGlob, "x"},
                                                       {"-m", "-1", "--files", kAppGlob, "x"},
                                                       {"--files", kAppGlob}};
  for (const auto& args : usage) {
    GrepRun run = RainGrep(c.node(2), args, false);
    INFO(Join(args, " ") << ": " << run.Describe());
    CHECK(run.code() == 2);
    CHECK(run.result.out.empty());
    CHECK_FALSE(run.result.err.empty());
  }
  {
    GrepRun run = RainGrep(c.node(2), {"-E", "-F", "--files", kAppGlob, "x"}, false);
    CHECK(run.result.err.find("-E and -F conflict") != std::string::npos);
  }

  // Nothing crashed: every node still runs and answers a normal query exactly.
  for (RaindProcess* n : all) {
    INFO(n->name());
    CHECK(n->Running());
  }
  Query q{{"-n"}, "heartbeat"};
  GrepRun run = RainGrep(c.node(3), {"--files", kAppGlob, "-n", "heartbeat"}, true);
  CheckExact(run, q, all);
}

// A partial result: exit 5, the dead node named with NO RESULT (once) and no lines or count from
// it, every other node's lines and counts exactly grep's.
void CheckPartial(const GrepRun& run, const Query& q, const std::string& dead,
                  const std::vector<RaindProcess*>& survivors) {
  INFO(q.ToString() << (run.json ? " --json" : "") << " with " << dead
                    << " dead: " << run.Describe());
  REQUIRE(run.parse_error.empty());
  CHECK(run.code() == 5);
  CHECK(Occurrences(run.result.err, "NO RESULT") == 1);
  CHECK(run.result.err.find("rainctl: " + dead + ": NO RESULT") != std::string::npos);
  CHECK(LinesOf(run, dead).empty());
  uint64_t sum = 0;
  for (RaindProcess* node : survivors) {
    LocalGrep want = GrepLocally(node->DataDir(), q.flags, q.pattern, kAppFiles);
    INFO(node->name() << " " << node->Id());
    REQUIRE(want.code() == 0);
    sum += want.selected;
    std::string diff = FirstDifference(LinesOf(run, node->Id()), want.lines);
    INFO(diff);
    CHECK(diff.empty());
    if (!run.json) CHECK(CountOf(run, node->Id()) == static_cast<int64_t>(want.selected));
  }
  CHECK(run.total == static_cast<int64_t>(sum));
  if (run.json) {
    CHECK(run.summary["partial"].Bool());
    for (const Json& e : run.summary["nodes"].items()) {
      INFO(e["node"].Str());
      CHECK(e["answered"].Bool() == (e["node"].Str() != dead));
    }
  } else {
    CHECK(run.counts.count(dead) == 0);
    CHECK(run.result.err.find("(partial") != std::string::npos);
  }
}

// --- a query still running when a node dies ---

constexpr size_t kBigLines = 240000;  // ~24 MB; every other line matches: ~12 MB out per node

std::string BigLog() {
  std::string out;
  out.reserve(kBigLines * 104);
  char line[128];
  for (size_t k = 0; k < kBigLines; ++k) {
    std::snprintf(line, sizeof(line),
                  "2026-03-05T10:%02zu:%02zu.000 INFO svc=bulk seq=%07zu %s "
                  "payload=abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\n",
                  k / 60 % 60, k % 60, k, k % 2 == 0 ? "MATCH" : "other");
    out += line;
  }
  return out;
}

// Counts the `<node id> big.log:...MATCH...` lines read from rainctl's stdout, per node.
struct LineCounter {
  std::string pending;
  std::map<std::string, uint64_t> per_node;
  uint64_t malformed = 0;
  std::string first_malformed;
  void Feed(const char* data, size_t n) {
    pending.append(data, n);
    size_t start = 0;
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      std::string_view line(pending.data() + start, nl - start);
      size_t space = line.find(' ');
      if (space == std::string_view::npos || line.substr(space + 1, 8) != "big.log:" ||
          line.find(" MATCH ") == std::string_view::npos) {
        if (malformed++ == 0) first_malformed = std::string(line.substr(0, 200));
      } else {
        ++per_node[std::string(line.substr(0, space))];
      }
      start = nl + 1;
    }
    pending.erase(0, start);
  }
};

// Puts the same big.log (a hard link) in every node's log dir; returns GNU grep's count of
// MATCH in it.
uint64_t PlaceBigLogs(Cluster& c) {
  const std::string big = c.dir() + "/big.log";
  REQUIRE_OK(WriteLocal(big, BigLog()));
  for (size_t i = 0; i < c.size(); ++i) {
    fs::create_hard_link(big, c.node(i).DataDir() + "/big.log");
  }
  LocalGrep want = GrepLocally(c.node(0).DataDir(), {"-c"}, "MATCH", {"big.log"});
  REQUIRE(want.code() == 0);
  REQUIRE(want.selected == kBigLines / 2);
  return want.selected;
}

// `rainctl grep` writing into a FIFO that the test reads when it chooses: while the test does
// not read, rainctl blocks on its stdout and stops acknowledging, and every node's grep waits
// behind its window, so the query is certainly still running.
class FifoGrep {
 public:
  explicit FifoGrep(const std::string& dir) : fifo_(dir + "/grep.out"), err_(dir + "/grep.err") {}
  ~FifoGrep() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Start(const RaindProcess& via, const std::vector<std::string>& args) {
    REQUIRE(::mkfifo(fifo_.c_str(), 0600) == 0);
    // Opened for reading first (non-blocking), so rainctl's open for writing does not block.
    fd_ = ::open(fifo_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
    auto rainctl = RainctlBinary();
    REQUIRE_OK(rainctl.status());
    std::vector<std::string> argv = {*rainctl, "--node", via.ControlAddress()};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions out;
    out.stdout_path = fifo_;
    out.stderr_path = err_;
    REQUIRE_OK(process_.Start(argv, out));
  }

  // Every node in `nodes` has started its grep (event=query_start in its log).
  static bool Started(const std::vector<RaindProcess*>& nodes, std::string* why) {
    for (RaindProcess* n : nodes) {
      if (LogLinesWith(*n, {"event=query_start", "command=grep"}).empty()) {
        *why = n->name() + " has not started the query";
        return false;
      }
    }
    return true;
  }

  // Reads everything until rainctl exits (or 60 s pass), then its exit status.
  std::optional<ExitStatus> Drain(LineCounter* counter) {
    char buf[1 << 16];
    auto deadline = Clock::now() + 60s;
    for (bool eof = false; !eof && Clock::now() < deadline;) {
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 100);
      for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof(buf));
        if (n > 0) {
          counter->Feed(buf, static_cast<size_t>(n));
          continue;
        }
        eof = n == 0;  // every writer closed: rainctl has exited
        break;
      }
    }
    return process_.Wait(10s);
  }

  Subprocess& process() { return process_; }
  std::string Stderr() const { return ReadFile(err_); }

 private:
  std::string fifo_, err_;
  int fd_ = -1;
  Subprocess process_;
};

TEST_CASE(
    "a node killed while a long grep runs is named with NO RESULT and every other node's "
    "result is complete",
    "[logquery][grep-partial]") {
  Cluster c(4, kNoShipping);
  REQUIRE_OK(c.Start());
  const uint64_t per_node = PlaceBigLogs(c);
  FifoGrep grep(c.dir());
  grep.Start(c.node(0), {"--timeout", "4000", "grep", "--files", "big.log", "MATCH"});
  REQUIRE_EVENTUALLY_POLL(10s, 20ms,
                          [&](std::string* why) { return FifoGrep::Started(c.Running(), why); });
  REQUIRE(grep.process().Running());
  RaindProcess& victim = c.node(2);
  const std::string dead = victim.Id();
  victim.Kill();

  LineCounter counter;
  auto exit = grep.Drain(&counter);
  std::string err = grep.Stderr();
  INFO("rainctl stderr:\n" << err);
  REQUIRE(exit.has_value());
  CHECK(exit->ToString() == ExitStatus{5}.ToString());
  CHECK(Occurrences(err, "NO RESULT") == 1);
  CHECK(err.find("rainctl: " + dead + ": NO RESULT") != std::string::npos);
  INFO("first malformed line: " << counter.first_malformed);
  CHECK(counter.malformed == 0);
  int64_t total = 0;
  auto counts = ParseCounts(err, &total);
  for (RaindProcess* n : c.Running()) {
    INFO(n->name() << " " << n->Id());
    CHECK(counter.per_node[n->Id()] == per_node);
    CHECK(counts[n->Id()] == per_node);
  }
  CHECK(counter.per_node[dead] < per_node);
  CHECK(counts.count(dead) == 0);
  CHECK(total == static_cast<int64_t>(3 * per_node));
}

TEST_CASE("a reader that pauses longer than --timeout still gets every node's complete result",
          "[logquery][grep-slow-reader]") {
  Cluster c(4, kNoShipping);
  REQUIRE_OK(c.Start());
  const uint64_t per_node = PlaceBigLogs(c);
  FifoGrep grep(c.dir());
  grep.Start(c.node(0), {"--timeout", "1000", "grep", "--files", "big.log", "MATCH"});
  REQUIRE_EVENTUALLY_POLL(10s, 20ms,
                          [&](std::string* why) { return FifoGrep::Started(c.Running(), why); });
  // The reader (say `| less`) pauses for 2.5 timeouts; every node stays up and answering.
  REQUIRE_CONSISTENTLY(2500ms, [&](std::string* why) {
    *why = "rainctl ended while its stdout was full: " + grep.Stderr();
    return grep.process().Running();
  });

  LineCounter counter;
  auto exit = grep.Drain(&counter);
  std::string err = grep.Stderr();
  INFO("rainctl stderr:\n" << err);
  REQUIRE(exit.has_value());
  CHECK(exit->ToString() == ExitStatus{0}.ToString());
  CHECK(Occurrences(err, "NO RESULT") == 0);
  CHECK(counter.malformed == 0);
  int64_t total = 0;
  auto counts = ParseCounts(err, &total);
  for (RaindProcess* n : c.Running()) {
    INFO(n->name() << " " << n->Id());
    CHECK(counter.per_node[n->Id()] == per_node);
    CHECK(counts[n->Id()] == per_node);
  }
  CHECK(total == static_cast<int64_t>(4 * per_node));
}

TEST_CASE(
    "a node killed just before a grep, and one already declared failed, is named with NO "
    "RESULT while every other node's lines come back complete, also to a reader that pauses "
    "for less than --timeout",
    "[logquery][grep-partial-dead]") {
  Cluster c(4, kNoShipping);
  REQUIRE_OK(c.Start());
  WriteAppLogs(c);
  const uint64_t per_node = PlaceBigLogs(c);
  RaindProcess& victim = c.node(3);
  const std::string dead = victim.Id();
  std::vector<RaindProcess*> survivors = {&c.node(0), &c.node(1), &c.node(2)};
  victim.Kill();

  // At once: the member list still has it alive (or suspected).
  Query q{{}, "heartbeat"};
  GrepRun first = RainGrep(c.node(0), {"--files", kAppGlob, "heartbeat"}, false, 1500);
  CheckPartial(first, q, dead, survivors);

  // Declared failed but still listed: still asked, still named.
  REQUIRE_EVENTUALLY(kConvergeDeadline, [&](std::string* why) {
    return AllSee({&c.node(1)}, {dead}, {"failed"}, why);
  });
  Query qn{{"-n"}, "heartbeat"};
  GrepRun second = RainGrep(c.node(1), {"--files", kAppGlob, "-n", "heartbeat"}, true, 1500);
  CheckPartial(second, qn, dead, survivors);

  // The same with a reader that stops reading for 500 ms once the data flows (rainctl spends
  // the first --timeout waiting for the dead node to accept the query): still complete.
  FifoGrep grep(c.dir());
  grep.Start(c.node(2), {"--timeout", "1500", "grep", "--files", "big.log", "MATCH"});
  REQUIRE_CONSISTENTLY(2000ms, [&](std::string* why) {
    *why = "rainctl ended while its stdout was full: " + grep.Stderr();
    return grep.process().Running();
  });
  LineCounter counter;
  auto exit = grep.Drain(&counter);
  std::string err = grep.Stderr();
  INFO("paused reader; rainctl stderr:\n" << err);
  REQUIRE(exit.has_value());
  CHECK(exit->ToString() == ExitStatus{5}.ToString());
  CHECK(Occurrences(err, "NO RESULT") == 1);
  CHECK(err.find("rainctl: " + dead + ": NO RESULT") != std::string::npos);
  for (RaindProcess* n : survivors) {
    INFO(n->name() << " " << n->Id());
    CHECK(counter.per_node[n->Id()] == per_node);
  }
}

}  // namespace
}  // namespace rs::harness
