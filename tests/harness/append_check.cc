#include "tests/harness/append_check.h"

#include <cstdio>
#include <map>
#include <set>
#include <utility>

namespace rs::harness {
namespace {

constexpr size_t kProblemsPerKind = 5;

using RecordKey = std::pair<uint32_t, uint64_t>;  // client, seq

// Parses "client-K seq-N" (the line without its newline).
bool ParseRecord(const std::string& line, RecordKey* key) {
  unsigned long client = 0;
  unsigned long long seq = 0;
  int used = 0;
  if (std::sscanf(line.c_str(), "client-%lu seq-%llu%n", &client, &seq, &used) != 2) return false;
  if (static_cast<size_t>(used) != line.size()) return false;
  if (RecordLine(static_cast<uint32_t>(client), seq) != line + "\n") return false;  // canonical
  *key = {static_cast<uint32_t>(client), seq};
  return true;
}

std::vector<std::string> SplitLines(const std::string& content, bool* torn_tail) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < content.size()) {
    size_t nl = content.find('\n', at);
    if (nl == std::string::npos) {
      lines.push_back(content.substr(at));
      *torn_tail = true;
      break;
    }
    lines.push_back(content.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

void Note(FileVerdict* v, std::map<std::string, size_t>* kinds, const std::string& kind,
          const std::string& what) {
  if ((*kinds)[kind]++ < kProblemsPerKind) v->problems.push_back(v->file + ": " + kind + ": " + what);
}

}  // namespace

const char* ToString(AppendOutcome outcome) {
  switch (outcome) {
    case AppendOutcome::kAcked:
      return "acked";
    case AppendOutcome::kFailed:
      return "failed";
    case AppendOutcome::kHung:
      return "hung";
  }
  return "?";
}

std::string RecordLine(uint32_t client, uint64_t seq) {
  return "client-" + std::to_string(client) + " seq-" + std::to_string(seq) + "\n";
}

std::string HeaderLine(const std::string& file) { return "file " + file + "\n"; }

FileVerdict CheckFileContent(const std::string& file, const std::string& content,
                             const std::vector<AppendAttempt>& history) {
  FileVerdict v;
  v.file = file;
  std::map<std::string, size_t> kinds;
  std::map<RecordKey, AppendOutcome> attempted;
  std::map<RecordKey, const AppendAttempt*> attempts;
  for (const auto& a : history) {
    if (a.file != file) continue;
    attempted[{a.client, a.seq}] = a.outcome;
    attempts[{a.client, a.seq}] = &a;
    if (a.outcome == AppendOutcome::kAcked) ++v.acked;
  }

  bool torn = false;
  std::vector<std::string> lines = SplitLines(content, &torn);
  std::string header = HeaderLine(file);
  header.pop_back();
  size_t first = 0;
  if (lines.empty() || lines[0] != header) {
    Note(&v, &kinds, "header", "the file does not start with '" + header + "'");
  } else {
    first = 1;
  }
  if (torn) Note(&v, &kinds, "garbage", "the content does not end with a newline");

  std::map<RecordKey, size_t> seen;
  std::map<uint32_t, uint64_t> last_seq;  // per client, the highest seq so far in file order
  for (size_t i = first; i < lines.size(); ++i) {
    RecordKey key;
    if (!ParseRecord(lines[i], &key)) {
      ++v.garbage;
      Note(&v, &kinds, "garbage",
           "line " + std::to_string(i + 1) + " is no record: '" + lines[i].substr(0, 80) + "'");
      continue;
    }
    if (!attempted.count(key)) {
      ++v.garbage;
      Note(&v, &kinds, "phantom",
           "line " + std::to_string(i + 1) + " '" + lines[i] + "' was never appended to " + file);
      continue;
    }
    if (++seen[key] > 1) {
      ++v.duplicated;
      Note(&v, &kinds, "duplicated",
           "'" + lines[i] + "' (" + ToString(attempted[key]) + ") appears " +
               std::to_string(seen[key]) + " times (again at line " + std::to_string(i + 1) +
               ")");
      continue;
    }
    auto last = last_seq.find(key.first);
    if (last != last_seq.end() && key.second < last->second) {
      ++v.reordered;
      Note(&v, &kinds, "reordered",
           "'" + lines[i] + "' at line " + std::to_string(i + 1) + " comes after seq-" +
               std::to_string(last->second) + " of the same client");
    } else {
      last_seq[key.first] = key.second;
    }
  }
  for (const auto& [key, outcome] : attempted) {
    bool present = seen.count(key) > 0;
    if (outcome == AppendOutcome::kAcked) {
      if (present) {
        ++v.acked_present;
      } else {
        ++v.lost;
        std::string line = RecordLine(key.first, key.second);
        line.pop_back();
        const AppendAttempt* a = attempts[key];
        Note(&v, &kinds, "lost",
             "acknowledged '" + line + "' (started at +" + std::to_string(a->start_ms) +
                 " ms, took " + std::to_string(a->took_ms) + " ms) is missing");
      }
    } else if (present) {
      ++v.unacked_present;
    }
  }
  if (v.lost > 0) {
    v.problems.push_back(file + ": " + std::to_string(v.lost) + " of " + std::to_string(v.acked) +
                         " acknowledged records lost");
  }
  return v;
}

size_t MissingAcked(const std::string& file, const std::string& content,
                    const std::vector<AppendAttempt>& history) {
  std::set<std::string> lines;
  bool torn = false;
  for (auto& l : SplitLines(content, &torn)) lines.insert(std::move(l));
  size_t missing = 0;
  for (const auto& a : history) {
    if (a.file != file || a.outcome != AppendOutcome::kAcked) continue;
    std::string line = RecordLine(a.client, a.seq);
    line.pop_back();
    if (!lines.count(line)) ++missing;
  }
  return missing;
}

}  // namespace rs::harness
