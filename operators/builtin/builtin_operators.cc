#include "operators/builtin/builtin_operators.h"

#include <regex.h>

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "shared/util/csv.h"

namespace rs::op {

const char kIdentityUsage[] =
    "usage: rainop-identity\n"
    "A RainStorm operator (operators/PROTOCOL.md) that emits every input tuple unchanged.\n";

const char kGrepUsage[] =
    "usage: rainop-grep [-v] [-i] [-E] [-x] [--column COL] PATTERN\n"
    "A RainStorm operator (operators/PROTOCOL.md) that emits the tuples whose value matches\n"
    "PATTERN, unchanged.\n"
    "  PATTERN       a substring by default\n"
    "  -E            PATTERN is a POSIX extended regular expression\n"
    "  -i            ignore case (ASCII letters for substrings)\n"
    "  -v            emit the tuples that do NOT match\n"
    "  -x            the whole value (or column) must match: equality for a substring,\n"
    "                an anchored match for -E\n"
    "  --column COL  match one CSV column of the value instead of the whole value; COL is a\n"
    "                0-based column index or a name from the job's CSV header (a row without\n"
    "                that column has it empty). With a name, the header line itself is skipped.\n";

const char kSelectUsage[] =
    "usage: rainop-select COLS\n"
    "A RainStorm operator (operators/PROTOCOL.md) that emits [key, CSV line of the selected\n"
    "columns] for every input tuple, whose value is read as a CSV line.\n"
    "  COLS  comma-separated 0-based column indexes (\"0,3\"), inclusive ranges (\"0-2\") or\n"
    "        names from the job's CSV header (\"OBJECTID,Sign_Type\"), in output order.\n"
    "        Columns a row lacks come out empty. With names, the header line itself is skipped.\n";

const char kCountUsage[] =
    "usage: rainop-count COL\n"
    "A stateful RainStorm operator (operators/PROTOCOL.md) that counts the values of one CSV\n"
    "column. For every input tuple it emits [value, \"value,count\"], count being the running\n"
    "count of that value in this task. It asks the previous stage to partition by COL, so\n"
    "every occurrence of a value reaches the same task.\n"
    "  COL  a 0-based column index or a name from the job's CSV header. With a name, the\n"
    "       header line itself is skipped.\n";

namespace {

std::string JoinArgs(std::string_view name, const std::vector<std::string>& args) {
  std::string out(name);
  for (const auto& a : args) {
    out += ' ';
    out += a;
  }
  return out;
}

// One column argument: a single index or name (no lists, no ranges).
Result<ColumnSpec> ParseSingleColumn(std::string_view text) {
  Result<ColumnSpec> spec = ParseColumnSpec(text);
  if (!spec.ok()) return spec;
  if (spec->items.size() != 1 || spec->items[0].kind == ColumnItem::Kind::kRange) {
    std::string message = "'";
    message += text;
    message += "' is not one column (expected a 0-based index or a name)";
    return Status::InvalidArgument(std::move(message));
  }
  return spec;
}

// The field at `index` of `fields`, empty when the row is shorter.
std::string_view FieldAt(const std::vector<std::string>& fields, size_t index) {
  return index < fields.size() ? std::string_view(fields[index]) : std::string_view();
}

class IdentityOperator final : public Operator {
 public:
  Result<ReadyInfo> Hello(const Context&) override { return ReadyInfo{false, {}, "identity"}; }
  void Process(std::string_view key, std::string_view value, Emitter& out) override {
    out.Emit(key, value);
  }
};

class GrepOperator final : public Operator {
 public:
  struct Options {
    bool invert = false;
    bool icase = false;
    bool extended = false;
    bool whole = false;  // -x
    std::optional<ColumnSpec> column;
    std::string pattern;
  };

  GrepOperator(Options options, std::string name)
      : options_(std::move(options)), name_(std::move(name)) {
    if (options_.icase && !options_.extended) {
      std::transform(options_.pattern.begin(), options_.pattern.end(), options_.pattern.begin(),
                     [](char c) { return AsciiLower(c); });
    }
  }
  ~GrepOperator() override {
    if (regex_compiled_) regfree(&regex_);
  }

