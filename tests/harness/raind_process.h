// RaindProcess: one real raind on loopback, for cluster tests (modelled on etcd's
// tests/framework/e2e/etcd_process.go). It owns a data dir; raind writes <dir>/ready once bound
// and the handle reads its endpoints from there (port 0 everywhere: the OS picks).
//   RaindProcess n("n1", dir, {});   n.Start();   n.WaitReady(10s);   n.ControlAddress();
//   n.Kill();  n.Restart();  (same dir, a new process and so a new member id)
// stdout and stderr of the k-th start go to <dir>/stdout.k and <dir>/stderr.k (k from 1); the
// daemon's own log, appended to by every start, is LogPath().
// The destructor kills the process if it still runs. Thread-compatible.
#pragma once

#include <signal.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {

// Paths of the binaries under test: $RAIND and $RAINCTL (set by meson test), else the build
// dir's daemon/raind and ctl/rainctl relative to the running test binary.
Result<std::string> RaindBinary();
Result<std::string> RainctlBinary();

struct RaindOptions {
  std::string introducer;  // HOST:PORT to join through; empty: found a cluster
  std::vector<std::string>
      extra_args;  // e.g. {"--set", "cleanup_ms=60000", "--log-level", "debug"}
  // The address raind binds and advertises (--host).
  std::string host = "127.0.0.1";
  // Words run before raind's own argv, e.g. {"/usr/sbin/ip", "netns", "exec", NS} to start it
  // inside a network namespace (tests/harness/netns.h). The wrapper must exec raind in place
  // (same pid), so process-group kills and the parent-death signal still reach it.
  std::vector<std::string> exec_prefix;
};

class RaindProcess {
 public:
  RaindProcess(std::string name, std::string data_dir, RaindOptions options);
  ~RaindProcess();
  RaindProcess(const RaindProcess&) = delete;
  RaindProcess& operator=(const RaindProcess&) = delete;

  // Starts raind on `port` (0: the OS picks). The old ready file is removed first, so
  // WaitReady() only ever sees this process's.
  Status Start(uint16_t port = 0);
  // Waits until <dir>/ready names this process (pid matches) and loads its endpoints. Fails
  // early, with the child's stderr, when the process exits first.
  Status WaitReady(Clock::duration deadline);
  // SIGTERM (a graceful leave) and wait; the exit status, or Timeout (the process is then
  // killed so nothing is left behind).
  Result<ExitStatus> Stop(Clock::duration deadline);
  // SIGKILL and reap: a crash as the cluster sees it.
  ExitStatus Kill();
  // Waits for the process to exit on its own (e.g. a failed join).
  std::optional<ExitStatus> Wait(Clock::duration deadline) { return process_.Wait(deadline); }
  // Kills the current process if it runs and starts a new one with the same data dir, on the
  // same control port (same_port) or a new one. Call WaitReady() afterwards.
  Status Restart(bool same_port = false);
  bool Running() { return process_.Running(); }
  // SIGSTOP / SIGCONT: a process that hangs (a long GC pause, a stuck disk) without dying.
  void Pause() { process_.Signal(SIGSTOP); }
  void Resume() { process_.Signal(SIGCONT); }

  void set_introducer(std::string introducer) { options_.introducer = std::move(introducer); }

  const std::string& name() const { return name_; }
  const std::string& DataDir() const { return dir_; }
  // From the ready file of the current process (empty / 0 before WaitReady()).
  const std::string& Id() const { return id_; }
  std::string ControlAddress() const { return host_ + ":" + std::to_string(port_); }
  uint16_t ControlPort() const { return port_; }
  uint16_t SwimPort() const { return swim_port_; }
  uint16_t GossipPort() const { return gossip_port_; }
  uint16_t HttpPort() const { return http_port_; }  // GET /metrics (daemon/http)
  pid_t Pid() const { return process_.pid(); }
  std::string LogPath() const { return dir_ + "/raind.log"; }
  std::string StdoutPath() const { return dir_ + "/stdout." + std::to_string(starts_); }
  std::string StderrPath() const { return dir_ + "/stderr." + std::to_string(starts_); }
  // Every id this handle's processes have had, oldest first (Restart() adds one).
  const std::vector<std::string>& PastIds() const { return past_ids_; }

  // Tail of the daemon log and of stderr, for failure reports.
  std::string DescribeForFailure(size_t lines) const;

 private:
  std::string name_;
  std::string dir_;
  RaindOptions options_;
  Subprocess process_;
  int starts_ = 0;
  std::string id_;
  std::string host_;
  uint16_t port_ = 0;
  uint16_t swim_port_ = 0;
  uint16_t gossip_port_ = 0;
  uint16_t http_port_ = 0;
  std::vector<std::string> past_ids_;
};

}  // namespace rs::harness
