// GET /metrics of a node, parsed by Debian's Prometheus client parser (python3-prometheus-client,
// run by /usr/bin/python3: a pyenv python does not see Debian's packages), so a test checks both
// that the text parses and what it says. Thread-compatible.
#pragma once

#include <map>
#include <string>

#include "shared/status.h"
#include "tests/harness/raind_process.h"

namespace rs::harness {

// Every sample as the parser gives it, keyed "name{label=value,...}" with the labels sorted by
// name ("name{}" without labels); histograms as their _bucket, _sum and _count samples.
using Metrics = std::map<std::string, double>;

Result<Metrics> ScrapeMetrics(const RaindProcess& node);

// The value of `key` ("name{label=value,...}"), 0 when absent.
double MetricOr0(const Metrics& m, const std::string& key);
// The sum of the samples of `name` whose labels include every one of `labels` ("k=v" each).
double SumMetric(const Metrics& m, const std::string& name, const std::vector<std::string>& labels);

}  // namespace rs::harness
