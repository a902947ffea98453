#include "ctl/job_view.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <vector>

#include "ctl/output.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

// A plain text table: columns padded to their widest cell, numbers right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> head, std::vector<bool> right = {})
      : right_(std::move(right)) {
    rows_.push_back(std::move(head));
    right_.resize(rows_[0].size(), false);
  }
  void Row(std::vector<std::string> cells) {
    cells.resize(rows_[0].size());
    rows_.push_back(std::move(cells));
  }
  void Print() const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& r : rows_) {
      for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t c = 0; c < r.size(); ++c) {
        std::string pad(width[c] - r[c].size(), ' ');
        if (c > 0) line += "  ";
        line += right_[c] ? pad + r[c] : r[c] + pad;
      }
      line.erase(line.find_last_not_of(' ') + 1);
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
  std::vector<bool> right_;
};

}  // namespace

// ---- reading replies ----------------------------------------------------------------------

double Number(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  double out = 0;
  if (v != nullptr) (void)wire::ReadDouble(*v, &out);
  return out;
}

std::string Text(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  if (v != nullptr && v->type == msgpack::type::ARRAY) {
    std::string out;
    for (uint32_t i = 0; i < v->via.array.size; ++i) {
      std::string word;
      if (!wire::ReadString(v->via.array.ptr[i], &word)) continue;
      if (!out.empty()) out += ' ';
      out += word;
    }
    return out;
  }
  return Str(map, key);
}

uint64_t Count(const msgpack::object& map, const char* key) {
  const msgpack::object* v = wire::MapGet(map, key);
  if (v != nullptr && v->type == msgpack::type::ARRAY) return v->via.array.size;
  return Uint(map, key);
}

std::string Rate(double per_second) {
  char buf[32];
  if (per_second >= 100 || per_second == std::floor(per_second)) {
    std::snprintf(buf, sizeof(buf), "%.0f", per_second);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f", per_second);
  }
  return buf;
}

std::string Seconds(uint64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), ms < 10000 ? "%.3f s" : "%.1f s", static_cast<double>(ms) / 1000);
  return buf;
}

const msgpack::object* StageDetails(const msgpack::object& status) {
  const msgpack::object* v = ArrayField(status, "stages_detail");
  return v != nullptr ? v : ArrayField(status, "stages");
}

// ---- printing replies ---------------------------------------------------------------------

void PrintTasks(const msgpack::object& p) {
  const msgpack::object* tasks = ArrayField(p, "tasks");
  if (tasks == nullptr || tasks->via.array.size == 0) {
    std::printf("no tasks\n");
    return;
  }
  Table t({"JOB", "STAGE", "TASK", "RUN", "NODE", "PID", "OP", "LOG", "STATE", "IN/S", "OUT/S",
           "TUPLES_IN", "TUPLES_OUT", "DUPS", "GROUPS"},
          {false, true, true, true, false, true, false, false, false, true, true, true, true, true,
           false});
  std::vector<std::string> reasons;
  for (uint32_t i = 0; i < tasks->via.array.size; ++i) {
    const msgpack::object& e = tasks->via.array.ptr[i];
    // RUN: the task's incarnation (2 and up after a restart or a move).
    std::string run = Uint(e, "incarnation") == 0 ? "-" : std::to_string(Uint(e, "incarnation"));
    t.Row({Str(e, "job"), Str(e, "stage"), Str(e, "task"), run, Str(e, "node"), Str(e, "pid"),
           Text(e, "op"), Str(e, "log"), Str(e, "state"), Rate(Number(e, "rate_in")),
           Rate(Number(e, "rate_out")), std::to_string(Uint(e, "tuples_in")),
           std::to_string(Uint(e, "tuples_out")), std::to_string(Uint(e, "duplicates")),
           Str(e, "groups").empty() ? "-" : Str(e, "groups")});
    std::string reason = Str(e, "reason");
    if (!reason.empty()) {
      reasons.push_back("task " + Str(e, "job") + " " + Str(e, "stage") + "-" + Str(e, "task") +
                        ": " + reason);
    }
  }
  t.Print();
  for (const auto& r : reasons) std::printf("%s\n", r.c_str());
}

void PrintJobs(const msgpack::object& p) {
  const msgpack::object* jobs = ArrayField(p, "jobs");
  if (jobs == nullptr || jobs->via.array.size == 0) {
    std::printf("no jobs\n");
    return;
  }
  Table t({"JOB", "NAME", "STATE", "STAGES", "TASKS", "SRC", "DEST", "EXACTLY_ONCE", "SUBMITTED",
           "ELAPSED", "REASON"},
          {false, false, false, true, true, false, false, false, false, true, false});
  for (uint32_t i = 0; i < jobs->via.array.size; ++i) {
    const msgpack::object& j = jobs->via.array.ptr[i];
    std::string src = Str(j, "src");
    uint64_t submitted = Uint(j, "submitted_ms");
    t.Row({Str(j, "job"), Str(j, "name"), Str(j, "state"), std::to_string(Count(j, "stages")),
           std::to_string(Count(j, "tasks")), src.empty() ? "(live)" : src, Str(j, "dest"),
           Bool(j, "exactly_once") ? "yes" : "no", submitted ? FormatTime(submitted) : "",
           Seconds(Uint(j, "elapsed_ms")), Str(j, "reason")});
  }
  t.Print();
}

