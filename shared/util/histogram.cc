#include "shared/util/histogram.h"

#include <algorithm>

namespace rs {

uint64_t HistogramSnapshot::Count() const {
  uint64_t n = 0;
  for (uint64_t c : counts) n += c;
  return n;
}

double HistogramSnapshot::Quantile(double q) const {
  uint64_t total = Count();
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the sample at q, from 1: the first bucket whose cumulative count reaches it.
  auto rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
  rank = std::clamp<uint64_t>(rank, 1, total);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return kLatencyBounds[std::min(i, kLatencyBounds.size() - 1)];
  }
  return kLatencyBounds.back();
}

void HistogramSnapshot::Add(const HistogramSnapshot& o) {
  if (o.counts.empty()) return;
  if (counts.empty()) counts.assign(o.counts.size(), 0);
  if (counts.size() != o.counts.size()) return;
  for (size_t i = 0; i < counts.size(); ++i) counts[i] += o.counts[i];
  sum_seconds += o.sum_seconds;
}

void Histogram::ObserveMicros(uint64_t us, uint64_t n) {
  double s = static_cast<double>(us) / 1e6;
  size_t i =
      std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), s) - kLatencyBounds.begin();
  counts_[i].fetch_add(n, std::memory_order_relaxed);
  sum_us_.fetch_add(us * n, std::memory_order_relaxed);
}

HistogramSnapshot Histogram::Take() const {
  HistogramSnapshot s;
  s.counts.resize(counts_.size());
  for (size_t i = 0; i < counts_.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
  }
  s.sum_seconds = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  if (s.Count() == 0) s.counts.clear();
  return s;
}

}  // namespace rs
