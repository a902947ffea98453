// Child's sandbox options with real processes: a cleared environment, resource limits in force,
// no inherited descriptors, start failures reported with their step, the process group killed
// when the child exits, and (as root only; elsewhere skipped with a WARN) another uid and gid
// without supplementary groups, and RLIMIT_NPROC stopping a fork bomb of that uid.
#include "shared/util/child.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace rs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using test_util::TempDir;  // tests/unit/temp_dir.h

struct Run {
  Status started;
  std::string out, err;
  ChildExit exit;
};

// Starts argv, reads stdout and stderr to their end, waits for the exit.
Run RunToEnd(const std::vector<std::string>& argv, const ChildOptions& options = {}) {
  Run r;
  Child child;
  r.started = child.Start(argv, options);
  if (!r.started.ok()) return r;
  int fds[2] = {child.stdout_fd(), child.stderr_fd()};
  std::string* bufs[2] = {&r.out, &r.err};
  bool open[2] = {fds[0] >= 0, fds[1] >= 0};
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((open[0] || open[1]) && std::chrono::steady_clock::now() < deadline) {
    pollfd p[2];
    int n = 0, idx[2];
    for (int i = 0; i < 2; ++i) {
      if (open[i]) {
        idx[n] = i;
        p[n++] = {fds[i], POLLIN, 0};
      }
    }
    if (::poll(p, n, 1000) <= 0) continue;
    for (int k = 0; k < n; ++k) {
      if (p[k].revents == 0) continue;
      char buf[4096];
      ssize_t got = ::read(p[k].fd, buf, sizeof(buf));
      if (got <= 0) {
        open[idx[k]] = false;
      } else {
        bufs[idx[k]]->append(buf, static_cast<size_t>(got));
      }
    }
  }
  r.exit = child.Wait();
  return r;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// "Max open files  64  64  files" -> {"64", "64"} by the limit's name.
std::map<std::string, std::pair<std::string, std::string>> ParseLimits(const std::string& text) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  for (const auto& line : Lines(text)) {
    if (line.size() < 26 || line.rfind("Limit", 0) == 0) continue;
    std::string name = line.substr(0, 26);
    name.erase(name.find_last_not_of(' ') + 1);
    std::istringstream rest(line.substr(26));
    std::string soft, hard;
    rest >> soft >> hard;
    out[name] = {soft, hard};
  }
  return out;
}

// The value of field `name` in /proc/PID/status text, surrounding whitespace trimmed.
std::string StatusField(const std::string& status, const std::string& name) {
  for (const auto& line : Lines(status)) {
    if (line.rfind(name + ":", 0) != 0) continue;
    std::string v = line.substr(name.size() + 1);
    size_t b = v.find_first_not_of(" \t"), e = v.find_last_not_of(" \t");
    return b == std::string::npos ? "" : v.substr(b, e - b + 1);
  }
  return "(no " + name + " field)";
}

// The process state letter from /proc/PID/stat; 0 when there is no such process.
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? 0 : stat[paren + 2];
}
bool Alive(pid_t pid) {
  char s = ProcessState(pid);
  return s != 0 && s != 'Z' && s != 'X';
}

// Live (non-zombie) processes whose real uid is `uid`.
std::vector<pid_t> ProcessesOf(uid_t uid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      std::istringstream fields(line.substr(4));
      uid_t real = 0;
      fields >> real;
      pid_t pid = static_cast<pid_t>(std::stol(name));
      if (real == uid && Alive(pid)) out.push_back(pid);
      break;
    }
  }
  return out;
}

template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A uid and gid nothing else on this machine uses (no passwd entry, no process, no file):
// RLIMIT_NPROC counts exactly the test's processes.
Credentials UnusedIds() {
  auto id = static_cast<uid_t>(3'000'000 + ::getpid());
  return Credentials{id, static_cast<gid_t>(id)};
}

bool Root() {
  if (::geteuid() == 0) return true;
  WARN("not root: the credential checks are skipped (CI runs them as root)");
  return false;
}

TEST_CASE("a child with clear_env sees exactly the environment it is given", "[child]") {
  REQUIRE(::setenv("RS_CHILD_TEST_LEAK", "from-the-parent", 1) == 0);
  ChildOptions o;
  o.env = {"A=1", "PATH=/usr/bin:/bin"};
  o.clear_env = true;
  Run clean = RunToEnd({"/usr/bin/env"}, o);
  REQUIRE(clean.started.ok());
  CHECK(clean.exit.code == 0);
  CHECK(clean.out == "A=1\nPATH=/usr/bin:/bin\n");

  // Without it the parent's environment comes along, the additions after it.
  o.clear_env = false;
  Run inherited = RunToEnd({"/usr/bin/env"}, o);
  REQUIRE(inherited.started.ok());
  CHECK(inherited.out.find("RS_CHILD_TEST_LEAK=from-the-parent\n") != std::string::npos);
  CHECK(inherited.out.find("A=1\n") != std::string::npos);
  ::unsetenv("RS_CHILD_TEST_LEAK");
}

