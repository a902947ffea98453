#include "daemon/stream/messages.h"

#include "shared/transport/rpc.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

constexpr size_t kMaxJobId = 128;

Status Bad(const wire::FieldReader& r) { return Status::InvalidArgument(r.status().message()); }

void PackReports(wire::Packer& pk, const std::vector<TaskReport>& reports) {
  pk.pack("reports");
  pk.pack_array(static_cast<uint32_t>(reports.size()));
  for (const auto& r : reports) PackTaskReport(pk, r);
}

Status ReadReports(wire::FieldReader& f, std::vector<TaskReport>* out) {
  const msgpack::object* a = f.Array("reports");
  if (!f.ok()) return Bad(f);
  if (a->via.array.size > kMaxReportsPerMessage) {
    return Status::InvalidArgument(std::to_string(a->via.array.size) +
                                   " reports in one message, over " +
                                   std::to_string(kMaxReportsPerMessage));
  }
  for (uint32_t i = 0; i < a->via.array.size; ++i) {
    auto r = ReadTaskReport(a->via.array.ptr[i]);
    if (!r.ok())
      return Status::InvalidArgument("report " + std::to_string(i) + ": " + r.status().message());
    out->push_back(std::move(*r));
  }
  return Status::Ok();
}

// A (job, stage, task) triple: the job a valid id, stage and task in range.
Status ReadTaskName(wire::FieldReader& f, std::string* job, uint32_t* stage, uint32_t* task) {
  *job = f.Str("job", kMaxJobId);
  *stage = static_cast<uint32_t>(f.Uint("stage", 1000));
  *task = static_cast<uint32_t>(f.Uint("task", 1000));
  if (!f.ok()) return Bad(f);
  if (!ValidJobId(*job)) return Status::InvalidArgument("not a job id: " + job->substr(0, 64));
  return Status::Ok();
}

template <typename R>
Result<R> Call(const std::string& address, wire::MsgType type, const wire::BodyWriter& body,
               Result<R> (*decode)(const msgpack::object&), Clock::duration deadline) {
  auto env = transport::CallOnce("tcp://" + address, type, body, deadline);
  if (!env.ok()) return env.status();
  auto payload = wire::ReplyPayload(*env);
  if (!payload.ok()) return payload.status();
  return decode(*payload);
}

}  // namespace

bool ValidJobId(const std::string& job) {
  return !job.empty() && job.size() <= kMaxJobId &&
         job.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") ==
             std::string::npos;
}

// ---- start task ----

void Pack(wire::Packer& pk, const StartTaskRequest& m) {
  pk.pack_map(1);
  pk.pack("config");
  PackTaskConfig(pk, m.config);
}

Result<StartTaskRequest> DecodeStartTaskRequest(const msgpack::object& o) {
  wire::FieldReader f(o, "start_task");
  const msgpack::object* c = f.Map("config");
  if (!f.ok()) return Bad(f);
  auto config = ReadTaskConfig(*c);
  if (!config.ok()) return config.status();
  if (!ValidJobId(config->job)) {
    return Status::InvalidArgument("not a job id: " + config->job.substr(0, 64));
  }
  return StartTaskRequest{std::move(*config)};
}

void Pack(wire::Packer& pk, const StartTaskReply& m) {
  pk.pack_map(5);
  pk.pack("endpoint");
  pk.pack(m.endpoint);
  pk.pack("pid");
  pk.pack_int64(m.pid);
  pk.pack("stateful");
  pk.pack(m.stateful);
  pk.pack("input_partition");
  if (m.input_partition_column) {
    pk.pack_map(1);
    pk.pack("csv_column");
    pk.pack_uint64(*m.input_partition_column);
  } else {
    pk.pack("key");
  }
  pk.pack("log");
  pk.pack(m.log);
}

