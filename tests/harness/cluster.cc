// The listener below needs Catch2's reporter interfaces, which must be enabled before the
// first inclusion of catch.hpp in this file.
#define CATCH_CONFIG_EXTERNAL_INTERFACES

#include "tests/harness/cluster.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>

#include "shared/clock.h"
#include "shared/security/keys.h"
#include "shared/transport/security.h"
#include "tests/harness/eventually.h"

namespace rs::harness {
namespace fs = std::filesystem;

namespace {

constexpr size_t kLogTailLines = 60;

// Clusters alive in this process, so the listener can print their logs on a failure.
std::vector<Cluster*>& LiveClusters() {
  static std::vector<Cluster*> clusters;
  return clusters;
}
bool g_test_failed = false;

// Searchable by others (0711): under a root raind, operators run as operator_user and must
// reach their task directories below the nodes' data dirs (daemon/stream/README.md).
std::string MakeTempDir() {
  std::string tmpl = "/tmp/rs-cluster-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  ::chmod(tmpl.c_str(), 0711);
  return tmpl;
}

// Dumps logs of live clusters as soon as an assertion fails (the processes are still up, the
// logs are current) and remembers the failure for the fixture's destructor.
class FailureListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    g_test_failed = false;
    TestEventListenerBase::testCaseStarting(info);
  }

  bool assertionEnded(const Catch::AssertionStats& stats) override {
    if (!stats.assertionResult.succeeded()) {
      g_test_failed = true;
      for (Cluster* c : LiveClusters()) c->DumpLogs();
    }
    return true;
  }
};

CATCH_REGISTER_LISTENER(FailureListener)

}  // namespace

const std::string& TestKeysDir() {
  static const std::string dir = [] {
    std::string parent = MakeTempDir();  // removed at exit, with the keys
    std::string d = parent + "/keys";
    Status st = security::MakeClusterKeys(d, WallMillis());
    if (!st.ok()) {
      std::cerr << "cannot make the test cluster keys: " << st.ToString() << "\n";
      std::abort();
    }
    ::setenv("RAIN_KEY", (d + "/admin.key").c_str(), 1);  // for every rainctl the tests run
    // The test process itself holds a node's keys, so the sockets a test makes by hand (junk
    // senders, fake peers) get past the handshake like a member's and reach the code under test.
    auto cluster = security::ReadKeyFile(d + "/cluster.key");
    auto member = security::ReadKeyFile(d + "/node.key");
    transport::SecuritySettings settings;
    settings.node = true;
    if (cluster.ok() && member.ok()) {
      settings.self = member->keys;
      settings.cluster_public = cluster->keys.public_key;
      settings.cluster_secret = cluster->keys.secret_key;
      settings.keyring_path = d + "/keyring";
      st = transport::InstallSecurity(std::move(settings));
    } else {
      st = !cluster.ok() ? cluster.status() : member.status();
    }
    if (!st.ok()) {
      std::cerr << "cannot install the test process's keys: " << st.ToString() << "\n";
      std::abort();
    }
    static std::string to_remove = parent;
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(to_remove, ec);
    });
    return d;
  }();
  return dir;
}

bool CurrentTestFailed() { return g_test_failed; }

Result<std::string> MakeUnlistedKey(const std::string& dir, const std::string& name,
                                    const std::string& kind) {
  auto cluster = security::ReadKeyFile(TestKeysDir() + "/cluster.key");
  if (!cluster.ok()) return cluster.status();
  auto pair = security::GenerateKeyPair();
  if (!pair.ok()) return pair.status();
  std::string path = dir + "/" + name + ".key";
  RS_RETURN_IF_ERROR(security::WriteKeyFile(path, {kind, name, *pair, cluster->keys.public_key}));
  return path;
}

Cluster::Cluster(size_t nodes, std::vector<std::string> extra_args)
    : initial_nodes_(nodes), extra_args_(std::move(extra_args)), dir_(MakeTempDir()) {
  LiveClusters().push_back(this);
}

