#include "daemon/hydfs/merge.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "daemon/hydfs/ring.h"

namespace rs::hydfs {

std::optional<uint64_t> ChooseGeneration(const std::vector<std::optional<Manifest>>& copies) {
  if (!copies.empty() && copies[0]) return copies[0]->file.gen;
  std::map<uint64_t, std::pair<size_t, uint64_t>> votes;  // gen -> (copies, created_ms)
  for (const auto& copy : copies) {
    if (!copy) continue;
    auto& v = votes[copy->file.gen];
    ++v.first;
    v.second = std::max(v.second, copy->file.created_ms);
  }
  std::optional<uint64_t> best;
  std::tuple<size_t, uint64_t, uint64_t> best_key{};
  for (const auto& [gen, v] : votes) {
    auto key = std::make_tuple(v.first, v.second, gen);
    if (!best || key > best_key) {
      best = gen;
      best_key = key;
    }
  }
  return best;
}

Result<MergePlan> PlanMerge(const std::vector<std::optional<Manifest>>& copies) {
  auto gen = ChooseGeneration(copies);
  if (!gen) return Status::NotFound("no replica holds the file");

  // The base: the primary's copy, else the longest one (earlier successors win ties).
  size_t base = copies.size();
  for (size_t i = 0; i < copies.size(); ++i) {
    if (!copies[i] || copies[i]->file.gen != *gen) continue;
    if (base == copies.size() || copies[i]->appends.size() > copies[base]->appends.size()) {
      base = i;
    }
    if (i == 0) break;  // the primary holds the chosen generation: it is the base
  }

  MergePlan plan;
  plan.file = copies[base]->file;
  std::map<uint64_t, AppendMeta> all;  // every append of the generation, by id
  for (size_t i = 0; i < copies.size(); ++i) {
    if (!copies[i] || copies[i]->file.gen != *gen) continue;
    for (const auto& a : copies[i]->appends) {
      all.emplace(a.id, a);
      plan.holders[a.id].push_back(i);
    }
  }

  std::set<uint64_t> placed;
  for (const auto& a : copies[base]->appends) {
    if (placed.insert(a.id).second) plan.order.push_back(a);
  }
  std::vector<AppendMeta> rest;
  for (const auto& [id, a] : all) {
    if (!placed.count(id)) rest.push_back(a);
  }
  std::sort(rest.begin(), rest.end(), [](const AppendMeta& a, const AppendMeta& b) {
    return std::tie(a.client, a.seq, a.id) < std::tie(b.client, b.seq, b.id);
  });
  plan.order.insert(plan.order.end(), rest.begin(), rest.end());

  // Each client's appends, in seq order, fill the positions that client occupies.
  std::map<std::string, std::vector<size_t>> positions;
  for (size_t i = 0; i < plan.order.size(); ++i) positions[plan.order[i].client].push_back(i);
  std::vector<AppendMeta> fixed = plan.order;
  for (auto& [client, slots] : positions) {
    std::vector<AppendMeta> mine;
    for (size_t slot : slots) mine.push_back(plan.order[slot]);
    std::stable_sort(mine.begin(), mine.end(),
                     [](const AppendMeta& a, const AppendMeta& b) { return a.seq < b.seq; });
    for (size_t k = 0; k < slots.size(); ++k) fixed[slots[k]] = std::move(mine[k]);
  }
  plan.order = std::move(fixed);
  plan.digest = OrderDigest(*gen, plan.order);
  return plan;
}

Status RestrictToSnapshot(const std::string& name, const FileSnapshot& snap, MergePlan* plan) {
  if (plan->file.gen != snap.gen) {
    return Status::FailedPrecondition(name + " was replaced since its snapshot (generation " +
                                      Hex64(snap.gen) + ", now " + Hex64(plan->file.gen) + ")");
  }
  if (plan->order.size() < snap.appends) {
    return Status::FailedPrecondition(name + " has " + std::to_string(plan->order.size()) +
                                      " appends, fewer than the " + std::to_string(snap.appends) +
                                      " of its snapshot");
  }
  std::vector<AppendMeta> kept(plan->order.begin(),
                               plan->order.begin() + static_cast<long>(snap.appends));
  uint64_t digest = OrderDigest(snap.gen, kept);
  if (digest != snap.digest) {
    return Status::FailedPrecondition(
        "the first " + std::to_string(snap.appends) + " appends of " + name +
        " are no longer those of its snapshot (an append that was in flight at the snapshot "
        "was merged in among them)");
  }
  plan->order = std::move(kept);
  plan->digest = digest;
  return Status::Ok();
}

}  // namespace rs::hydfs
