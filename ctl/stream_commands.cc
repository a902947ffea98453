// Stream engine commands (design and replies: daemon/stream/README.md; `job checkpoint` is in
// checkpoint_commands.cc, the tables and the progress line in job_view.cc):
//   RainStorm TOKENS...          the positional job forms (shared/stream/job_spec.h)
//   job submit --stage CMD ...   the same job with named flags
//   job list | status JOB | cancel JOB | tasks [JOB], and list_tasks [--job JOB]
//
// A submitted job is attached unless --detach: rainctl long-polls job.output and copies the
// job's output bytes to stdout as they come, draws a progress line on stderr (when it is a
// terminal) from job.status once a second, and exits with the job: 0 done, 1 failed or
// cancelled. Ctrl-C detaches (exit 130) and leaves the job running. A node that gives no answer
// for kGiveUp ends the wait with exit 3.
//
// Single-threaded; the SIGINT handler only sets a flag.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ctl/commands.h"
#include "ctl/job_view.h"
#include "ctl/output.h"
#include "ctl/transfer.h"
#include "shared/clock.h"
#include "shared/stream/checkpoint.h"
#include "shared/stream/job_spec.h"
#include "shared/stream/task_frame.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

constexpr int kExitInterrupted = 130;     // 128 + SIGINT: detached, the job keeps running
constexpr int kSubmitTimeoutMs = 120000;  // the leader answers job.submit once every task runs
constexpr int kOutputWaitMs = 500;        // job.output long-poll
constexpr auto kGiveUp = std::chrono::seconds(10);  // no answer at all for this long: exit 3
constexpr auto kProgressEvery = std::chrono::seconds(1);

// The operators every node knows by name: the C++ built-ins (operators/builtin) and the Python
// examples (operators/python). Anything else must be a path, hydfs:NAME, or rainop-NAME on the
// operator search path.
const std::vector<std::string>& BuiltinOperators() {
  static const std::vector<std::string> names = {
      "identity", "grep",  "select",    "count",               // C++
      "upper",    "split", "wordcount", "filter", "template",  // Python
  };
  return names;
}

volatile std::sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

// SIGINT sets a flag; no SA_RESTART, so a blocking poll returns at once.
void CatchInterrupt() {
  g_interrupted = 0;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// rainop-NAME in one of the colon-separated directories of the environment variable `var`.
bool InSearchPath(const char* var, const std::string& name) {
  const char* value = std::getenv(var);
  if (value == nullptr || name.empty() || name.find('/') != std::string::npos) return false;
  std::string dirs = value;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && IsExecutableFile(dir + "/rainop-" + name)) return true;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return false;
}

// Whether a RainStorm token starts an operator command (splits the positional form).
bool IsOperator(const std::string& token) {
  if (token.rfind("hydfs:", 0) == 0) return token.size() > 6;
  if (token.find('/') != std::string::npos) return IsExecutableFile(token);
  const auto& names = BuiltinOperators();
  if (std::find(names.begin(), names.end(), token) != names.end()) return true;
  return InSearchPath("RAINSTORM_OPERATOR_PATH", token) || InSearchPath("PATH", token);
}

// Operator paths become absolute (workers start them from their own directories); a path that
// is not an executable file is refused here rather than on every worker.
Status ResolveOperatorPaths(stream::JobSpec* spec) {
  for (auto& argv : spec->stages) {
    if (argv.empty()) continue;
    std::string& op = argv[0];
    if (op.rfind("hydfs:", 0) == 0 || op.find('/') == std::string::npos) continue;
    if (!IsExecutableFile(op)) {
      return Status::InvalidArgument("operator " + op + " is not an executable file");
    }
    char* real = ::realpath(op.c_str(), nullptr);
    if (real == nullptr) return Status::InvalidArgument("operator " + op + ": cannot resolve path");
    op = real;
    std::free(real);
  }
  return Status::Ok();
}

// ---- attached mode ------------------------------------------------------------------------

bool Terminal(const std::string& state) {
  return state == "done" || state == "failed" || state == "cancelled";
}

