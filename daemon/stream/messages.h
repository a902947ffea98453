// The stream engine's typed messages between daemons (README.md "Messages between daemons"):
// the leader's calls to its workers and the workers' reports to the leader. Each is its own
// message type on the control ROUTER (role member: only the cluster's nodes may send them), its
// body the MessagePack map its codec writes; a reply's payload is the reply struct's map. One
// codec per message; decoders take hostile bytes (InvalidArgument, never a throw).
//
// Before, these were admin commands whose arguments were a map of strings: a task config packed
// into a string, reports packed into a string, stage numbers as decimal text, and replies read
// field by field at each caller. Pure and thread-compatible, but for the blocking Call helpers.
#pragma once

#include <cstdint>
#include <map>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/stream/task_config.h"
#include "shared/clock.h"
#include "shared/status.h"
#include "shared/wire/envelope.h"
#include "shared/wire/message_types.h"

namespace rs::stream {

// kStreamStartTask: start one task here (leader -> worker). Answered once the operator is
// ready and the inbox bound.
struct StartTaskRequest {
  TaskConfig config;
};
struct StartTaskReply {
  std::string endpoint;  // the task's inbox, tcp://HOST:PORT
  int64_t pid = 0;       // its operator process
  bool stateful = false;
  std::optional<uint64_t> input_partition_column;  // the operator's ready: nullopt = by key
  std::string log;                                 // the task's log file on that node
};

// kStreamStopJob: stop every task of a job here; their final reports come back.
struct StopJobRequest {
  std::string job;
  bool remove = false;  // remove the job's directory too (all but the sink's spool)
};
struct StopJobReply {
  std::vector<TaskReport> reports;
};

// kStreamStopTask: stop one task here (before it is rebuilt elsewhere); NotFound if absent.
struct StopTaskRequest {
  std::string job;
  uint32_t stage = 0, task = 0;
};
struct StopTaskReply {
  TaskReport report;
};

// kStreamRewire: task (stage, task) of `job` now listens at `endpoint`; the tasks here that
// send to it follow.
struct RewireRequest {
  std::string job;
  uint32_t stage = 0, task = 0;
  std::string endpoint;
};
struct RewireReply {
  uint64_t tasks = 0;  // how many tasks here were told
};

// kStreamRegroup: the group table of stage `order.stage` of `job` changed (README.md
// "Autoscaling"); the tasks here of that stage and of the stages next to it follow.
struct RegroupRequest {
  std::string job;
  RegroupOrder order;
  // Only the tasks of order.stage take it (the leader's first round: the stage's tasks know the
  // new table before the stage before routes by it); else those of the stages next to it too.
  bool stage_only = false;
};
struct RegroupReply {
  uint64_t tasks = 0;  // how many tasks here were told
};

// kStreamReport: task reports (worker -> leader), once a second and on state changes. The
// reply is empty.
struct ReportMessage {
  std::vector<TaskReport> reports;
};

// The message type of each request.
inline constexpr wire::MsgType kStartTaskType = wire::MsgType::kStreamStartTask;
inline constexpr wire::MsgType kStopJobType = wire::MsgType::kStreamStopJob;
inline constexpr wire::MsgType kStopTaskType = wire::MsgType::kStreamStopTask;
inline constexpr wire::MsgType kRewireType = wire::MsgType::kStreamRewire;
inline constexpr wire::MsgType kReportType = wire::MsgType::kStreamReport;
inline constexpr wire::MsgType kRegroupType = wire::MsgType::kStreamRegroup;

// At most this many reports in one message (a node hosts fewer tasks).
inline constexpr uint32_t kMaxReportsPerMessage = 4096;

void Pack(wire::Packer& pk, const StartTaskRequest& m);
void Pack(wire::Packer& pk, const StartTaskReply& m);
void Pack(wire::Packer& pk, const StopJobRequest& m);
void Pack(wire::Packer& pk, const StopJobReply& m);
void Pack(wire::Packer& pk, const StopTaskRequest& m);
void Pack(wire::Packer& pk, const StopTaskReply& m);
void Pack(wire::Packer& pk, const RewireRequest& m);
void Pack(wire::Packer& pk, const RewireReply& m);
void Pack(wire::Packer& pk, const ReportMessage& m);
void Pack(wire::Packer& pk, const RegroupRequest& m);
void Pack(wire::Packer& pk, const RegroupReply& m);

Result<StartTaskRequest> DecodeStartTaskRequest(const msgpack::object& o);
Result<StartTaskReply> DecodeStartTaskReply(const msgpack::object& o);
Result<StopJobRequest> DecodeStopJobRequest(const msgpack::object& o);
Result<StopJobReply> DecodeStopJobReply(const msgpack::object& o);
Result<StopTaskRequest> DecodeStopTaskRequest(const msgpack::object& o);
Result<StopTaskReply> DecodeStopTaskReply(const msgpack::object& o);
Result<RewireRequest> DecodeRewireRequest(const msgpack::object& o);
Result<RewireReply> DecodeRewireReply(const msgpack::object& o);
Result<ReportMessage> DecodeReportMessage(const msgpack::object& o);
Result<RegroupRequest> DecodeRegroupRequest(const msgpack::object& o);
Result<RegroupReply> DecodeRegroupReply(const msgpack::object& o);

// A job id as the leader makes them: 1 to 128 of [A-Za-z0-9_-] (it names a directory).
bool ValidJobId(const std::string& job);

// Blocking calls for the leader's and the workers' own threads: one request to the node at
// HOST:PORT `address`, its reply decoded. Unavailable when the node does not answer by the
// deadline; the node's own error otherwise.
Result<StartTaskReply> CallStartTask(const std::string& address, const StartTaskRequest& req,
                                     Clock::duration deadline);
Result<StopJobReply> CallStopJob(const std::string& address, const StopJobRequest& req,
                                 Clock::duration deadline);
Result<StopTaskReply> CallStopTask(const std::string& address, const StopTaskRequest& req,
                                   Clock::duration deadline);
Result<RewireReply> CallRewire(const std::string& address, const RewireRequest& req,
                               Clock::duration deadline);
Status CallReport(const std::string& address, const ReportMessage& msg, Clock::duration deadline);
Result<RegroupReply> CallRegroup(const std::string& address, const RegroupRequest& req,
                                 Clock::duration deadline);

// An admin command (`{"cmd", "args"}`) passed on to the node at `address` (a job.* command
// forwarded to the leader): its reply envelope.
Result<wire::Envelope> ForwardAdminCommand(const std::string& address, const std::string& cmd,
                                           const std::map<std::string, std::string>& args,
                                           Clock::duration deadline);

}  // namespace rs::stream
