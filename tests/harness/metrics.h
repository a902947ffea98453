// HTTP for cluster tests (daemon/http/README.md). GET /metrics of a node, parsed by Debian's
// Prometheus client parser (python3-prometheus-client,
// run by /usr/bin/python3: a pyenv python does not see Debian's packages), so a test checks both
// that the text parses and what it says. Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "shared/status.h"
#include "tests/harness/raind_process.h"

namespace rs::harness {

// Every sample as the parser gives it, keyed "name{label=value,...}" with the labels sorted by
// name ("name{}" without labels); histograms as their _bucket, _sum and _count samples.
using Metrics = std::map<std::string, double>;

Result<Metrics> ScrapeMetrics(const RaindProcess& node);

// One HTTP request by /usr/bin/python3's urllib (no curl on a bare machine): `method` GET or
// POST (`form`: the urlencoded body), with `token` as a bearer token when not empty. `via`
// prefixes the command (e.g. `ip netns exec NS`: a request from another host).
struct HttpReply {
  int status = 0;
  std::string body;
};
// `rainctl [--key KEY] keys token`: an HTTP token of the key (the default client key when
// `key` is empty).
Result<std::string> HttpToken(const std::string& key = "");

Result<HttpReply> HttpRequest(const std::string& url, const std::string& method = "GET",
                              const std::string& token = "", const std::string& form = "",
                              const std::vector<std::string>& via = {});

// The value of `key` ("name{label=value,...}"), 0 when absent.
double MetricOr0(const Metrics& m, const std::string& key);
// The sum of the samples of `name` whose labels include every one of `labels` ("k=v" each).
double SumMetric(const Metrics& m, const std::string& name, const std::vector<std::string>& labels);

}  // namespace rs::harness
