// The leader's placement and recovery decisions, pure (README.md "Life of a job" step 2 and
// "Recovery"): which nodes host tasks, where a new job's tasks go, whether a failed task is
// restarted in place, moved, or fails its job, and where a moved task goes. The leader feeds
// it the membership view and the load of its job table and carries the decisions out
// (leader.cc); tests/unit/stream/scheduler_test.cc drives it alone.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rs::stream {

struct NodeRef {
  std::string id;       // member id
  std::string address;  // HOST:PORT of its control port
  bool operator==(const NodeRef&) const = default;
};

struct MemberRef {
  NodeRef node;
  bool alive = false;
};

// Tasks per node address (over every job that has not ended), weighted as the caller sees fit.
using Load = std::map<std::string, size_t>;

// A task is restarted where it ran for its first kInPlaceRestarts failures (when that node is
// alive), then moved; its kMaxTaskFailures-th failure fails the job.
constexpr uint32_t kInPlaceRestarts = 2;
constexpr uint32_t kMaxTaskFailures = 5;

// The nodes that may host tasks: the alive members, the leader (`self`) only when
// `leader_hosts_tasks` or when it is alone.
std::vector<NodeRef> TaskHosts(const std::vector<MemberRef>& members, const NodeRef& self,
                               bool leader_hosts_tasks);

struct Placement {
  uint32_t stage = 0, task = 0;
  NodeRef node;
};
// A new job's tasks, stage by stage: each stage's tasks round robin over the hosts, least loaded
// first (so a stage's tasks land on different nodes when there are enough).
std::vector<Placement> PlaceJob(const std::vector<NodeRef>& hosts, Load load, uint32_t stages,
                                uint32_t tasks);

// After a task's run failed for the `failures`-th time.
enum class RebuildAction {
  kFailJob,    // too many failures
  kInPlace,    // start the next run where the task ran (its node is alive)
  kElsewhere,  // on another node
};
RebuildAction PlanRebuild(uint32_t failures, bool node_lost);

// The least loaded host not in `avoid` (addresses); nullopt when none is left.
std::optional<NodeRef> PickHost(const std::vector<NodeRef>& hosts,
                                const std::set<std::string>& avoid, const Load& load);

}  // namespace rs::stream
