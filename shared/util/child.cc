#include "shared/util/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rs {
namespace {

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
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  auto fail = [&](const std::string& what) {
    int e = errno;
    for (int* p : {in, out, err}) {
      CloseFd(&p[0]);
      CloseFd(&p[1]);
    }
    return Status::IOError(what + ": " + std::strerror(e));
  };
  if (options.pipe_stdin && ::pipe2(in, O_CLOEXEC) != 0) return fail("pipe");
  if (options.pipe_stdout && ::pipe2(out, O_CLOEXEC) != 0) return fail("pipe");
  if (options.pipe_stderr && ::pipe2(err, O_CLOEXEC) != 0) return fail("pipe");
  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : options.env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(127);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(options.pipe_stdin ? in[0] : devnull, 0);
    ::dup2(options.pipe_stdout ? out[1] : devnull, 1);
    ::dup2(options.pipe_stderr ? err[1] : devnull, 2);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) {
      const char msg[] = "cannot enter the working directory\n";
      (void)!::write(2, msg, sizeof(msg) - 1);
      _exit(127);
    }
    ::execvpe(args[0], args.data(), envp.data());
    const char msg[] = "cannot execute the command\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    _exit(127);
  }
  ::setpgid(pid, pid);
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
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) exit_ = FromStatus(status);
  return exit_;
}

ChildExit Child::Wait() {
  if (exit_ || pid_ <= 0) return exit_.value_or(ChildExit{});
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_ = FromStatus(status);
  return *exit_;
}

}  // namespace rs
