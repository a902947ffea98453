// Checks of a rebuilt task after a recovery trial (stream_recovery_test.cc): its HyDFS checkpoint
// decodes through `rainctl job checkpoint`, and a rebuilt task that logs its input order replayed
// it (daemon/stream/README.md "Order log").
#pragma once

#include <string>

#include "tests/harness/cluster.h"

namespace rs::harness {

// `task` is "STAGE.INDEX" of `job` (submitted with --keep); `tasks_per_stage` upstream channels
// feed a task after stage 1.
void RequireCheckpointReadable(Cluster& c, const std::string& job, const std::string& task,
                               bool stateful, int tasks_per_stage);
void RequireOrderReplayed(Cluster& c, const std::string& job, const std::string& task);

}  // namespace rs::harness
