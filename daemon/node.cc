#include "daemon/node.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "daemon/http/http_access.h"
#include "daemon/membership/config.h"
#include "daemon/stream/operator_resolver.h"
#include "daemon/stream/operator_sandbox.h"
#include "shared/logging.h"
#include "shared/transport/security.h"

namespace rs {
namespace fs = std::filesystem;

namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

Status ParsePort(const std::string& value, uint16_t* out) {
  auto hp = HostPort::Parse("x:" + value, /*allow_zero=*/true);
  if (!hp.ok()) return Status::InvalidArgument("bad port '" + value + "' (0-65535)");
  *out = hp->port;
  return Status::Ok();
}

Status ParseUint(const std::string& key, const std::string& value, uint64_t max, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-' || v > max) {
    return Status::InvalidArgument("bad " + key + " '" + value + "' (0-" + std::to_string(max) +
                                   ")");
  }
  *out = v;
  return Status::Ok();
}

// The node-local HyDFS knobs. Every node of a cluster should use the same hydfs_replicas.
Status ApplyHydfsEntry(const std::string& key, const std::string& value, hydfs::HydfsOptions* h) {
  uint64_t v = 0;
  auto u32 = [&](uint32_t* field, uint64_t min, uint64_t max) {
    RS_RETURN_IF_ERROR(ParseUint(key, value, max, &v));
    if (v < min) return Status::InvalidArgument(key + " must be at least " + std::to_string(min));
    *field = static_cast<uint32_t>(v);
    return Status::Ok();
  };
  if (key == "hydfs_port") return ParsePort(value, &h->rpc_port);
  if (key == "hydfs_data_port") return ParsePort(value, &h->data_port);
  if (key == "hydfs_replicas") return u32(&h->replicas, 1, 16);
  if (key == "hydfs_write_quorum") return u32(&h->write_quorum, 1, 16);
  if (key == "hydfs_chunk_size") return u32(&h->chunk_size, 4096, 16u << 20);
  if (key == "hydfs_window") return u32(&h->window, 1, 256);
  if (key == "hydfs_transfer_timeout_ms") return u32(&h->transfer_timeout_ms, 100, 600000);
  if (key == "hydfs_rpc_timeout_ms") return u32(&h->rpc_timeout_ms, 50, 600000);
  if (key == "hydfs_repair_interval_ms") return u32(&h->repair_interval_ms, 50, 3600000);
  if (key == "hydfs_repair_settle_ms") return u32(&h->repair_settle_ms, 0, 3600000);
  if (key == "hydfs_repair_parallel") return u32(&h->repair_parallel, 1, 64);
  if (key == "hydfs_quiet_ms") return u32(&h->quiet_ms, 0, 3600000);
  if (key == "hydfs_test_commit_delay_ms") return u32(&h->test_commit_delay_ms, 0, 60000);
  if (key == "hydfs_fsync") {
    if (value == "true" || value == "1") {
      h->fsync_before_ack = true;
    } else if (value == "false" || value == "0") {
      h->fsync_before_ack = false;
    } else {
      return Status::InvalidArgument("bad hydfs_fsync '" + value + "' (true or false)");
    }
    return Status::Ok();
  }
  if (key == "hydfs_cache_mb") {
    RS_RETURN_IF_ERROR(ParseUint(key, value, 1u << 20, &v));
    h->cache_bytes = v << 20;
    return Status::Ok();
  }
  if (key == "hydfs_quota_mb") {
    RS_RETURN_IF_ERROR(ParseUint(key, value, 1u << 30, &v));
    h->quota_bytes = v << 20;
    return Status::Ok();
  }
  if (key == "hydfs_quota_bytes") return ParseUint(key, value, UINT64_MAX, &h->quota_bytes);
  if (key == "hydfs_repair_rate_mb") {
    RS_RETURN_IF_ERROR(ParseUint(key, value, 1u << 20, &v));
    h->repair_rate_bytes = v << 20;
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown key '" + key + "'");
}

// The stream engine's knobs (daemon/stream/README.md).
Status ApplyStreamEntry(const std::string& key, const std::string& value,
                        stream::StreamOptions* s) {
  auto u32 = [&](uint32_t* field, uint64_t lo, uint64_t hi) -> Status {
    uint64_t v = 0;
    RS_RETURN_IF_ERROR(ParseUint(key, value, hi, &v));
    if (v < lo) {
      return Status::InvalidArgument(key + " must be at least " + std::to_string(lo));
    }
    *field = static_cast<uint32_t>(v);
    return Status::Ok();
  };
  stream::TaskConfig& k = s->knobs;
  if (key == "stream_window") return u32(&k.window, 1, 4096);
  if (key == "stream_batch_tuples") return u32(&k.batch_tuples, 1, 1u << 20);
  if (key == "stream_resend_ms") return u32(&k.resend_ms, 10, 600000);
  if (key == "stream_checkpoint_ms") return u32(&k.checkpoint_ms, 10, 3600000);
  if (key == "stream_sink_flush_ms") return u32(&k.sink_flush_ms, 1, 3600000);
  if (key == "stream_ack_delay_ms") return u32(&k.ack_delay_ms, 0, 1000);
  if (key == "stream_test_duplicate_every") return u32(&k.test_duplicate_every, 0, 1u << 30);
  if (key == "stream_leader_hosts_tasks") {
    if (value == "true" || value == "1") {
      s->leader_hosts_tasks = true;
    } else if (value == "false" || value == "0") {
      s->leader_hosts_tasks = false;
    } else {
      return Status::InvalidArgument("bad stream_leader_hosts_tasks '" + value +
                                     "' (true or false)");
    }
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown key '" + key + "'");
}

// The operator sandbox's knobs (daemon/stream/operator_sandbox.h).
Status ApplyOperatorEntry(const std::string& key, const std::string& value,
                          stream::SandboxOptions* s) {
  // 0 (no limit) or at least `min`.
  auto limit = [&](uint64_t* field, uint64_t min, uint64_t max) -> Status {
    uint64_t v = 0;
    RS_RETURN_IF_ERROR(ParseUint(key, value, max, &v));
    if (v != 0 && v < min) {
      return Status::InvalidArgument(key + " must be 0 (no limit) or at least " +
                                     std::to_string(min));
    }
    *field = v;
    return Status::Ok();
  };
  if (key == "operator_user") {
    if (value.empty()) return Status::InvalidArgument("operator_user is empty");
    s->user = value;
    return Status::Ok();
  }
  if (key == "operator_dirs") {
    std::vector<std::string> dirs;
    std::stringstream in(value);
    std::string dir;
    while (std::getline(in, dir, ',')) {
      dir = Trim(dir);
      if (dir.empty()) continue;
      if (dir != stream::kBuiltinOperatorDirs && dir[0] != '/') {
        return Status::InvalidArgument("operator_dirs entry '" + dir +
                                       "' is neither an absolute path nor builtin");
      }
      dirs.push_back(dir);
    }
    s->dirs = std::move(dirs);
    return Status::Ok();
  }
  if (key == "operator_max_memory_mb") return limit(&s->max_memory_mb, 16, 1u << 20);
  if (key == "operator_max_file_mb") return limit(&s->max_file_mb, 1, 1u << 30);
  if (key == "operator_max_files") return limit(&s->max_files, 16, 1u << 24);
  if (key == "operator_max_procs") return limit(&s->max_procs, 1, 1u << 22);
  return Status::InvalidArgument("unknown key '" + key + "'");
}

}  // namespace

Status ApplyConfigEntry(const std::string& key, const std::string& value, NodeOptions* o) {
  if (key == "host") {
    auto hp = HostPort::Parse(value + ":1");
    if (!hp.ok()) return Status::InvalidArgument("bad host '" + value + "'");
    o->host = value;
    return Status::Ok();
  }
  if (key == "port") return ParsePort(value, &o->port);
  if (key == "http_port") return ParsePort(value, &o->http.port);
  if (key == "http_bind") {
    auto hp = HostPort::Parse(value + ":1");
    if (value.empty() || !hp.ok()) return Status::InvalidArgument("bad http_bind '" + value + "'");
    o->http.bind = value;  // off loopback only with keys (checked at start: tokens need them)
    return Status::Ok();
  }
  if (key == "swim_port") return ParsePort(value, &o->membership.swim_port);
  if (key == "gossip_port") return ParsePort(value, &o->membership.gossip_port);
  if (key == "data_dir") {
    if (value.empty()) return Status::InvalidArgument("data_dir is empty");
    o->data_dir = value;
    return Status::Ok();
  }
  if (key == "introducer") {
    if (!value.empty()) RS_RETURN_IF_ERROR(HostPort::Parse(value).status());
    o->introducer = value;
    return Status::Ok();
  }
  if (key.rfind("hydfs_", 0) == 0) return ApplyHydfsEntry(key, value, &o->hydfs);
  if (key == "log_ship_interval_ms") {
    uint64_t v = 0;
    RS_RETURN_IF_ERROR(ParseUint(key, value, 3600000, &v));
    o->log_ship_interval_ms = static_cast<uint32_t>(v);
    return Status::Ok();
  }
  if (key == "log_level") {
    o->log_level = value;
    return Status::Ok();
  }
  if (key == "keys_dir") {
    o->keys_dir = value;
    return Status::Ok();
  }
  if (key == "insecure") {
    if (value != "true" && value != "false" && value != "1" && value != "0") {
      return Status::InvalidArgument("bad insecure '" + value + "' (true or false)");
    }
    o->insecure = value == "true" || value == "1";
    return Status::Ok();
  }
  if (key == "leader") {
    if (!value.empty()) RS_RETURN_IF_ERROR(HostPort::Parse(value).status());
    o->stream.leader = value;
    return Status::Ok();
  }
  if (key.rfind("stream_", 0) == 0) return ApplyStreamEntry(key, value, &o->stream);
  if (key.rfind("operator_", 0) == 0) return ApplyOperatorEntry(key, value, &o->stream.sandbox);
  return membership::SetConfigValue(&o->membership.cluster, &o->membership.local, key, value);
}

Status ApplyConfigText(const std::string& text, const std::string& source, NodeOptions* o) {
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument(source + ":" + std::to_string(number) +
                                     ": expected 'key = value'");
    }
    Status st = ApplyConfigEntry(Trim(line.substr(0, eq)), Trim(line.substr(eq + 1)), o);
    if (!st.ok()) {
      return Status(st.code(), source + ":" + std::to_string(number) + ": " + st.message());
    }
  }
  return Status::Ok();
}