  // Compiles the regex (with -E): InvalidArgument with regerror's text when it does not.
  Status Compile() {
    if (!options_.extended) return Status::Ok();
    int flags = REG_EXTENDED | REG_NOSUB | (options_.icase ? REG_ICASE : 0);
    std::string pattern = options_.whole ? "^(" + options_.pattern + ")$" : options_.pattern;
    int rc = regcomp(&regex_, pattern.c_str(), flags);
    if (rc != 0) {
      char buf[256];
      regerror(rc, &regex_, buf, sizeof(buf));
      return Status::InvalidArgument("bad regular expression '" + options_.pattern + "': " + buf);
    }
    regex_compiled_ = true;
    return Status::Ok();
  }

  Result<ReadyInfo> Hello(const Context& ctx) override {
    if (options_.column) {
      Result<std::vector<size_t>> cols = ResolveColumns(*options_.column, ctx.csv_header);
      if (!cols.ok()) return cols.status();
      column_ = cols->front();
      if (options_.column->has_names()) header_ = ctx.csv_header;
    }
    return ReadyInfo{false, {}, name_};
  }

  void Process(std::string_view key, std::string_view value, Emitter& out) override {
    if (header_ && IsCsvHeaderLine(value, *header_)) return;
    std::string_view subject = value;
    if (column_) {
      ParseCsvLine(value, &fields_);
      subject = FieldAt(fields_, *column_);
    }
    if (Matches(subject) != options_.invert) out.Emit(key, value);
  }

 private:
  static char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

  bool Matches(std::string_view s) const {
    if (options_.extended) {
      regmatch_t m[1];
      m[0].rm_so = 0;
      m[0].rm_eo = static_cast<regoff_t>(s.size());
      // REG_STARTEND: the subject is [rm_so, rm_eo), no NUL terminator needed.
      return regexec(&regex_, s.data() == nullptr ? "" : s.data(), 1, m, REG_STARTEND) == 0;
    }
    const std::string& p = options_.pattern;
    if (options_.whole) {
      if (s.size() != p.size()) return false;
      if (!options_.icase) return s == p;
      return std::equal(s.begin(), s.end(), p.begin(),
                        [](char a, char b) { return AsciiLower(a) == b; });
    }
    if (!options_.icase) return s.find(p) != std::string_view::npos;
    return std::search(s.begin(), s.end(), p.begin(), p.end(),
                       [](char a, char b) { return AsciiLower(a) == b; }) != s.end() ||
           p.empty();
  }

  Options options_;
  std::string name_;
  regex_t regex_{};
  bool regex_compiled_ = false;
  std::optional<size_t> column_;
  std::optional<std::string> header_;  // set when columns were named: skip this line
  std::vector<std::string> fields_;
};

class SelectOperator final : public Operator {
 public:
  SelectOperator(ColumnSpec spec, std::string name)
      : spec_(std::move(spec)), name_(std::move(name)) {}

  Result<ReadyInfo> Hello(const Context& ctx) override {
    Result<std::vector<size_t>> cols = ResolveColumns(spec_, ctx.csv_header);
    if (!cols.ok()) return cols.status();
    columns_ = std::move(cols.value());
    if (spec_.has_names()) header_ = ctx.csv_header;
    return ReadyInfo{false, {}, name_};
  }

  void Process(std::string_view key, std::string_view value, Emitter& out) override {
    if (header_ && IsCsvHeaderLine(value, *header_)) return;
    ParseCsvLine(value, &fields_);
    line_.clear();
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (i > 0) line_.push_back(',');
      AppendCsvField(FieldAt(fields_, columns_[i]), &line_);
    }
    out.Emit(key, line_);
  }

 private:
  ColumnSpec spec_;
  std::string name_;
  std::vector<size_t> columns_;
  std::optional<std::string> header_;
  std::vector<std::string> fields_;
  std::string line_;
};

// Transparent hashing, so lookups by string_view do not build a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class CountOperator final : public Operator {
 public:
  CountOperator(ColumnSpec spec, std::string name)
      : spec_(std::move(spec)), name_(std::move(name)) {}

  Result<ReadyInfo> Hello(const Context& ctx) override {
    Result<std::vector<size_t>> cols = ResolveColumns(spec_, ctx.csv_header);
    if (!cols.ok()) return cols.status();
    column_ = cols->front();
    if (spec_.has_names()) header_ = ctx.csv_header;
    ReadyInfo info{true, column_, name_};
    info.keyed_state = true;
    info.state_changes = true;
    info.regroup = true;
    return info;
  }

