// Cluster test of the nodes' HTTP endpoint (daemon/http/README.md): every raind serves GET
// /metrics on loopback; the text parses with Debian's Prometheus client parser
// (python3-prometheus-client, run by /usr/bin/python3), and its membership numbers agree with
// list_mem. Garbage on the HTTP port neither crashes the node nor stops it serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>

#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// GET /metrics of `port`, parsed: "name{labels} value" per sample, as the parser sees them.
constexpr const char* kScrape = R"(
import sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read()
for family in text_string_to_metric_families(body.decode()):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
)";

std::map<std::string, double> Scrape(const RaindProcess& n) {
  CommandResult r =
      RunCommand({"/usr/bin/python3", "-c", kScrape, std::to_string(n.HttpPort())}, 20s);
  INFO(r.Describe());
  REQUIRE(r.code() == 0);
  std::map<std::string, double> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("every node serves /metrics that parse and agree with list_mem", "[metrics]") {
  Cluster c(3);
  REQUIRE_OK(c.Start());  // every node lists every node alive
  for (RaindProcess* n : c.Running()) {
    REQUIRE(n->HttpPort() != 0);
    auto m = Scrape(*n);
    INFO(n->name());
    CHECK(m.at("rainstorm_membership_members{state=alive}") == 3);
    CHECK(m.at("rainstorm_membership_members{state=failed}") == 0);
    CHECK(m.at("rainstorm_node_start_time_seconds{}") > 1.7e9);
    CHECK(m.count("rainstorm_membership_probes_total{}") == 1);
    CHECK(m.at("rainstorm_membership_received_bytes_total{}") > 0);
  }
  // Garbage on the HTTP port: the node answers the next scrape all the same.
  RaindProcess& n = c.node(0);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(n.HttpPort());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  std::string junk = "\x16\x03\x01 GET /metrics HTTP/9.9\r\n\r\n" + std::string(100000, 'x');
  (void)::write(fd, junk.data(), junk.size());
  ::close(fd);
  auto list = ListMem(n.ControlAddress());
  REQUIRE_OK(list.status());
  auto m = Scrape(n);
  CHECK(m.at("rainstorm_membership_members{state=alive}") ==
        static_cast<double>(list->members.size()));
}

}  // namespace rs::harness
