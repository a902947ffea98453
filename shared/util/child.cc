#include "shared/util/child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <shared_mutex>

namespace rs {
namespace {

// Child::Start forks under a shared lock; ForkPause takes it exclusively.
std::shared_mutex& ForkMutex() {
  static auto* mu = new std::shared_mutex;
  return *mu;
}

void CloseFd(int* fd) {
  if (*fd >= 0) ::close(*fd);
  *fd = -1;
}

ChildExit FromStatus(int status) {
  ChildExit e;
  if (WIFSIGNALED(status)) {
    e.signaled = true;
    e.code = WTERMSIG(status);
  } else {
    e.code = WEXITSTATUS(status);
  }
  return e;
}

// The step at which a child failed before exec, sent to the parent over a close-on-exec pipe
// (end of file there means the exec succeeded).
enum class Step : int { kLimits = 1, kGroups, kGid, kUid, kVerify, kCwd, kExec };
struct StepError {
  Step step;
  int err;
};

// Async-signal-safe: a write and _exit.
[[noreturn]] void ReportAndExit(int fd, Step step, int err) {
  StepError e{step, err};
  (void)!::write(fd, &e, sizeof(e));
  _exit(127);
}

// Every descriptor from 3 up is closed at exec (the pipes and the report pipe are already).
// Async-signal-safe: syscalls only.
void CloseOnExecFrom3() {
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return;
  struct rlimit nofile;
  rlim_t max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
    max = nofile.rlim_cur;
  }
  for (rlim_t fd = 3; fd < max; ++fd) ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

std::string Describe(const StepError& e, const std::string& command, const ChildOptions& o) {
  std::string as_uid = o.credentials ? " as uid " + std::to_string(o.credentials->uid) : "";
  std::string why = std::strerror(e.err);
  switch (e.step) {
    case Step::kLimits:
      return "cannot set the resource limits: " + why;
    case Step::kGroups:
      return "cannot drop the supplementary groups: " + why;
    case Step::kGid:
      return "cannot switch to gid " + std::to_string(o.credentials->gid) + ": " + why;
    case Step::kUid:
      return "cannot switch to uid " + std::to_string(o.credentials->uid) + ": " + why;
    case Step::kVerify:
      return "the switch to uid " + std::to_string(o.credentials->uid) + " did not take";
    case Step::kCwd:
      return "cannot enter the working directory " + o.cwd + as_uid + ": " + why +
             (o.credentials && e.err == EACCES
                  ? " (every directory above it must be searchable by that user)"
                  : "");
    case Step::kExec:
      return "cannot execute " + command + as_uid + ": " + why +
             (e.err == EAGAIN && o.limits.processes > 0
                  ? " (the user has reached its process limit, RLIMIT_NPROC " +
                        std::to_string(o.limits.processes) + ")"
                  : "");
  }
  return "cannot start " + command + ": " + why;
}

}  // namespace

std::string ChildExit::ToString() const {
  return signaled ? "killed by signal " + std::to_string(code)
                  : "exit code " + std::to_string(code);
}

Child::~Child() {
  if (pid_ > 0 && !exit_) {
    Kill();
    Wait();
  }
  CloseFd(&stdin_);
  CloseFd(&stdout_);
  CloseFd(&stderr_);
}

Status Child::Start(const std::vector<std::string>& argv, const ChildOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("no command");
  if (options.credentials && (options.credentials->uid == 0 || options.credentials->gid == 0)) {
    return Status::InvalidArgument("a child never runs as uid or gid 0 by credentials");
  }
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto fail = [&](const std::string& what) {
    int e = errno;
    for (int* p : {in, out, err, report}) {
      CloseFd(&p[0]);
      CloseFd(&p[1]);
    }
    return Status::IOError(what + ": " + std::strerror(e));
  };
  if (options.pipe_stdin && ::pipe2(in, O_CLOEXEC) != 0) return fail("pipe");
  if (options.pipe_stdout && ::pipe2(out, O_CLOEXEC) != 0) return fail("pipe");
  if (options.pipe_stderr && ::pipe2(err, O_CLOEXEC) != 0) return fail("pipe");
  if (::pipe2(report, O_CLOEXEC) != 0) return fail("pipe");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  if (!options.clear_env) {
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  }
  for (const auto& e : options.env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  struct Limit {
    int resource;
    uint64_t value;
  };
  const std::array<Limit, 4> limits = {{{RLIMIT_AS, options.limits.address_space_bytes},
                                        {RLIMIT_FSIZE, options.limits.file_size_bytes},
                                        {RLIMIT_NOFILE, options.limits.open_files},
                                        {RLIMIT_NPROC, options.limits.processes}}};
  const bool as_user = options.credentials.has_value();
  const uid_t uid = as_user ? options.credentials->uid : 0;
  const gid_t gid = as_user ? options.credentials->gid : 0;
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  pid_t parent = ::getpid();
  std::shared_lock<std::shared_mutex> no_pause(ForkMutex());  // see ForkPause
  pid_t pid = ::fork();
  if (pid != 0) no_pause.unlock();  // the parent, at once; the child only execs or exits
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    int rfd = report[1];
    ::setpgid(0, 0);
    // Limits first: RLIMIT_NPROC is checked for the new uid when it is taken on (and at exec).
    for (const Limit& l : limits) {
      if (l.value == 0) continue;
      struct rlimit r = {static_cast<rlim_t>(l.value), static_cast<rlim_t>(l.value)};
      if (::setrlimit(l.resource, &r) != 0) ReportAndExit(rfd, Step::kLimits, errno);
    }
    if (as_user) {
      // Raw syscalls: one thread here, and nothing of libc's per-thread bookkeeping is needed.
      if (::syscall(SYS_setgroups, 0, nullptr) != 0) ReportAndExit(rfd, Step::kGroups, errno);
      if (::syscall(SYS_setresgid, gid, gid, gid) != 0) ReportAndExit(rfd, Step::kGid, errno);
      if (::syscall(SYS_setresuid, uid, uid, uid) != 0) ReportAndExit(rfd, Step::kUid, errno);
      if (::getuid() != uid || ::geteuid() != uid || ::getgid() != gid || ::getegid() != gid ||
          ::getuid() == 0 || ::syscall(SYS_setresuid, 0, 0, 0) == 0) {
        ReportAndExit(rfd, Step::kVerify, EPERM);
      }
      // Set-user-ID executables cannot give the privileges back.
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ReportAndExit(rfd, Step::kVerify, errno);
    }
    // After the uid change, which clears the parent-death signal.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(options.pipe_stdin ? in[0] : devnull, 0);
    ::dup2(options.pipe_stdout ? out[1] : devnull, 1);
    ::dup2(options.pipe_stderr ? err[1] : devnull, 2);
    CloseOnExecFrom3();
    if (cwd != nullptr && ::chdir(cwd) != 0) ReportAndExit(rfd, Step::kCwd, errno);
    ::execvpe(args[0], args.data(), envp.data());
    ReportAndExit(rfd, Step::kExec, errno);
  }
  ::setpgid(pid, pid);
  CloseFd(&report[1]);
  StepError failure{};
  ssize_t n;
  while ((n = ::read(report[0], &failure, sizeof(failure))) < 0 && errno == EINTR) {
  }
  CloseFd(&report[0]);
  if (n == static_cast<ssize_t>(sizeof(failure))) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    for (int* p : {in, out, err}) {
      CloseFd(&p[0]);
      CloseFd(&p[1]);
    }
    return Status::IOError(Describe(failure, argv[0], options));
  }
  pid_ = pid;
  CloseFd(&in[0]);
  CloseFd(&out[1]);
  CloseFd(&err[1]);
  stdin_ = in[1];
  stdout_ = out[0];
  stderr_ = err[0];
  return Status::Ok();
}

void Child::CloseStdin() { CloseFd(&stdin_); }

void Child::Kill() {
  if (pid_ > 0 && !exit_) ::kill(-pid_, SIGKILL);
}

std::optional<ChildExit> Child::Poll() {
  if (exit_ || pid_ <= 0) return exit_;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid != pid_) {
    return std::nullopt;
  }
  exit_ = Reap();
  return exit_;
}

ChildExit Child::Wait() {
  if (exit_ || pid_ <= 0) return exit_.value_or(ChildExit{});
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 &&
         errno == EINTR) {
  }
  exit_ = Reap();
  return *exit_;
}

ChildExit Child::Reap() {
  // Until it is reaped, its pid cannot be reused, so the group id still means its group.
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  return FromStatus(status);
}

ForkPause::ForkPause() { ForkMutex().lock(); }
ForkPause::~ForkPause() { ForkMutex().unlock(); }

}  // namespace rs