  void Process(std::string_view key, std::string_view value, Emitter& out) override {
    (void)key;
    if (header_ && IsCsvHeaderLine(value, *header_)) return;
    ParseCsvLine(value, &fields_);
    std::string_view field = FieldAt(fields_, column_);
    if (out.group() >= groups_.size()) groups_.resize(out.group() + 1);
    Group& group = groups_[out.group()];
    auto it = group.counts.find(field);
    if (it == group.counts.end()) it = group.counts.emplace(std::string(field), Entry{}).first;
    uint64_t count = ++it->second.count;
    if (!it->second.changed) {
      it->second.changed = true;
      group.changed.push_back(&*it);  // elements of an unordered_map never move
    }
    line_.clear();
    AppendCsvField(field, &line_);
    line_ += ',';
    line_ += std::to_string(count);
    out.Emit(field, line_);
  }

  // Keyed state: {group: {value: count}}, groups with no value left out.
  void Snapshot(StatePacker& pk) override {
    uint32_t used = 0;
    for (const auto& group : groups_) used += group.counts.empty() ? 0 : 1;
    pk.pack_map(used);
    for (uint32_t g = 0; g < groups_.size(); ++g) {
      Group& group = groups_[g];
      if (group.counts.empty()) continue;
      pk.pack_uint32(g);
      pk.pack_map(static_cast<uint32_t>(group.counts.size()));
      for (const auto& [value, entry] : group.counts) PackCount(pk, value, entry.count);
      ClearChanged(group);
    }
  }

  // The counts changed since the last snapshot: {group: {value: count}} (counts only grow, so
  // nothing is ever removed).
  void SnapshotChanges(StatePacker& pk) override {
    uint32_t used = 0;
    for (const auto& group : groups_) used += group.changed.empty() ? 0 : 1;
    pk.pack_map(used);
    for (uint32_t g = 0; g < groups_.size(); ++g) {
      Group& group = groups_[g];
      if (group.changed.empty()) continue;
      pk.pack_uint32(g);
      pk.pack_map(static_cast<uint32_t>(group.changed.size()));
      for (const auto* kv : group.changed) PackCount(pk, kv->first, kv->second.count);
      ClearChanged(group);
    }
  }

  Status Restore(const msgpack::object& state) override {
    std::vector<Group> groups;
    if (state.type != msgpack::type::NIL) {
      if (state.type != msgpack::type::MAP) {
        return Status::InvalidArgument("count state is not a map of group -> counts");
      }
      RS_RETURN_IF_ERROR(SetGroups(state, &groups, false));
    }
    groups_ = std::move(groups);
    return Status::Ok();
  }

  // {group: counts or nil}: those groups' counts replaced, or (nil) dropped.
  Status Regroup(const msgpack::object& groups) override {
    return SetGroups(groups, &groups_, true);
  }

 private:
  ColumnSpec spec_;
  std::string name_;
  size_t column_ = 0;
  std::optional<std::string> header_;
  std::vector<std::string> fields_;
  std::string line_;
  static void PackCount(StatePacker& pk, std::string_view value, uint64_t count) {
    pk.pack_str(static_cast<uint32_t>(value.size()));
    pk.pack_str_body(value.data(), static_cast<uint32_t>(value.size()));
    pk.pack_uint64(count);
  }

  struct Entry {
    uint64_t count = 0;
    bool changed = false;  // since the last snapshot: listed in Group::changed
  };
  using Counts = std::unordered_map<std::string, Entry, StringHash, std::equal_to<>>;
  struct Group {
    Counts counts;
    std::vector<Counts::value_type*> changed;
  };
  static void ClearChanged(Group& group) {
    for (auto* kv : group.changed) kv->second.changed = false;
    group.changed.clear();
  }
  static constexpr uint64_t kMaxGroup = 1u << 16;  // well above any job's key groups