TEST_CASE("resource limits hold in the child, soft and hard, and bite", "[child]") {
  ChildOptions o;
  o.limits.address_space_bytes = 512u << 20;
  o.limits.file_size_bytes = 1u << 20;
  o.limits.open_files = 64;
  Run r = RunToEnd({"cat", "/proc/self/limits"}, o);
  REQUIRE(r.started.ok());
  INFO(r.out);
  auto limits = ParseLimits(r.out);
  CHECK(limits["Max address space"] ==
        std::make_pair(std::to_string(512u << 20), std::to_string(512u << 20)));
  CHECK(limits["Max file size"] ==
        std::make_pair(std::to_string(1u << 20), std::to_string(1u << 20)));
  CHECK(limits["Max open files"] == std::make_pair(std::string("64"), std::string("64")));

  // A memory hog sees its allocation fail; python3 itself starts well within 512 MB.
  Run hog = RunToEnd({"python3", "-c", "b = bytearray(1 << 30)"}, o);
  REQUIRE(hog.started.ok());
  INFO(hog.err);
  CHECK(hog.exit.code == 1);
  CHECK(hog.err.find("MemoryError") != std::string::npos);
  Run small = RunToEnd({"python3", "-c", "b = bytearray(64 << 20); print(len(b))"}, o);
  CHECK(small.exit.code == 0);
  CHECK(small.out == std::to_string(64u << 20) + "\n");

  // A file stops growing at the limit: the write beyond it raises SIGXFSZ.
  TempDir dir;
  o.cwd = dir.path();
  Run big = RunToEnd({"sh", "-c", "exec head -c 3000000 /dev/zero > big"}, o);
  REQUIRE(big.started.ok());
  INFO(big.exit.ToString());  // killed by SIGXFSZ, or EFBIG where the runner ignores SIGXFSZ
  CHECK(((big.exit.signaled && big.exit.code == SIGXFSZ) ||
         (!big.exit.signaled && big.exit.code != 0)));
  CHECK(fs::file_size(dir.path() + "/big") == (1u << 20));
}

TEST_CASE("a child inherits no descriptor besides its stdin, stdout and stderr", "[child]") {
  int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(fd, 100) == 100);
  ::close(fd);
  // /proc/self/fd lists ls's own descriptors: 0-2 and the one it reads the directory with.
  Run r = RunToEnd({"ls", "/proc/self/fd"});
  ::close(100);
  REQUIRE(r.started.ok());
  INFO(r.out);
  std::vector<std::string> fds = Lines(r.out);
  CHECK(std::find(fds.begin(), fds.end(), "100") == fds.end());
  CHECK(fds.size() <= 4);
}