// Sleeps up to `d`, returning early on Ctrl-C.
void Nap(std::chrono::milliseconds d) {
  auto until = Clock::now() + d;
  while (!g_interrupted && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string_view BytesField(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  if (v == nullptr) return {};
  if (v->type == msgpack::type::BIN) return {v->via.bin.ptr, v->via.bin.size};
  if (v->type == msgpack::type::STR) return {v->via.str.ptr, v->via.str.size};
  return {};
}

void PrintFinalJson(const std::string& job, const std::string& state, const std::string& reason,
                    uint64_t lines, uint64_t bytes) {
  PrintJsonLine({{"job", job},
                 {"state", state},
                 {"reason", reason},
                 {"output_lines", lines},
                 {"output_bytes", bytes}});
  std::fflush(stdout);
}

// Follows a running job until it ends: its output to stdout (not with --json), progress on
// stderr. Returns the exit code.
int Attach(const Context& ctx, const std::string& job) {
  Progress progress(!ctx.json && ::isatty(STDERR_FILENO));
  TimePoint started = Clock::now();
  TimePoint last_answer = started;
  TimePoint next_progress = started + kProgressEvery;
  uint64_t offset = 0, lines = 0;
  bool partial_line = false;  // the output so far does not end with '\n'
  std::string state, reason;
  Status last_error;
  for (;;) {
    if (g_interrupted) {
      progress.Clear();
      std::fprintf(stderr,
                   "rainctl: detached; job %s keeps running (rainctl job cancel %s to stop it)\n",
                   job.c_str(), job.c_str());
      return kExitInterrupted;
    }
    if (Clock::now() - last_answer > kGiveUp) {
      progress.Clear();
      std::fprintf(stderr,
                   "rainctl: job %s: no answer from the node for %lld s (%s); the job may still "
                   "be running\n",
                   job.c_str(), static_cast<long long>(ToMillis(kGiveUp) / 1000),
                   last_error.ToString().c_str());
      if (ctx.json) PrintFinalJson(job, state.empty() ? "unknown" : state, reason, lines, offset);
      return kExitUnreachable;
    }
    Outcome out = Command(ctx, "job.output",
                          {{"job", job},
                           {"offset", std::to_string(offset)},
                           {"max_bytes", std::to_string(1u << 20)},
                           {"wait_ms", std::to_string(kOutputWaitMs)}},
                          kOutputWaitMs + ctx.timeout_ms);
    if (g_interrupted) continue;
    if (!out.ok()) {
      // A node that cannot reach the leader answers Unavailable or Timeout itself: as transient
      // as no answer at all. Any other answer (NotFound...) is final.
      StatusCode code = out.status.code();
      bool transient = code == StatusCode::kUnavailable || code == StatusCode::kTimeout;
      if (out.usage || (out.remote && !transient)) {
        progress.Clear();
        return Fail(ctx, out);
      }
      last_error = out.status;
      Nap(std::chrono::milliseconds(200));
      continue;
    }
    last_answer = Clock::now();
    std::string_view data = BytesField(out.reply.payload, "data");
    if (!data.empty()) {
      progress.Clear();
      if (!ctx.json) {
        std::fwrite(data.data(), 1, data.size(), stdout);
        std::fflush(stdout);
        // A reader that pauses (`| (sleep 20; cat)`) blocks these writes: that is our wait,
        // not the node's silence.
        last_answer = Clock::now();
      }
      offset += data.size();
      lines += static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'));
      partial_line = data.back() != '\n';
    }
    state = Str(out.reply.payload, "state");
    reason = Str(out.reply.payload, "reason");
    // Over when the job ended and every output byte is printed: the leader says so
    // (`complete`), or an ended job has no more data.
    if (Terminal(state) && (Bool(out.reply.payload, "complete") || data.empty())) break;
    if (Clock::now() >= next_progress && !ctx.json && ::isatty(STDERR_FILENO)) {
      next_progress = Clock::now() + kProgressEvery;
      Outcome st = Command(ctx, "job.status", {{"job", job}});
      if (st.ok()) {
        last_answer = Clock::now();
        progress.Draw(st.reply.payload, started);
      }
    }
  }
  progress.Clear();
  if (partial_line) ++lines;
  if (ctx.json) PrintFinalJson(job, state, reason, lines, offset);
  if (state == "done") {
    if (!ctx.json) {
      std::fprintf(stderr, "rainctl: job %s done: %" PRIu64 " lines (%s) in %.3f s\n", job.c_str(),
                   lines, FormatBytes(offset).c_str(), ToMillis(Clock::now() - started) / 1000.0);
    }
    return kExitOk;
  }
  std::fprintf(stderr, "rainctl: job %s %s: %s\n", job.c_str(), state.c_str(),
               reason.empty() ? "(no reason given)" : reason.c_str());
  return kExitRemoteError;
}

struct SubmitOptions {
  bool detach = false;
  bool dry_run = false;                  // print the spec as JSON instead of submitting it
  std::optional<bool> header;            // --header / --no-header; unset: *.csv inputs have one
  bool keep = false;                     // --keep: what the job made stays after it ends
  std::optional<uint32_t> key_groups;    // --key-groups N
  std::optional<std::string> autoscale;  // --autoscale thresholds|target
  std::optional<uint32_t> cooldown_ms, max_tasks;
};

// Submits `spec` (already validated) and, unless detached, follows the job.
int Submit(Context& ctx, stream::JobSpec spec, const SubmitOptions& o) {
  Status paths = ResolveOperatorPaths(&spec);
  if (!paths.ok()) return Fail(ctx, paths, kExitUsage);
  if (o.header) spec.header = o.header;
  if (o.keep) spec.keep = true;
  if (o.key_groups) spec.key_groups = *o.key_groups;
  if (o.autoscale) spec.autoscale_policy = *o.autoscale;
  if (o.cooldown_ms) spec.cooldown_ms = *o.cooldown_ms;
  if (o.max_tasks) spec.max_tasks = *o.max_tasks;
  Status valid = stream::ValidateJobSpec(spec);
  if (!valid.ok()) return Fail(ctx, valid, kExitUsage);
  std::string bytes = stream::EncodeJobSpec(spec);
  if (o.dry_run) {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());  // our own bytes
    PrintJson(oh.get());
    return kExitOk;
  }
  CatchInterrupt();
  Outcome out =
      Command(ctx, "job.submit", {{"spec", bytes}}, std::max(ctx.timeout_ms, kSubmitTimeoutMs));
  if (g_interrupted) {
    std::fprintf(stderr,
                 "rainctl: interrupted while submitting; the job may still start (rainctl job "
                 "list)\n");
    return kExitInterrupted;
  }
  if (!out.ok()) return Fail(ctx, out);
  std::string job = Str(out.reply.payload, "job");
  if (job.empty()) {
    return Fail(ctx, Status::Corruption("job.submit reply names no job"), kExitRemoteError);
  }
  if (o.detach) {
    if (ctx.json) {
      PrintJsonLine({{"job", job}});
    } else {
      std::printf("%s\n", job.c_str());
    }
    return kExitOk;
  }
  std::fprintf(stderr, "rainctl: job %s submitted\n", job.c_str());
  return Attach(ctx, job);
}

// ---- RainStorm TOKENS... ------------------------------------------------------------------

// Global and submit flags written after the positional tokens (`... 0 0 0 --json`) are taken
// off the end; written before the first token CLI11 has parsed them already.
Status TakeTrailingFlags(std::vector<std::string>* words, Context* ctx, SubmitOptions* o,
                         std::string* name) {
  auto value_flag = [&](const std::string& flag, const std::string& value) -> Status {
    if (flag == "--node") {
      ctx->node = value;
    } else if (flag == "--name") {
      *name = value;
    } else if (flag == "--key-groups") {
      auto n = stream::ParseCount(value, "--key-groups", stream::kMaxKeyGroups);
      if (!n.ok()) return n.status();
      o->key_groups = static_cast<uint32_t>(*n);
    } else if (flag == "--autoscale") {
      o->autoscale = value;
    } else if (flag == "--cooldown-ms") {
      auto n = stream::ParseCount(value, "--cooldown-ms", stream::kMaxCooldownMs);
      if (!n.ok()) return n.status();
      o->cooldown_ms = static_cast<uint32_t>(*n);
    } else if (flag == "--max-tasks") {
      auto n = stream::ParseCount(value, "--max-tasks", stream::kMaxTasksPerStage);
      if (!n.ok()) return n.status();
      o->max_tasks = static_cast<uint32_t>(*n);
    } else {
      auto ms = stream::ParseCount(value, "--timeout", 3600000);
      if (!ms.ok()) return ms.status();
      if (*ms == 0) return Status::InvalidArgument("--timeout must be at least 1");
      ctx->timeout_ms = static_cast<int>(*ms);
    }
    return Status::Ok();
  };
  const std::vector<std::string> valued = {"--node",       "--timeout",   "--name",
                                           "--key-groups", "--autoscale", "--cooldown-ms",
                                           "--max-tasks"};
  while (!words->empty()) {
    const std::string& last = words->back();
    if (last == "--json" || last == "--detach" || last == "--dry-run" || last == "--header" ||
        last == "--no-header" || last == "--keep") {
      if (last == "--keep") o->keep = true;
      if (last == "--json") ctx->json = true;
      if (last == "--detach") o->detach = true;
      if (last == "--dry-run") o->dry_run = true;
      if (last == "--header" || last == "--no-header") o->header = last == "--header";
      words->pop_back();
      continue;
    }
    bool taken = false;
    for (const auto& flag : valued) {
      if (last.rfind(flag + "=", 0) == 0) {
        Status s = value_flag(flag, last.substr(flag.size() + 1));
        if (!s.ok()) return s;
        words->pop_back();
        taken = true;
      } else if (words->size() >= 2 && (*words)[words->size() - 2] == flag) {
        Status s = value_flag(flag, last);
        if (!s.ok()) return s;
        words->pop_back();
        words->pop_back();
        taken = true;
      }
      if (taken) break;
    }
    if (!taken) break;
  }
  return Status::Ok();
}

int RainStorm(Context& ctx, std::vector<std::string> words, SubmitOptions o, std::string name) {
  Status flags = TakeTrailingFlags(&words, &ctx, &o, &name);
  if (!flags.ok()) return Fail(ctx, flags, kExitUsage);
  if (words.empty()) {
    std::fprintf(stderr,
                 "rainctl: RainStorm: expected <Nstages> <Ntasks> <op1> [args] ... <src> <dest> "
                 "<exactly_once> <autoscale> <INPUT_RATE> <LW> <HW>\n"
                 "Run with RainStorm --help for usage.\n");
    return kExitUsage;
  }
  auto spec = stream::ParseRainStormArgs(words, IsOperator);
  if (!spec.ok()) return Fail(ctx, spec.status(), kExitUsage);
  if (o.autoscale && !spec->autoscale) {
    return Fail(ctx,
                Status::InvalidArgument("--autoscale " + *o.autoscale +
                                        " was given but autoscale_enabled is false"),
                kExitUsage);
  }
  spec->name = name;
  return Submit(ctx, std::move(*spec), o);
}

}  // namespace

