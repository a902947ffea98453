#include "shared/stream/job_spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <msgpack.hpp>

#include "shared/wire/envelope.h"
#include "shared/wire/fields.h"

namespace rs::stream {

std::string EncodeJobSpec(const JobSpec& s) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_map(17);
  pk.pack("stages");
  pk.pack_array(static_cast<uint32_t>(s.stages.size()));
  for (const auto& argv : s.stages) pk.pack(argv);
  pk.pack("tasks");
  pk.pack_uint32(s.tasks);
  pk.pack("src");
  pk.pack(s.src);
  pk.pack("live");
  pk.pack(s.live);
  pk.pack("dest");
  pk.pack(s.dest);
  pk.pack("exactly_once");
  pk.pack(s.exactly_once);
  pk.pack("autoscale");
  pk.pack(s.autoscale);
  pk.pack("input_rate");
  pk.pack_uint64(s.input_rate);
  pk.pack("lw");
  pk.pack_uint64(s.low_watermark);
  pk.pack("hw");
  pk.pack_uint64(s.high_watermark);
  pk.pack("name");
  pk.pack(s.name);
  pk.pack("keep");
  pk.pack(s.keep);
  pk.pack("key_groups");
  pk.pack_uint32(s.key_groups);
  pk.pack("autoscale_policy");
  pk.pack(s.autoscale_policy);
  pk.pack("cooldown_ms");
  pk.pack_uint32(s.cooldown_ms);
  pk.pack("max_tasks");
  pk.pack_uint32(s.max_tasks);
  pk.pack("header");
  if (s.header) {
    pk.pack(*s.header);
  } else {
    pk.pack_nil();
  }
  return std::string(buf.data(), buf.size());
}

bool InputHasHeader(const JobSpec& spec, const std::string& name) {
  if (spec.header) return *spec.header;
  if (name.size() < 4) return false;
  std::string ext = name.substr(name.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".csv";
}

Result<JobSpec> DecodeJobSpec(std::string_view bytes) {
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         msgpack::unpack_limit(1024, 256, 4096, 1u << 20, 0, 8));
    if (off != bytes.size()) return Status::InvalidArgument("trailing bytes after a job spec");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("job spec does not decode: ") + e.what());
  }
  const msgpack::object& o = oh.get();
  if (o.type != msgpack::type::MAP) return Status::InvalidArgument("job spec is not a map");
  wire::FieldReader r(o, "job spec");
  JobSpec s;
  if (const msgpack::object* st = r.Array("stages")) {
    for (uint32_t i = 0; i < st->via.array.size; ++i) {
      const msgpack::object& a = st->via.array.ptr[i];
      if (a.type != msgpack::type::ARRAY) {
        r.Fail("job spec: a stage is not an array of strings");
        break;
      }
      std::vector<std::string> argv;
      for (uint32_t j = 0; j < a.via.array.size; ++j) {
        std::string w;
        if (!wire::ReadString(a.via.array.ptr[j], &w)) {
          r.Fail("job spec: an operator argument is not a string");
          break;
        }
        argv.push_back(std::move(w));
      }
      s.stages.push_back(std::move(argv));
    }
  }
  s.tasks = static_cast<uint32_t>(r.Uint("tasks", UINT32_MAX));
  s.src = r.StrOr("src", "");
  s.live = r.BoolOr("live", false);
  s.dest = r.Str("dest");
  s.exactly_once = r.BoolOr("exactly_once", true);
  s.autoscale = r.BoolOr("autoscale", false);
  s.input_rate = r.UintOr("input_rate", 0);
  s.low_watermark = r.UintOr("lw", 0);
  s.high_watermark = r.UintOr("hw", 0);
  s.name = r.StrOr("name", "", 256);
  s.keep = r.BoolOr("keep", false);
  s.key_groups = static_cast<uint32_t>(r.UintOr("key_groups", kDefaultKeyGroups, UINT32_MAX));
  s.autoscale_policy = r.StrOr("autoscale_policy", "thresholds", 64);
  s.cooldown_ms = static_cast<uint32_t>(r.UintOr("cooldown_ms", kDefaultCooldownMs, UINT32_MAX));
  s.max_tasks = static_cast<uint32_t>(r.UintOr("max_tasks", 0, UINT32_MAX));
  if (const msgpack::object* h = r.Get("header"); h && h->type != msgpack::type::NIL) {
    if (h->type != msgpack::type::BOOLEAN) {
      r.Fail("job spec: header is not a bool");
    } else {
      s.header = h->via.boolean;
    }
  }
  if (!r.ok()) return Status::InvalidArgument(r.status().message());
  return s;
}