TEST_CASE("a child that cannot start says which step failed and leaves nothing behind", "[child]") {
  Run missing = RunToEnd({"/nonexistent/program"});
  CHECK(missing.started.code() == StatusCode::kIOError);
  CHECK(missing.started.message() ==
        "cannot execute /nonexistent/program: No such file or directory");
  ChildOptions o;
  o.cwd = "/nonexistent/dir";
  Run no_dir = RunToEnd({"true"}, o);
  CHECK(no_dir.started.message() ==
        "cannot enter the working directory /nonexistent/dir: No such file or directory");
  ChildOptions as_root;
  as_root.credentials = Credentials{0, 0};
  CHECK(RunToEnd({"true"}, as_root).started.code() == StatusCode::kInvalidArgument);
  // Every failed start was reaped: no child of this process is left.
  CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

TEST_CASE("when a child exits, what is left of its process group is killed", "[child]") {
  Child child;
  REQUIRE(child.Start({"sh", "-c", "sleep 30 > /dev/null 2>&1 & echo $!"}).ok());
  std::string out;
  char buf[64];
  ssize_t n;
  while ((n = ::read(child.stdout_fd(), buf, sizeof(buf))) > 0) out.append(buf, n);
  pid_t sleeper = static_cast<pid_t>(std::stol(out));
  ChildExit exit = child.Wait();
  CHECK(exit.code == 0);
  CHECK(Eventually([&] { return !Alive(sleeper); }, 5s));
}

TEST_CASE("credentials: the child runs as that uid and gid, without supplementary groups",
          "[child]") {
  if (!Root()) return;
  Credentials ids = UnusedIds();
  ChildOptions o;
  o.credentials = ids;
  // This process gets a supplementary group for the moment: the child must not keep it.
  std::vector<gid_t> saved(static_cast<size_t>(::getgroups(0, nullptr)));
  REQUIRE(::getgroups(static_cast<int>(saved.size()), saved.data()) ==
          static_cast<int>(saved.size()));
  const gid_t extra = 4242;
  REQUIRE(::setgroups(1, &extra) == 0);
  Run r = RunToEnd({"cat", "/proc/self/status"}, o);
  Run control = RunToEnd({"cat", "/proc/self/status"});
  REQUIRE(::setgroups(saved.size(), saved.data()) == 0);
  REQUIRE(r.started.ok());
  INFO(r.out);
  std::string u = std::to_string(ids.uid), g = std::to_string(ids.gid);
  CHECK(StatusField(r.out, "Uid") == u + "\t" + u + "\t" + u + "\t" + u);
  CHECK(StatusField(r.out, "Gid") == g + "\t" + g + "\t" + g + "\t" + g);
  CHECK(StatusField(r.out, "Groups") == "");
  CHECK(StatusField(control.out, "Groups") == "4242");

  // A root-owned 0600 file: root reads it, the child does not.
  TempDir dir(0711);
  std::string secret = dir.path() + "/secret";
  { std::ofstream(secret) << "s3cret"; }
  REQUIRE(::chmod(secret.c_str(), 0600) == 0);
  Run as_root = RunToEnd({"cat", secret});
  CHECK(as_root.out == "s3cret");
  Run denied = RunToEnd({"cat", secret}, o);
  REQUIRE(denied.started.ok());
  CHECK(denied.exit.code != 0);
  CHECK(denied.out.empty());
  CHECK(denied.err.find("Permission denied") != std::string::npos);

  // Its own working directory is writable, the root-owned one above it is not.
  std::string work = dir.path() + "/work";
  REQUIRE(::mkdir(work.c_str(), 0700) == 0);
  REQUIRE(::chown(work.c_str(), ids.uid, ids.gid) == 0);
  o.cwd = work;
  Run writes = RunToEnd({"sh", "-c", "echo a > mine && echo b > ../outside"}, o);
  REQUIRE(writes.started.ok());
  CHECK(writes.exit.code != 0);
  struct stat st;
  REQUIRE(::stat((work + "/mine").c_str(), &st) == 0);
  CHECK(st.st_uid == ids.uid);
  CHECK_FALSE(fs::exists(dir.path() + "/outside"));

  // A working directory it cannot reach: Start says so, naming the uid.
  std::string locked = dir.path() + "/locked";
  REQUIRE(::mkdir(locked.c_str(), 0700) == 0);
  REQUIRE(::mkdir((locked + "/inner").c_str(), 0777) == 0);
  o.cwd = locked + "/inner";
  Run unreachable = RunToEnd({"true"}, o);
  CHECK(unreachable.started.code() == StatusCode::kIOError);
  CHECK(unreachable.started.message() ==
        "cannot enter the working directory " + locked + "/inner as uid " + u +
            ": Permission denied (every directory above it must be searchable by that user)");
}

TEST_CASE("RLIMIT_NPROC stops a fork bomb of the child's uid; its processes die with it",
          "[child]") {
  if (!Root()) return;
  Credentials ids = UnusedIds();
  REQUIRE(ProcessesOf(ids.uid).empty());
  ChildOptions o;
  o.credentials = ids;
  o.limits.processes = 8;
  // Forks sleepers until fork fails; prints how many it made and the errno.
  const char* bomb = R"PY(
import os, sys, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            os.close(1)
            os.close(2)
            time.sleep(60)
            os._exit(0)
        n += 1
except OSError as e:
    print(n, e.errno)
    sys.exit(0)
print(n, 0)
)PY";
  Run r = RunToEnd({"python3", "-c", bomb}, o);
  REQUIRE(r.started.ok());
  INFO(r.out << r.err);
  std::istringstream in(r.out);
  int forks = -1, err = -1;
  in >> forks >> err;
  CHECK(err == EAGAIN);
  CHECK(forks >= 1);
  CHECK(forks <= 7);  // the bomb itself is the 8th process of the uid
  // The sleepers were in its process group: killed when it was reaped.
  CHECK(Eventually([&] { return ProcessesOf(ids.uid).empty(); }, 5s));
}

TEST_CASE("an executable written under ForkPause starts while other threads fork", "[child]") {
  // Copies of /bin/true are written and run in one thread while two others start children
  // non-stop. Without ForkPause a fork during a copy hands the writing descriptor to a child
  // until it execs, and running the copy then fails now and then with ETXTBSY.
  TempDir dir;
  std::atomic<bool> stop{false};
  std::vector<std::thread> forkers;
  for (int t = 0; t < 2; ++t) {
    forkers.emplace_back([&] {
      while (!stop.load()) RunToEnd({"/bin/true"});
    });
  }
  int failures = 0;
  std::string first_failure;
  for (int i = 0; i < 200; ++i) {
    std::string path = dir.path() + "/copy-" + std::to_string(i);
    {
      ForkPause pause;
      std::error_code ec;
      fs::copy_file("/bin/true", path, ec);
      REQUIRE(!ec);
      REQUIRE(::chmod(path.c_str(), 0755) == 0);
    }
    Run r = RunToEnd({path});
    if (!r.started.ok() || r.exit.code != 0) {
      if (failures++ == 0) first_failure = r.started.ToString();
    }
  }
  stop.store(true);
  for (auto& t : forkers) t.join();
  INFO("first failure: " << first_failure);
  CHECK(failures == 0);
}

}  // namespace
}  // namespace rs