Node::Node(NodeOptions options) : options_(std::move(options)) {}

Node::~Node() {
  if (http_) http_->Stop();
  if (shipper_) shipper_->Stop();
  if (stream_) stream_->Stop();
  if (admin_) admin_->Stop();
  if (hydfs_) hydfs_->Stop();
  if (membership_) membership_->Stop();
}

Status Node::WriteReadyFile(const std::string& id, uint16_t port) {
  const auto& ports = membership_->ports();
  std::ostringstream out;
  out << "id=" << id << "\n"
      << "host=" << options_.host << "\n"
      << "port=" << port << "\n"
      << "pid=" << getpid() << "\n"
      << "log=" << log_file_ << "\n"
      << "http_port=" << http_port_ << "\n";
  for (const auto& [name, p] : ports) out << name << "_port=" << p << "\n";
  fs::path tmp = fs::path(options_.data_dir) / "ready.tmp";
  {
    std::ofstream f(tmp);
    f << out.str();
    if (!f) return Status::IOError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, fs::path(options_.data_dir) / "ready", ec);
  if (ec) return Status::IOError("cannot publish ready file: " + ec.message());
  return Status::Ok();
}

Status Node::Start() {
  std::error_code ec;
  fs::create_directories(options_.data_dir, ec);
  if (ec)
    return Status::IOError("cannot create data dir " + options_.data_dir + ": " + ec.message());
  // Under a root raind, operators run as another user: they must not read the data dir.
  RS_RETURN_IF_ERROR(
      stream::ProtectDataDir(options_.data_dir, (fs::path(options_.data_dir) / "stream").string()));
  fs::remove(fs::path(options_.data_dir) / "ready", ec);
  log_file_ = (fs::absolute(options_.data_dir) / "raind.log").string();
  // This process's lines start where the log ends now (the log is appended across restarts).
  log_start_offset_ = fs::exists(log_file_, ec) ? fs::file_size(log_file_, ec) : 0;
  if (ec) log_start_offset_ = 0;
  LogOptions log;
  log.file = log_file_;
  log.level = options_.log_level;
  log.to_stderr = true;  // warnings and errors also reach the terminal
  RS_RETURN_IF_ERROR(InitLogging(log));
  RS_RETURN_IF_ERROR(InstallNodeSecurity(options_));
  if (!http::IsLoopback(options_.http.bind) && options_.http.bind != "localhost" &&
      !transport::SecurityEnabled()) {
    return Status::FailedPrecondition(
        "http_bind " + options_.http.bind +
        " is off loopback, which needs client tokens, and tokens need keys: this node runs "
        "insecure (bind HTTP to 127.0.0.1, or run with keys)");
  }

  admin::NodeInfo info{fs::absolute(options_.data_dir).string(), log_file_, WallMillis(),
                       options_.introducer};
  admin_ = std::make_unique<admin::AdminService>(options_.host, options_.port, info);
  auto port = admin_->Bind();
  if (!port.ok()) return port.status();
  options_.hydfs.host = options_.host;
  options_.hydfs.dir = (fs::absolute(options_.data_dir) / "hydfs").string();
  hydfs_ = std::make_unique<hydfs::HydfsService>(options_.hydfs);
  auto hydfs_ports = hydfs_->Bind();
  if (!hydfs_ports.ok()) return hydfs_ports.status();
  options_.membership.host = options_.host;
  options_.membership.control_port = *port;
  membership_ = std::make_unique<membership::MembershipService>(options_.membership);
  RS_RETURN_IF_ERROR(membership_->Start(*hydfs_ports));
  hydfs_->Start(membership_.get());
  logquery::LogQueryOptions lq;
  lq.host = options_.host;
  lq.log_dir = fs::absolute(options_.data_dir).string();
  lq.log_name = "raind.log";
  logquery_ = std::make_unique<logquery::LogQueryService>(lq);
  options_.stream.host = options_.host;
  options_.stream.dir = (fs::absolute(options_.data_dir) / "stream").string();
  std::string self = options_.host + ":" + std::to_string(*port);
  if (options_.stream.leader.empty()) options_.stream.leader = options_.introducer;
  if (options_.stream.leader.empty()) options_.stream.leader = self;
  stream_ = std::make_unique<stream::StreamService>(options_.stream);
  RS_RETURN_IF_ERROR(stream_->Start(self, membership_.get(), hydfs_.get()));
  admin_->Start(membership_.get(), hydfs_.get(), logquery_.get(), stream_.get());
  started_ms_ = WallMillis();
  RS_RETURN_IF_ERROR(StartHttp());

  std::string id = membership_->initial_id().str();
  RS_RETURN_IF_ERROR(WriteReadyFile(id, *port));
  Logger("node")->info("event=ready id={} control={}:{} pid={} data_dir={}", id, options_.host,
                       *port, getpid(), info.data_dir);
  std::printf("raind ready id=%s control=%s:%u\n", id.c_str(), options_.host.c_str(), *port);
  std::fflush(stdout);

  if (options_.introducer.empty()) {
    membership_->Found();
    StartShipper();
    return Status::Ok();
  }
  auto introducer = HostPort::Parse(options_.introducer);
  if (!introducer.ok()) return introducer.status();
  std::promise<Status> joined;
  membership_->Join(*introducer, [&joined](Status st) { joined.set_value(st); });
  Status st = joined.get_future().get();  // bounded by join_timeout_ms
  if (!st.ok()) return st;
  StartShipper();
  return Status::Ok();
}

void Node::StartShipper() {
  if (options_.log_ship_interval_ms == 0) return;
  logquery::LogShipperOptions o;
  o.log_path = log_file_;
  o.start_offset = log_start_offset_;
  o.interval = std::chrono::milliseconds(options_.log_ship_interval_ms);
  shipper_ = std::make_unique<logquery::LogShipper>(o, hydfs_.get(), membership_.get());
  shipper_->Start();
}

int Node::RunUntilSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  Logger("node")->info("event=signal signal={} action=leave", sig);
  if (shipper_) shipper_->Stop();  // ships what is left first
  std::promise<void> left;
  membership_->Leave([&left] { left.set_value(); });
  left.get_future().wait_for(std::chrono::seconds(5));
  stream_->Stop();  // kills this node's task processes
  if (http_) http_->Stop();
  admin_->Stop();
  hydfs_->Stop();
  membership_->Stop();
  std::error_code ec;
  fs::remove(fs::path(options_.data_dir) / "ready", ec);
  Logger("node")->info("event=exit code=0");
  spdlog::shutdown();
  return 0;
}

}  // namespace rs
