// Cluster tests of the stream engine's metrics (GET /metrics, daemon/http/README.md): scraped
// from every node during a live job, they agree with `job status` and `list_tasks`; a task that
// was killed shows as rebuilt; a stage behind a slow operator shows as backpressured. Real
// raind, rainctl and rainsource on 127.0.0.1; the text parsed by Debian's prometheus_client.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <vector>

#include "tests/cluster/stream_cases.h"
#include "tests/harness/metrics.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;
using namespace stream_cases;

// A FIFO rainsource reads: the test writes the input and keeps it open, so the live job stays
// running (its counts settle) until the test closes it.
class Fifo {
 public:
  explicit Fifo(std::string path) : path_(std::move(path)) {
    REQUIRE(::mkfifo(path_.c_str(), 0600) == 0);
    fd_ = ::open(path_.c_str(), O_RDWR);  // never blocks, and keeps a writer open
    REQUIRE(fd_ >= 0);
  }
  ~Fifo() { Close(); }
  // Up to the pipe's buffer (64 KiB) goes in at once, read or not.
  void Write(const std::string& data) {
    REQUIRE(data.size() < (64u << 10));
    REQUIRE(::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// The index of the node whose member id `id` is ("HOST:PORT" then the start time); -1: none.
int IndexOf(Cluster& c, const std::string& id) {
  for (size_t i = 0; i < c.size(); ++i) {
    std::string a = c.node(i).ControlAddress();
    if (id.rfind(a, 0) == 0 && id.size() > a.size() && !std::isdigit(id[a.size()])) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

RaindProcess* NodeOf(Cluster& c, const std::string& id) {
  int i = IndexOf(c, id);
  return i < 0 ? nullptr : &c.node(static_cast<size_t>(i));
}

std::string TaskKey(const std::string& name, const std::string& job, const std::string& stage,
                    uint32_t task) {
  return name + "{job=" + job + ",stage=" + stage + ",task=" + std::to_string(task) + "}";
}

// Every node's scrape, in node order.
bool ScrapeAll(Cluster& c, std::vector<Metrics>* out, std::string* why) {
  out->clear();
  for (size_t i = 0; i < c.size(); ++i) {
    auto m = ScrapeMetrics(c.node(i));
    if (!m.ok()) {
      *why = m.status().ToString();
      return false;
    }
    out->push_back(std::move(*m));
  }
  return true;
}

// The scrapes agree with job status and list_tasks: per stage the tasks' tuples in and out add
// up to the stage's, each task is on the node list_tasks names with its run, the leader (node
// 0) counts the job's tasks, output lines and latency samples, and checkpoints have sizes and
// durations.
bool Agree(Cluster& c, const std::string& job, uint32_t stages, uint32_t tasks, std::string* why) {
  auto st = JobStatus(c.node(0), job);
  auto list = OperatorTasks(c.node(0), job, stages);
  std::vector<Metrics> m;
  if (!st.ok() || !list.ok()) {
    *why = !st.ok() ? st.status().ToString() : list.status().ToString();
    return false;
  }
  if (!ScrapeAll(c, &m, why)) return false;
  for (uint32_t s = 1; s <= stages; ++s) {
    const Json& detail = (*st)["stages_detail"][s - 1];
    std::string stage = std::to_string(s);
    for (const char* what : {"tuples_in", "tuples_out", "duplicates"}) {
      double sum = 0;
      for (const auto& nm : m) {
        sum += SumMetric(nm, std::string("rainstorm_stream_task_") + what + "_total",
                         {"job=" + job, "stage=" + stage});
      }
      if (sum != static_cast<double>(detail[what].Uint())) {
        *why = "stage " + stage + " " + what + ": /metrics " + std::to_string(sum) +
               ", job status " + detail[what].Str();
        return false;
      }
    }
    double tasks_gauge =
        MetricOr0(m[0], "rainstorm_stream_stage_tasks{job=" + job + ",stage=" + stage + "}");
    if (tasks_gauge != tasks) {
      *why = "stage " + stage + " tasks gauge " + std::to_string(tasks_gauge);
      return false;
    }
  }
  for (const TaskEntry& t : *list) {
    int host = IndexOf(c, t.node);
    if (host < 0) {
      *why = "task " + t.Name() + " on " + t.node + ", no node of the cluster";
      return false;
    }
    const Metrics& hm = m[static_cast<size_t>(host)];
    std::string stage = std::to_string(t.stage);
    double run = MetricOr0(hm, TaskKey("rainstorm_stream_task_run", job, stage, t.task));
    if (run != static_cast<double>(t.incarnation)) {
      *why = "task " + t.Name() + " on " + t.node + ": run " + std::to_string(run) +
             ", list_tasks " + std::to_string(t.incarnation);
      return false;
    }
    // Exactly-once: records are durable, with bytes and a time each.
    double ckpts =
        MetricOr0(hm, TaskKey("rainstorm_stream_task_checkpoints_total", job, stage, t.task));
    double hist = MetricOr0(
        hm, TaskKey("rainstorm_stream_task_checkpoint_duration_seconds_count", job, stage, t.task));
    double bytes =
        MetricOr0(hm, TaskKey("rainstorm_stream_task_checkpoint_bytes_total", job, stage, t.task));
    double last =
        MetricOr0(hm, TaskKey("rainstorm_stream_task_checkpoint_last_bytes", job, stage, t.task));
    if (ckpts < 1 || hist != ckpts || last <= 0 || bytes < last) {
      *why = "task " + t.Name() + " checkpoints " + std::to_string(ckpts) + ", timed " +
             std::to_string(hist) + ", bytes " + std::to_string(bytes) + ", last " +
             std::to_string(last);
      return false;
    }
  }
  double lines = MetricOr0(m[0], "rainstorm_stream_output_lines_total{job=" + job + "}");
  double samples = MetricOr0(m[0], "rainstorm_stream_latency_seconds_count{job=" + job + "}");
  if (lines != static_cast<double>((*st)["output_lines"].Uint()) ||
      samples != static_cast<double>((*st)["latency_samples"].Uint())) {
    *why = "output lines " + std::to_string(lines) + " (job status " + (*st)["output_lines"].Str() +
           "), latency samples " + std::to_string(samples) + " (job status " +
           (*st)["latency_samples"].Str() + ")";
    return false;
  }
  if (MetricOr0(m[0], "rainstorm_stream_jobs{state=running}") < 1) {
    *why = "the leader counts no running job";
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("stream metrics agree with job status and list_tasks, and show a rebuild",
          "[stream-metrics]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  std::vector<std::string> want = Want(c, {"select", SampleCsvPath(), "2,3", "Parking"});
  std::string dest = Dest("metrics");
  JobRun run = RunJob(
      c.node(1), {"job", "submit", "--live", "--stage", "grep Parking", "--stage", "select 2,3",
                  "--tasks", "2", "--dest", dest, "--exactly-once", "--detach"});
  INFO(run.result.Describe());
  REQUIRE(run.result.code() == 0);
  Fifo input(c.dir() + "/metrics.fifo");
  Subprocess source;
  REQUIRE_OK(StartRainsource(c.node(2), run.job, input.path(), {}, &source));
  input.Write(ReadFile(SampleCsvPath()));
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    auto st = JobStatus(c.node(0), run.job);
    if (!st.ok()) {
      *why = st.status().ToString();
      return false;
    }
    *why = "output_lines " + (*st)["output_lines"].Str();
    return (*st)["output_lines"].Uint() == want.size();
  });
  // Reports reach the leader about once a second: the numbers agree once they settle.
  REQUIRE_EVENTUALLY(15s, [&](std::string* why) { return Agree(c, run.job, 2, 2, why); });

  // A killed stage-1 task is rebuilt: the leader counts the rebuild, its host the new run.
  auto before = OperatorTasks(c.node(0), run.job, 2);
  REQUIRE_OK(before.status());
  TaskEntry victim;
  for (const auto& t : *before) {
    if (t.stage == 1 && t.task == 0) victim = t;
  }
  REQUIRE(victim.pid > 0);
  CommandResult killed = Ctl(c.node(0), {"kill_task", victim.node, std::to_string(victim.pid)});
  INFO(killed.Describe());
  REQUIRE(killed.code() == 0);
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    auto st = JobStatus(c.node(0), run.job);
    auto m = ScrapeMetrics(c.node(0));
    if (!st.ok() || !m.ok()) {
      *why = !st.ok() ? st.status().ToString() : m.status().ToString();
      return false;
    }
    double rebuilds = MetricOr0(*m, "rainstorm_stream_rebuilds_total{job=" + run.job + ",stage=1}");
    *why =
        "job status rebuilds " + (*st)["rebuilds"].Str() + ", /metrics " + std::to_string(rebuilds);
    return (*st)["rebuilds"].Uint() == 1 && rebuilds == 1;
  });
  auto st = JobStatus(c.node(0), run.job);
  REQUIRE_OK(st.status());
  const Json& history = (*st)["rebuild_history"];
  REQUIRE(history.size() == 1);
  CHECK(history[0]["stage"].Uint() == 1);
  CHECK(history[0]["task"].Uint() == 0);
  CHECK(history[0]["run"].Uint() == victim.incarnation + 1);
  CHECK(!history[0]["reason"].Str().empty());
  // More input after the rebuild: everything agrees again, the rebuilt task at its new run.
  input.Write(ReadFile(SampleCsvPath()));
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    auto s = JobStatus(c.node(0), run.job);
    if (!s.ok()) {
      *why = s.status().ToString();
      return false;
    }
    *why = "output_lines " + (*s)["output_lines"].Str();
    return (*s)["output_lines"].Uint() == 2 * want.size();
  });
  REQUIRE_EVENTUALLY(15s, [&](std::string* why) { return Agree(c, run.job, 2, 2, why); });

  // The input ends: the job is done, the leader counts it so and no node lists its tasks.
  input.Close();
  auto exit = source.Wait(kJobTimeout);
  REQUIRE(exit.has_value());
  INFO("rainsource: " << source.Stderr());
  REQUIRE(exit->code == 0);
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    std::vector<Metrics> m;
    if (!ScrapeAll(c, &m, why)) return false;
    double tasks = 0;
    for (const auto& nm : m)
      tasks += SumMetric(nm, "rainstorm_stream_task_run", {"job=" + run.job});
    double done = MetricOr0(m[0], "rainstorm_stream_jobs{state=done}");
    *why = std::to_string(tasks) + " task runs listed, " + std::to_string(done) + " jobs done";
    return tasks == 0 && done == 1;
  });
}

