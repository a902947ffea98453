// Stream engine cluster tests of a job's input (daemon/stream/README.md "Life of a job"): CSV
// headers, and the snapshot of the input fixed at submit. Helpers in stream_cases.h; each
// TEST_CASE runs as its own meson test.
#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/stream_cases.h"

namespace rs::harness {
namespace {

using namespace stream_cases;

// The sample's lines: [0] is its header.
std::vector<std::string> SampleLines() {
  auto whole = ReadLocal(SampleCsvPath());
  REQUIRE_OK(whole.status());
  return SplitLines(*whole);
}

std::string Join(const std::vector<std::string>& lines, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

// Stores `data` as HyDFS file `name` through a local file.
void Store(Cluster& c, const std::string& data, const std::string& name) {
  std::string local = c.dir() + "/store-" + std::to_string(std::hash<std::string>{}(name));
  REQUIRE_OK(WriteLocal(local, data));
  REQUIRE_OK(HydfsCreate(c.node(0), local, name).status());
}

}  // namespace

// Before: App 0 (identity) printed 3001 lines for a 3000-row CSV, the header among them.
TEST_CASE(
    "a CSV input's header is no tuple: by default for *.csv, --header/--no-header choose; part "
    "files that repeat it drop it; a header over 4 KiB works",
    "[stream-header]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  const std::vector<std::string> lines = SampleLines();
  const std::string& header = lines[0];
  const std::vector<std::string> rows(lines.begin() + 1, lines.end());

  {
    INFO("App 0, the course's spec form: identity over a .csv prints its rows only");
    std::string dest = Dest("app0");
    JobRun run = RunJob(c.node(0), {"RainStorm", "1", "3", "identity", kSample, dest, "true",
                                    "false", "0", "0", "0"});
    std::vector<std::string> got = DoneOutput(c, run, dest);
    CHECK(got.size() == rows.size());
    CHECK(std::find(got.begin(), got.end(), header) == got.end());
    RequireSameLines(got, rows, "console vs the sample's rows");
    RequireSameLines(got, Want(c, {"lines", SampleCsvPath()}), "console vs python");
    auto status = JobStatus(c.node(0), run.job);
    REQUIRE_OK(status.status());
    CHECK((*status)["source_tuples"].Uint() == rows.size());
  }
  {
    INFO("--no-header: the first line is data");
    std::string dest = Dest("no-header");
    JobRun run = RunJob(c.node(1), {"RainStorm", "1", "2", "identity", kSample, dest, "true",
                                    "false", "0", "0", "0", "--no-header"});
    RequireSameLines(DoneOutput(c, run, dest), Want(c, {"all-lines", SampleCsvPath()}),
                     "console vs every line");
  }
  {
    INFO("a file not named .csv has no header unless --header says so");
    Store(c, Join(lines, 0, lines.size()), "data/sample.txt");
    std::string dest = Dest("txt");
    JobRun run = RunJob(c.node(2), {"job", "submit", "--stage", "identity", "--tasks", "2", "--src",
                                    "data/sample.txt", "--dest", dest});
    RequireSameLines(DoneOutput(c, run, dest), lines, "console vs every line");
    dest = Dest("txt-header");
    run = RunJob(c.node(2), {"job", "submit", "--stage", "identity", "--tasks", "2", "--src",
                             "data/sample.txt", "--dest", dest, "--header"});
    RequireSameLines(DoneOutput(c, run, dest), rows, "console vs the rows");
  }
  {
    INFO("part files that each start with the header: every copy of it is dropped");
    Store(c, Join(lines, 0, 101), "parts2/a.csv");
    Store(c, header + "\n" + Join(lines, 101, 2000), "parts2/b.csv");
    Store(c, header + "\n" + Join(lines, 2000, lines.size()), "parts2/c.csv");
    std::string dest = Dest("parts-headers");
    JobRun run = RunJob(c.node(0), {"RainStorm", "1", "3", "identity", "parts2/", dest, "true",
                                    "false", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest), rows, "console vs the rows");
  }
  {
    INFO("a 6 KB header (over the old 4 KiB limit of a task's config): columns by name work");
    std::string wide_header, wide;
    for (int i = 0; i < 1000; ++i) wide_header.append(i ? ",col" : "col").append(std::to_string(i));
    REQUIRE(wide_header.size() > 5000);
    wide = wide_header + "\n";
    std::vector<std::string> want;
    for (int r = 0; r < 300; ++r) {
      std::string row;
      for (int i = 0; i < 1000; ++i) {
        if (i > 0) row += ',';
        row += std::to_string(r * 1000 + i);
      }
      wide += row + "\n";
      want.push_back(std::to_string(r * 1000 + 7) + "," + std::to_string(r * 1000 + 999));
    }
    Store(c, wide, "data/wide.csv");
    std::string dest = Dest("wide");
    JobRun run = RunJob(c.node(1), {"RainStorm", "1", "3", "select col7,col999", "data/wide.csv",
                                    dest, "true", "false", "0", "0", "0"});
    RequireSameLines(DoneOutput(c, run, dest), want, "console vs the two columns");
  }
}

// Before: each stage-1 task fetched the input itself and cut its byte range from the size of
// its own copy, so lines appended while the job started came out twice or never (787
// duplicated and 1,181 missing in one run). Now the leader fixes a snapshot at submit and every
// task reads exactly it.
TEST_CASE(
    "appends to a job's input while it starts: the job reads one snapshot, every line of it "
    "once",
    "[stream-input-snapshot]") {
  Cluster c(4, StreamArgs());
  StartStream(c);
  const std::string name = "data/growing.txt";
  auto line = [](uint64_t n) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "L%07llu,some payload to make the file larger",
                  static_cast<unsigned long long>(n));
    return std::string(buf);
  };
  constexpr uint64_t kFirst = 60000, kBlock = 500;
  std::string base;
  for (uint64_t n = 1; n <= kFirst; ++n) base += line(n) + "\n";
  Store(c, base, name);

  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    // Appends of whole blocks, back to back, from another node, for the whole job.
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> appended{0};
    uint64_t next = kFirst + 1 + static_cast<uint64_t>(round) * 1000000;
    std::thread appender([&] {
      std::string local = c.dir() + "/block-" + std::to_string(round);
      while (!stop.load()) {
        std::string block;
        for (uint64_t k = 0; k < kBlock; ++k) block += line(next + k) + "\n";
        if (!WriteLocal(local, block).ok()) return;
        if (HydfsAppend(c.node(3), local, name).ok()) {
          next += kBlock;
          appended += kBlock;
        }
      }
    });
    std::string dest = Dest("snapshot");
    JobRun run = RunJob(
        c.node(1), {"RainStorm", "1", "4", "identity", name, dest, "true", "false", "0", "0", "0"});
    stop = true;
    appender.join();
    INFO(appended.load() << " lines appended during the round");
    std::vector<std::string> got = DoneOutput(c, run, dest);
    // Exactly a prefix of the file as it is now, in whole lines: no line twice, none missing.
    auto now = HydfsCat(c.node(2), name);
    REQUIRE_OK(now.status());
    std::vector<std::string> file = SplitLines(*now);
    REQUIRE(got.size() >= kFirst);
    REQUIRE(got.size() <= file.size());
    std::vector<std::string> prefix(file.begin(), file.begin() + static_cast<long>(got.size()));
    RequireSameLines(got, prefix, "output vs the file's first lines");
  }
}

}  // namespace rs::harness
