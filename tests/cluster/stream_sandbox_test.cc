// Cluster tests of the operator sandbox (daemon/stream/README.md "Operator sandbox") on real
// raind processes: what an operator runs as, where, with which environment and limits, what of
// the node it can read and write, which executables may run at all, and that a memory hog and a
// fork bomb fail their task while raind carries on. The operators are small python3 programs
// (no SDK) written by the test into a directory it adds to operator_dirs.
//
// Under a root raind (CI runs the tests as root) operators run as operator_user `rainstorm`
// (`make deps` creates it); the uid, file-permission and fork-bomb checks need that and are
// skipped with a WARN when the test is not root.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/cluster/stream_cases.h"

namespace rs::harness {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace stream_cases;

// Answers hello; on its first batch emits one tuple "PROBE=RESULT" per argument, then nothing.
// Probes: id, cwd, env (the variable names), limits (hard limits), read:PATH, list:PATH,
// write:PATH; a failed one gives its errno name (EACCES...).
const char kProbe[] = R"PY(#!/usr/bin/python3
import errno, os, resource, sys, msgpack

def probe(p):
    kind, _, arg = p.partition(':')
    try:
        if kind == 'id':
            return 'uid=%d euid=%d gid=%d groups=%s' % (
                os.getuid(), os.geteuid(), os.getgid(), ','.join(map(str, os.getgroups())))
        if kind == 'cwd':
            return os.getcwd()
        if kind == 'env':
            return ','.join(sorted(os.environ))
        if kind == 'limits':
            return ' '.join('%s=%d' % (n, resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[1])
                            for n in ('AS', 'FSIZE', 'NOFILE', 'NPROC'))
        if kind == 'read':
            with open(arg, 'rb') as f:
                f.read()
            return 'ok'
        if kind == 'list':
            os.listdir(arg)
            return 'ok'
        if kind == 'write':
            with open(arg, 'w') as f:
                f.write('x')
            return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return 'unknown probe'

out = sys.stdout.buffer
done = False
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "probe"}]))
    elif msg[0] == 2:
        outs = [[] for _ in msg[1]]
        if not done:
            done = True
            outs[0] = [[p, p + '=' + probe(p)] for p in sys.argv[1:]]
        out.write(msgpack.packb([3, outs]))
    out.flush()
)PY";

// Answers hello; on its first batch allocates 16 MB blocks until that fails, then exits 4.
const char kHog[] = R"PY(#!/usr/bin/python3
import sys, msgpack
out = sys.stdout.buffer
hoard = []
for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):
    if msg[0] == 0:
        out.write(msgpack.packb([1, {"name": "hog"}]))
    elif msg[0] == 2:
        try:
            while True:
                hoard.append(bytearray(16 << 20))
        except MemoryError:
            print('memory hog stopped at %d MB' % (16 * len(hoard)), file=sys.stderr, flush=True)
            sys.exit(4)
    out.flush()
)PY";

// Forks sleepers (their stdio closed) until fork fails, before it even answers hello; exits 3.
const char kBomb[] = R"PY(#!/usr/bin/python3
import os, sys, time
n = 0
try:
    while True:
        if os.fork() == 0:
            for fd in (0, 1, 2):
                os.close(fd)
            time.sleep(300)
            os._exit(0)
        n += 1
except OSError as e:
    print('fork bomb stopped after %d forks: %s' % (n, e.strerror), file=sys.stderr, flush=True)
    sys.exit(3)
)PY";

// The operator user when the test (and so raind) is root; nullopt with a WARN otherwise.
std::optional<passwd> OperatorUser() {
  if (::geteuid() != 0) {
    WARN(
        "not root: raind runs operators as this same user, so the uid, file-permission and "
        "fork-bomb checks are skipped (CI runs them as root)");
    return std::nullopt;
  }
  const passwd* pw = ::getpwnam("rainstorm");
  INFO("operator_user rainstorm does not exist: run `make deps` (scripts/install-deps.sh)");
  REQUIRE(pw != nullptr);
  return *pw;
}

// Processes of `uid` (zombies included: they count against RLIMIT_NPROC until reaped).
std::vector<std::string> ProcessesOf(uid_t uid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "status");
    std::string line, name, state;
    while (std::getline(in, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(6);
      if (line.rfind("State:", 0) == 0) state = line.substr(7, 1);
      if (line.rfind("Uid:", 0) == 0) {
        if (std::stoul(line.substr(5)) == uid) out.push_back(pid + " " + name + " " + state);
        break;
      }
    }
  }
  return out;
}

