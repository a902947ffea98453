#include "daemon/stream/operator_sandbox.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace rs::stream {
namespace {

namespace fs = std::filesystem;

bool RunningAsRoot() { return ::geteuid() == 0; }

// What ReachableOperator copies beside a script, at most.
constexpr size_t kMaxCopiedFiles = 64;
constexpr uintmax_t kMaxCopiedFileBytes = 1 << 20;

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

// operator_user's uid and primary gid; refuses a missing user and root.
Result<Credentials> LookUpUser(const std::string& name) {
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 20)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0) {
    return Status::IOError("looking up operator_user '" + name + "': " + std::strerror(rc));
  }
  if (found == nullptr) {
    return Status::FailedPrecondition(
        "operator_user '" + name +
        "' does not exist; raind runs as root and never runs operators as root: create it "
        "(`make deps` does: useradd --system --no-create-home --shell /usr/sbin/nologin " +
        name + ") or set operator_user to another unprivileged user");
  }
  if (pw.pw_uid == 0 || pw.pw_gid == 0) {
    return Status::FailedPrecondition("operator_user '" + name +
                                      "' is root (uid or gid 0); operators never run as root: "
                                      "set operator_user to an unprivileged user");
  }
  return Credentials{pw.pw_uid, pw.pw_gid};
}

// True when uid/gid may do `bits` (a mask of the "other" bits: 4 read, 2 write, 1 search or
// execute) on `st`, judged as the kernel does (owner, then group, then other).
bool Allows(const struct stat& st, const Credentials& who, mode_t bits) {
  if (st.st_uid == who.uid) return ((st.st_mode >> 6) & bits) == bits;
  if (st.st_gid == who.gid) return ((st.st_mode >> 3) & bits) == bits;
  return (st.st_mode & bits) == bits;
}

}  // namespace

Result<std::string> ReachableOperator(const std::string& path, const OperatorLaunch& launch) {
  if (!launch.credentials || path.empty() || path[0] != '/') return path;
  const Credentials& who = *launch.credentials;
  bool reachable = true;
  struct stat st;
  for (fs::path dir = fs::path(path).parent_path(); reachable; dir = dir.parent_path()) {
    reachable = ::stat(dir.c_str(), &st) == 0 && Allows(st, who, 1);
    if (dir == dir.root_path()) break;
  }
  if (reachable && ::stat(path.c_str(), &st) == 0 && Allows(st, who, 4 | 1)) return path;
  // A script brings the files beside it (a Python operator imports the SDK next to it): the
  // regular files of its directory, within bounds; a binary comes alone.
  fs::path dir = fs::path(launch.cwd) / "operator";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("making " + dir.string() + ": " + ec.message());
  std::vector<fs::path> files = {path};
  char magic[2] = {0, 0};
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    size_t n = std::fread(magic, 1, 2, f);
    std::fclose(f);
    if (n == 2 && magic[0] == '#' && magic[1] == '!') {
      for (const auto& e : fs::directory_iterator(fs::path(path).parent_path(), ec)) {
        if (files.size() >= kMaxCopiedFiles) break;
        if (e.path() != fs::path(path) && e.is_regular_file(ec) &&
            e.file_size(ec) <= kMaxCopiedFileBytes) {
          files.push_back(e.path());
        }
      }
    }
  }
  // No fork while the copies are open for writing, or their exec could fail with ETXTBSY.
  ForkPause pause;
  for (const fs::path& f : files) {
    fs::path to = dir / f.filename();
    fs::copy_file(f, to, fs::copy_options::overwrite_existing, ec);
    if (ec) return Status::IOError("copying operator file " + f.string() + ": " + ec.message());
    if (::chown(to.c_str(), who.uid, who.gid) != 0 || ::chmod(to.c_str(), 0500) != 0) {
      return Errno("handing " + to.string() + " to the operator's user");
    }
  }
  if (::chown(dir.c_str(), who.uid, who.gid) != 0) return Errno("chown " + dir.string());
  return (dir / fs::path(path).filename()).string();
}

std::vector<std::string> OperatorEnvironment(const std::string& task_dir) {
  return {std::string("PATH=") + kOperatorPath, "HOME=" + task_dir, "TMPDIR=" + task_dir,
          "LANG=C.UTF-8"};
}

Status MakeTraversable(const std::string& dir) {
  if (!RunningAsRoot()) return Status::Ok();
  if (::chmod(dir.c_str(), 0711) != 0) return Errno("chmod 0711 " + dir);
  return Status::Ok();
}

Result<OperatorLaunch> PrepareOperatorSandbox(const SandboxOptions& options,
                                              const std::string& job_dir,
                                              const std::string& task_dir) {
  OperatorLaunch launch;
  if (RunningAsRoot()) {
    auto user = LookUpUser(options.user);
    if (!user.ok()) return user.status();
    launch.credentials = *user;
  }
  RS_RETURN_IF_ERROR(MakeTraversable(job_dir));
  // A rebuilt task finds the directory of its earlier run on this node and keeps it.
  if (::mkdir(task_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Errno("creating the task directory " + task_dir);
  }
  struct stat st;
  if (::lstat(task_dir.c_str(), &st) != 0) return Errno("the task directory " + task_dir);
  if (!S_ISDIR(st.st_mode)) return Status::IOError(task_dir + " is not a directory");
  if (launch.credentials &&
      ::lchown(task_dir.c_str(), launch.credentials->uid, launch.credentials->gid) != 0) {
    return Errno("handing the task directory " + task_dir + " to operator_user");
  }
  if (::chmod(task_dir.c_str(), 0700) != 0) return Errno("chmod 0700 " + task_dir);
  launch.env = OperatorEnvironment(task_dir);
  launch.limits.address_space_bytes = options.max_memory_mb << 20;
  launch.limits.file_size_bytes = options.max_file_mb << 20;
  launch.limits.open_files = options.max_files;
  if (launch.credentials) launch.limits.processes = options.max_procs;
  launch.cwd = task_dir;
  return launch;
}

Status ProtectDataDir(const std::string& data_dir, const std::string& stream_dir) {
  if (!RunningAsRoot()) return Status::Ok();
  ::umask(077);
  if (::chmod(data_dir.c_str(), 0711) != 0) return Errno("chmod 0711 " + data_dir);
  std::error_code ec, abs_ec;
  const fs::path stream = fs::absolute(stream_dir, abs_ec).lexically_normal();
  fs::directory_iterator it(data_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (fs::absolute(p, abs_ec).lexically_normal() == stream) continue;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;
    if ((st.st_mode & 077) != 0 && ::chmod(p.c_str(), st.st_mode & 0700) != 0) {
      return Errno("chmod go-rwx " + p.string());
    }
  }
  if (ec) return Status::IOError("listing " + data_dir + ": " + ec.message());
  return Status::Ok();
}

}  // namespace rs::stream
