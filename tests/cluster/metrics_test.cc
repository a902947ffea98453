// Cluster test of the nodes' HTTP endpoint (daemon/http/README.md): every raind serves GET
// /metrics on loopback; the text parses with Debian's Prometheus client parser
// (python3-prometheus-client, run by /usr/bin/python3), and its membership numbers agree with
// list_mem. Garbage on the HTTP port neither crashes the node nor stops it serving. The HyDFS
// metrics (daemon/hydfs/README.md "Metrics") count exactly the operations rainctl ran through a
// node, and the replicas and bytes the nodes store.
#include "tests/harness/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// GET /metrics of `n`, parsed (tests/harness/metrics.h).
Metrics Scrape(const RaindProcess& n) {
  auto m = ScrapeMetrics(n);
  REQUIRE_OK(m.status());
  return *m;
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

namespace {

// The samples of one scrape whose name starts with `prefix`, summed.
double SumOf(const std::map<std::string, double>& m, const std::string& prefix) {
  double sum = 0;
  for (const auto& [key, value] : m) {
    if (key.rfind(prefix, 0) == 0) sum += value;
  }
  return sum;
}

// A HyDFS gauge or counter (no labels) summed over every node's scrape.
double SumOverNodes(Cluster& c, const std::string& name) {
  double sum = 0;
  for (RaindProcess* n : c.Running()) sum += Scrape(*n).at(name + "{}");
  return sum;
}

}  // namespace

TEST_CASE(
    "the HyDFS metrics count the operations a node ran by kind, their bytes and durations, "
    "and the replicas every node stores",
    "[metrics]") {
  Cluster c(3, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  RaindProcess& via = c.node(0);
  const std::string dir = c.dir() + "/files";
  // Several 64 KiB chunks each, and sizes no chunk divides.
  const std::string first = RandomBytes(300 * 1024 + 17, 16001);
  const std::string second = RandomBytes(100 * 1024 + 3, 16002);
  const double total = static_cast<double>(first.size() + second.size());
  REQUIRE_OK(WriteLocal(dir + "/first", first));
  REQUIRE_OK(WriteLocal(dir + "/second", second));

  REQUIRE_OK(HydfsCreate(via, dir + "/first", "metrics/a").status());
  REQUIRE_OK(HydfsAppend(via, dir + "/second", "metrics/a").status());
  auto got = HydfsGet(via, "metrics/a", dir + "/got-1");  // fills node 0's cache
  REQUIRE_OK(got.status());
  REQUIRE(got->data == first + second);
  auto again = HydfsGet(via, "metrics/a", dir + "/got-2");  // served from the cache
  REQUIRE_OK(again.status());
  CHECK(again->reply["cached"].Bool());
  REQUIRE_OK(HydfsLs(via, "metrics/a").status());
  CHECK_FALSE(HydfsGet(via, "metrics/missing", dir + "/got-3").ok());

  // Each operation was recorded before rainctl heard its outcome: no wait needed.
  auto m = Scrape(via);
  const std::string ops = "rainstorm_hydfs_operations_total";
  CHECK(m.at(ops + "{kind=create,result=ok}") == 1);
  CHECK(m.at(ops + "{kind=create,result=error}") == 0);
  CHECK(m.at(ops + "{kind=append,result=ok}") == 1);
  CHECK(m.at(ops + "{kind=get,result=ok}") == 2);
  CHECK(m.at(ops + "{kind=get,result=error}") == 1);
  CHECK(m.at(ops + "{kind=ls,result=ok}") == 1);
  CHECK(SumOf(m, ops + "{") == 6);  // nothing else counted
  const std::string bytes = "rainstorm_hydfs_operation_bytes_total";
  CHECK(m.at(bytes + "{kind=create}") == static_cast<double>(first.size()));
  CHECK(m.at(bytes + "{kind=append}") == static_cast<double>(second.size()));
  CHECK(m.at(bytes + "{kind=get}") == 2 * total);  // the failed get read nothing
  CHECK(m.count(bytes + "{kind=ls}") == 0);        // an ls moves no file data
  const std::string dur = "rainstorm_hydfs_operation_duration_seconds";
  for (const auto& [kind, n] : std::map<std::string, double>{
           {"create", 1}, {"append", 1}, {"get", 3}, {"ls", 1}, {"merge", 0}, {"rm", 0}}) {
    INFO("kind " << kind);
    CHECK(m.at(dur + "_count{kind=" + kind + "}") == n);
    CHECK(m.at(dur + "_bucket{kind=" + kind + ",le=+Inf}") == n);
    if (n > 0) CHECK(m.at(dur + "_sum{kind=" + kind + "}") > 0);
  }
  // The cache: the first get missed and filled it, the second hit.
  CHECK(m.at("rainstorm_hydfs_cache_misses_total{}") == 1);
  CHECK(m.at("rainstorm_hydfs_cache_hits_total{}") == 1);
  CHECK(m.at("rainstorm_hydfs_cache_used_bytes{}") == total);
  // rainctl's data of both writes, and the first get's chunks, came through node 0.
  CHECK(m.at("rainstorm_hydfs_client_received_bytes_total{}") == 2 * total);
  for (RaindProcess* n : c.Running()) {
    INFO(n->name());
    auto other = Scrape(*n);
    if (n != &via) CHECK(SumOf(other, ops + "{") == 0);
    CHECK(other.at("rainstorm_hydfs_ring_nodes{}") == 3);
    CHECK(other.at("rainstorm_hydfs_legacy_files{}") == 0);
  }

  // Every node is a replica of the one file (3 replicas on 3 nodes); the third replica may still
  // be committing when the write is acknowledged, so poll.
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    double files = SumOverNodes(c, "rainstorm_hydfs_files");
    double stored = SumOverNodes(c, "rainstorm_hydfs_stored_bytes");
    double used = SumOverNodes(c, "rainstorm_hydfs_store_used_bytes");
    *why = "files=" + std::to_string(files) + " stored_bytes=" + std::to_string(stored) +
           " store_used_bytes=" + std::to_string(used);
    return files == 3 && stored == 3 * total && used == 3 * total;
  });
  for (RaindProcess* n : c.Running()) {
    INFO(n->name());
    auto x = Scrape(*n);
    CHECK(x.at("rainstorm_hydfs_files{}") == 1);
    CHECK(x.at("rainstorm_hydfs_stored_bytes{}") == total);
    CHECK(x.at("rainstorm_hydfs_written_bytes_total{}") == total);  // each replica took both writes
  }
  // The first get fetched each chunk once from a replica; the second read none.
  CHECK(SumOverNodes(c, "rainstorm_hydfs_served_bytes_total") == total);
}

}  // namespace rs::harness
