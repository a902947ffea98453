#include "tests/harness/stream.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"
#include "tests/harness/raind_process.h"

#ifndef RS_SOURCE_ROOT
#error "tests/harness/meson.build passes RS_SOURCE_ROOT"
#endif

namespace rs::harness {
namespace fs = std::filesystem;

namespace {

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// `rainctl --node VIA --json ARGS...` parsed; a non-zero exit becomes a status with stderr.
Result<Json> JsonQuery(const RaindProcess& via, const std::vector<std::string>& args) {
  return CtlJson(via.ControlAddress(), args);
}

Result<std::vector<Json>> ArrayOf(Result<Json> reply, const char* key) {
  if (!reply.ok()) return reply.status();
  const Json& a = (*reply)[key];
  if (!a.is_array()) return Status::Corruption(std::string("reply has no '") + key + "' array");
  return a.items();
}

// The oracle: see Oracle() in stream.h. Kept independent of the C++ CSV code on purpose.
constexpr const char* kOracleScript = R"PY(
import csv, sys

BOM = '\ufeff'

def lines(path):
    data = open(path, 'rb').read()
    parts = data.split(b'\n')
    if parts and parts[-1] == b'':
        parts.pop()
    for p in parts:
        if p.endswith(b'\r'):
            p = p[:-1]
        yield p.decode('utf-8', 'surrogateescape')

def rows(path):
    """The lines a job emits as tuples by default: a *.csv file's first line is its header."""
    it = lines(path)
    if path.lower().endswith('.csv'):
        next(it, None)
    return it

def fields(line):
    row = next(csv.reader([line]), [])
    return row if row else ['']

def col(row, i):
    return row[i] if i < len(row) else ''

def quote(f):
    if f and (f[0] in ' \t' or f[-1] in ' \t' or any(c in f for c in ',"\r\n')):
        return '"' + f.replace('"', '""') + '"'
    return f

def out(s):
    sys.stdout.buffer.write((s + '\n').encode('utf-8', 'surrogateescape'))

def strip_bom(s):
    return s[1:] if s.startswith(BOM) else s

def resolve(header, spec):
    """Column indexes of a COLS argument, and whether it named a column."""
    names = fields(strip_bom(header))
    idx, by_name = [], False
    for item in spec.split(','):
        if item.isdigit():
            idx.append(int(item))
        else:
            idx.append(names.index(item))
            by_name = True
    return idx, by_name

def ascii_lower(s):
    return ''.join(chr(ord(c) + 32) if 'A' <= c <= 'Z' else c for c in s)

def grep(header, args):
    """A predicate (line -> keep) for rainop-grep's -v -i -x --column PATTERN (no -E)."""
    invert = icase = whole = False
    column = None
    while args and args[0].startswith('-'):
        a = args.pop(0)
        if a == '--':
            break
        if a == '--column':
            column = args.pop(0)
            continue
        for c in a[1:]:
            invert |= c == 'v'
            icase |= c == 'i'
            whole |= c == 'x'
    (pattern,) = args
    index, by_name = None, False
    if column is not None:
        cols, by_name = resolve(header, column)
        index = cols[0]
    def keep(line):
        if by_name and strip_bom(line) == strip_bom(header):
            return False
        v = line if index is None else col(fields(line), index)
        p = pattern
        if icase:
            v, p = ascii_lower(v), ascii_lower(p)
        hit = v == p if whole else p in v
        return hit != invert
    return keep

mode, path = sys.argv[1], sys.argv[2]
header = next(lines(path), '')
keep = lambda line: True
if mode in ('select', 'count') and len(sys.argv) > 4:
    keep = grep(header, sys.argv[4:])
if mode == 'select':
    idx, by_name = resolve(header, sys.argv[3])
    for line in rows(path):
        if not keep(line) or (by_name and strip_bom(line) == strip_bom(header)):
            continue
        row = fields(line)
        out(','.join(quote(col(row, i)) for i in idx))
elif mode == 'count':
    (c,), by_name = resolve(header, sys.argv[3])
    counts = {}
    for line in rows(path):
        if not keep(line) or (by_name and strip_bom(line) == strip_bom(header)):
            continue
        k = col(fields(line), c)
        counts[k] = counts.get(k, 0) + 1
    for k, n in counts.items():
        out(quote(k) + ',' + str(n))
elif mode == 'filter':
    conds = [(int(sys.argv[i]), sys.argv[i + 1]) for i in range(3, len(sys.argv), 2)]
    for line in rows(path):
        row = fields(line)
        if all(col(row, i) == v for i, v in conds):
            out(line)
elif mode == 'lines':
    for line in rows(path):
        out(line)
elif mode == 'all-lines':
    for line in lines(path):
        out(line)
else:
    sys.exit('unknown mode ' + mode)
)PY";

}  // namespace