Result<StartTaskReply> DecodeStartTaskReply(const msgpack::object& o) {
  wire::FieldReader f(o, "start_task reply");
  StartTaskReply m;
  m.endpoint = f.Str("endpoint", 256);
  m.pid = f.Int("pid");
  m.stateful = f.Bool("stateful");
  m.log = f.Str("log", 4096);
  if (const msgpack::object* p = f.Get("input_partition")) {
    std::string key;
    uint64_t col = 0;
    if (wire::ReadString(*p, &key) && key == "key") {
      m.input_partition_column.reset();
    } else if (const msgpack::object* c = wire::MapGet(*p, "csv_column");
               c != nullptr && wire::ReadUint(*c, &col)) {
      m.input_partition_column = col;
    } else {
      f.Fail("start_task reply: input_partition is neither \"key\" nor {\"csv_column\": N}");
    }
  } else {
    f.Fail("start_task reply: no input_partition");
  }
  if (!f.ok()) return Bad(f);
  return m;
}

// ---- stop job ----

void Pack(wire::Packer& pk, const StopJobRequest& m) {
  pk.pack_map(2);
  pk.pack("job");
  pk.pack(m.job);
  pk.pack("remove");
  pk.pack(m.remove);
}

Result<StopJobRequest> DecodeStopJobRequest(const msgpack::object& o) {
  wire::FieldReader f(o, "stop_job");
  StopJobRequest m;
  m.job = f.Str("job", kMaxJobId);
  m.remove = f.Bool("remove");
  if (!f.ok()) return Bad(f);
  // The id names a directory under the node's stream dir: nothing that could leave it.
  if (!ValidJobId(m.job)) return Status::InvalidArgument("not a job id: " + m.job.substr(0, 64));
  return m;
}

void Pack(wire::Packer& pk, const StopJobReply& m) {
  pk.pack_map(1);
  PackReports(pk, m.reports);
}

Result<StopJobReply> DecodeStopJobReply(const msgpack::object& o) {
  wire::FieldReader f(o, "stop_job reply");
  StopJobReply m;
  RS_RETURN_IF_ERROR(ReadReports(f, &m.reports));
  return m;
}

// ---- stop task ----

void Pack(wire::Packer& pk, const StopTaskRequest& m) {
  pk.pack_map(3);
  pk.pack("job");
  pk.pack(m.job);
  pk.pack("stage");
  pk.pack_uint32(m.stage);
  pk.pack("task");
  pk.pack_uint32(m.task);
}

Result<StopTaskRequest> DecodeStopTaskRequest(const msgpack::object& o) {
  wire::FieldReader f(o, "stop_task");
  StopTaskRequest m;
  RS_RETURN_IF_ERROR(ReadTaskName(f, &m.job, &m.stage, &m.task));
  return m;
}

void Pack(wire::Packer& pk, const StopTaskReply& m) {
  pk.pack_map(1);
  pk.pack("report");
  PackTaskReport(pk, m.report);
}

Result<StopTaskReply> DecodeStopTaskReply(const msgpack::object& o) {
  wire::FieldReader f(o, "stop_task reply");
  const msgpack::object* r = f.Map("report");
  if (!f.ok()) return Bad(f);
  auto report = ReadTaskReport(*r);
  if (!report.ok()) return Status::InvalidArgument(report.status().message());
  return StopTaskReply{std::move(*report)};
}

// ---- rewire ----

void Pack(wire::Packer& pk, const RewireRequest& m) {
  pk.pack_map(4);
  pk.pack("job");
  pk.pack(m.job);
  pk.pack("stage");
  pk.pack_uint32(m.stage);
  pk.pack("task");
  pk.pack_uint32(m.task);
  pk.pack("endpoint");
  pk.pack(m.endpoint);
}

Result<RewireRequest> DecodeRewireRequest(const msgpack::object& o) {
  wire::FieldReader f(o, "rewire");
  RewireRequest m;
  m.endpoint = f.Str("endpoint", 256);
  RS_RETURN_IF_ERROR(ReadTaskName(f, &m.job, &m.stage, &m.task));
  if (m.endpoint.rfind("tcp://", 0) != 0) {
    return Status::InvalidArgument("rewire: endpoint is not tcp://HOST:PORT: " +
                                   m.endpoint.substr(0, 64));
  }
  return m;
}

