// Child processes for cluster tests. Every child is started with fork/exec in its own process
// group, with PR_SET_PDEATHSIG(SIGKILL) so it dies with the test runner whatever happens to it
// (a crash, a Catch2 abort, meson's timeout). A Subprocess owns its child: the destructor kills
// and reaps it if it still runs, so no test can leave a process behind.
// Thread-compatible: one owner thread per Subprocess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"

namespace rs::harness {

// How a child ended: exit code, or the signal that killed it.
struct ExitStatus {
  int code = -1;   // valid when !signaled
  int signal = 0;  // valid when signaled
  bool signaled = false;
  std::string ToString() const;
  bool operator==(const ExitStatus&) const = default;
};

struct SpawnOptions {
  // Where the child's stdout/stderr go: a file path (truncated), or empty to capture them in
  // memory (read with Stdout()/Stderr() once the child has exited).
  std::string stdout_path;
  std::string stderr_path;
  std::vector<std::string> extra_env;  // "KEY=VALUE" entries added to the environment
};

class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;

  // argv[0] is the executable path (no PATH search).
  Status Start(const std::vector<std::string>& argv, const SpawnOptions& options = {});

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool Running();
  // The exit status if the child has ended, without waiting.
  std::optional<ExitStatus> Poll();
  // Waits until the child exits or the deadline passes (then returns nullopt; it keeps running).
  std::optional<ExitStatus> Wait(Clock::duration deadline);
  // Sends `sig` to the child (no-op once reaped).
  void Signal(int sig);
  // SIGKILL to the child's process group, then reaps it. Returns its exit status.
  ExitStatus Kill();
  // Captured output (in-memory mode only; empty otherwise).
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  void CloseCaptures();

  pid_t pid_ = -1;
  std::optional<ExitStatus> exit_;
  int out_fd_ = -1;  // memfds holding the captured output
  int err_fd_ = -1;
};

// Runs a command to completion, killing it after `timeout`.
struct CommandResult {
  ExitStatus status;
  bool timed_out = false;
  std::string out;
  std::string err;
  int code() const { return status.signaled ? 128 + status.signal : status.code; }
  std::string Describe() const;  // for failure messages: command status, stdout, stderr
};
CommandResult RunCommand(const std::vector<std::string>& argv, Clock::duration timeout);
// The same for several commands run at once (each one killed after `timeout` from the start):
// their results in the order given. For checks that each wait out a deadline (a refused
// client's), so they wait it out together.
std::vector<CommandResult> RunCommands(const std::vector<std::vector<std::string>>& argvs,
                                       Clock::duration timeout);

// Reads a whole file ("" when missing) and its last `lines` lines.
std::string ReadFile(const std::string& path);
std::string TailLines(const std::string& text, size_t lines);

}  // namespace rs::harness
