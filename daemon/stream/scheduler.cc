#include "daemon/stream/scheduler.h"

#include <algorithm>

namespace rs::stream {

std::vector<NodeRef> TaskHosts(const std::vector<MemberRef>& members, const NodeRef& self,
                               bool leader_hosts_tasks) {
  std::vector<NodeRef> hosts;
  for (const auto& m : members) {
    if (!m.alive) continue;
    if (m.node.address == self.address && !leader_hosts_tasks) continue;
    hosts.push_back(m.node);
  }
  if (hosts.empty()) hosts.push_back(self);  // alone: the leader hosts the tasks itself
  return hosts;
}

std::vector<Placement> PlaceJob(const std::vector<NodeRef>& hosts, Load load, uint32_t stages,
                                uint32_t tasks) {
  std::vector<Placement> out;
  if (hosts.empty()) return out;
  for (const auto& h : hosts) load.try_emplace(h.address, 0);
  for (uint32_t stage = 1; stage <= stages; ++stage) {
    std::vector<NodeRef> order = hosts;
    std::stable_sort(order.begin(), order.end(), [&](const NodeRef& a, const NodeRef& b) {
      return load[a.address] < load[b.address];
    });
    for (uint32_t t = 0; t < tasks; ++t) {
      const NodeRef& n = order[t % order.size()];
      out.push_back(Placement{stage, t, n});
      ++load[n.address];
    }
  }
  return out;
}

RebuildAction PlanRebuild(uint32_t failures, bool node_lost) {
  if (failures >= kMaxTaskFailures) return RebuildAction::kFailJob;
  if (node_lost || failures > kInPlaceRestarts) return RebuildAction::kElsewhere;
  return RebuildAction::kInPlace;
}

std::optional<NodeRef> PickHost(const std::vector<NodeRef>& hosts,
                                const std::set<std::string>& avoid, const Load& load) {
  std::optional<NodeRef> best;
  size_t best_load = SIZE_MAX;
  for (const auto& h : hosts) {
    if (avoid.count(h.address)) continue;
    auto it = load.find(h.address);
    size_t l = it == load.end() ? 0 : it->second;
    if (l < best_load) {
      best_load = l;
      best = h;
    }
  }
  return best;
}

}  // namespace rs::stream
