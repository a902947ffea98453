// The operator sandbox's stream side with real files and processes: operator_dirs (paths and
// resolved names outside them are refused, symlinks resolved first), the task directory and
// launch settings PrepareOperatorSandbox makes, and a python operator started with them. The
// user switch is checked as root (with operator_user `rainstorm`, which `make deps` creates);
// elsewhere those checks are skipped with a WARN.
#include "daemon/stream/operator_sandbox.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/stream/operator_process.h"
#include "daemon/stream/operator_resolver.h"
#include "tests/unit/temp_dir.h"

namespace rs::stream {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;

std::string WriteExecutable(const std::string& path, const std::string& body) {
  std::ofstream(path) << body;
  REQUIRE(::chmod(path.c_str(), 0755) == 0);
  return path;
}

bool Has(const Status& s, const std::string& text) {
  bool found = s.message().find(text) != std::string::npos;
  if (!found) UNSCOPED_INFO("looked for \"" << text << "\" in: " << s.ToString());
  return found;
}

TEST_CASE("operators outside operator_dirs are refused, symlinks resolved first",
          "[stream][sandbox]") {
  TempDir ops(0755), other(0755);
  std::string op = WriteExecutable(ops.path() + "/op.sh", "#!/bin/sh\nexit 0\n");
  std::string mine = WriteExecutable(ops.path() + "/rainop-mine", "#!/bin/sh\nexit 0\n");
  std::string elsewhere = WriteExecutable(other.path() + "/op.sh", "#!/bin/sh\nexit 0\n");
  REQUIRE(::symlink("/bin/sh", (ops.path() + "/sh-link").c_str()) == 0);
  REQUIRE(::symlink(op.c_str(), (other.path() + "/link-in").c_str()) == 0);
  const std::vector<std::string> dirs = {kBuiltinOperatorDirs, ops.path()};

  auto allowed = ResolveOperator(op, dirs);
  REQUIRE(allowed.ok());
  CHECK(*allowed == op);
  // A link from outside to an allowed executable runs that executable.
  auto via_link = ResolveOperator(other.path() + "/link-in", dirs);
  REQUIRE(via_link.ok());
  CHECK(*via_link == op);

  std::string sh = fs::canonical("/bin/sh").string();
  for (const std::string& refused : {std::string("/bin/sh"), ops.path() + "/sh-link", elsewhere}) {
    CAPTURE(refused);
    auto r = ResolveOperator(refused, dirs);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK(Has(r.status(), "is not under operator_dirs ("));
    CHECK(Has(r.status(), ops.path()));
  }
  CHECK(Has(ResolveOperator("/bin/sh", dirs).status(), "operator '/bin/sh' (" + sh + ")"));
  // A directory whose name starts like an allowed one is not inside it.
  std::string sibling = ops.path() + "x";
  REQUIRE(fs::create_directory(sibling));
  WriteExecutable(sibling + "/op.sh", "#!/bin/sh\n");
  CHECK_FALSE(ResolveOperator(sibling + "/op.sh", dirs).ok());
  fs::remove_all(sibling);

  // Names: the built-in ones, those in operator_dirs, and none found through $PATH outside.
  auto upper = ResolveOperator("upper", dirs);
  REQUIRE(upper.ok());
  CHECK(*upper == fs::canonical(RS_SOURCE_ROOT "/operators/python/upper.py").string());
  auto by_name = ResolveOperator("mine", dirs);
  REQUIRE(by_name.ok());
  CHECK(*by_name == mine);
  auto path_name = ResolveOperator("sh", dirs);
  CHECK(path_name.status().code() == StatusCode::kInvalidArgument);
  CHECK(Has(path_name.status(), "operator 'sh' (" + sh + ") is not under operator_dirs"));
  // No directory at all: even the built-in operators are refused.
  CHECK(ResolveOperator("upper", {}).status().code() == StatusCode::kInvalidArgument);

  std::vector<std::string> expanded =
      AllowedOperatorDirs({kBuiltinOperatorDirs, ops.path(), ops.path() + "/", "/nonexistent"});
  CHECK(std::count(expanded.begin(), expanded.end(), ops.path()) == 1);
  CHECK(std::count(expanded.begin(), expanded.end(),
                   fs::canonical(RS_SOURCE_ROOT "/operators/python").string()) == 1);
  CHECK(std::count(expanded.begin(), expanded.end(), "/nonexistent") == 0);
}

TEST_CASE("the task directory and launch settings of a sandboxed operator", "[stream][sandbox]") {
  TempDir job(0700);
  std::string task_dir = job.path() + "/task-1-0.work";
  SandboxOptions options;
  options.max_memory_mb = 300;
  auto launch = PrepareOperatorSandbox(options, job.path(), task_dir);
  const bool root = ::geteuid() == 0;
  const passwd* user = root ? ::getpwnam("rainstorm") : nullptr;
  if (root && user == nullptr) {
    // The user `make deps` creates is missing: the task fails, and says what to do.
    REQUIRE_FALSE(launch.ok());
    CHECK(launch.status().code() == StatusCode::kFailedPrecondition);
    CHECK(Has(launch.status(), "useradd --system"));
    FAIL("operator_user rainstorm does not exist: run `make deps` (scripts/install-deps.sh)");
  }
  REQUIRE(launch.ok());
  struct stat st;
  REQUIRE(::stat(task_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(launch->cwd == task_dir);
  CHECK(launch->env == std::vector<std::string>{"PATH=/usr/local/bin:/usr/bin:/bin",
                                                "HOME=" + task_dir, "TMPDIR=" + task_dir,
                                                "LANG=C.UTF-8"});
  CHECK(launch->limits.address_space_bytes == (300ull << 20));
  CHECK(launch->limits.file_size_bytes == (1024ull << 20));
  CHECK(launch->limits.open_files == 1024);
  if (root) {
    REQUIRE(launch->credentials.has_value());
    CHECK(launch->credentials->uid == user->pw_uid);
    CHECK(launch->credentials->gid == user->pw_gid);
    CHECK(st.st_uid == user->pw_uid);
    CHECK(launch->limits.processes == 256);
    REQUIRE(::stat(job.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0711);
    // A rebuilt task reuses its directory.
    CHECK(PrepareOperatorSandbox(options, job.path(), task_dir).ok());

    options.user = "rs-no-such-user";
    auto missing = PrepareOperatorSandbox(options, job.path(), task_dir);
    CHECK(missing.status().code() == StatusCode::kFailedPrecondition);
    CHECK(Has(missing.status(), "operator_user 'rs-no-such-user' does not exist"));
    options.user = "root";
    auto as_root = PrepareOperatorSandbox(options, job.path(), task_dir);
    CHECK(as_root.status().code() == StatusCode::kFailedPrecondition);
    CHECK(Has(as_root.status(), "operators never run as root"));
  } else {
    WARN("not root: operators run as this user; the user switch is not checked");
    CHECK_FALSE(launch->credentials.has_value());
    CHECK(launch->limits.processes == 0);
  }
}

TEST_CASE("a python operator started with the sandbox's settings runs in its task directory",
          "[stream][sandbox]") {
  ::signal(SIGPIPE, SIG_IGN);
  TempDir job(0700), ops(0755);
  std::string task_dir = job.path() + "/task-1-0.work";
  // Its ready name says who and where it is, and what environment it has.
  std::string script = WriteExecutable(ops.path() + "/whoami.py", R"PY(#!/usr/bin/python3
import os, sys, msgpack
out = sys.stdout.buffer
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):
    if msg[0] == 0:
        name = '%d|%s|%s' % (os.getuid(), os.getcwd(), ','.join(sorted(os.environ)))
        out.write(msgpack.packb([1, {"name": name}]))
        out.flush()
)PY");
  REQUIRE(::setenv("RS_SANDBOX_TEST_LEAK", "1", 1) == 0);
  SandboxOptions options;
  auto launch = PrepareOperatorSandbox(options, job.path(), task_dir);
  REQUIRE(launch.ok());
  OperatorProcessOptions po;
  po.cwd = launch->cwd;
  po.env = launch->env;
  po.clear_env = true;
  po.credentials = launch->credentials;
  po.limits = launch->limits;
  auto op = OperatorProcess::Start({script}, {}, po);
  ::unsetenv("RS_SANDBOX_TEST_LEAK");
  INFO(op.status().ToString());
  REQUIRE(op.ok());
  uid_t want = launch->credentials ? launch->credentials->uid : ::getuid();
  CHECK((*op)->ready().name == std::to_string(want) + "|" + task_dir + "|HOME,LANG,PATH,TMPDIR");
  if (::geteuid() == 0) CHECK(want != 0);
}

TEST_CASE("an operator its user cannot reach in place is started from a copy in the task dir",
          "[stream][sandbox]") {
  if (::geteuid() != 0 || ::getpwnam("rainstorm") == nullptr) {
    WARN("not root, or no rainstorm user: operators run as this user, nothing to copy");
    return;
  }
  TempDir job(0711), open_ops(0755), private_ops(0700);
  std::string task_dir = job.path() + "/task-1-0.work";
  auto launch = PrepareOperatorSandbox(SandboxOptions{}, job.path(), task_dir);
  REQUIRE(launch.ok());
  // In a world-searchable directory: used where it is.
  std::string open = WriteExecutable(open_ops.path() + "/op.sh", "#!/bin/sh\necho open\n");
  auto same = ReachableOperator(open, *launch);
  REQUIRE(same.ok());
  CHECK(*same == open);
  // Under a private directory (a clone under /root): copied, owned by the operator's user.
  std::string hidden = WriteExecutable(private_ops.path() + "/op.sh", "#!/bin/sh\necho hi\n");
  std::ofstream(private_ops.path() + "/helper.py") << "x = 1\n";  // a script's neighbour comes too
  auto copy = ReachableOperator(hidden, *launch);
  REQUIRE(copy.ok());
  CHECK(*copy == task_dir + "/operator/op.sh");
  CHECK(fs::exists(task_dir + "/operator/helper.py"));
  struct stat st;
  REQUIRE(::stat(copy->c_str(), &st) == 0);
  CHECK(st.st_uid == launch->credentials->uid);
  CHECK((st.st_mode & 0777) == 0500);
  std::ifstream in(*copy);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "#!/bin/sh\necho hi\n");
}

}  // namespace
}  // namespace rs::stream