Result<std::string> RainsourceBinary() {
  const char* path = std::getenv("RAINSOURCE");
  if (path != nullptr && *path != '\0') {
    if (access(path, X_OK) != 0) {
      return Status::NotFound(std::string("$RAINSOURCE=") + path + " is not executable");
    }
    return std::string(path);
  }
  // rainsource is built beside rainctl.
  auto ctl = RainctlBinary();
  if (!ctl.ok()) return ctl.status();
  std::string guess = (fs::path(*ctl).parent_path() / "rainsource").string();
  if (access(guess.c_str(), X_OK) != 0) {
    return Status::NotFound("$RAINSOURCE is not set and " + guess + " is not executable");
  }
  return guess;
}

std::vector<std::string> StreamArgs(std::vector<std::string> more) {
  std::vector<std::string> args = {"--set", "log_ship_interval_ms=0"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

OperatorDir::OperatorDir() {
  std::string tmpl = "/tmp/rs-ops-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr && ::chmod(tmpl.c_str(), 0755) == 0) path_ = tmpl;
}

OperatorDir::~OperatorDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

Result<std::string> OperatorDir::Write(const std::string& name, const std::string& body) {
  if (path_.empty()) return Status::IOError("no operator dir (mkdtemp under /tmp failed)");
  std::string path = path_ + "/" + name;
  RS_RETURN_IF_ERROR(WriteLocal(path, body));
  if (::chmod(path.c_str(), 0755) != 0) return Status::IOError("chmod 0755 " + path);
  return path;
}

std::vector<std::string> OperatorDir::Args() const {
  return {"--set", "operator_dirs=builtin," + path_};
}

Status OperatorsBuilt(const std::vector<std::string>& names) {
  auto raind = RaindBinary();
  if (!raind.ok()) return raind.status();
  fs::path dir = fs::path(*raind).parent_path().parent_path() / "operators" / "builtin";
  for (const auto& name : names) {
    if (access((dir / name).c_str(), X_OK) != 0) {
      return Status::NotFound((dir / name).string() +
                              " is missing: build everything first (ninja -C BUILD)");
    }
  }
  return Status::Ok();
}

std::string SourcePath(const std::string& relative) {
  return std::string(RS_SOURCE_ROOT) + "/" + relative;
}

const std::string& SampleCsvPath() {
  static const std::string path = SourcePath("datasets/traffic_signs_sample.csv");
  return path;
}

const std::string& ChampaignCsvPath() {
  static const std::string path =
      SourcePath("../shared/datasets/traffic-signs-champaign/Traffic_Signs.csv");
  return path;
}

const std::string& ChampaignOrSampleCsvPath() {
  static const std::string path =
      fs::is_regular_file(ChampaignCsvPath()) ? ChampaignCsvPath() : SampleCsvPath();
  return path;
}

std::vector<std::string> JobRun::Lines() const { return SplitLines(result.out); }

JobRun RunJob(const RaindProcess& via, const std::vector<std::string>& args,
              Clock::duration timeout) {
  JobRun run;
  run.result = Ctl(via, args, timeout);
  const std::string marker = "rainctl: job ";
  size_t at = run.result.err.find(marker);
  if (at != std::string::npos) {
    size_t start = at + marker.size();
    size_t end = run.result.err.find(' ', start);
    if (end != std::string::npos &&
        run.result.err.compare(end, std::string(" submitted").size(), " submitted") == 0) {
      run.job = run.result.err.substr(start, end - start);
    }
  }
  bool detach = std::find(args.begin(), args.end(), "--detach") != args.end();
  if (run.job.empty() && detach && run.result.code() == 0) {
    std::string first = FirstLine(run.result.out);
    auto json = Json::Parse(first);
    run.job = json.ok() && json->is_object() ? (*json)["job"].Str() : first;
  }
  return run;
}

Result<Json> JobStatus(const RaindProcess& via, const std::string& job) {
  return JsonQuery(via, {"job", "status", job});
}

Result<std::string> JobState(const RaindProcess& via, const std::string& job) {
  auto st = JobStatus(via, job);
  if (!st.ok()) return st.status();
  return (*st)["state"].Str();
}

bool JobIn(const RaindProcess& via, const std::string& job, const std::set<std::string>& states,
           std::string* why) {
  auto st = JobState(via, job);
  if (!st.ok()) {
    *why = st.status().ToString();
    return false;
  }
  *why = "job " + job + " is " + *st;
  return states.count(*st) > 0;
}

Result<std::vector<Json>> JobTasks(const RaindProcess& via, const std::string& job) {
  return ArrayOf(JsonQuery(via, {"list_tasks", "--job", job}), "tasks");
}

Result<std::vector<Json>> JobList(const RaindProcess& via) {
  return ArrayOf(JsonQuery(via, {"job", "list"}), "jobs");
}

Result<std::string> HydfsCat(const RaindProcess& via, const std::string& name) {
  CommandResult r = Ctl(via, {"--timeout", "10000", "cat", name}, kTransferTimeout);
  if (r.code() != 0) {
    return Status::Internal("rainctl cat " + name + ": exit " + std::to_string(r.code()) + ": " +
                            FirstLine(r.err));
  }
  return r.out;
}

Status StartRainsource(const RaindProcess& via, const std::string& job, const std::string& input,
                       const std::vector<std::string>& args, Subprocess* process) {
  auto binary = RainsourceBinary();
  if (!binary.ok()) return binary.status();
  // The shell only opens the input; exec leaves rainsource itself as the child.
  std::vector<std::string> argv = {
      "/bin/sh",
      "-c",
      "bin=$1; node=$2; job=$3; in=$4; shift 4; exec \"$bin\" --node \"$node\" --job "
      "\"$job\" \"$@\" < \"$in\"",
      "sh",
      *binary,
      via.ControlAddress(),
      job,
      input};
  argv.insert(argv.end(), args.begin(), args.end());
  return process->Start(argv);
}

bool ProcessAlive(int64_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

Status StartAttachedJob(const RaindProcess& via, const std::vector<std::string>& args,
                        Subprocess* process) {
  std::vector<std::string> argv = {"--node", via.ControlAddress()};
  argv.insert(argv.end(), args.begin(), args.end());
  return StartCtl(argv, process);
}

JobRun FinishAttachedJob(Subprocess& process, const std::string& job, Clock::duration timeout) {
  JobRun run;
  run.job = job;
  auto exit = process.Wait(timeout);
  if (!exit.has_value()) {
    run.result.timed_out = true;
    run.result.status = process.Kill();
  } else {
    run.result.status = *exit;
  }
  run.result.out = process.Stdout();
  run.result.err = process.Stderr();
  const std::string marker = "rainctl: job ";
  size_t at = run.result.err.find(marker);
  if (run.job.empty() && at != std::string::npos) {
    size_t start = at + marker.size();
    run.job = run.result.err.substr(start, run.result.err.find(' ', start) - start);
  }
  return run;
}

std::string FindJobWriting(const RaindProcess& via, const std::string& dest,
                           const std::string& state, std::string* why) {
  auto jobs = JobList(via);
  if (!jobs.ok()) {
    *why = jobs.status().ToString();
    return "";
  }
  for (const Json& j : *jobs) {
    if (j["dest"].Str() == dest && j["state"].Str() == state) return j["job"].Str();
  }
  *why = "no " + state + " job writes " + dest;
  return "";
}

Result<std::vector<TaskEntry>> OperatorTasks(const RaindProcess& via, const std::string& job,
                                             uint32_t stages) {
  auto tasks = JobTasks(via, job);
  if (!tasks.ok()) return tasks.status();
  std::vector<TaskEntry> out;
  for (const Json& t : *tasks) {
    TaskEntry e;
    e.stage = static_cast<uint32_t>(t["stage"].Uint());
    if (e.stage < 1 || e.stage > stages) continue;
    e.task = static_cast<uint32_t>(t["task"].Uint());
    e.node = t["node"].Str();
    e.pid = static_cast<int64_t>(t["pid"].Uint());
    e.incarnation = t["incarnation"].Uint();
    e.state = t["state"].Str();
    out.push_back(std::move(e));
  }
  return out;
}

bool OperatorsGone(const std::set<int64_t>& pids, std::string* why) {
  for (int64_t pid : pids) {
    if (!ProcessAlive(pid)) continue;
    // argv[0] and argv[1] (a python operator runs as `python3 SCRIPT`).
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find("rainop-") == std::string::npos &&
        cmdline.find("operators/") == std::string::npos) {
      continue;  // the pid was reused by some other process
    }
    *why = "operator process " + std::to_string(pid) + " (" + cmdline + ") still runs";
    return false;
  }
  return true;
}

std::vector<std::string> Sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string MultisetDifference(const std::vector<std::string>& got,
                               const std::vector<std::string>& want) {
  std::map<std::string, int64_t> balance;
  for (const auto& l : got) ++balance[l];
  for (const auto& l : want) --balance[l];
  std::vector<std::string> missing, extra;
  for (const auto& [line, n] : balance) {
    for (int64_t k = 0; k < -n; ++k) missing.push_back(line);
    for (int64_t k = 0; k < n; ++k) extra.push_back(line);
  }
  if (missing.empty() && extra.empty()) return "";
  std::ostringstream s;
  s << got.size() << " lines, expected " << want.size() << "; " << missing.size() << " missing, "
    << extra.size() << " extra";
  for (size_t k = 0; k < std::min<size_t>(missing.size(), 5); ++k) {
    s << "\n  missing: '" << missing[k] << "'";
  }
  for (size_t k = 0; k < std::min<size_t>(extra.size(), 5); ++k) {
    s << "\n  extra:   '" << extra[k] << "'";
  }
  return s.str();
}

std::map<std::string, uint64_t> RunningCounts::Final() const {
  std::map<std::string, uint64_t> out;
  for (const auto& [value, counts] : by_value) out[value] = counts.back();
  return out;
}

std::string RunningCounts::CheckIncreasing() const {
  for (const auto& [value, counts] : by_value) {
    for (size_t k = 0; k < counts.size(); ++k) {
      if (counts[k] != k + 1) {
        std::ostringstream s;
        s << "value '" << value << "': count #" << (k + 1) << " in output order is " << counts[k]
          << " (counts:";
        for (size_t i = 0; i < std::min<size_t>(counts.size(), 20); ++i) s << " " << counts[i];
        s << (counts.size() > 20 ? " ...)" : ")");
        return s.str();
      }
    }
  }
  return "";
}

RunningCounts ParseRunningCounts(const std::vector<std::string>& lines) {
  RunningCounts rc;
  for (const auto& line : lines) {
    size_t comma = line.rfind(',');
    std::string number = comma == std::string::npos ? "" : line.substr(comma + 1);
    bool digits =
        !number.empty() && number.size() < 19 &&
        std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) {
      rc.malformed.push_back(line);
      continue;
    }
    rc.by_value[line.substr(0, comma)].push_back(std::stoull(number));
  }
  return rc;
}

std::string RunningCountsDifference(const std::vector<std::string>& got,
                                    const std::vector<std::string>& want) {
  RunningCounts rc = ParseRunningCounts(got);
  if (!rc.malformed.empty()) {
    return std::to_string(rc.malformed.size()) + " lines without a count, e.g. '" +
           rc.malformed[0] + "'";
  }
  std::string order = rc.CheckIncreasing();
  if (!order.empty()) return order;
  RunningCounts expected = ParseRunningCounts(want);
  if (!expected.malformed.empty()) return "python's output has a line without a count";
  std::map<std::string, uint64_t> final_got = rc.Final(), final_want = expected.Final();
  if (final_got == final_want) return "";
  std::ostringstream s;
  s << "final counts differ:";
  for (const auto& [value, n] : final_want) {
    auto it = final_got.find(value);
    if (it == final_got.end()) {
      s << "\n  '" << value << "': missing, expected " << n;
    } else if (it->second != n) {
      s << "\n  '" << value << "': " << it->second << ", expected " << n;
    }
  }
  for (const auto& [value, n] : final_got) {
    if (!final_want.count(value)) s << "\n  '" << value << "': " << n << ", not expected";
  }
  return s.str();
}

void RequireSameLines(const std::vector<std::string>& got, const std::vector<std::string>& want,
                      const std::string& what) {
  std::string diff = MultisetDifference(got, want);
  INFO(what << ": " << diff);
  REQUIRE(diff.empty());
}

void RequireCounts(const std::vector<std::string>& got, const std::vector<std::string>& want,
                   const std::string& what) {
  std::string diff = RunningCountsDifference(got, want);
  INFO(what << ": " << diff);
  REQUIRE(diff.empty());
}

Result<std::vector<std::string>> Oracle(const std::string& dir,
                                        const std::vector<std::string>& args) {
  std::string script = dir + "/oracle.py";
  if (!LocalExists(script)) RS_RETURN_IF_ERROR(WriteLocal(script, kOracleScript));
  std::vector<std::string> argv = {"/usr/bin/python3", script};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, std::chrono::seconds(60));
  if (r.code() != 0) return Status::Internal("oracle failed: " + r.Describe());
  return SplitLines(r.out);
}

}  // namespace rs::harness