Cluster::~Cluster() {
  auto& live = LiveClusters();
  live.erase(std::remove(live.begin(), live.end(), this), live.end());
  for (auto& n : nodes_) n->Kill();
  bool failed = g_test_failed || std::uncaught_exceptions() > 0;
  if (failed) DumpLogs();
  const char* keep = std::getenv("RS_CLUSTER_KEEP_DIR");
  std::string policy = keep != nullptr ? keep : "on-failure";
  if (policy == "always" || ((failed || keep_dir_) && policy != "never")) {
    std::cerr << "cluster dir kept for inspection: " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

RaindProcess& Cluster::NewNode(RaindOptions options) {
  size_t index = nodes_.size() + 1;
  std::string name = "node" + std::to_string(index);
  options.extra_args.insert(options.extra_args.begin(), extra_args_.begin(), extra_args_.end());
  bool insecure = std::find(options.extra_args.begin(), options.extra_args.end(), "--insecure") !=
                  options.extra_args.end();
  bool has_keys = false;
  for (const auto& a : options.extra_args) has_keys = has_keys || a.rfind("keys_dir=", 0) == 0;
  if (!insecure && !has_keys) {
    options.extra_args.insert(options.extra_args.begin(), {"--set", "keys_dir=" + TestKeysDir()});
  }
  if (placement_) placement_(index - 1, &options);
  nodes_.push_back(std::make_unique<RaindProcess>(name, dir_ + "/" + name, std::move(options)));
  return *nodes_.back();
}

Result<RaindProcess*> Cluster::AddNode(const std::string& introducer) {
  std::string via = introducer;
  if (via.empty()) {
    for (auto& n : nodes_) {
      if (n->Running() && !n->Id().empty()) {
        via = n->ControlAddress();
        break;
      }
    }
  }
  if (via.empty()) return Status::FailedPrecondition("no running node to join through");
  RaindOptions options;
  options.introducer = via;
  RaindProcess& n = NewNode(std::move(options));
  RS_RETURN_IF_ERROR(n.Start());
  return &n;
}

Status Cluster::Start() {
  if (dir_.empty()) return Status::IOError("cannot create a temp dir under /tmp");
  if (initial_nodes_ == 0) return Status::InvalidArgument("a cluster needs at least one node");
  RaindProcess& founder = NewNode(RaindOptions{});
  RS_RETURN_IF_ERROR(founder.Start());
  RS_RETURN_IF_ERROR(founder.WaitReady(kReadyDeadline));
  std::vector<RaindProcess*> joiners;
  for (size_t i = 1; i < initial_nodes_; ++i) {
    auto n = AddNode(founder.ControlAddress());
    if (!n.ok()) return n.status();
    joiners.push_back(*n);
  }
  for (RaindProcess* n : joiners) RS_RETURN_IF_ERROR(n->WaitReady(kReadyDeadline));
  std::vector<RaindProcess*> all;
  for (auto& n : nodes_) all.push_back(n.get());
  auto wait = Eventually([&](std::string* why) { return AllAlive(all, why); }, kConvergeDeadline);
  if (!wait.ok) return Status::Timeout("cluster did not converge: " + wait.ToString());
  return Status::Ok();
}

std::vector<RaindProcess*> Cluster::Running() {
  std::vector<RaindProcess*> out;
  for (auto& n : nodes_) {
    if (n->Running()) out.push_back(n.get());
  }
  return out;
}

void Cluster::DumpLogs(bool force) {
  if (dumped_ && !force) return;
  dumped_ = true;
  std::cerr << "\n######## logs of cluster " << dir_ << " (" << nodes_.size() << " nodes)\n";
  for (auto& n : nodes_) std::cerr << n->DescribeForFailure(kLogTailLines);
  std::cerr << "######## end of logs\n" << std::flush;
}

bool AllSee(const std::vector<RaindProcess*>& observers, const std::vector<std::string>& ids,
            const std::set<std::string>& states, std::string* why) {
  for (RaindProcess* o : observers) {
    auto list = ListMem(o->ControlAddress());
    if (!list.ok()) {
      *why = o->name() + ": " + list.status().ToString();
      return false;
    }
    if (!list->in_cluster) {
      *why = o->name() + " is not in the cluster: " + list->ToString();
      return false;
    }
    for (const auto& id : ids) {
      std::string state = list->StateOf(id);
      if (!states.count(state)) {
        *why = o->name() + " sees " + id + " as " + state + ": " + list->ToString();
        return false;
      }
    }
  }
  why->clear();
  return true;
}

bool AllAlive(const std::vector<RaindProcess*>& nodes, std::string* why) {
  return AllSee(nodes, IdsOf(nodes), {"alive"}, why);
}

std::vector<std::string> IdsOf(const std::vector<RaindProcess*>& nodes) {
  std::vector<std::string> ids;
  for (RaindProcess* n : nodes) ids.push_back(n->Id());
  return ids;
}

}  // namespace rs::harness
