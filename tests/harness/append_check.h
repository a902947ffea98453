// The Jepsen-style checker's pure core: a history of appends (which were acknowledged, which
// failed) and the check of a file's content against it. No processes, no clocks: unit tested in
// tests/unit/harness/append_check_test.cc, driven by the partition workload (partition.h).
//
// Records are lines `client-K seq-N` (RecordLine); client K appends its seqs 1, 2, ... one at a
// time, so in a correct file every acknowledged record appears exactly once, each client's
// records appear in increasing seq order, and a record whose append failed appears at most once.
// A file starts with its header line (the create's data), exactly once.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rs::harness {

enum class AppendOutcome {
  kAcked,   // rainctl exited 0
  kFailed,  // rainctl exited non-zero with an error of its own (it may have landed)
  kHung,    // rainctl did not end by the harness's deadline and was killed (may have landed)
};
const char* ToString(AppendOutcome outcome);

struct AppendAttempt {
  uint32_t client = 0;
  uint64_t seq = 0;
  std::string file;
  AppendOutcome outcome = AppendOutcome::kFailed;
  int exit_code = 0;
  int64_t start_ms = 0;  // since the workload started
  int64_t took_ms = 0;
  std::string error;  // rainctl's first stderr line when not acknowledged
};

// "client-K seq-N\n".
std::string RecordLine(uint32_t client, uint64_t seq);
// "file NAME\n": the data a file is created with.
std::string HeaderLine(const std::string& file);

struct FileVerdict {
  std::string file;
  size_t acked = 0;           // acknowledged appends to the file
  size_t acked_present = 0;   // ... found in the content
  size_t lost = 0;            // acknowledged, missing
  size_t unacked_present = 0; // failed or hung appends that landed (allowed, once)
  size_t duplicated = 0;      // extra copies of any record
  size_t reordered = 0;       // records before a lower seq of the same client
  size_t garbage = 0;         // lines that are no record, or records never attempted on it
  std::vector<std::string> problems;  // each violation in words (the first few of each kind)
  bool ok() const { return problems.empty(); }
};

// Checks `content` (a whole copy of `file`) against the attempts on `file` in `history`.
FileVerdict CheckFileContent(const std::string& file, const std::string& content,
                             const std::vector<AppendAttempt>& history);

// The acknowledged records of `file` that `content` lacks (for "every replica holds every
// acknowledged record" while waiting for repair; order and duplicates are not looked at).
size_t MissingAcked(const std::string& file, const std::string& content,
                    const std::vector<AppendAttempt>& history);

}  // namespace rs::harness
