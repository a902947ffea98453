// The Prometheus text exposition format (version 0.0.4), written: metric families with their
// HELP and TYPE lines, then samples with labels. Names follow Prometheus conventions
// (`rainstorm_` prefix, `_total` counters, `_seconds` histograms); label values are escaped as
// the format says (backslash, double quote, newline). Pure: the callers bring the numbers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/util/histogram.h"

namespace rs::http {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricsText {
 public:
  // Starts a family: `type` is "counter", "gauge" or "histogram".
  void Family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the family just started (`name` may add `_bucket`, `_sum` or `_count`).
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, double value) { Sample(name, {}, value); }
  // The samples of a histogram of the family just started: cumulative `_bucket`s with `le` (the
  // bounds of shared/util/histogram.h, then +Inf), `_sum` in seconds and `_count`. An empty
  // snapshot gives zeros, so the series exists from the start.
  void Histogram(std::string_view name, const Labels& labels, const HistogramSnapshot& h);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// A label value or HELP text escaped for the format.
std::string EscapeLabelValue(std::string_view v);
std::string EscapeHelp(std::string_view v);
// A sample value as the format writes it: integers without exponent, +Inf, -Inf, NaN.
std::string FormatValue(double v);

}  // namespace rs::http
