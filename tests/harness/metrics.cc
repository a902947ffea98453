#include "tests/harness/metrics.h"

#include <cstdlib>
#include <sstream>
#include <vector>

#include "tests/harness/ctl.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {
namespace {

constexpr const char* kScrape = R"(
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read()
for family in text_string_to_metric_families(body.decode()):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
)";

// Prints the status code, a newline, then the body.
constexpr const char* kRequest = R"(
import sys, urllib.request, urllib.error
url, method, token, form = sys.argv[1:5]
req = urllib.request.Request(url, method=method, data=form.encode() if method == "POST" else None)
if token:
    req.add_header("Authorization", "Bearer " + token)
try:
    with urllib.request.urlopen(req, timeout=15) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
sys.stdout.write("%d\n" % status)
sys.stdout.flush()
sys.stdout.buffer.write(body)
)";

}  // namespace

Result<std::string> HttpToken(const std::string& key) {
  std::vector<std::string> args;
  if (!key.empty()) args = {"--key", key};
  args.insert(args.end(), {"keys", "token"});
  CommandResult r = RunCtl(args);
  std::string token = r.out.substr(0, r.out.find('\n'));
  if (r.code() != 0 || token.rfind("rs1_", 0) != 0) {
    return Status::Unavailable("rainctl keys token: " + r.Describe());
  }
  return token;
}

Result<HttpReply> HttpRequest(const std::string& url, const std::string& method,
                              const std::string& token, const std::string& form,
                              const std::vector<std::string>& via) {
  std::vector<std::string> argv = via;
  for (const std::string& a : {std::string("/usr/bin/python3"), std::string("-c"),
                               std::string(kRequest), url, method, token, form}) {
    argv.push_back(a);
  }
  CommandResult r = RunCommand(argv, std::chrono::seconds(20));
  size_t nl = r.out.find('\n');
  if (r.code() != 0 || nl == std::string::npos) {
    return Status::Unavailable(method + " " + url + ": " + r.Describe());
  }
  HttpReply reply;
  reply.status = std::atoi(r.out.substr(0, nl).c_str());
  reply.body = r.out.substr(nl + 1);
  return reply;
}

Result<Metrics> ScrapeMetrics(const RaindProcess& node) {
  if (node.HttpPort() == 0) return Status::FailedPrecondition(node.name() + " has no HTTP port");
  CommandResult r = RunCommand({"/usr/bin/python3", "-c", kScrape, std::to_string(node.HttpPort())},
                               std::chrono::seconds(20));
  if (r.code() != 0) {
    return Status::Unavailable("scraping " + node.name() + ": " + r.Describe());
  }
  Metrics out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) return Status::Corruption("scrape output line: " + line);
    try {
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {
      return Status::Corruption("scrape output line: " + line);
    }
  }
  return out;
}

double MetricOr0(const Metrics& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

double SumMetric(const Metrics& m, const std::string& name,
                 const std::vector<std::string>& labels) {
  double sum = 0;
  std::string prefix = name + "{";
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    std::string inside = it->first.substr(prefix.size(), it->first.size() - prefix.size() - 1);
    std::vector<std::string> have;
    std::istringstream parts(inside);
    for (std::string p; std::getline(parts, p, ',');) have.push_back(p);
    bool all = true;
    for (const auto& l : labels) {
      bool found = false;
      for (const auto& h : have) found = found || h == l;
      all = all && found;
    }
    if (all) sum += it->second;
  }
  return sum;
}

}  // namespace rs::harness
