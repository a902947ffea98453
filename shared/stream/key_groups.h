// Key groups (daemon/stream/README.md "Key groups"): the keys of a keyed stage (every stage
// after the first) fall into a fixed number of groups per job, JobSpec::key_groups (default
// 128). A tuple's group is its routing hash mod that number, whatever the stage's task count;
// each group is owned by exactly one task of the stage, which keeps that group's dedup
// watermarks and operator state apart from the other groups'. So moving a group between tasks
// (autoscaling) moves its watermarks and state with it, and results never depend on which task
// owns a group. Pure and thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::stream {

inline constexpr uint32_t kDefaultKeyGroups = 128;
// A stage never has more tasks than groups; the cap bounds the per-group tables.
inline constexpr uint32_t kMaxKeyGroups = 4096;

// The group of a tuple whose routing hash is `hash` (StableHash64 of the key, or of the CSV
// column the next operator partitions by).
inline uint32_t KeyGroupOf(uint64_t hash, uint32_t groups) {
  return static_cast<uint32_t>(hash % groups);
}

// Which task of a stage owns each group.
class KeyGroupMap {
 public:
  KeyGroupMap() = default;
  // `groups` groups over `tasks` tasks (1 <= tasks <= groups) in contiguous ranges as even as
  // they can be: task i owns the groups g with g * tasks / groups == i (Flink's assignment).
  static KeyGroupMap Even(uint32_t groups, uint32_t tasks);
  // An explicit table: owners[g] is the task owning group g. Every owner must be < tasks and
  // every task must own at least one group; InvalidArgument otherwise.
  static Result<KeyGroupMap> FromOwners(std::vector<uint32_t> owners, uint32_t tasks);

  uint32_t groups() const { return static_cast<uint32_t>(owners_.size()); }
  uint32_t tasks() const { return tasks_; }
  uint32_t Owner(uint32_t group) const { return owners_[group]; }
  bool Owns(uint32_t task, uint32_t group) const {
    return group < owners_.size() && owners_[group] == task;
  }
  // The groups `task` owns, ascending.
  std::vector<uint32_t> GroupsOf(uint32_t task) const;
  // The same groups over `tasks` tasks (1 <= tasks <= groups; tasks 0..tasks-1 stay, higher ones
  // go) moving as few groups as it can: every task ends with groups/tasks or one more, the
  // tasks holding the most keep the extra ones, and only a surplus (a task's highest groups,
  // and every group of a task that goes) moves, to the tasks short of their share in order.
  // This is what a rescale moves (README.md "Autoscaling").
  KeyGroupMap Rescaled(uint32_t tasks) const;
  const std::vector<uint32_t>& owners() const { return owners_; }
  // "0-42" or "0-9,20,64-70": a task's groups for people (logs, list_tasks).
  static std::string FormatGroups(const std::vector<uint32_t>& groups);

 private:
  std::vector<uint32_t> owners_;
  uint32_t tasks_ = 0;
};

// A keyed state (operators/PROTOCOL.md "Keyed state"): the MessagePack bytes of a map
// {group: that group's state} (nil: no state), cut into each group's state bytes. Corruption
// when it is not such a map, or a key is not a group number below kMaxKeyGroups.
Result<std::map<uint32_t, std::string>> SplitKeyedState(std::string_view state);
// The inverse: the map's bytes.
std::string JoinKeyedState(const std::map<uint32_t, std::string>& groups);

// A keyed state of an operator whose ready says `state_changes` (operators/PROTOCOL.md "State
// changes"): each group's state is a map {entry: value} with str or bin entries. Returns `full`
// brought up to date by `changes`, oldest first, each a keyed state holding per group the
// entries changed since the snapshot before it (nil: removed). Corruption when any of them is
// not of that shape.
Result<std::string> ApplyKeyedStateChanges(std::string_view full,
                                           const std::vector<std::string_view>& changes);

}  // namespace rs::stream