TEST_CASE("a stage behind a slow operator is backpressured in /metrics", "[stream-metrics-bp]") {
  OperatorDir ops;
  // 20 ms a tuple: stage 1 (identity) fills its window to this stage 2 and waits.
  std::string slow = SlowOperator(ops, "0.02");
  Cluster c(2, StreamArgs(ops.Args()));
  StartStream(c);
  std::string lines;
  for (int i = 1; i <= 200000; ++i) lines += "line " + std::to_string(i) + "\n";
  REQUIRE_OK(WriteLocal(c.dir() + "/many.txt", lines));
  JobRun run = RunJob(c.node(1), {"job", "submit", "--live", "--stage", "identity", "--stage", slow,
                                  "--tasks", "1", "--dest", Dest("bp"), "--detach"});
  INFO(run.result.Describe());
  REQUIRE(run.result.code() == 0);
  Subprocess source;
  REQUIRE_OK(StartRainsource(c.node(1), run.job, c.dir() + "/many.txt", {}, &source));
  auto tasks = OperatorTasks(c.node(0), run.job, 2);
  REQUIRE_OK(tasks.status());
  RaindProcess* stage1 = nullptr;
  RaindProcess* stage2 = nullptr;
  for (const auto& t : *tasks) (t.stage == 1 ? stage1 : stage2) = NodeOf(c, t.node);
  REQUIRE(stage1 != nullptr);
  REQUIRE(stage2 != nullptr);
  // Stage 1 spends most of each second blocked; stage 2's output (the sink) keeps up.
  REQUIRE_EVENTUALLY(30s, [&](std::string* why) {
    auto m1 = ScrapeMetrics(*stage1);
    auto m2 = ScrapeMetrics(*stage2);
    if (!m1.ok() || !m2.ok()) {
      *why = !m1.ok() ? m1.status().ToString() : m2.status().ToString();
      return false;
    }
    double bp1 =
        MetricOr0(*m1, TaskKey("rainstorm_stream_task_backpressure_ratio", run.job, "1", 0));
    double total1 = MetricOr0(
        *m1, TaskKey("rainstorm_stream_task_backpressure_seconds_total", run.job, "1", 0));
    double bp2 =
        MetricOr0(*m2, TaskKey("rainstorm_stream_task_backpressure_ratio", run.job, "2", 0));
    *why = "stage 1 backpressure " + std::to_string(bp1) + " (" + std::to_string(total1) +
           " s in all), stage 2 " + std::to_string(bp2);
    return bp1 > 0.5 && total1 > 1 && bp2 < 0.1;
  });
  CHECK(Ctl(c.node(0), {"job", "cancel", run.job}).code() == 0);
  source.Wait(kJobTimeout);
}

}  // namespace rs::harness
