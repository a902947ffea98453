// JobSpec: what a user submits (daemon/stream/README.md). Shared by rainctl, which builds it from
// one of three command-line forms, and by the leader, which validates and runs it. Travels as the
// MessagePack bytes of a map in the "spec" argument of job.submit. Pure and thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"
#include "shared/stream/key_groups.h"

namespace rs::stream {

inline constexpr uint32_t kMaxStages = 16;
inline constexpr uint32_t kMaxTasksPerStage = 64;
inline constexpr uint32_t kDefaultCooldownMs = 5000;
inline constexpr uint32_t kMaxCooldownMs = 3600000;

struct JobSpec {
  // One operator command per stage: argv[0] is a built-in name ("grep"), a path to an executable,
  // or "hydfs:NAME" (an executable stored in HyDFS); the rest are its arguments.
  std::vector<std::vector<std::string>> stages;
  uint32_t tasks = 1;  // tasks per stage
  // Input: a HyDFS file, or every file under a name prefix ending in '/' (the spec's
  // "directory"). Empty with live = true: the input comes from rainsource.
  std::string src;
  bool live = false;
  std::string dest;  // HyDFS file the output is appended to; created by the job, must not exist
  bool exactly_once = true;
  // Autoscaling (daemon/stream/README.md "Autoscaling"): accepted and validated here; the
  // leader refuses it until rescaling lands.
  bool autoscale = false;
  uint64_t input_rate = 0;                         // tuples/s over all sources; 0 = unthrottled
  uint64_t low_watermark = 0, high_watermark = 0;  // autoscaling thresholds (tuples/s per task)
  // "thresholds" (the spec's LW/HW) or "target" (sized from each stage's true processing rate).
  std::string autoscale_policy = "thresholds";
  uint32_t cooldown_ms = kDefaultCooldownMs;  // no action on a stage this long after its last
  uint32_t max_tasks = 0;  // per stage when autoscaling; 0: min(key groups, kMaxTasksPerStage)
  std::string name;        // optional label shown by job list
  // Whether the first line of each input file is a CSV header rather than data: a header is
  // never a tuple (operators still get it, for column names). Unset: files named *.csv have one.
  std::optional<bool> header;
  // Keep what the job made after it ends (its HyDFS checkpoints, the task logs and directories
  // on the workers, the output spool), for inspection. By default all of it goes.
  bool keep = false;
  // Key groups per job (key_groups.h): the keys of every keyed stage fall into this many
  // groups, the unit of state, dedup and (later) rescaling. At least `tasks`.
  uint32_t key_groups = kDefaultKeyGroups;
};

// The header rule for an input file: the spec's choice, else whether `name` ends in ".csv"
// (any case).
bool InputHasHeader(const JobSpec& spec, const std::string& name);

std::string EncodeJobSpec(const JobSpec& spec);
Result<JobSpec> DecodeJobSpec(std::string_view bytes);
// The checks every form shares: stage and task counts in range, non-empty operators, a source
// (or live), a destination, watermarks ordered, and with autoscaling a known policy, HW > LW
// for the thresholds, a cooldown and a task maximum in range. InvalidArgument naming the
// problem.
Status ValidateJobSpec(const JobSpec& spec);
// The most tasks a stage of this job may have: `tasks` without autoscaling, else max_tasks or,
// when 0, min(key groups, kMaxTasksPerStage).
uint32_t MaxTasks(const JobSpec& spec);

// "true"/"false"/"1"/"0" (also yes/no, any case); InvalidArgument otherwise, naming `what`.
Result<bool> ParseBool(const std::string& text, const std::string& what);
// A non-negative decimal integer <= max; InvalidArgument naming `what` otherwise.
Result<uint64_t> ParseCount(const std::string& text, const std::string& what,
                            uint64_t max = UINT64_MAX);

// The positional forms of `rainctl RainStorm ...` (tokens after the word RainStorm):
//   spec form:  Nstages Ntasks op1 [args...] ... opN [args...] src dest exactly_once autoscale
//               INPUT_RATE LW HW        (the last 7 tokens are fixed)
//   older form: op1 op2 src dest num_tasks   (two stages, exactly-once on, unthrottled)
// In the spec form the operator tokens are split into N commands: with exactly 2N tokens each
// operator takes one argument; with exactly N tokens each one starting with an operator, each
// is a whole command; otherwise a new command starts at each token `is_operator` accepts (a
// built-in name, a path, hydfs:NAME), and a single token holding spaces whose first word is an
// operator is a whole command ('grep -i Parking'). An ambiguous split is an InvalidArgument that
// suggests quoting.
Result<JobSpec> ParseRainStormArgs(const std::vector<std::string>& tokens,
                                   const std::function<bool(const std::string&)>& is_operator);

// Splits a command written as one string ("grep -i 'No Parking'") into argv as sh would:
// whitespace separates words; single or double quotes group them; outside quotes a backslash
// escapes the next character, inside double quotes only " \ $ and ` (so "\." stays \.), inside
// single quotes nothing. An unterminated quote or an empty command is InvalidArgument.
Result<std::vector<std::string>> SplitCommand(const std::string& command);

}  // namespace rs::stream