void Pack(wire::Packer& pk, const RewireReply& m) {
  pk.pack_map(1);
  pk.pack("tasks");
  pk.pack_uint64(m.tasks);
}

Result<RewireReply> DecodeRewireReply(const msgpack::object& o) {
  wire::FieldReader f(o, "rewire reply");
  RewireReply m;
  m.tasks = f.Uint("tasks");
  if (!f.ok()) return Bad(f);
  return m;
}

// ---- regroup ----

void Pack(wire::Packer& pk, const RegroupRequest& m) {
  pk.pack_map(6 + (m.order.pieces.empty() ? 0 : 1) + (m.order.source_rate ? 1 : 0));
  if (!m.order.pieces.empty()) {
    pk.pack("pieces");
    pk.pack_array(static_cast<uint32_t>(m.order.pieces.size()));
    for (const auto& p : m.order.pieces) {
      pk.pack_array(3);
      pk.pack_uint32(p.giver);
      pk.pack_uint32(p.taker);
      pk.pack_uint64(p.origin);
    }
  }
  if (m.order.source_rate) {
    pk.pack("source_rate");
    pk.pack_uint64(*m.order.source_rate);
  }
  pk.pack("job");
  pk.pack(m.job);
  pk.pack("stage_only");
  pk.pack(m.stage_only);
  pk.pack("stage");
  pk.pack_uint32(m.order.stage);
  pk.pack("epoch");
  pk.pack_uint64(m.order.epoch);
  pk.pack("owners");
  pk.pack(m.order.owners);
  pk.pack("inboxes");
  pk.pack(m.order.inboxes);
}

Result<RegroupRequest> DecodeRegroupRequest(const msgpack::object& o) {
  wire::FieldReader f(o, "regroup");
  RegroupRequest m;
  m.job = f.Str("job", kMaxJobId);
  m.order.stage = static_cast<uint32_t>(f.Uint("stage", 1000));
  m.order.epoch = f.Uint("epoch");
  m.stage_only = f.BoolOr("stage_only", false);
  if (f.Get("source_rate")) m.order.source_rate = f.Uint("source_rate");
  const msgpack::object* pieces = f.Get("pieces");
  const msgpack::object* owners = f.Array("owners");
  const msgpack::object* inboxes = f.Array("inboxes");
  if (!f.ok()) return Bad(f);
  if (!ValidJobId(m.job)) return Status::InvalidArgument("not a job id: " + m.job.substr(0, 64));
  if (owners->via.array.size == 0 || owners->via.array.size > kMaxKeyGroups ||
      inboxes->via.array.size == 0 || inboxes->via.array.size > kMaxKeyGroups) {
    return Status::InvalidArgument("regroup: 1 to " + std::to_string(kMaxKeyGroups) +
                                   " groups and tasks");
  }
  for (uint32_t i = 0; i < owners->via.array.size; ++i) {
    uint64_t t = 0;
    if (!wire::ReadUint(owners->via.array.ptr[i], &t) || t >= inboxes->via.array.size) {
      return Status::InvalidArgument("regroup: group " + std::to_string(i) +
                                     " names no task of the stage");
    }
    m.order.owners.push_back(static_cast<uint32_t>(t));
  }
  for (uint32_t i = 0; i < inboxes->via.array.size; ++i) {
    std::string s;
    if (!wire::ReadString(inboxes->via.array.ptr[i], &s) || s.size() > 256 ||
        s.rfind("tcp://", 0) != 0) {
      return Status::InvalidArgument("regroup: inbox " + std::to_string(i) +
                                     " is not tcp://HOST:PORT");
    }
    m.order.inboxes.push_back(std::move(s));
  }
  if (pieces != nullptr) {
    if (pieces->type != msgpack::type::ARRAY || pieces->via.array.size > kMaxKeyGroups) {
      return Status::InvalidArgument("regroup: pieces is not a list of at most " +
                                     std::to_string(kMaxKeyGroups));
    }
    for (uint32_t i = 0; i < pieces->via.array.size; ++i) {
      const msgpack::object& e = pieces->via.array.ptr[i];
      uint64_t giver = 0, taker = 0, origin = 0;
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 3 ||
          !wire::ReadUint(e.via.array.ptr[0], &giver) || giver >= m.order.inboxes.size() ||
          !wire::ReadUint(e.via.array.ptr[1], &taker) || taker >= m.order.inboxes.size() ||
          !wire::ReadUint(e.via.array.ptr[2], &origin)) {
        return Status::InvalidArgument("regroup: piece " + std::to_string(i) +
                                       " is not [giver, taker, origin] of the stage's tasks");
      }
      m.order.pieces.push_back(
          {static_cast<uint32_t>(giver), static_cast<uint32_t>(taker), origin});
    }
  }
  return m;
}

