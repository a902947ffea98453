// Conventions of the local development cluster shared by scripts/cluster.sh, rainctl and the
// test harness: the cluster dir ($RAIN_CLUSTER_DIR, else /tmp/rainstorm-<uid>) holds one data
// dir per node, node1 ... nodeN, and each raind writes <data dir>/ready once bound:
//   id=127.0.0.1:7001#1732150000123   host=...   port=...   pid=...   log=...   swim_port=...
#pragma once

#include <map>
#include <string>

#include "shared/status.h"

namespace rs {

std::string DefaultClusterDir();
// Parses a ready file's key=value lines.
Result<std::map<std::string, std::string>> ReadReadyFile(const std::string& path);

}  // namespace rs
