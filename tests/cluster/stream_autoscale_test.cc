// Cluster test of autoscaling as the CS 425 FA25 demo runs it (daemon/stream/README.md
// "Autoscaling"): App 2 (filter, then the first 3 columns) on the Austin traffic signs, through
// the spec's command line with autoscale on, a low HW and a live source. While the input comes
// fast the filtered stage grows (the leader's log and list_tasks show it); when it slows down the
// stage shrinks; the output is exactly python's. The test paces the input itself: it writes
// the lines into a FIFO that rainsource reads. And the same job reading the file from HyDFS, as
// the spec's demo runs it: stage 1 grows too, by cutting its tasks' unread byte ranges.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/stream_cases.h"
#include "tests/harness/ctl.h"

namespace rs::harness {
namespace {

using namespace stream_cases;
using namespace std::chrono_literals;

// Writes lines into a FIFO, as fast as the reader takes them or one per `slow_gap`, until told
// to stop; never blocks (the FIFO is non-blocking), so a test that fails stops it at once.
class PacedWriter {
 public:
  PacedWriter(std::string fifo, std::vector<std::string> lines)
      : fifo_(std::move(fifo)), lines_(std::move(lines)), thread_([this] { Run(); }) {}
  ~PacedWriter() { Stop(); }
  PacedWriter(const PacedWriter&) = delete;
  PacedWriter& operator=(const PacedWriter&) = delete;

  void Slow(std::chrono::milliseconds gap) { slow_gap_ms_ = static_cast<int>(gap.count()); }
  void HoldBack(size_t n) { hold_back_ = n; }  // fast lines stop n lines before the end
  // Ends the input (closes the FIFO); the lines written so far.
  size_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return written_;
  }
  size_t written() const { return written_; }

 private:
  void Run() {
    int fd = -1;
    while (!stop_ && fd < 0) {  // ENXIO until rainsource opened it for reading
      fd = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) std::this_thread::sleep_for(10ms);
    }
    while (!stop_ && written_ < lines_.size()) {
      int gap = slow_gap_ms_;
      if (gap == 0 && written_ + hold_back_ >= lines_.size()) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      std::string line = lines_[written_] + "\n";
      size_t off = 0;
      while (!stop_ && off < line.size()) {
        ssize_t n = ::write(fd, line.data() + off, line.size() - off);
        if (n > 0) {
          off += static_cast<size_t>(n);
        } else if (n < 0 && errno == EAGAIN) {
          std::this_thread::sleep_for(2ms);
        } else {
          stop_ = true;  // the reader is gone
        }
      }
      if (off == line.size()) ++written_;
      if (gap > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap));
    }
    if (fd >= 0) ::close(fd);
  }

  std::string fifo_;
  std::vector<std::string> lines_;
  std::atomic<bool> stop_{false};
  std::atomic<int> slow_gap_ms_{0};
  std::atomic<size_t> hold_back_{0}, written_{0};
  std::thread thread_;
};

std::vector<std::string> FileLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

uint32_t StageTasks(Cluster& c, const std::string& job, uint32_t stage) {
  auto tasks = OperatorTasks(c.node(0), job, 2);
  if (!tasks.ok()) return 0;
  return static_cast<uint32_t>(std::count_if(tasks->begin(), tasks->end(),
                                             [&](const TaskEntry& t) { return t.stage == stage; }));
}

}  // namespace

