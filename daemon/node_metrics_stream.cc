// The stream engine's part of GET /metrics (node_metrics.h): every task this node hosts, from
// its last report (per job, stage and task), and on the leader every job's state, tasks,
// rebuilds, rescales and its sink (the sink runs on the leader: stage "sink").
#include <array>
#include <string>

#include "daemon/node_metrics.h"

namespace rs {
namespace {

using stream::TaskReport;

std::string StageLabel(const TaskReport& r) {
  return r.op == "(sink)" ? std::string("sink") : std::to_string(r.stage);
}

http::Labels TaskLabels(const TaskReport& r) {
  return {{"job", r.job}, {"stage", StageLabel(r)}, {"task", std::to_string(r.task)}};
}

double Seconds(uint64_t us) { return static_cast<double>(us) / 1e6; }

void AppendTasks(http::MetricsText& m, const std::vector<TaskReport>& tasks) {
  struct Column {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const TaskReport&);
  };
  static const std::array<Column, 13> kColumns = {{
      {"rainstorm_stream_task_tuples_in_total", "counter", "Tuples the task took in.",
       [](const TaskReport& r) { return static_cast<double>(r.tuples_in); }},
      {"rainstorm_stream_task_tuples_out_total", "counter", "Tuples the task sent on.",
       [](const TaskReport& r) { return static_cast<double>(r.tuples_out); }},
      {"rainstorm_stream_task_duplicates_total", "counter",
       "Tuples the task discarded as already processed (exactly-once).",
       [](const TaskReport& r) { return static_cast<double>(r.duplicates); }},
      {"rainstorm_stream_task_input_tuples_per_second", "gauge",
       "Tuples taken in over the task's last second.",
       [](const TaskReport& r) { return r.rate_in; }},
      {"rainstorm_stream_task_output_tuples_per_second", "gauge",
       "Tuples sent on over the task's last second.",
       [](const TaskReport& r) { return r.rate_out; }},
      {"rainstorm_stream_task_busy_ratio", "gauge",
       "Share of the task's last second its operator was working.",
       [](const TaskReport& r) { return r.busy; }},
      {"rainstorm_stream_task_backpressure_ratio", "gauge",
       "Share of the task's last second its output was blocked on a full window.",
       [](const TaskReport& r) { return r.backpressure; }},
      {"rainstorm_stream_task_backpressure_seconds_total", "counter",
       "Time the task's output was blocked on a full window.",
       [](const TaskReport& r) { return Seconds(r.backpressure_us); }},
      {"rainstorm_stream_task_resent_frames_total", "counter",
       "Frames the task sent again (no acknowledgement in time, or a rebuilt receiver).",
       [](const TaskReport& r) { return static_cast<double>(r.resent_frames); }},
      {"rainstorm_stream_task_checkpoints_total", "counter",
       "Checkpoint records of this run of the task made durable in HyDFS.",
       [](const TaskReport& r) { return static_cast<double>(r.checkpoints); }},
      {"rainstorm_stream_task_checkpoint_bytes_total", "counter",
       "Bytes of those checkpoint records.",
       [](const TaskReport& r) { return static_cast<double>(r.checkpoint_bytes); }},
      {"rainstorm_stream_task_checkpoint_last_bytes", "gauge",
       "Size of the task's last durable checkpoint record.",
       [](const TaskReport& r) { return static_cast<double>(r.checkpoint_last_bytes); }},
      {"rainstorm_stream_task_run", "gauge",
       "Which run of the task this is (1, then one more per rebuild).",
       [](const TaskReport& r) { return static_cast<double>(r.incarnation); }},
  }};
  for (const auto& c : kColumns) {
    m.Family(c.name, c.type, c.help);
    for (const auto& r : tasks) m.Sample(c.name, TaskLabels(r), c.value(r));
  }
  const char* ckpt = "rainstorm_stream_task_checkpoint_duration_seconds";
  m.Family(ckpt, "histogram", "Time from writing a checkpoint record to its being durable.");
  for (const auto& r : tasks) m.Histogram(ckpt, TaskLabels(r), r.checkpoint_seconds);
}

void AppendJobs(http::MetricsText& m, const std::vector<stream::JobMetrics>& jobs) {
  using stream::JobState;
  const std::array<JobState, 5> states = {JobState::kStarting, JobState::kRunning, JobState::kDone,
                                          JobState::kFailed, JobState::kCancelled};
  m.Family("rainstorm_stream_jobs", "gauge", "Jobs the leader knows, by state.");
  for (JobState st : states) {
    double n = 0;
    for (const auto& j : jobs) n += j.state == st ? 1 : 0;
    m.Sample("rainstorm_stream_jobs", {{"state", stream::JobStateName(st)}}, n);
  }
  m.Family("rainstorm_stream_stage_tasks", "gauge", "Tasks of each stage of a job.");
  for (const auto& j : jobs) {
    for (size_t s = 0; s < j.stage_tasks.size(); ++s) {
      m.Sample("rainstorm_stream_stage_tasks", {{"job", j.job}, {"stage", std::to_string(s + 1)}},
               j.stage_tasks[s]);
    }
  }
  m.Family("rainstorm_stream_rebuilds_total", "counter",
           "Failed tasks the leader rebuilt from their last checkpoint, by stage.");
  for (const auto& j : jobs) {
    for (size_t s = 1; s <= j.stage_tasks.size(); ++s) {
      auto it = j.rebuilds.find(static_cast<uint32_t>(s));
      m.Sample("rainstorm_stream_rebuilds_total", {{"job", j.job}, {"stage", std::to_string(s)}},
               it == j.rebuilds.end() ? 0 : static_cast<double>(it->second));
    }
  }
  m.Family("rainstorm_stream_scaling_actions_total", "counter",
           "Rescales of a stage, by direction and outcome (done, or failed).");
  for (const auto& j : jobs) {
    for (const auto& [k, n] : j.scaling) {
      m.Sample("rainstorm_stream_scaling_actions_total",
               {{"job", j.job},
                {"stage", std::to_string(k.stage)},
                {"direction", k.up ? "up" : "down"},
                {"outcome", k.done ? "done" : "failed"}},
               static_cast<double>(n));
    }
  }
  m.Family("rainstorm_stream_output_lines_total", "counter",
           "Lines the job's sink committed to its output.");
  for (const auto& j : jobs) {
    m.Sample("rainstorm_stream_output_lines_total", {{"job", j.job}},
             static_cast<double>(j.sink.output_lines));
  }
  m.Family("rainstorm_stream_latency_seconds", "histogram",
           "Time from a tuple's source to the sink, per tuple.");
  for (const auto& j : jobs) {
    m.Histogram("rainstorm_stream_latency_seconds", {{"job", j.job}}, j.sink.latency_seconds);
  }
}

}  // namespace

void AppendStreamMetrics(http::MetricsText& m, const stream::StreamService& s) {
  std::vector<stream::JobMetrics> jobs = s.JobsMetrics();
  std::vector<TaskReport> tasks = s.TaskReports();
  // The sinks run on the leader, outside its worker: their task series come from the jobs.
  for (const auto& j : jobs) {
    bool live = j.state == stream::JobState::kStarting || j.state == stream::JobState::kRunning;
    if (j.sink.op == "(sink)" && live) tasks.push_back(j.sink);
  }
  AppendTasks(m, tasks);
  if (s.is_leader()) AppendJobs(m, jobs);
}

}  // namespace rs
