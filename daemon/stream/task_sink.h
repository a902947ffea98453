// The sink's output (README.md "Roles"): every output line processed goes to the spool file,
// written as part of the task's commit (output is visible only once it is logged), then, batched,
// appended to the destination HyDFS file. A failed append is retried alone with exactly the same
// bytes every 500 ms, so HyDFS resumes its append id and a batch that reached some replicas
// lands once (daemon/hydfs/README.md); after 30 s of failures the job fails. Also measures
// source-to-sink latency. Runs on the sink task's thread; the appends complete on HyDFS's.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/stream/async_call.h"
#include "daemon/stream/in_frame.h"
#include "shared/clock.h"
#include "shared/util/histogram.h"
#include "shared/status.h"

namespace rs::stream {

// Latency histogram: bucket b covers [2^(b/8), 2^((b+1)/8)) microseconds.
struct LatencyHistogram {
  std::array<uint64_t, 8 * 40> buckets{};
  uint64_t samples = 0;
  void Add(uint64_t us, uint64_t weight);
  uint64_t Percentile(double p) const;
};

class SinkOutput {
 public:
  using Append = std::function<void(std::string data, std::function<void(Status)> done)>;
  using Log = std::function<void(const std::string& line)>;

  // `spool_fd` (owned) takes the committed lines; `append` adds bytes to the destination `dest`.
  SinkOutput(int spool_fd, std::string dest, Clock::duration flush_every, Append append, Log log);
  ~SinkOutput();
  SinkOutput(const SinkOutput&) = delete;
  SinkOutput& operator=(const SinkOutput&) = delete;

  // The frames' tuples are output lines (their values); `now_us` (wall clock) for latency.
  // Returns how many lines.
  size_t Consume(const std::vector<InFrame>& frames, uint64_t now_us);
  // Part of the task's commit: writes the lines consumed since the last commit to the spool.
  Status WriteSpool();
  // The commit is logged: those lines are committed (and will be appended). Returns their bytes.
  size_t Committed();
  // Starts the next append when due (`force`: now), and checks the one under way. An error once
  // appends failed for 30 s.
  Status Flush(bool force, TimePoint now);
  // Everything committed is in the destination.
  bool Flushed() const { return unflushed_.empty() && flushing_.empty() && !call_; }

  uint64_t lines() const { return lines_; }
  uint64_t bytes() const { return bytes_; }
  const LatencyHistogram& latency() const { return latency_; }
  // The same samples in the buckets every exported latency uses (metrics, shared/util/histogram.h).
  HistogramSnapshot latency_buckets() const { return exported_.Take(); }

 private:
  void Start(TimePoint now);

  int fd_;
  std::string dest_;
  Clock::duration flush_every_;
  Append append_;
  Log log_;
  std::string pending_;    // consumed, not yet committed to the spool
  std::string unflushed_;  // committed, not yet appended to the destination
  std::string flushing_;   // the append under way (or failed, to be retried as it is)
  std::shared_ptr<AsyncCall> call_;
  TimePoint last_flush_{}, failing_since_{};
  bool failing_ = false;
  LatencyHistogram latency_;
  Histogram exported_;
  uint64_t lines_ = 0, bytes_ = 0;
};

}  // namespace rs::stream