TEST_CASE(
    "FA25 App 2, live, autoscaling: the filtered stage grows at a high rate, shrinks when "
    "it drops, and the output is exact",
    "[stream-autoscale-app2]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  // The Austin export (no CSV header on a live job: its header line is data the filter drops);
  // without ../shared, the repo sample repeated, filtered for what it holds.
  std::string austin = SourcePath("../shared/datasets/traffic-signs-austin-fa25/");
  std::vector<std::string> lines, more;
  std::string pattern = "SIGN_REGULATORY";
  if (std::filesystem::is_regular_file(austin + "dataset2.csv")) {
    lines = FileLines(austin + "dataset2.csv");
    more = FileLines(austin + "dataset1.csv");
  } else {
    WARN(austin << " is missing: the repo sample, repeated");
    pattern = "Parking";
    for (int i = 0; i < 60; ++i) {
      auto sample = FileLines(SampleCsvPath());
      more.insert(more.end(), sample.begin(), sample.end());
    }
  }
  lines.insert(lines.end(), more.begin(), more.end());
  REQUIRE(lines.size() > 3000);

  std::string dest = Dest("autoscale-app2");
  Subprocess attached;
  // INPUT_RATE 1000 (rainsource's cap), LW 20, HW 100 per task: at 1000 lines/s the filtered
  // stage takes hundreds a second, at 25 a handful.
  REQUIRE_OK(
      StartAttachedJob(c.node(0),
                       {"RainStorm", "2", "1", "grep " + pattern, "select 0,1,2", "-", dest, "true",
                        "true", "1000", "20", "100", "--cooldown-ms", "2000", "--max-tasks", "3"},
                       &attached));
  std::string job;
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    job = FindJobWriting(c.node(0), dest, "running", why);
    return !job.empty();
  });
  std::string fifo = c.dir() + "/app2-input";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  Subprocess source;
  REQUIRE_OK(StartRainsource(c.node(1), job, fifo, {}, &source));
  PacedWriter writer(fifo, lines);
  writer.HoldBack(1000);  // kept for the slow part

  // Fast: stage 2 grows (one task per action, to the maximum of 3 at most).
  uint32_t peak = 1;
  REQUIRE_EVENTUALLY(60s, [&](std::string* why) {
    peak = std::max(peak, StageTasks(c, job, 2));
    *why = "stage 2 has " + std::to_string(peak) + " task(s) at most so far, " +
           std::to_string(writer.written()) + " lines written";
    return peak >= 2;
  });
  auto grew =
      LogLinesWith(c.node(0), {"event=autoscale ", "job=" + job + " ", "stage=2 from=1 to=2"});
  CHECK(grew.size() == 1);
  // Slow: 25 lines/s, a few filtered tuples a second for the stage: it shrinks.
  writer.Slow(40ms);
  uint32_t now = peak;
  REQUIRE_EVENTUALLY(60s, [&](std::string* why) {
    uint32_t n = StageTasks(c, job, 2);
    if (n > 0) now = n;
    peak = std::max(peak, now);
    *why = "stage 2 has " + std::to_string(now) + " task(s), at most " + std::to_string(peak);
    return now < peak;
  });
  size_t written = writer.Stop();
  INFO(written << " lines written");
  auto ended = source.Wait(60s);
  REQUIRE(ended.has_value());
  INFO("rainsource: " << source.Stderr());
  REQUIRE(ended->code == 0);

  // The output: python's App 2 over exactly the lines written.
  std::string input = c.dir() + "/app2-written.txt";
  {
    std::ofstream out(input);
    for (size_t i = 0; i < written; ++i) out << lines[i] << "\n";
  }
  JobRun run = FinishAttachedJob(attached, job, 90s);
  std::vector<std::string> want = Want(c, {"select", input, "0,1,2", pattern});
  RequireSameLines(DoneOutput(c, run, dest), want, "console of job " + job + " vs python");
  // The leader logged both directions, with the rates it saw; job status keeps the history.
  auto shrank = LogLinesWith(c.node(0), {"event=autoscale ", "job=" + job + " ", "stage=2 "});
  CHECK(std::any_of(shrank.begin(), shrank.end(), [&](const std::string& l) {
    return l.find("from=" + std::to_string(peak) + " to=" + std::to_string(peak - 1)) !=
               std::string::npos &&
           l.find("below LW") != std::string::npos;
  }));
  CommandResult status = Ctl(c.node(0), {"job", "status", job});
  CHECK(status.out.find("rescale: stage 2 1 -> 2 tasks") != std::string::npos);
}

TEST_CASE(
    "FA25 App 2 from a file, autoscaling: stage 1 grows by cutting its ranges, stage 2 by "
    "moving groups, and the output is exact",
    "[stream-autoscale-app2-file]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  std::string austin = SourcePath("../shared/datasets/traffic-signs-austin-fa25/dataset2.csv");
  std::string pattern = "SIGN_REGULATORY";
  std::string local = c.dir() + "/austin-app2.csv";
  if (std::filesystem::is_regular_file(austin)) {
    std::filesystem::copy_file(austin, local);
  } else {
    WARN(austin << " is missing: the repo sample, repeated");
    pattern = "Parking";
    auto sample = FileLines(SampleCsvPath());
    REQUIRE(!sample.empty());
    std::ofstream out(local);
    out << sample[0] << "\n";  // the header once
    for (int i = 0; i < 60; ++i) {
      for (size_t j = 1; j < sample.size(); ++j) out << sample[j] << "\n";
    }
  }
  REQUIRE(FileLines(local).size() > 3000);
  REQUIRE_OK(HydfsCreate(c.node(0), local, "data/austin-app2.csv").status());
  std::string dest = Dest("autoscale-app2-file");
  Subprocess attached;
  // INPUT_RATE 1000 over ~9,000 lines: ~9 s. Every stage-1 task takes its share of it, far
  // above HW 100: stage 1 grows (one task per action, 2 s apart, to the maximum of 3).
  REQUIRE_OK(StartAttachedJob(c.node(0),
                              {"RainStorm", "2", "1", "grep " + pattern, "select 0,1,2",
                               "data/austin-app2.csv", dest, "true", "true", "1000", "20", "100",
                               "--cooldown-ms", "2000", "--max-tasks", "3"},
                              &attached));
  std::string job;
  REQUIRE_EVENTUALLY(20s, [&](std::string* why) {
    job = FindJobWriting(c.node(0), dest, "running", why);
    return !job.empty();
  });
  uint32_t peak = 1;
  REQUIRE_EVENTUALLY(30s, [&](std::string* why) {
    peak = std::max(peak, StageTasks(c, job, 1));
    *why = "stage 1 has " + std::to_string(peak) + " task(s) at most so far";
    return peak >= 2;
  });
  JobRun run = FinishAttachedJob(attached, job, 90s);
  std::vector<std::string> want = Want(c, {"select", local, "0,1,2", pattern});
  RequireSameLines(DoneOutput(c, run, dest), want, "console of job " + job + " vs python");
  auto grew =
      LogLinesWith(c.node(0), {"event=autoscale ", "job=" + job + " ", "stage=1 from=1 to=2"});
  CHECK(grew.size() == 1);
  CHECK(LogLinesWith(c.node(0), {"event=rescaled ", "job=" + job + " ", "stage=1 "}).size() >= 1);
  CommandResult status = Ctl(c.node(0), {"job", "status", job});
  CHECK(status.out.find("rescale: stage 1 1 -> 2 tasks") != std::string::npos);
}

}  // namespace rs::harness
