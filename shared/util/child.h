// Child: a child process with pipes, for the daemon's own helpers (grep for log queries; later,
// operator processes). Started with fork/exec in its own process group with a parent-death signal,
// so it never outlives raind. Thread-compatible: one owner thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"

namespace rs {

struct ChildOptions {
  std::string cwd;               // empty: inherit
  bool pipe_stdin = false;       // else stdin is /dev/null
  bool pipe_stdout = true;       // else /dev/null
  bool pipe_stderr = true;       // else /dev/null
  std::vector<std::string> env;  // "K=V" added to the inherited environment
};

struct ChildExit {
  bool signaled = false;
  int code = 0;  // the exit code, or the signal number when signaled
  std::string ToString() const;
};

class Child {
 public:
  Child() = default;
  ~Child();  // kills the process group if still running, closes the pipes
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // argv[0] is looked up in PATH. IOError when fork/exec fails (exec failure: exit code 127 and
  // a message on the child's stderr).
  Status Start(const std::vector<std::string>& argv, const ChildOptions& options = {});

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return stdin_; }
  int stdout_fd() const { return stdout_; }
  int stderr_fd() const { return stderr_; }
  void CloseStdin();

  // SIGKILL to the whole process group.
  void Kill();
  // Reaps the child if it exited (non-blocking); nullopt while it runs.
  std::optional<ChildExit> Poll();
  // Blocks until it exits.
  ChildExit Wait();

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
  std::optional<ChildExit> exit_;
};

}  // namespace rs
