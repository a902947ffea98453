// What leader.cc, leader_commands.cc and leader_recovery.cc share: their logger, timeouts and
// helpers. Private to the leader.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "daemon/stream/leader.h"
#include "daemon/stream/messages.h"
#include "shared/logging.h"
#include "shared/wire/envelope.h"

namespace rs::stream::leader_internal {

std::shared_ptr<spdlog::logger> Log();

// Starting a task: resolving its operator (a hydfs: operator is fetched from HyDFS first),
// starting the process and its hello.
constexpr auto kStartTaskTimeout = std::chrono::seconds(20);
// Starting a replacement: a built-in or path operator starts in well under a second, and a
// target that died unnoticed (two nodes killed at once, the second not yet declared failed)
// must not hold the rebuild, and every other rebuild of the job, for kStartTaskTimeout.
constexpr auto kRestartTaskTimeout = std::chrono::seconds(4);
// An ended job's output spool stays this long for a late `job.output` reader (the output is in
// its HyDFS destination anyway), unless it was read whole first.
constexpr auto kSpoolRetention = std::chrono::minutes(10);
constexpr uint64_t kMaxOutputChunk = 4u << 20;  // job.output: at most this much per answer

bool Terminal(JobState s);
// Blocking HyDFS calls for the leader's pool threads (bounded by a deadline).
Status HydfsRemove(hydfs::HydfsService* h, const std::string& name);
Status HydfsCreate(hydfs::HydfsService* h, const std::string& name, std::string data);
Result<std::vector<std::string>> HydfsList(hydfs::HydfsService* h, const std::string& prefix);
std::string ArgOf(const Leader::Args& args, const std::string& key);

}  // namespace rs::stream::leader_internal
