// Child: a child process with pipes, for the daemon's own helpers (grep for log queries) and for
// stream operators. Started with fork/exec in its own process group with a parent-death signal,
// so it never outlives raind; when it exits, what is left of its process group is killed.
// Optionally sandboxed (ChildOptions): another uid/gid without supplementary groups, only the
// environment it is given, resource limits. It never inherits the parent's other descriptors.
// Thread-compatible: one owner thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"

namespace rs {

// The identity a child runs as: setgroups({}), then setresgid(gid), then setresuid(uid), a check
// that they took, and no_new_privs (set-user-ID executables give it nothing), all before exec.
// Needs root (CAP_SETUID/CAP_SETGID). Never root itself: Start refuses uid or gid 0.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
};

// setrlimit() in the child before exec, soft and hard limit alike (the child cannot raise them
// again). 0 leaves that limit as the parent has it.
struct ResourceLimits {
  uint64_t address_space_bytes = 0;  // RLIMIT_AS: allocations beyond it fail (ENOMEM)
  uint64_t file_size_bytes = 0;      // RLIMIT_FSIZE: a write beyond it raises SIGXFSZ
  uint64_t open_files = 0;           // RLIMIT_NOFILE
  // RLIMIT_NPROC: processes (threads included) of the child's real uid, counted over the whole
  // machine; fork and exec fail with EAGAIN beyond it. Only meaningful with credentials of a uid
  // that runs nothing else.
  uint64_t processes = 0;
};

struct ChildOptions {
  std::string cwd;               // empty: inherit
  bool pipe_stdin = false;       // else stdin is /dev/null
  bool pipe_stdout = true;       // else /dev/null
  bool pipe_stderr = true;       // else /dev/null
  std::vector<std::string> env;  // "K=V" added to the inherited environment
  bool clear_env = false;        // true: `env` is the whole environment, nothing is inherited
  std::optional<Credentials> credentials;  // nullopt: the parent's user
  ResourceLimits limits;
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

  // argv[0] is looked up in the parent's PATH. IOError when fork fails or when the child cannot
  // be set up or executed (the message names the step, e.g. "cannot enter the working directory
  // D as uid U: Permission denied", or "cannot execute X: No such file or directory"); the
  // child has then been reaped. InvalidArgument for an empty argv or root credentials.
  Status Start(const std::vector<std::string>& argv, const ChildOptions& options = {});

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return stdin_; }
  int stdout_fd() const { return stdout_; }
  int stderr_fd() const { return stderr_; }
  void CloseStdin();

  // SIGKILL to the whole process group.
  void Kill();
  // Reaps the child if it exited (non-blocking); nullopt while it runs. Before reaping, the rest
  // of its process group (e.g. processes it forked and left running) is killed.
  std::optional<ChildExit> Poll();
  // Blocks until it exits; the rest of its process group is killed as in Poll.
  ChildExit Wait();

 private:
  // The child exited (not yet reaped): kill its group while its pid still holds the group id,
  // then reap it.
  ChildExit Reap();

  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1, stderr_ = -1;
  std::optional<ChildExit> exit_;
};

// Holds off every Child::Start's fork while it lives. Write a file that a child will execute
// (a copied operator) under it, from open to close: a fork by another thread while the file is
// open for writing gives that child a copy of the writing descriptor until it execs, and an exec
// of the file meanwhile fails with ETXTBSY ("Text file busy").
class ForkPause {
 public:
  ForkPause();
  ~ForkPause();
  ForkPause(const ForkPause&) = delete;
  ForkPause& operator=(const ForkPause&) = delete;
};

}  // namespace rs
