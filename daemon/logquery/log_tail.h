// log.tail: the node's log from a byte offset on, as whole lines, filtered by a pattern (POSIX
// basic regular expressions, grep's default; `i` ignores case). One answer per call: the web
// console polls it once a second for its live log view, passing back the offset it got
// (`rainctl logs --follow` streams instead). Pure file reading; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shared/status.h"

namespace rs::logquery {

struct TailSlice {
  uint64_t next = 0;  // the offset to ask from next time (after the last whole line read)
  uint64_t size = 0;  // the log's size now
  std::vector<std::string> lines;  // the matching lines, without their newline
  bool restarted = false;          // `from` was past the end (the log rotated): read from its start
};

// Whole lines of `path` from byte `from` (none: the last `initial_bytes`, from a line start),
// at most `max_bytes` of log read, those matching `pattern` (empty: all).
Result<TailSlice> TailLog(const std::string& path, std::optional<uint64_t> from,
                          const std::string& pattern, bool ignore_case,
                          uint64_t max_bytes = 256u << 10, uint64_t initial_bytes = 16u << 10);

}  // namespace rs::logquery
