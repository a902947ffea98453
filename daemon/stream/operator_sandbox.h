// The operator sandbox (README.md "Operator sandbox"): what a worker does so that an operator,
// which is any executable a job names, cannot harm raind or read the node's data. Under a root
// raind an operator runs as the unprivileged `operator_user` without supplementary groups; under
// any raind it runs in its own task directory, with a cleaned environment and resource limits.
// Which executables may run at all is operator_resolver.h's part (operator_dirs).
// Thread-safe (free functions over the file system and the user database).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"
#include "shared/util/child.h"

namespace rs::stream {

// The config keys operator_* (daemon/raind.conf.example).
struct SandboxOptions {
  // operator_user: who operators run as when raind runs as root (euid 0). It must exist (`make
  // deps` creates it as a system user) and must not be root: otherwise every task fails to
  // start. Ignored when raind is not root (operators run as raind's own user).
  std::string user = "rainstorm";
  // operator_dirs: where a path operator (or a name resolved to one) may be: "builtin" stands
  // for the built-in operators' directories (operator_resolver.h); other entries are paths.
  // hydfs: operators are not concerned.
  std::vector<std::string> dirs = {"builtin"};
  // Per operator process; 0: no limit (raind's own). Memory is address space (RLIMIT_AS), not
  // resident memory: python3 reserves ~100-200 MB before it reads a byte, so keep it generous;
  // an operator past it sees allocations fail (MemoryError, std::bad_alloc) and its task fails.
  uint64_t max_memory_mb = 2048;
  // The largest file it may write (RLIMIT_FSIZE); past it the write raises SIGXFSZ.
  uint64_t max_file_mb = 1024;
  // Open descriptors (RLIMIT_NOFILE).
  uint64_t max_files = 1024;
  // Processes and threads of operator_user over the whole machine (RLIMIT_NPROC counts per real
  // uid): all the operators of every task of every raind on this host share it. A fork bomb
  // stops there (and its task fails); higher allows more concurrent operator processes. Only
  // applied when operators run as operator_user (raind is root): counted against raind's own
  // user it would also count raind's and everything else that user runs.
  uint64_t max_procs = 256;
};

// How Task starts its operator: pass these on to OperatorProcessOptions.
struct OperatorLaunch {
  std::optional<Credentials> credentials;  // nullopt: raind's own user
  std::vector<std::string> env;            // the whole environment
  ResourceLimits limits;
  std::string cwd;  // the task directory
};

// The environment an operator gets, and nothing else of raind's: PATH (fixed), HOME and TMPDIR
// (the task directory) and LANG=C.UTF-8.
std::vector<std::string> OperatorEnvironment(const std::string& task_dir);
inline constexpr const char* kOperatorPath = "/usr/local/bin:/usr/bin:/bin";

// Prepares a task's sandbox: under a root raind, looks up operator_user (FailedPrecondition,
// naming the key and how to create the user, when it does not exist or is root), makes
// `job_dir` traversable but not readable by others (0711), and creates `task_dir` (mode 0700,
// owned by the operator's user). IOError when a directory cannot be made so.
Result<OperatorLaunch> PrepareOperatorSandbox(const SandboxOptions& options,
                                              const std::string& job_dir,
                                              const std::string& task_dir);

// The executable to start for operator `path` under `launch`: `path` itself when the operator's
// user can reach it (every directory above it searchable, the file readable and executable by
// that user), else a copy in <task dir>/operator/ owned by that user (a repo or build tree
// under a private directory such as /root). A script ("#!") brings the regular files of its
// directory (at most 64, of at most 1 MiB each: a Python operator imports the SDK beside it); a
// binary comes alone. IOError when the copy cannot be made.
Result<std::string> ReachableOperator(const std::string& path, const OperatorLaunch& launch);

// Makes raind's data directory private under a root raind: sets raind's umask to 077 (what it
// creates from then on is private), makes the directory itself 0711 (operators may pass through
// it to their task directories under `stream_dir`, but not list it) and takes the group and
// other permissions off every entry in it but `stream_dir` (hydfs/, keys/, raind.log... of an
// earlier run). Call it before raind starts threads. Not root: does nothing.
Status ProtectDataDir(const std::string& data_dir, const std::string& stream_dir);
// Under a root raind: `dir` becomes 0711 (traversable, not listable, by operators). Else nothing.
Status MakeTraversable(const std::string& dir);

}  // namespace rs::stream
