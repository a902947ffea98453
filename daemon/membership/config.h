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
Status SetConfigValue(ClusterConfig* cluster, LocalOptions* local, std::string_view key,
                      std::string_view value);
bool IsClusterWide(std::string_view key);
Status ValidateConfig(const ClusterConfig& config);

}  // namespace rs::membership
