#include "daemon/node.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "daemon/membership/config.h"
#include "shared/logging.h"

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

}  // namespace

Status ApplyConfigEntry(const std::string& key, const std::string& value, NodeOptions* o) {
  if (key == "host") {
    auto hp = HostPort::Parse(value + ":1");
    if (!hp.ok()) return Status::InvalidArgument("bad host '" + value + "'");
    o->host = value;
    return Status::Ok();
  }
  if (key == "port") return ParsePort(value, &o->port);
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
  if (key == "log_level") {
    o->log_level = value;
    return Status::Ok();
  }
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
  if (admin_) admin_->Stop();
  if (membership_) membership_->Stop();
}

Status Node::WriteReadyFile(const std::string& id, uint16_t port) {
  const auto& ports = membership_->ports();
  std::ostringstream out;
  out << "id=" << id << "\n"
      << "host=" << options_.host << "\n"
      << "port=" << port << "\n"
      << "pid=" << getpid() << "\n"
      << "log=" << log_file_ << "\n";
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
  fs::remove(fs::path(options_.data_dir) / "ready", ec);
  log_file_ = (fs::absolute(options_.data_dir) / "raind.log").string();
  LogOptions log;
  log.file = log_file_;
  log.level = options_.log_level;
  log.to_stderr = true;  // warnings and errors also reach the terminal
  RS_RETURN_IF_ERROR(InitLogging(log));

  admin::NodeInfo info{fs::absolute(options_.data_dir).string(), log_file_, WallMillis(),
                       options_.introducer};
  admin_ = std::make_unique<admin::AdminService>(options_.host, options_.port, info);
  auto port = admin_->Bind();
  if (!port.ok()) return port.status();
  options_.membership.host = options_.host;
  options_.membership.control_port = *port;
  membership_ = std::make_unique<membership::MembershipService>(options_.membership);
  RS_RETURN_IF_ERROR(membership_->Start({}));
  admin_->Start(membership_.get());

  std::string id = membership_->initial_id().str();
  RS_RETURN_IF_ERROR(WriteReadyFile(id, *port));
  Logger("node")->info("event=ready id={} control={}:{} pid={} data_dir={}", id, options_.host,
                       *port, getpid(), info.data_dir);
  std::printf("raind ready id=%s control=%s:%u\n", id.c_str(), options_.host.c_str(), *port);
  std::fflush(stdout);

  if (options_.introducer.empty()) {
    membership_->Found();
    return Status::Ok();
  }
  auto introducer = HostPort::Parse(options_.introducer);
  if (!introducer.ok()) return introducer.status();
  std::promise<Status> joined;
  membership_->Join(*introducer, [&joined](Status st) { joined.set_value(st); });
  Status st = joined.get_future().get();  // bounded by join_timeout_ms
  if (!st.ok()) return st;
  return Status::Ok();
}

int Node::RunUntilSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  Logger("node")->info("event=signal signal={} action=leave", sig);
  std::promise<void> left;
  membership_->Leave([&left] { left.set_value(); });
  left.get_future().wait_for(std::chrono::seconds(5));
  admin_->Stop();
  membership_->Stop();
  std::error_code ec;
  fs::remove(fs::path(options_.data_dir) / "ready", ec);
  Logger("node")->info("event=exit code=0");
  spdlog::shutdown();
  return 0;
}

}  // namespace rs
