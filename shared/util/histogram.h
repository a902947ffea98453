// A latency histogram with fixed bucket bounds, for metrics (issue 16): any thread may Observe,
// any thread may Take a consistent-enough snapshot (each count is read atomically; a sample
// observed meanwhile may show in `count` and not yet in its bucket, which Prometheus tolerates).
// One set of bounds for every latency we export, from 0.5 ms to 60 s, so histograms of different
// nodes and kinds add up. Snapshots also answer percentiles (the console's p50/p99).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace rs {

// Upper bounds of the buckets, in seconds; a last bucket (+Inf) takes the rest.
inline constexpr std::array<double, 16> kLatencyBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

struct HistogramSnapshot {
  // Per bucket, not cumulative: counts[i] for kLatencyBounds[i], counts.back() for +Inf. Empty
  // when nothing was ever observed (and for a snapshot read off the wire without one).
  std::vector<uint64_t> counts;
  double sum_seconds = 0;
  uint64_t Count() const;
  // The bound of the bucket holding the q-quantile (0 < q <= 1), in seconds: an upper estimate,
  // as Prometheus' histogram_quantile gives without interpolation. 0 when empty; for the +Inf
  // bucket, the last finite bound.
  double Quantile(double q) const;
  // Adds another snapshot bucket by bucket (sizes must match, or one must be empty).
  void Add(const HistogramSnapshot& o);
};

class Histogram {
 public:
  // `n` samples of `us` microseconds each.
  void ObserveMicros(uint64_t us, uint64_t n = 1);
  HistogramSnapshot Take() const;

 private:
  std::array<std::atomic<uint64_t>, kLatencyBounds.size() + 1> counts_{};
  std::atomic<uint64_t> sum_us_{0};
};

}  // namespace rs