// A refused submission: rainctl exits 1 with the leader's reason; nothing is written.
void RequireRefused(Cluster& c, const std::string& stage, const std::vector<std::string>& says) {
  std::string dest = Dest("refused");
  JobRun run =
      RunJob(c.node(2), {"job", "submit", "--stage", stage, "--src", kSample, "--dest", dest});
  INFO(run.result.Describe());
  CHECK(run.result.code() == 1);
  for (const auto& s : says) CHECK(run.result.err.find(s) != std::string::npos);
  CHECK(!HydfsLs(c.node(0), dest).ok());
}

TEST_CASE(
    "an operator runs as operator_user in its own task directory with a clean environment and "
    "cannot read or write the node's data; executables outside operator_dirs are refused",
    "[stream-sandbox]") {
  std::optional<passwd> user = OperatorUser();
  OperatorDir ops;
  auto probe = ops.Write("probe.py", kProbe);
  REQUIRE_OK(probe.status());
  std::vector<std::string> args = ops.Args();
  args.insert(args.end(), {"--set", "operator_max_memory_mb=512", "--set", "operator_max_files=256",
                           "--set", "operator_max_procs=100"});
  Cluster c(3, StreamArgs(args));
  StartStream(c);
  // A secret as the keys will be: root's, mode 0600, in every node's data dir.
  for (size_t i = 0; i < c.size(); ++i) {
    std::string secret = c.node(i).DataDir() + "/sandbox-secret";
    REQUIRE_OK(WriteLocal(secret, "s3cret"));
    REQUIRE(::chmod(secret.c_str(), 0600) == 0);
  }

  // From the task directory <data_dir>/stream/<job>/task-1-0.work: ".." is the job dir,
  // "../.." stream/, "../../.." the data dir.
  const std::vector<std::string> denied = {"read:../../../sandbox-secret",
                                           "read:../../../raind.log",
                                           "read:../task-1-0.log",
                                           "list:../../..",
                                           "list:../../../hydfs",
                                           "list:../..",
                                           "list:..",
                                           "write:../../../planted",
                                           "write:../planted",
                                           "write:" + ops.path() + "/planted"};
  std::vector<std::string> probes = {"id",     "cwd",           "env",
                                     "limits", "write:scratch", "read:/etc/passwd"};
  probes.insert(probes.end(), denied.begin(), denied.end());
  std::string stage = *probe;
  for (const auto& p : probes) stage += " " + p;
  std::string dest = Dest("probe");
  // --keep: the task's directory is inspected after the job ended.
  JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", stage, "--tasks", "1", "--src",
                                  kSample, "--dest", dest, "--keep"});
  std::vector<std::string> lines = DoneOutput(c, run, dest);
  std::map<std::string, std::string> result;
  for (const auto& line : lines) {
    size_t eq = line.find('=');
    REQUIRE(eq != std::string::npos);
    result[line.substr(0, eq)] = line.substr(eq + 1);
  }
  INFO("probe results:\n" << Join(lines));
  REQUIRE(result.size() == probes.size());

  auto tasks = OperatorTasks(c.node(0), run.job, 1);
  REQUIRE_OK(tasks.status());
  REQUIRE(tasks->size() == 1);
  RaindProcess* host = NodeWithId(c, (*tasks)[0].node);
  REQUIRE(host != nullptr);
  const fs::path data_dir = fs::canonical(host->DataDir());
  const fs::path task_dir = data_dir / "stream" / run.job / "task-1-0.work";
  CHECK(result["cwd"] == task_dir.string());
  CHECK(result["env"] == "HOME,LANG,PATH,TMPDIR");
  CHECK(result["limits"].rfind("AS=536870912 FSIZE=1073741824 NOFILE=256 NPROC=", 0) == 0);
  CHECK(result["write:scratch"] == "ok");
  CHECK(fs::exists(task_dir / "scratch"));
  CHECK(result["read:/etc/passwd"] == "ok");

  if (user) {
    std::string u = std::to_string(user->pw_uid), g = std::to_string(user->pw_gid);
    CHECK(result["id"] == "uid=" + u + " euid=" + u + " gid=" + g + " groups=");
    CHECK(result["limits"] == "AS=536870912 FSIZE=1073741824 NOFILE=256 NPROC=100");
    for (const auto& p : denied) {
      CAPTURE(p);
      CHECK(result[p] == "EACCES");
    }
    struct stat st;
    REQUIRE(::stat(task_dir.c_str(), &st) == 0);
    CHECK(st.st_uid == user->pw_uid);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat(data_dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0711);
    for (const fs::path& planted : {data_dir / "planted", task_dir.parent_path() / "planted",
                                    fs::path(ops.path()) / "planted"}) {
      CAPTURE(planted);
      CHECK_FALSE(fs::exists(planted));
    }
  }

  // Executables outside operator_dirs are refused at submit, naming operator_dirs; a symlink in
  // an allowed directory is judged by what it points to (rainctl sends the resolved path; the
  // leader resolves it again, tests/unit/stream/operator_sandbox_test.cc).
  std::string sh = fs::canonical("/bin/sh").string();
  RequireRefused(c, "/bin/sh -c true", {"operator '" + sh + "'", "is not under operator_dirs"});
  std::string link = ops.path() + "/sh-link";
  REQUIRE(::symlink("/bin/sh", link.c_str()) == 0);
  RequireRefused(c, link + " -c true", {"operator '" + sh + "'", "is not under operator_dirs"});
}

