#include "daemon/admin/admin_service.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>

#include "daemon/admin/access.h"
#include "daemon/membership/codec.h"
#include "daemon/membership/config.h"
#include "shared/logging.h"
#include "shared/transport/security.h"
#include "shared/wire/fields.h"

namespace rs::admin {
namespace {

using membership::MemberState;
using membership::MemberView;
using membership::ViewPtr;
using Args = std::map<std::string, std::string>;

std::shared_ptr<spdlog::logger> Log() { return Logger("admin"); }

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

void PackMember(wire::Packer& pk, const MemberView& m) {
  pk.pack_map(6);
  pk.pack("id");
  pk.pack(m.record.id.str());
  pk.pack("state");
  pk.pack(std::string(membership::StateName(m.record.state)));
  pk.pack("incarnation");
  pk.pack_uint64(m.record.incarnation);
  pk.pack("ring_id");
  pk.pack(Hex64(m.ring_id));
  pk.pack("since_ms");
  pk.pack_uint64(m.since_ms);
  pk.pack("ports");
  pk.pack_map(static_cast<uint32_t>(m.record.ports.size()));
  for (const auto& [name, port] : m.record.ports) {
    pk.pack(name);
    pk.pack_uint16(port);
  }
}

void PackMembers(wire::Packer& pk, const std::vector<const MemberView*>& members) {
  pk.pack_array(static_cast<uint32_t>(members.size()));
  for (const MemberView* m : members) PackMember(pk, *m);
}

bool Active(MemberState s) { return s == MemberState::kAlive || s == MemberState::kSuspect; }

}  // namespace

AdminService::AdminService(std::string host, uint16_t port, NodeInfo info)
    : host_(std::move(host)), port_(port), info_(std::move(info)), loop_("admin") {}

AdminService::~AdminService() { Stop(); }

Result<uint16_t> AdminService::Bind() {
  server_ = std::make_unique<transport::RpcServer>(&loop_, "control");
  transport::SocketOptions opts;
  opts.max_message_bytes = 4 << 20;
  return server_->Listen(host_, port_, opts);
}

void AdminService::Start(membership::MembershipService* membership, hydfs::HydfsService* hydfs,
                         logquery::LogQueryService* logquery, stream::StreamService* stream) {
  membership_ = membership;
  hydfs_ = hydfs;
  logquery_ = logquery;
  stream_ = stream;
  keys_ = std::make_unique<KeyringSync>(membership);
  keys_->Start();
  server_->Handle(
      wire::MsgType::kAdminCommand,
      [this](const wire::Envelope& env, const transport::Responder& r) { OnCommand(env, r); },
      security::Role::kRead);  // each command's role is checked in OnCommand
  if (stream_) {
    // The stream engine's messages between daemons: only the cluster's nodes may send them.
    for (wire::MsgType type : stream::StreamService::MessageTypes()) {
      server_->Handle(
          type,
          [this, type](const wire::Envelope& env, const transport::Responder& r) {
            stream_->Handle(type, env.body, [this, r](Status st, wire::BodyWriter body) {
              loop_.Post([r, st, body] { r.Reply(st, body); });
            });
          },
          security::Role::kMember);
    }
  }
  server_->Handle(
      wire::MsgType::kJoinRequest,
      [this](const wire::Envelope& env, const transport::Responder& r) { OnJoinRequest(env, r); });
  loop_.Start();
}

void AdminService::Stop() {
  if (keys_) keys_->Stop();
  loop_.Stop();
  loop_.Join();
}

void AdminService::ReplyStatusLater(const CommandReply& responder,
                                    const std::function<void(std::function<void(Status)>)>& start) {
  start([this, responder](Status st) { loop_.Post([responder, st] { responder.Reply(st); }); });
}

void AdminService::OnJoinRequest(const wire::Envelope& env, const transport::Responder& responder) {
  auto joiner = membership::UnpackRecord(env.body);
  if (!joiner.ok()) {
    responder.Reply(Status::InvalidArgument("bad join request: " + joiner.status().message()));
    return;
  }
  membership_->HandleJoinRequest(*joiner, [this, responder](Result<membership::JoinReply> reply) {
    loop_.Post([responder, reply = std::move(reply)] {
      if (!reply.ok()) {
        responder.Reply(reply.status());
        return;
      }
      responder.Ok([&](wire::Packer& pk) { membership::PackJoinReply(pk, *reply); });
    });
  });
}

void AdminService::OnCommand(const wire::Envelope& env, const transport::Responder& responder) {
  wire::FieldReader reader(env.body, "admin command");
  std::string cmd = reader.Str("cmd", 64);
  const msgpack::object* args_obj = reader.Map("args");
  Args args;
  if (reader.ok()) {
    for (uint32_t i = 0; i < args_obj->via.map.size && i < 64; ++i) {
      std::string k, v;
      if (!wire::ReadString(args_obj->via.map.ptr[i].key, &k) ||
          !wire::ReadString(args_obj->via.map.ptr[i].val, &v)) {
        reader.Fail("args must map strings to strings");
        break;
      }
      args[k] = v;
    }
  }
  if (!reader.ok()) {
    responder.Reply(Status::InvalidArgument(reader.status().message()));
    return;
  }
  Dispatch(cmd, std::move(args), responder.caller(),
           CommandReply([responder](const Status& st, const wire::BodyWriter& body) {
             responder.Reply(st, body);
           }));
}

void AdminService::Run(const std::string& cmd, Args args, security::Role role, CommandReply done) {
  loop_.Post([this, cmd, args = std::move(args), role, done = std::move(done)]() mutable {
    Dispatch(cmd, std::move(args), role, done);
  });
}

void AdminService::Dispatch(const std::string& cmd, Args args, security::Role caller,
                            const CommandReply& responder) {
  Log()->debug("event=command cmd={}", cmd);
  security::Role need = RoleNeeded(cmd);
  if (caller < need) {
    ++denied_commands_;
    Log()->warn("event=denied cmd={} caller_role={}", cmd, security::RoleName(caller));
    responder.Reply(Status::PermissionDenied(
        cmd + " needs a key with the " + std::string(security::RoleName(need)) +
        " role; this client's key has the " + std::string(security::RoleName(caller)) + " role"));
    return;
  }
  args.erase(transport::kCallerArg);
  if (caller != security::Role::kMember) {
    args[transport::kCallerArg] = transport::kCallerClient;
  }
  if (cmd.rfind("keys.", 0) == 0) {
    keys_->Command(cmd, args, [this, responder](Status st, wire::BodyWriter body) {
      loop_.Post([responder, st, body] { responder.Reply(st, body); });
    });
    return;
  }
  if (cmd.rfind("log.", 0) == 0) {
    logquery_->Command(cmd, args, [this, responder](Status st, wire::BodyWriter body) {
      loop_.Post([responder, st, body] { responder.Reply(st, body); });
    });
    return;
  }
  if (stream_ && (cmd.rfind("job.", 0) == 0 || cmd.rfind("stream.", 0) == 0)) {
    stream_->Command(cmd, args, [this, responder](Status st, wire::BodyWriter body) {
      loop_.Post([responder, st, body] { responder.Reply(st, body); });
    });
    return;
  }
  if (cmd.rfind("hydfs.", 0) == 0) {
    hydfs_->Command(cmd, std::move(args), [this, responder](Status st, wire::BodyWriter body) {
      loop_.Post([responder, st, body] { responder.Reply(st, body); });
    });
    return;
  }
  ViewPtr view = membership_->view();
  auto arg = [&](const std::string& k) -> const std::string* {
    auto it = args.find(k);
    return it == args.end() ? nullptr : &it->second;
  };

  if (cmd == "status" || cmd == "list_self") {
    const MemberView* self = nullptr;
    for (const auto& m : view->members) {
      if (m.record.id == view->self) self = &m;
    }
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_map(7);
      pk.pack("id");
      pk.pack(view->self.str());
      pk.pack("state");
      pk.pack(std::string(membership::StateName(view->self_state)));
      pk.pack("in_cluster");
      pk.pack(view->in_cluster);
      pk.pack("self");
      if (self) {
        PackMember(pk, *self);
      } else {
        pk.pack_nil();
      }
      pk.pack("pid");
      pk.pack_int64(getpid());
      pk.pack("data_dir");
      pk.pack(info_.data_dir);
      pk.pack("log_file");
      pk.pack(info_.log_file);
    });
    return;
  }
  if (cmd == "list_mem" || cmd == "list_mem_ids" || cmd == "display_suspects") {
    std::vector<const MemberView*> members;
    for (const auto& m : view->members) {
      if (cmd == "list_mem" || (cmd == "list_mem_ids" && Active(m.record.state)) ||
          (cmd == "display_suspects" && m.record.state == MemberState::kSuspect)) {
        members.push_back(&m);
      }
    }
    if (cmd == "list_mem_ids") {
      std::sort(members.begin(), members.end(),
                [](const MemberView* a, const MemberView* b) { return a->ring_id < b->ring_id; });
    }
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_map(3);
      pk.pack("self");
      pk.pack(view->self.str());
      pk.pack("in_cluster");
      pk.pack(view->in_cluster);
      pk.pack("members");
      PackMembers(pk, members);
    });
    return;
  }
  if (cmd == "display_protocol" || cmd == "status_sus") {
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_map(3);
      pk.pack("protocol");
      pk.pack(std::string(membership::ProtocolName(view->config.protocol)));
      pk.pack("suspicion");
      pk.pack(view->config.suspicion);
      pk.pack("config_version");
      pk.pack_uint64(view->config.version);
    });
    return;
  }
  if (cmd == "config_get") {
    const std::string* key = arg("key");
    std::vector<membership::KeyInfo> keys;
    for (const auto& k : membership::ConfigKeys()) {
      if (!key || k.name == *key) keys.push_back(k);
    }
    if (keys.empty()) {
      responder.Reply(Status::NotFound("unknown config key '" + *key + "'"));
      return;
    }
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_array(static_cast<uint32_t>(keys.size()));
      for (const auto& k : keys) {
        pk.pack_map(4);
        pk.pack("key");
        pk.pack(k.name);
        pk.pack("value");
        pk.pack(membership::GetConfigValue(view->config, view->local, k.name).value());
        pk.pack("scope");
        pk.pack(std::string(k.cluster_wide ? "cluster" : "node"));
        pk.pack("doc");
        pk.pack(k.doc);
      }
    });
    return;
  }
  if (cmd == "config_set" || cmd == "drop" || cmd == "enable_sus" || cmd == "disable_sus") {
    std::string key, value;
    if (cmd == "config_set") {
      if (!arg("key") || !arg("value")) {
        responder.Reply(Status::InvalidArgument("config_set needs key and value"));
        return;
      }
      key = *arg("key");
      value = *arg("value");
    } else if (cmd == "drop") {
      if (!arg("rate")) {
        responder.Reply(Status::InvalidArgument("drop needs a rate"));
        return;
      }
      key = "drop_rate";
      value = *arg("rate");
    } else {
      key = "suspicion";
      value = cmd == "enable_sus" ? "true" : "false";
    }
    ReplyStatusLater(responder, [&](std::function<void(Status)> done) {
      membership_->SetConfig(key, value, std::move(done));
    });
    return;
  }
  if (cmd == "switch") {
    const std::string* protocol = arg("protocol");
    const std::string* suspicion = arg("suspicion");
    if (!protocol || !suspicion || (*protocol != "ping" && *protocol != "gossip") ||
        (*suspicion != "suspect" && *suspicion != "nosuspect")) {
      responder.Reply(Status::InvalidArgument("switch needs {gossip|ping} {suspect|nosuspect}"));
      return;
    }
    auto p = *protocol == "ping" ? membership::Protocol::kPing : membership::Protocol::kGossip;
    bool s = *suspicion == "suspect";
    ReplyStatusLater(responder, [&](std::function<void(Status)> done) {
      membership_->Switch(p, s, std::move(done));
    });
    return;
  }
  if (cmd == "join") {
    std::string introducer = arg("introducer") ? *arg("introducer") : info_.introducer;
    if (introducer.empty()) {
      responder.Reply(Status::InvalidArgument("no introducer: give HOST:PORT of a member"));
      return;
    }
    auto hp = HostPort::Parse(introducer);
    if (!hp.ok()) {
      responder.Reply(hp.status());
      return;
    }
    ReplyStatusLater(responder, [&](std::function<void(Status)> done) {
      membership_->Join(*hp, std::move(done));
    });
    return;
  }
  if (cmd == "leave") {
    if (!view->in_cluster) {
      responder.Reply(Status::FailedPrecondition("not in a cluster"));
      return;
    }
    membership_->Leave([this, responder] { loop_.Post([responder] { responder.Ok(); }); });
    return;
  }
  if (cmd == "events") {
    uint64_t since = 0;
    if (const std::string* s = arg("since")) {
      char* end = nullptr;
      since = std::strtoull(s->c_str(), &end, 10);
      if (s->empty() || *end != '\0') {
        responder.Reply(Status::InvalidArgument("since must be a number"));
        return;
      }
    }
    auto events = membership_->EventsSince(since, 1000);
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_array(static_cast<uint32_t>(events.size()));
      for (const auto& e : events) {
        pk.pack_map(6);
        pk.pack("seq");
        pk.pack_uint64(e.seq);
        pk.pack("time_ms");
        pk.pack_uint64(e.wall_ms);
        pk.pack("event");
        pk.pack(std::string(membership::EventName(e.kind)));
        pk.pack("member");
        pk.pack(e.member.str());
        pk.pack("incarnation");
        pk.pack_uint64(e.incarnation);
        pk.pack("detail");
        pk.pack(e.detail);
      }
    });
    return;
  }
  if (cmd == "stats") {
    auto t = membership_->traffic();
    auto s = membership_->swim_stats();
    uint64_t up_ms = WallMillis() - info_.started_ms;
    auto sec = transport::security_counters();
    const std::pair<const char*, uint64_t> counters[] = {
        {"refused_handshakes", sec.refused_handshakes},
        {"revoked_messages_dropped", sec.dropped_messages},
        {"denied_requests", server_->denied_requests() + denied_commands_},
        {"uptime_ms", up_ms},
        {"bytes_sent", t.bytes_sent},
        {"bytes_received", t.bytes_received},
        {"messages_sent", t.messages_sent},
        {"messages_received", t.messages_received},
        {"dropped_injected", t.dropped_injected},
        {"malformed_datagrams", t.malformed},
        {"flood_dropped_datagrams", t.flood_dropped},
        {"malformed_control_frames", server_->malformed_frames()},
        {"probes", s.probes},
        {"indirect_probes", s.indirect_probes},
        {"probe_failures", s.probe_failures},
        {"refutations", s.refutations},
        {"verdicts_withheld", s.verdicts_withheld},
        {"canvasses", s.canvasses},
    };
    responder.Ok([&](wire::Packer& pk) {
      pk.pack_map(static_cast<uint32_t>(std::size(counters)));
      for (const auto& [name, value] : counters) {
        pk.pack(std::string(name));
        pk.pack_uint64(value);
      }
    });
    return;
  }
  responder.Reply(Status::InvalidArgument("unknown command '" + cmd + "'"));
}

}  // namespace rs::admin