void Pack(wire::Packer& pk, const RegroupReply& m) {
  pk.pack_map(1);
  pk.pack("tasks");
  pk.pack_uint64(m.tasks);
}

Result<RegroupReply> DecodeRegroupReply(const msgpack::object& o) {
  wire::FieldReader f(o, "regroup reply");
  RegroupReply m;
  m.tasks = f.Uint("tasks");
  if (!f.ok()) return Bad(f);
  return m;
}

// ---- report ----

void Pack(wire::Packer& pk, const ReportMessage& m) {
  pk.pack_map(1);
  PackReports(pk, m.reports);
}

Result<ReportMessage> DecodeReportMessage(const msgpack::object& o) {
  wire::FieldReader f(o, "report");
  ReportMessage m;
  RS_RETURN_IF_ERROR(ReadReports(f, &m.reports));
  return m;
}

// ---- calls ----

Result<StartTaskReply> CallStartTask(const std::string& address, const StartTaskRequest& req,
                                     Clock::duration deadline) {
  return Call<StartTaskReply>(
      address, kStartTaskType, [&](wire::Packer& pk) { Pack(pk, req); }, &DecodeStartTaskReply,
      deadline);
}

Result<StopJobReply> CallStopJob(const std::string& address, const StopJobRequest& req,
                                 Clock::duration deadline) {
  return Call<StopJobReply>(
      address, kStopJobType, [&](wire::Packer& pk) { Pack(pk, req); }, &DecodeStopJobReply,
      deadline);
}

Result<StopTaskReply> CallStopTask(const std::string& address, const StopTaskRequest& req,
                                   Clock::duration deadline) {
  return Call<StopTaskReply>(
      address, kStopTaskType, [&](wire::Packer& pk) { Pack(pk, req); }, &DecodeStopTaskReply,
      deadline);
}

Result<RegroupReply> CallRegroup(const std::string& address, const RegroupRequest& req,
                                 Clock::duration deadline) {
  return Call<RegroupReply>(
      address, kRegroupType, [&](wire::Packer& pk) { Pack(pk, req); }, &DecodeRegroupReply,
      deadline);
}

Result<RewireReply> CallRewire(const std::string& address, const RewireRequest& req,
                               Clock::duration deadline) {
  return Call<RewireReply>(
      address, kRewireType, [&](wire::Packer& pk) { Pack(pk, req); }, &DecodeRewireReply, deadline);
}

Status CallReport(const std::string& address, const ReportMessage& msg, Clock::duration deadline) {
  auto env = transport::CallOnce(
      "tcp://" + address, kReportType, [&](wire::Packer& pk) { Pack(pk, msg); }, deadline);
  if (!env.ok()) return env.status();
  return wire::ReplyPayload(*env).status();
}

Result<wire::Envelope> ForwardAdminCommand(const std::string& address, const std::string& cmd,
                                           const std::map<std::string, std::string>& args,
                                           Clock::duration deadline) {
  return transport::CallOnce(
      "tcp://" + address, wire::MsgType::kAdminCommand,
      [&](wire::Packer& pk) {
        pk.pack_map(2);
        pk.pack("cmd");
        pk.pack(cmd);
        pk.pack("args");
        pk.pack(args);
      },
      deadline);
}

}  // namespace rs::stream