void AddJobFlags(CLI::App* cmd, SubmitOptions* o) {
  auto* on = cmd->add_flag_callback(
      "--header", [o] { o->header = true; },
      "the first line of each input file is a CSV header, not data (default: for *.csv files)");
  auto* off = cmd->add_flag_callback(
      "--no-header", [o] { o->header = false; }, "every line of the input is data");
  on->excludes(off);
  cmd->add_option_function<uint32_t>(
         "--key-groups", [o](uint32_t n) { o->key_groups = n; },
         "key groups per job: the keys of every keyed stage fall into N groups, the unit of "
         "state and dedup (default 128; at least the tasks per stage, at most 4096)")
      ->check(CLI::Range(1u, stream::kMaxKeyGroups));
  cmd->add_option_function<std::string>(
         "--autoscale", [o](const std::string& p) { o->autoscale = p; },
         "the autoscaling policy: thresholds (the LW/HW rule, the default when autoscaling) or "
         "target (each stage sized from its measured true processing rate)")
      ->check(CLI::IsMember({"thresholds", "target"}));
  cmd->add_option_function<uint32_t>(
         "--cooldown-ms", [o](uint32_t n) { o->cooldown_ms = n; },
         "autoscaling: no action on a stage for this long after its last (default 5000)")
      ->check(CLI::Range(0u, stream::kMaxCooldownMs));
  cmd->add_option_function<uint32_t>(
         "--max-tasks", [o](uint32_t n) { o->max_tasks = n; },
         "autoscaling: the most tasks a stage may grow to (default: the key groups, at most 64)")
      ->check(CLI::Range(1u, stream::kMaxTasksPerStage));
  cmd->add_flag("--keep", o->keep,
                "keep the job's checkpoints, task logs and output spool after it ends (for "
                "rainctl job checkpoint and inspection); by default they are removed");
}

