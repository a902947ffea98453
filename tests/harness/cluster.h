// Cluster: the fixture of the cluster tests. N raind processes on 127.0.0.1 in a temp dir
// (/tmp/rs-cluster-XXXXXX, one data dir per node); node 0 founds the cluster, the others join
// through it. Everything still running is killed by the destructor, whatever ended the test.
//
// On a failed assertion (seen by a Catch2 listener) or an exception unwinding through the
// fixture, the tail of every node's log is printed and the temp dir is kept for inspection;
// otherwise it is removed ($RS_CLUSTER_KEEP_DIR = on-failure (default) | always | never).
// Thread-compatible: one test thread.
//   Cluster c(5);
//   REQUIRE(c.Start().ok());
//   c.node(2).Kill();
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"
#include "tests/harness/ctl.h"
#include "tests/harness/raind_process.h"

namespace rs::harness {

inline constexpr auto kReadyDeadline = std::chrono::seconds(10);
inline constexpr auto kConvergeDeadline = std::chrono::seconds(20);

// The keys of every cluster this test process starts (made once, removed at exit; see
// shared/security/keys.h MakeClusterKeys): cluster.key, node.key, admin.key, keyring. Its first
// use sets $RAIN_KEY to admin.key for the rainctl runs of the tests. A node started with
// "--insecure" or its own keys_dir is left alone.
const std::string& TestKeysDir();
// A new key file DIR/NAME.key of `kind` (member, admin, read) for the TestKeysDir cluster (it
// names that cluster's key) but not on its keyring: a stranger's key, or one to `keys add`.
Result<std::string> MakeUnlistedKey(const std::string& dir, const std::string& name,
                                    const std::string& kind);

class Cluster {
 public:
  // `extra_args` go to every raind, e.g. {"--log-level", "debug"}.
  explicit Cluster(size_t nodes, std::vector<std::string> extra_args = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts every node (node 0 first, the rest joining through it) and waits until each lists
  // every node alive.
  Status Start();

  // Where each node runs: called with the node's index (0 = the founder, in start order) and
  // its options before the handle is made, e.g. to set its host and an `ip netns exec` prefix
  // (tests/harness/netns.h). Set it before Start(); default: every node on 127.0.0.1.
  using Placement = std::function<void(size_t index, RaindOptions* options)>;
  void set_placement(Placement placement) { placement_ = std::move(placement); }

  size_t size() const { return nodes_.size(); }
  RaindProcess& node(size_t i) { return *nodes_.at(i); }
  const std::string& dir() const { return dir_; }

  // A new node handle joining through `introducer` (default: the first running node's control
  // address); started, not yet ready.
  Result<RaindProcess*> AddNode(const std::string& introducer = "");
  // A node handle that is not started, for tests that drive raind by hand.
  RaindProcess& NewNode(RaindOptions options);

  // The nodes whose process is running.
  std::vector<RaindProcess*> Running();

  // Keeps the temp dir when the fixture goes, whatever the outcome (unless
  // $RS_CLUSTER_KEEP_DIR=never), e.g. for a benchmark trial that saw a violation.
  void KeepDir() { keep_dir_ = true; }

  // Prints the tail of every node's log to stderr (once per cluster unless forced).
  void DumpLogs(bool force = false);

 private:
  size_t initial_nodes_;
  std::vector<std::string> extra_args_;
  std::string dir_;
  std::vector<std::unique_ptr<RaindProcess>> nodes_;
  Placement placement_;
  bool keep_dir_ = false;
  bool dumped_ = false;
};

// True when every observer lists every id of `members` in `states` (and is in the cluster);
// `why` tells the first discrepancy.
bool AllSee(const std::vector<RaindProcess*>& observers, const std::vector<std::string>& ids,
            const std::set<std::string>& states, std::string* why);
// Every node in `nodes` lists every node of `nodes` alive.
bool AllAlive(const std::vector<RaindProcess*>& nodes, std::string* why);
std::vector<std::string> IdsOf(const std::vector<RaindProcess*>& nodes);

// Set by the Catch2 listener when an assertion of the current test case failed.
bool CurrentTestFailed();

}  // namespace rs::harness
