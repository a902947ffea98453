#include "tests/harness/raind_process.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "shared/local_cluster.h"

namespace rs::harness {
namespace fs = std::filesystem;

namespace {

constexpr auto kReadyPoll = milliseconds(20);

// $var, else `relative` to the directory of the test binary (tests/cluster/ of a build dir).
Result<std::string> FindBinary(const char* var, const char* relative) {
  const char* path = std::getenv(var);
  if (path != nullptr && *path != '\0') {
    if (access(path, X_OK) != 0) {
      return Status::NotFound(std::string("$") + var + "=" + path + " is not executable");
    }
    return std::string(path);
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path guess = (self.parent_path() / relative).lexically_normal();
    if (access(guess.c_str(), X_OK) == 0) return guess.string();
  }
  return Status::FailedPrecondition(std::string("$") + var +
                                    " is not set and no binary was found next to the tests "
                                    "(run them with meson test)");
}

bool ParsePort(const std::map<std::string, std::string>& ready, const std::string& key,
               uint16_t* out) {
  auto it = ready.find(key);
  if (it == ready.end()) return false;
  char* end = nullptr;
  unsigned long v = std::strtoul(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || v == 0 || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

Result<std::string> RaindBinary() { return FindBinary("RAIND", "../../daemon/raind"); }
Result<std::string> RainctlBinary() { return FindBinary("RAINCTL", "../../ctl/rainctl"); }

RaindProcess::RaindProcess(std::string name, std::string data_dir, RaindOptions options)
    : name_(std::move(name)),
      dir_(std::move(data_dir)),
      options_(std::move(options)),
      host_(options_.host) {}

RaindProcess::~RaindProcess() {
  if (process_.started()) process_.Kill();
}

Status RaindProcess::Start(uint16_t port) {
  auto binary = RaindBinary();
  if (!binary.ok()) return binary.status();
  if (process_.Running()) return Status::FailedPrecondition(name_ + " is already running");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Status::IOError("cannot create " + dir_ + ": " + ec.message());
  fs::remove(fs::path(dir_) / "ready", ec);
  id_.clear();
  port_ = swim_port_ = gossip_port_ = http_port_ = 0;

  host_ = options_.host;
  std::vector<std::string> argv = options_.exec_prefix;
  argv.insert(argv.end(),
              {*binary, "--host", host_, "--port", std::to_string(port), "--data-dir", dir_});
  if (!options_.introducer.empty()) {
    argv.push_back("--introducer");
    argv.push_back(options_.introducer);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  ++starts_;
  SpawnOptions spawn;
  spawn.stdout_path = StdoutPath();
  spawn.stderr_path = StderrPath();
  return process_.Start(argv, spawn);
}

Status RaindProcess::WaitReady(Clock::duration deadline) {
  TimePoint until = Clock::now() + deadline;
  std::string ready_path = dir_ + "/ready";
  std::string pid = std::to_string(process_.pid());
  while (true) {
    auto ready = ReadReadyFile(ready_path);
    if (ready.ok() && ready->count("pid") && ready->at("pid") == pid && ready->count("id")) {
      uint16_t port = 0, swim = 0, gossip = 0, http = 0;
      if (!ParsePort(*ready, "port", &port) || !ParsePort(*ready, "swim_port", &swim) ||
          !ParsePort(*ready, "gossip_port", &gossip) || !ParsePort(*ready, "http_port", &http)) {
        return Status::Corruption(name_ + ": ready file lacks a port: " + ReadFile(ready_path));
      }
      id_ = ready->at("id");
      if (ready->count("host")) host_ = ready->at("host");
      port_ = port;
      swim_port_ = swim;
      gossip_port_ = gossip;
      http_port_ = http;
      past_ids_.push_back(id_);
      return Status::Ok();
    }
    if (auto exit = process_.Poll()) {
      return Status::Unavailable(name_ + " exited before it was ready (" + exit->ToString() +
                                 "); stderr: " + TailLines(ReadFile(StderrPath()), 10));
    }
    if (Clock::now() >= until) {
      return Status::Timeout(name_ + " wrote no ready file within " +
                             std::to_string(ToMillis(deadline)) + " ms");
    }
    std::this_thread::sleep_for(kReadyPoll);
  }
}

Result<ExitStatus> RaindProcess::Stop(Clock::duration deadline) {
  if (!process_.started()) return Status::FailedPrecondition(name_ + " was never started");
  process_.Signal(SIGTERM);
  auto exit = process_.Wait(deadline);
  if (!exit) {
    process_.Kill();
    return Status::Timeout(name_ + " did not exit within " + std::to_string(ToMillis(deadline)) +
                           " ms of SIGTERM (killed)");
  }
  return *exit;
}

ExitStatus RaindProcess::Kill() { return process_.Kill(); }

Status RaindProcess::Restart(bool same_port) {
  uint16_t port = same_port ? port_ : 0;
  if (same_port && port == 0) {
    return Status::FailedPrecondition(name_ + ": same-port restart before the port was known");
  }
  if (process_.Running()) process_.Kill();
  return Start(port);
}

std::string RaindProcess::DescribeForFailure(size_t lines) const {
  std::ostringstream s;
  s << "==== " << name_ << " id=" << (id_.empty() ? "?" : id_) << " pid=" << process_.pid()
    << " dir=" << dir_ << "\n";
  s << "---- tail of " << LogPath() << "\n" << TailLines(ReadFile(LogPath()), lines);
  std::string err = ReadFile(StderrPath());
  if (!err.empty()) s << "---- tail of " << StderrPath() << "\n" << TailLines(err, lines / 2);
  return s.str();
}

}  // namespace rs::harness