Status ValidateJobSpec(const JobSpec& s) {
  if (s.stages.empty() || s.stages.size() > kMaxStages) {
    return Status::InvalidArgument("a job has 1 to " + std::to_string(kMaxStages) +
                                   " stages, not " + std::to_string(s.stages.size()));
  }
  if (s.tasks < 1 || s.tasks > kMaxTasksPerStage) {
    return Status::InvalidArgument("tasks per stage must be 1 to " +
                                   std::to_string(kMaxTasksPerStage) + ", not " +
                                   std::to_string(s.tasks));
  }
  if (s.key_groups < s.tasks || s.key_groups > kMaxKeyGroups) {
    return Status::InvalidArgument("key groups must be " + std::to_string(s.tasks) +
                                   " (the tasks per stage) to " + std::to_string(kMaxKeyGroups) +
                                   ", not " + std::to_string(s.key_groups));
  }
  for (size_t i = 0; i < s.stages.size(); ++i) {
    if (s.stages[i].empty() || s.stages[i][0].empty()) {
      return Status::InvalidArgument("stage " + std::to_string(i + 1) + " has no operator");
    }
  }
  if (s.live && !s.src.empty()) {
    return Status::InvalidArgument("a job reads either a HyDFS source or a live rainsource");
  }
  if (!s.live && s.src.empty()) return Status::InvalidArgument("no source file given");
  if (s.dest.empty()) return Status::InvalidArgument("no destination file given");
  if (s.dest == s.src) return Status::InvalidArgument("the destination is the source file");
  if (s.high_watermark != 0 && s.low_watermark > s.high_watermark) {
    return Status::InvalidArgument("LW (" + std::to_string(s.low_watermark) + ") is above HW (" +
                                   std::to_string(s.high_watermark) + ")");
  }
  if (!s.autoscale) return Status::Ok();
  if (s.autoscale_policy == "thresholds") {
    if (s.high_watermark == 0) {
      return Status::InvalidArgument(
          "autoscaling with thresholds needs HW > 0 (tuples/s per task above which a stage "
          "gets a task), or the target policy (--autoscale target)");
    }
    if (s.low_watermark >= s.high_watermark) {
      return Status::InvalidArgument("LW (" + std::to_string(s.low_watermark) +
                                     ") must be below HW (" + std::to_string(s.high_watermark) +
                                     ") when autoscaling");
    }
  } else if (s.autoscale_policy != "target") {
    return Status::InvalidArgument("autoscale policy must be thresholds or target, not '" +
                                   s.autoscale_policy + "'");
  }
  if (s.cooldown_ms > kMaxCooldownMs) {
    return Status::InvalidArgument("cooldown must be 0 to " + std::to_string(kMaxCooldownMs) +
                                   " ms, not " + std::to_string(s.cooldown_ms));
  }
  uint32_t cap = std::min(s.key_groups, kMaxTasksPerStage);
  if (s.max_tasks != 0 && (s.max_tasks < s.tasks || s.max_tasks > cap)) {
    return Status::InvalidArgument(
        "max tasks must be " + std::to_string(s.tasks) + " (the tasks per stage) to " +
        std::to_string(cap) + " (the key groups, at most " + std::to_string(kMaxTasksPerStage) +
        "), not " + std::to_string(s.max_tasks));
  }
  return Status::Ok();
}

uint32_t MaxTasks(const JobSpec& s) {
  if (!s.autoscale) return s.tasks;
  if (s.max_tasks != 0) return s.max_tasks;
  return std::max(s.tasks, std::min(s.key_groups, kMaxTasksPerStage));
}

Result<bool> ParseBool(const std::string& text, const std::string& what) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return Status::InvalidArgument(what + " must be true or false (or 1/0), not '" + text + "'");
}

Result<uint64_t> ParseCount(const std::string& text, const std::string& what, uint64_t max) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
    return Status::InvalidArgument(what + " must be a non-negative integer, not '" + text + "'");
  }
  if (v > max) {
    return Status::InvalidArgument(what + " must be at most " + std::to_string(max) + ", not " +
                                   text);
  }
  return v;
}

Result<std::vector<std::string>> SplitCommand(const std::string& command) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < command.size() && command[i + 1] != '\0' &&
                 std::strchr("\"\\$`", command[i + 1]) != nullptr) {
        // As in sh: inside double quotes a backslash escapes only " \ $ ` ("\." stays "\.").
        word += command[++i];
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      word += command[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) return Status::InvalidArgument("unterminated quote in '" + command + "'");
  if (in_word) out.push_back(std::move(word));
  if (out.empty()) return Status::InvalidArgument("empty operator command");
  return out;
}