void AddStreamCommands(CLI::App& app, Context& ctx, int* exit_code) {
  // RainStorm: every word after the command is a token of the job (operator arguments such as
  // -i included), so the subcommand is a prefix command that keeps them in order.
  static SubmitOptions rs_opts;
  static std::string rs_name;
  auto* rainstorm = app.add_subcommand(
      "RainStorm",
      "run a job: RainStorm <Nstages> <Ntasks> <op1> [args] ... <opN> [args] <src> <dest> "
      "<exactly_once> <autoscale> <INPUT_RATE> <LW> <HW>, or RainStorm <op1> <op2> <src> "
      "<dest> <num_tasks>");
  rainstorm->prefix_command();
  rainstorm->fallthrough(false);  // the tokens are ours, not the parent's
  rainstorm->add_flag("--detach", rs_opts.detach, "print the job id and return at once");
  rainstorm->add_flag("--dry-run", rs_opts.dry_run, "print the job spec as JSON, submit nothing");
  rainstorm->add_option("--name", rs_name, "a label shown by job list");
  AddJobFlags(rainstorm, &rs_opts);
  rainstorm->add_option("--node", ctx.node, "HOST:PORT of the node to talk to");
  rainstorm->add_flag("--json", ctx.json, "machine-readable output");
  rainstorm->add_option("--timeout", ctx.timeout_ms, "deadline of each request, in ms")
      ->check(CLI::Range(1, 3600000));
  rainstorm->footer(
      "Operators: a built-in name (identity grep select count upper split wordcount filter "
      "template), a path to an executable, or hydfs:NAME. Quote an operator with its arguments "
      "as one word ('grep -i Parking') when the split is ambiguous. Flags go before the first "
      "token or after the last one.");
  rainstorm->callback([rainstorm, &ctx, exit_code] {
    *exit_code = RainStorm(ctx, rainstorm->remaining(), rs_opts, rs_name);
  });

  auto* job = app.add_subcommand("job", "stream jobs: submit, list, status, cancel, tasks");
  job->require_subcommand(1);

  static std::vector<std::string> stages;
  static uint32_t tasks = 1;
  static std::string src, dest, name;
  static bool live = false, exactly_once = true;
  static uint64_t rate = 0, lw = 0, hw = 0;
  static SubmitOptions submit_opts;
  auto* submit = job->add_subcommand(
      "submit", "submit a job and follow its output (until it ends, or Ctrl-C detaches)");
  submit->add_option("--stage", stages, "an operator command, one per stage in order ('grep -i X')")
      ->required();
  submit->add_option("--tasks", tasks, "tasks per stage")
      ->check(CLI::Range(1u, stream::kMaxTasksPerStage))
      ->capture_default_str();
  auto* src_opt = submit->add_option("--src", src, "HyDFS input file, or a prefix ending in /");
  auto* live_opt = submit->add_flag("--live", live, "the input comes from rainsource");
  src_opt->excludes(live_opt);
  submit->add_option("--dest", dest, "HyDFS output file (must not exist)")->required();
  submit->add_flag("--exactly-once,!--no-exactly-once", exactly_once,
                   "exactly-once delivery (default on)");
  submit->add_option("--rate", rate, "input tuples/s over all sources (default: unthrottled)");
  submit->add_option("--lw", lw,
                     "autoscaling thresholds: below LW tuples/s per task a stage "
                     "loses a task");
  submit->add_option("--hw", hw,
                     "autoscaling thresholds: above HW tuples/s per task a stage "
                     "gets a task");
  submit->add_option("--name", name, "a label shown by job list");
  submit->add_flag("--detach", submit_opts.detach, "print the job id and return at once");
  submit->add_flag("--dry-run", submit_opts.dry_run, "print the job spec as JSON, submit nothing");
  AddJobFlags(submit, &submit_opts);
  submit->callback([&ctx, exit_code] {
    stream::JobSpec spec;
    for (const auto& s : stages) {
      auto argv = stream::SplitCommand(s);
      if (!argv.ok()) {
        *exit_code = Fail(ctx, argv.status(), kExitUsage);
        return;
      }
      spec.stages.push_back(std::move(*argv));
    }
    if (src.empty() && !live) {
      *exit_code = Fail(ctx, Status::InvalidArgument("give --src FILE or --live"), kExitUsage);
      return;
    }
    spec.tasks = tasks;
    spec.src = src;
    spec.live = live;
    spec.dest = dest;
    spec.exactly_once = exactly_once;
    spec.input_rate = rate;
    spec.low_watermark = lw;
    spec.high_watermark = hw;
    spec.autoscale = submit_opts.autoscale.has_value();
    spec.name = name;
    *exit_code = Submit(ctx, std::move(spec), submit_opts);
  });

  job->add_subcommand("list", "every job the leader knows, with its state")
      ->callback([&ctx, exit_code] { *exit_code = Run(ctx, "job.list", {}, PrintJobs); });

  static std::string job_id;
  auto* status = job->add_subcommand("status", "one job: counters, rates, latency per stage");
  status->add_option("JOB", job_id, "job id")->required();
  status->callback([&ctx, exit_code] {
    *exit_code = Run(ctx, "job.status", {{"job", job_id}}, PrintStatus);
  });

  auto* cancel = job->add_subcommand("cancel", "stop a job (every task is killed)");
  cancel->add_option("JOB", job_id, "job id")->required();
  cancel->callback([&ctx, exit_code] {
    *exit_code = Run(ctx, "job.cancel", {{"job", job_id}}, [](const msgpack::object& p) {
      std::printf("job %s %s\n", Str(p, "job").c_str(), Str(p, "state").c_str());
    });
  });

  static uint32_t rescale_stage = 0, rescale_tasks = 0;
  auto* rescale = job->add_subcommand(
      "rescale",
      "move a keyed stage of a running autoscaling job to TASKS tasks (key groups move with "
      "their state; no other task restarts); returns once the rescale settled");
  rescale->add_option("JOB", job_id, "job id")->required();
  rescale->add_option("STAGE", rescale_stage, "the stage (2..N; 1 too for a live job)")->required();
  rescale->add_option("TASKS", rescale_tasks, "its tasks after")
      ->required()
      ->check(CLI::Range(1u, stream::kMaxTasksPerStage));
  rescale->callback([&ctx, exit_code] {
    *exit_code = Run(
        ctx, "job.rescale",
        {{"job", job_id},
         {"stage", std::to_string(rescale_stage)},
         {"tasks", std::to_string(rescale_tasks)}},
        [](const msgpack::object& p) {
          std::printf("job %s stage %llu: %llu tasks\n", Str(p, "job").c_str(),
                      static_cast<unsigned long long>(Uint(p, "stage")),
                      static_cast<unsigned long long>(Uint(p, "tasks")));
        },
        std::max(ctx.timeout_ms, kSubmitTimeoutMs));
  });

  auto run_tasks = [&ctx, exit_code] {
    std::map<std::string, std::string> args;
    if (!job_id.empty()) args["job"] = job_id;
    *exit_code = Run(ctx, "job.tasks", args, PrintTasks);
  };
  auto* job_tasks = job->add_subcommand("tasks", "tasks of every job (or of JOB)");
  job_tasks->add_option("JOB,--job", job_id, "only this job's tasks");
  job_tasks->callback(run_tasks);
  auto* list_tasks =
      app.add_subcommand("list_tasks", "tasks of every job: node, pid, op, log, rates");
  list_tasks->add_option("--job", job_id, "only this job's tasks");
  list_tasks->callback(run_tasks);

  static std::string ckpt_task, ckpt_file;
  static bool ckpt_all = false;
  auto* ckpt = job->add_subcommand(
      "checkpoint", "a task's checkpoint records in HyDFS, decoded (the last, or --all)");
  ckpt->add_option("JOB", job_id, "job id");
  ckpt->add_option("TASK", ckpt_task, "STAGE.INDEX, as list_tasks shows it (e.g. 2.0)");
  ckpt->add_option("--file", ckpt_file, "read this HyDFS checkpoint file instead");
  ckpt->add_flag("--all", ckpt_all, "every record, not only the last");
  ckpt->callback([&ctx, exit_code] {
    *exit_code = JobCheckpoint(ctx, job_id, ckpt_task, ckpt_file, ckpt_all);
  });

  // kill_task NODE PID: SIGKILL one task's operator process (a failure drill). NODE is the
  // node's HOST:PORT or member id (as list_tasks prints it); the node refuses a pid that is not
  // one of its tasks' operators.
  static std::string kill_node, kill_pid;
  auto* kill = app.add_subcommand(
      "kill_task", "SIGKILL a task's operator process on NODE (list_tasks shows NODE and PID)");
  kill->add_option("NODE", kill_node, "HOST:PORT or member id of the node")->required();
  kill->add_option("PID", kill_pid, "the operator's pid")->required();
  kill->callback([&ctx, exit_code] {
    Context node_ctx = ctx;
    size_t hash = kill_node.find('#');
    node_ctx.node = hash == std::string::npos ? kill_node : kill_node.substr(0, hash);
    *exit_code =
        Run(node_ctx, "stream.kill_task", {{"pid", kill_pid}}, [](const msgpack::object& p) {
          std::printf("killed task %s (pid %s)\n", Str(p, "task").c_str(), Str(p, "pid").c_str());
        });
  });
}

}  // namespace rs::ctl