  // Sets each group of the map {group: {value: count}} (`nil_drops`: a nil drops the group).
  // Each named group is parsed whole before it replaces the old one.
  static Status SetGroups(const msgpack::object& map, std::vector<Group>* groups, bool nil_drops) {
    for (uint32_t i = 0; i < map.via.map.size; ++i) {
      const msgpack::object_kv& group = map.via.map.ptr[i];
      bool drop = nil_drops && group.val.type == msgpack::type::NIL;
      if (group.key.type != msgpack::type::POSITIVE_INTEGER || group.key.via.u64 >= kMaxGroup ||
          (group.val.type != msgpack::type::MAP && !drop)) {
        return Status::InvalidArgument("count state entry " + std::to_string(i) +
                                       " is not key group -> map of counts");
      }
      size_t g = static_cast<size_t>(group.key.via.u64);
      Group parsed;
      if (!drop) {
        const msgpack::object& counts = group.val;
        for (uint32_t j = 0; j < counts.via.map.size; ++j) {
          const msgpack::object_kv& kv = counts.via.map.ptr[j];
          std::string_view value;
          if (!ReadBytes(kv.key, &value) || kv.val.type != msgpack::type::POSITIVE_INTEGER) {
            return Status::InvalidArgument("count state of group " + std::to_string(g) +
                                           ", entry " + std::to_string(j) +
                                           ", is not string -> unsigned integer");
          }
          parsed.counts[std::string(value)] = Entry{kv.val.via.u64, false};
        }
      }
      if (g >= groups->size()) groups->resize(g + 1);
      (*groups)[g] = std::move(parsed);
    }
    return Status::Ok();
  }
  std::vector<Group> groups_;  // by key group
};

}  // namespace

Result<std::unique_ptr<Operator>> MakeIdentity(const std::vector<std::string>& args) {
  if (!args.empty()) return Status::InvalidArgument("takes no arguments");
  return std::unique_ptr<Operator>(std::make_unique<IdentityOperator>());
}

Result<std::unique_ptr<Operator>> MakeGrep(const std::vector<std::string>& args) {
  GrepOperator::Options options;
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-') {
      positional.push_back(a);
    } else if (a == "--") {
      options_done = true;
    } else if (a == "--column" || a.rfind("--column=", 0) == 0) {
      std::string text;
      if (a == "--column") {
        if (i + 1 == args.size()) return Status::InvalidArgument("--column needs a column");
        text = args[++i];
      } else {
        text = a.substr(9);
      }
      Result<ColumnSpec> spec = ParseSingleColumn(text);
      if (!spec.ok()) return Status::InvalidArgument("--column: " + spec.status().message());
      options.column = std::move(spec.value());
    } else if (a[1] != '-') {
      for (size_t j = 1; j < a.size(); ++j) {
        switch (a[j]) {
          case 'v':
            options.invert = true;
            break;
          case 'i':
            options.icase = true;
            break;
          case 'E':
            options.extended = true;
            break;
          case 'x':
            options.whole = true;
            break;
          default:
            return Status::InvalidArgument("unknown option -" + std::string(1, a[j]));
        }
      }
    } else {
      return Status::InvalidArgument("unknown option " + a);
    }
  }
  if (positional.size() != 1) {
    return Status::InvalidArgument(positional.empty() ? "missing PATTERN"
                                                      : "more than one PATTERN");
  }
  options.pattern = positional[0];
  auto op = std::make_unique<GrepOperator>(std::move(options), JoinArgs("grep", args));
  RS_RETURN_IF_ERROR(op->Compile());
  return std::unique_ptr<Operator>(std::move(op));
}

Result<std::unique_ptr<Operator>> MakeSelect(const std::vector<std::string>& args) {
  if (args.size() != 1) return Status::InvalidArgument("expected exactly one argument, COLS");
  Result<ColumnSpec> spec = ParseColumnSpec(args[0]);
  if (!spec.ok()) return spec.status();
  return std::unique_ptr<Operator>(
      std::make_unique<SelectOperator>(std::move(spec.value()), JoinArgs("select", args)));
}

Result<std::unique_ptr<Operator>> MakeCount(const std::vector<std::string>& args) {
  if (args.size() != 1) return Status::InvalidArgument("expected exactly one argument, COL");
  Result<ColumnSpec> spec = ParseSingleColumn(args[0]);
  if (!spec.ok()) return spec.status();
  return std::unique_ptr<Operator>(
      std::make_unique<CountOperator>(std::move(spec.value()), JoinArgs("count", args)));
}

int OperatorMain(int argc, char** argv, std::string_view program, const char* usage,
                 OperatorFactory make) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
  }
  Result<std::unique_ptr<Operator>> op = make(args);
  if (!op.ok()) {
    std::fprintf(stderr, "%.*s: %s (see --help)\n", static_cast<int>(program.size()),
                 program.data(), op.status().message().c_str());
    return 2;
  }
  return RunOperator(**op, program);
}

}  // namespace rs::op