TEST_CASE("a memory hog and a fork bomb fail their task; raind stays up and answers",
          "[stream-sandbox-limits]") {
  std::optional<passwd> user = OperatorUser();
  OperatorDir ops;
  auto hog = ops.Write("hog.py", kHog);
  auto bomb = ops.Write("bomb.py", kBomb);
  REQUIRE_OK(hog.status());
  REQUIRE_OK(bomb.status());
  std::vector<std::string> args = ops.Args();
  args.insert(args.end(),
              {"--set", "operator_max_memory_mb=512", "--set", "operator_max_procs=40"});
  Cluster c(3, StreamArgs(args));
  StartStream(c);

  {
    INFO("a memory hog fails on its first batch, in every run: the job fails with its reason");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", *hog, "--tasks", "1", "--src",
                                    kSample, "--dest", Dest("hog")});
    INFO(run.result.Describe());
    REQUIRE(run.result.code() == 1);
    REQUIRE(!run.job.empty());
    auto st = JobStatus(c.node(0), run.job);
    REQUIRE_OK(st.status());
    std::string reason = (*st)["reason"].Str();
    INFO("reason: " << reason);
    CHECK((*st)["state"].Str() == "failed");
    CHECK(reason.find("exit code 4") != std::string::npos);
    size_t at = reason.find("memory hog stopped at ");
    REQUIRE(at != std::string::npos);
    uint64_t mb = std::stoull(reason.substr(at + 22));
    CHECK(mb > 0);
    CHECK(mb < 512);  // stopped by operator_max_memory_mb, not by the machine's memory
  }

  if (user) {
    INFO("a fork bomb stops at operator_max_procs; its task fails, its processes go");
    JobRun run = RunJob(c.node(1), {"job", "submit", "--stage", *bomb, "--tasks", "1", "--src",
                                    kSample, "--dest", Dest("bomb")});
    INFO(run.result.Describe());
    CHECK(run.result.code() == 1);
    CHECK(run.result.err.find("fork bomb stopped after") != std::string::npos);
    CHECK(run.result.err.find("Resource temporarily unavailable") != std::string::npos);
    size_t at = run.result.err.find("fork bomb stopped after ");
    if (at != std::string::npos) CHECK(std::stoul(run.result.err.substr(at + 24)) < 40);
    // Killed with the bomb's process group, reaped by init (until then they still count
    // against operator_max_procs).
    REQUIRE_EVENTUALLY(60s, [&](std::string* why) {
      std::vector<std::string> left = ProcessesOf(user->pw_uid);
      *why = std::to_string(left.size()) + " processes of rainstorm left: " + Join(left, ", ");
      return left.empty();
    });
  }

  // Every raind still runs and answers, and a normal job still gives python's output.
  std::string why;
  bool running = AllRunning(c, &why);
  INFO(why);
  REQUIRE(running);
  for (size_t i = 0; i < c.size(); ++i) {
    CommandResult r = Ctl(c.node(i), {"list_mem"});
    INFO(c.node(i).name() << ": " << r.Describe());
    CHECK(r.code() == 0);
  }
  std::string dest = Dest("after");
  RequireSameLines(DoneOutput(c, App1(c, "Parking", 2, true, kSample, dest), dest),
                   Want(c, {"select", SampleCsvPath(), kApp1Cols, "Parking"}), "console vs python");
}

}  // namespace
}  // namespace rs::harness