void PrintStatus(const msgpack::object& p) {
  std::string name = Str(p, "name");
  std::string reason = Str(p, "reason");
  std::printf("job %s%s: %s%s\n", Str(p, "job").c_str(),
              name.empty() ? "" : (" (" + name + ")").c_str(), Str(p, "state").c_str(),
              reason.empty() ? "" : (": " + reason).c_str());
  std::string src = Str(p, "src");
  std::printf("%s -> %s, %" PRIu64 " stage(s), exactly-once %s\n",
              src.empty() ? "(live source)" : src.c_str(), Str(p, "dest").c_str(),
              Count(p, "stages"), Bool(p, "exactly_once") ? "on" : "off");
  uint64_t submitted = Uint(p, "submitted_ms");
  if (submitted != 0) {
    std::printf("submitted %s, elapsed %s\n", FormatTime(submitted).c_str(),
                Seconds(Uint(p, "elapsed_ms")).c_str());
  }
  std::printf("source tuples %" PRIu64 ", output %" PRIu64
              " lines (%s), duplicates discarded %" PRIu64 ", task rebuilds %" PRIu64 "\n",
              Uint(p, "source_tuples"), Uint(p, "output_lines"),
              FormatBytes(Uint(p, "output_bytes")).c_str(), Uint(p, "duplicates"),
              Uint(p, "rebuilds"));
  if (std::string note = Str(p, "note"); !note.empty()) std::printf("note: %s\n", note.c_str());
  if (Uint(p, "resent_frames") != 0 || Uint(p, "injected") != 0) {
    std::printf("frames resent %" PRIu64 ", duplicate frames injected (test knob) %" PRIu64 "\n",
                Uint(p, "resent_frames"), Uint(p, "injected"));
  }
  if (Uint(p, "latency_samples") != 0) {
    std::printf("latency p50 %.1f ms, p99 %.1f ms (%" PRIu64 " samples)\n",
                Number(p, "latency_p50_us") / 1000, Number(p, "latency_p99_us") / 1000,
                Uint(p, "latency_samples"));
  }
  if (const msgpack::object* scaling = ArrayField(p, "scaling")) {
    for (uint32_t i = 0; i < scaling->via.array.size; ++i) {
      const msgpack::object& e = scaling->via.array.ptr[i];
      if (e.type != msgpack::type::MAP) continue;
      std::printf("rescale: stage %" PRIu64 " %" PRIu64 " -> %" PRIu64 " tasks, %s in %" PRIu64
                  " ms (%s)\n",
                  Uint(e, "stage"), Uint(e, "from"), Uint(e, "to"), Text(e, "outcome").c_str(),
                  Uint(e, "took_ms"), Text(e, "reason").c_str());
    }
  }
  const msgpack::object* stages = StageDetails(p);
  if (stages == nullptr || stages->via.array.size == 0) return;
  Table t({"STAGE", "OP", "TASKS", "TUPLES_IN", "TUPLES_OUT", "IN/S", "OUT/S", "DUPS"},
          {true, false, true, true, true, true, true, true});
  for (uint32_t i = 0; i < stages->via.array.size; ++i) {
    const msgpack::object& s = stages->via.array.ptr[i];
    if (s.type != msgpack::type::MAP) continue;
    t.Row({Str(s, "stage"), Text(s, "op"), std::to_string(Count(s, "tasks")),
           std::to_string(Uint(s, "tuples_in")), std::to_string(Uint(s, "tuples_out")),
           Rate(Number(s, "rate_in")), Rate(Number(s, "rate_out")),
           std::to_string(Uint(s, "duplicates"))});
  }
  t.Print();
}

// ---- the progress line ---------------------------------------------------------------------

void Progress::Draw(const msgpack::object& status, TimePoint started) {
  if (!enabled_) return;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.0f s", ToMillis(Clock::now() - started) / 1000.0);
  std::string line = Str(status, "state") + " " + buf;
  const msgpack::object* stages = StageDetails(status);
  for (uint32_t i = 0; stages != nullptr && i < stages->via.array.size; ++i) {
    const msgpack::object& s = stages->via.array.ptr[i];
    if (s.type != msgpack::type::MAP) continue;
    std::string stage = Str(s, "stage");
    std::string op = Text(s, "op");
    op = op.substr(0, op.find(' '));
    op = op.substr(op.rfind('/') + 1);  // a path's file name
    line += " | " + (stage.empty() ? std::to_string(i + 1) : stage) + ":" + op + " in " +
            Rate(Number(s, "rate_in")) + "/s out " + Rate(Number(s, "rate_out")) + "/s";
  }
  line += " | " + std::to_string(Uint(status, "output_lines")) + " lines out";
  uint64_t dups = Uint(status, "duplicates");
  if (dups != 0) line += " | " + std::to_string(dups) + " dups";
  struct winsize ws {};
  size_t cols = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col : 80;
  if (line.size() >= cols) line.resize(cols - 1);
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void Progress::Clear() {
  if (!shown_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace rs::ctl