namespace {

bool HasSpace(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

Result<std::vector<std::vector<std::string>>> SplitOperators(
    const std::vector<std::string>& toks, size_t n,
    const std::function<bool(const std::string&)>& is_operator) {
  std::vector<std::vector<std::string>> ops;
  // Exactly one word per operator: each is a whole command ('grep -i x' quoted into one word).
  // Only when every word starts with an operator: `2 1 grep Parking ...` is one command too
  // few, not a second operator named Parking (the general rule below reports it).
  if (toks.size() == n) {
    bool whole = true;
    for (const auto& t : toks) {
      auto argv = SplitCommand(t);
      if (!argv.ok() || !is_operator((*argv)[0])) {
        whole = false;
        break;
      }
      ops.push_back(std::move(*argv));
    }
    if (whole) return ops;
    ops.clear();
  }
  // The classic form: each operator takes exactly one argument.
  if (toks.size() == 2 * n) {
    bool classic = true;
    for (size_t i = 0; i < n; ++i) classic = classic && is_operator(toks[2 * i]);
    if (classic) {
      for (size_t i = 0; i < n; ++i) ops.push_back({toks[2 * i], toks[2 * i + 1]});
      return ops;
    }
  }
  // Otherwise a new command starts at each operator name.
  for (const auto& t : toks) {
    if (HasSpace(t)) {
      // A whole command in one word ('grep -i x') starts a stage; other words with spaces are
      // arguments ('No Parking').
      auto argv = SplitCommand(t);
      if (argv.ok() && is_operator((*argv)[0])) {
        ops.push_back(std::move(*argv));
        continue;
      }
      size_t first = t.find_first_not_of(" \t\n");
      if (!argv.ok() && first != std::string::npos) {
        std::string word = t.substr(first, t.find_first_of(" \t\n", first) - first);
        if (is_operator(word)) return argv.status();  // a command, badly quoted
      }
    }
    if (is_operator(t) || ops.empty()) {
      if (ops.empty() && !is_operator(t)) {
        return Status::InvalidArgument("'" + t +
                                       "' is not an operator (a built-in name, a path to an "
                                       "executable, or hydfs:NAME)");
      }
      ops.push_back({t});
    } else {
      ops.back().push_back(t);
    }
  }
  if (ops.size() != n) {
    return Status::InvalidArgument(
        "found " + std::to_string(ops.size()) + " operators where Nstages is " + std::to_string(n) +
        "; quote each operator with its arguments as one word, e.g. 'grep -i Parking'");
  }
  return ops;
}

// The positional forms' <src>: a HyDFS file (or prefix/), or `-`, the job's input from stdin
// through rainsource (a live job).
void SetSource(JobSpec* s, const std::string& src) {
  if (src == "-") {
    s->live = true;
  } else {
    s->src = src;
  }
}

}  // namespace

Result<JobSpec> ParseRainStormArgs(const std::vector<std::string>& t,
                                   const std::function<bool(const std::string&)>& is_operator) {
  JobSpec s;
  bool spec_form =
      !t.empty() && !t[0].empty() &&
      std::all_of(t[0].begin(), t[0].end(), [](unsigned char c) { return std::isdigit(c); });
  if (!spec_form) {
    if (t.size() != 5) {
      return Status::InvalidArgument(
          "expected RainStorm <Nstages> <Ntasks> <op1> [args] ... <src> <dest> <exactly_once> "
          "<autoscale> <INPUT_RATE> <LW> <HW>, or the older RainStorm <op1> <op2> <src> <dest> "
          "<num_tasks>");
    }
    for (int i = 0; i < 2; ++i) {
      auto argv = SplitCommand(t[i]);
      if (!argv.ok()) return argv.status();
      s.stages.push_back(std::move(*argv));
    }
    SetSource(&s, t[2]);
    s.dest = t[3];
    auto n = ParseCount(t[4], "num_tasks", kMaxTasksPerStage);
    if (!n.ok()) return n.status();
    s.tasks = static_cast<uint32_t>(*n);
    Status st = ValidateJobSpec(s);
    if (!st.ok()) return st;
    return s;
  }
  if (t.size() < 2 + 1 + 7) {
    return Status::InvalidArgument(
        "too few words: RainStorm <Nstages> <Ntasks> <op1> [args] ... "
        "<src> <dest> <exactly_once> <autoscale> <INPUT_RATE> <LW> "
        "<HW>");
  }
  auto nstages = ParseCount(t[0], "Nstages", kMaxStages);
  if (!nstages.ok()) return nstages.status();
  auto ntasks = ParseCount(t[1], "Ntasks_per_stage", kMaxTasksPerStage);
  if (!ntasks.ok()) return ntasks.status();
  if (*nstages == 0) return Status::InvalidArgument("Nstages must be at least 1");
  size_t end = t.size() - 7;
  SetSource(&s, t[end]);
  s.dest = t[end + 1];
  auto eo = ParseBool(t[end + 2], "exactly_once");
  if (!eo.ok()) return eo.status();
  auto as = ParseBool(t[end + 3], "autoscale_enabled");
  if (!as.ok()) return as.status();
  auto rate = ParseCount(t[end + 4], "INPUT_RATE");
  if (!rate.ok()) return rate.status();
  auto lw = ParseCount(t[end + 5], "LW");
  if (!lw.ok()) return lw.status();
  auto hw = ParseCount(t[end + 6], "HW");
  if (!hw.ok()) return hw.status();
  std::vector<std::string> op_tokens(t.begin() + 2, t.begin() + static_cast<long>(end));
  auto ops = SplitOperators(op_tokens, *nstages, is_operator);
  if (!ops.ok()) return ops.status();
  s.stages = std::move(*ops);
  s.tasks = static_cast<uint32_t>(*ntasks);
  s.exactly_once = *eo;
  s.autoscale = *as;
  s.input_rate = *rate;
  s.low_watermark = *lw;
  s.high_watermark = *hw;
  Status st = ValidateJobSpec(s);
  if (!st.ok()) return st;
  return s;
}

}  // namespace rs::stream
