// The membership knobs by name: `rainctl config get|set KEY [VALUE]`, the raind config file and
// `--set KEY=VALUE` all go through this table. Cluster-wide keys live in ClusterConfig and spread
// to every node when set; node-local keys (drop_rate, join_timeout_ms, leave_linger_ms) do not.
// Thread-compatible.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/membership/types.h"
#include "shared/status.h"

namespace rs::membership {

struct KeyInfo {
  std::string name;
  bool cluster_wide;
  std::string doc;
};

const std::vector<KeyInfo>& ConfigKeys();
Result<std::string> GetConfigValue(const ClusterConfig& cluster, const LocalOptions& local,
                                   std::string_view key);
// Sets one key after validating the value and the resulting config as a whole.
// With validate = false only the value's own range is checked, not the config as a whole (a
// merge of concurrent changes may combine values no single change would have been allowed;
// Swim clamps what it uses).
Status SetConfigValue(ClusterConfig* cluster, LocalOptions* local, std::string_view key,
                      std::string_view value, bool validate = true);
bool IsClusterWide(std::string_view key);
Status ValidateConfig(const ClusterConfig& config);
// The stamp a change made at `origin` with `version` gives the keys it sets.
uint64_t MakeStamp(uint64_t version, const std::string& origin);
// Takes, per cluster-wide key, the value with the higher stamp. True if `into` changed.
bool MergeConfig(ClusterConfig* into, const ClusterConfig& from);
// Stamps every cluster-wide key of a founder's config with version 1.
void StampAll(ClusterConfig* config, const std::string& origin);

}  // namespace rs::membership
