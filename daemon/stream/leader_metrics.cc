// What the leader counts of each job, for GET /metrics (daemon/node_metrics_stream.cc): its
// state, tasks per stage, rebuilds and rescales, and the sink's report (latency in buckets).
#include "daemon/stream/leader.h"

namespace rs::stream {

std::vector<JobMetrics> Leader::Metrics() const {
  std::vector<JobMetrics> out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(order_.size());
  for (const auto& id : order_) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    const Job& job = *it->second;
    JobMetrics m;
    m.job = job.id;
    m.state = job.state;
    m.stage_tasks = job.stage_tasks;
    if (m.stage_tasks.empty()) m.stage_tasks.assign(job.spec.stages.size(), job.spec.tasks);
    for (const auto& e : job.rebuild_history) ++m.rebuilds[e.stage];
    for (const auto& e : job.scaling) {
      ++m.scaling[{e.stage, e.to > e.from, e.outcome == "done"}];
    }
    m.sink = SinkReport(job);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace rs::stream
