#include "tests/harness/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace rs::harness {
namespace {

constexpr auto kPollPeriod = milliseconds(5);

ExitStatus FromWaitStatus(int ws) {
  ExitStatus st;
  if (WIFSIGNALED(ws)) {
    st.signaled = true;
    st.signal = WTERMSIG(ws);
  } else {
    st.code = WEXITSTATUS(ws);
  }
  return st;
}

std::string ReadFd(int fd) {
  std::string out;
  if (fd < 0) return out;
  char buf[65536];
  off_t offset = 0;
  while (true) {
    ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

// Opens where one output stream of the child goes; -1 with errno set on failure.
int OpenOutput(const std::string& path, const char* memfd_name) {
  if (path.empty()) return memfd_create(memfd_name, MFD_CLOEXEC);
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signaled)
    return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit code " + std::to_string(code);
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_) Kill();
  CloseCaptures();
}

Subprocess::Subprocess(Subprocess&& other) noexcept { *this = std::move(other); }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this == &other) return *this;
  if (pid_ > 0 && !exit_) Kill();
  CloseCaptures();
  pid_ = std::exchange(other.pid_, -1);
  exit_ = std::exchange(other.exit_, std::nullopt);
  out_fd_ = std::exchange(other.out_fd_, -1);
  err_fd_ = std::exchange(other.err_fd_, -1);
  return *this;
}

void Subprocess::CloseCaptures() {
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
  out_fd_ = err_fd_ = -1;
}

Status Subprocess::Start(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (pid_ > 0 && !exit_) return Status::FailedPrecondition("subprocess already running");
  if (argv.empty()) return Status::InvalidArgument("empty argv");
  CloseCaptures();
  exit_.reset();
  pid_ = -1;

  int out = OpenOutput(options.stdout_path, "stdout");
  if (out < 0) return Status::IOError("cannot open stdout for " + argv[0] + ": " + strerror(errno));
  int err = OpenOutput(options.stderr_path, "stderr");
  if (err < 0) {
    close(out);
    return Status::IOError("cannot open stderr for " + argv[0] + ": " + strerror(errno));
  }

  // Everything the child needs is built before fork: after it only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.push_back(*e);
  for (const auto& e : options.extra_env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    close(out);
    close(err);
    return Status::IOError(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the runner died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out, 1);
    dup2(err, 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);  // ZeroMQ or test sockets must not leak into it
    execve(args[0], args.data(), env.data());
    static const char kMsg[] = "harness: execve failed\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, so Kill() can signal the group at once
  pid_ = pid;
  if (options.stdout_path.empty()) {
    out_fd_ = out;
  } else {
    close(out);
  }
  if (options.stderr_path.empty()) {
    err_fd_ = err;
  } else {
    close(err);
  }
  return Status::Ok();
}

std::optional<ExitStatus> Subprocess::Poll() {
  if (exit_ || pid_ <= 0) return exit_;
  int ws = 0;
  pid_t r = waitpid(pid_, &ws, WNOHANG);
  if (r == pid_) exit_ = FromWaitStatus(ws);
  return exit_;
}

bool Subprocess::Running() { return pid_ > 0 && !Poll().has_value(); }

std::optional<ExitStatus> Subprocess::Wait(Clock::duration deadline) {
  TimePoint until = Clock::now() + deadline;
  while (true) {
    if (auto st = Poll()) return st;
    if (pid_ <= 0 || Clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(kPollPeriod);
  }
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !Poll()) kill(pid_, sig);
}

ExitStatus Subprocess::Kill() {
  if (pid_ <= 0) return ExitStatus{};
  if (!Poll()) {
    if (kill(-pid_, SIGKILL) != 0) kill(pid_, SIGKILL);
    int ws = 0;
    pid_t r;
    do {
      r = waitpid(pid_, &ws, 0);
    } while (r < 0 && errno == EINTR);
    exit_ = r == pid_ ? FromWaitStatus(ws) : ExitStatus{-1, SIGKILL, true};
  }
  return *exit_;
}

std::string Subprocess::Stdout() const { return ReadFd(out_fd_); }
std::string Subprocess::Stderr() const { return ReadFd(err_fd_); }

std::string CommandResult::Describe() const {
  std::ostringstream s;
  s << (timed_out ? "TIMED OUT, " : "") << status.ToString() << "\n--- stdout ---\n"
    << out << "\n--- stderr ---\n"
    << err;
  return s.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv, Clock::duration timeout) {
  return RunCommands({argv}, timeout).front();
}

std::vector<CommandResult> RunCommands(const std::vector<std::vector<std::string>>& argvs,
                                       Clock::duration timeout) {
  std::vector<CommandResult> results(argvs.size());
  std::vector<Subprocess> procs(argvs.size());
  for (size_t i = 0; i < argvs.size(); ++i) {
    Status st = procs[i].Start(argvs[i]);
    if (!st.ok()) {
      results[i].status.code = 127;
      results[i].err = st.ToString();
    }
  }
  auto deadline = Clock::now() + timeout;
  for (size_t i = 0; i < argvs.size(); ++i) {
    if (!procs[i].started()) continue;
    auto exit = procs[i].Wait(std::max<Clock::duration>(deadline - Clock::now(), {}));
    if (!exit) {
      results[i].timed_out = true;
      exit = procs[i].Kill();
    }
    results[i].status = *exit;
    results[i].out = procs[i].Stdout();
    results[i].err = procs[i].Stderr();
  }
  return results;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TailLines(const std::string& text, size_t lines) {
  if (text.empty() || lines == 0) return "";
  size_t pos = text.size();
  if (text.back() == '\n') --pos;
  size_t found = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++found == lines) break;
    --pos;
  }
  return text.substr(pos);
}

}  // namespace rs::harness
