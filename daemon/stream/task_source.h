// The input of a stage-1 task reading HyDFS (README.md "Life of a job", step 3): partition
// `task` of `tasks` of the concatenated input files, read line by line into frames of tuples
// `[FILE:LINE, line]` with ids SourceId(file index, line), CSV headers skipped; and the rate
// limit of its reads. Pure: the files' bytes come in, time is an argument.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/stream/in_frame.h"
#include "shared/clock.h"
#include "shared/status.h"

namespace rs::stream {

struct SourceText {
  std::string name;     // HyDFS name: the tuple keys' FILE
  std::string data;     // its bytes as of the job's snapshot
  bool header = false;  // its first line may be a CSV header (SourceFile.header)
};

// A stage-1 task's share of the input: the lines whose first byte lies in [begin, end) of the
// concatenation of the files (byte offsets; both line starts, or the end), read with origin
// `origin`. At first partition `task` of `tasks` with origin `task`; a rescale
// that adds tasks cuts the rest of a range into pieces, each read by a new task under an origin
// never used before (README.md "Autoscaling", "Stage 1 of a job reading a file").
struct SourceRange {
  uint64_t origin = 0;
  uint64_t begin = 0, end = 0;
};

class SourcePartition {
 public:
  // `csv_header`: the first file's header, which a later file's line 1 must repeat to be skipped
  // too.
  SourcePartition(std::vector<SourceText> files, std::optional<std::string> csv_header,
                  SourceRange range);
  // Partition `task` of `tasks`: lines whose first byte lies in [task*S/T, (task+1)*S/T) of the
  // concatenation (S bytes); the last task takes everything to the end. Origin `task`.
  SourcePartition(std::vector<SourceText> files, std::optional<std::string> csv_header,
                  uint32_t task, uint32_t tasks);

  // A rebuilt task resumes after the last line its checkpoint covers: skips every line whose
  // id is at or below `id`. Returns how many it skipped.
  uint64_t ResumeAfter(std::string_view id);

  // Reads up to `max` lines into `fr` (origin range().origin; the arena behind the views goes
  // into fr->hold); `fr->end` once the partition is exhausted. A line over the tuple size limit
  // is an InvalidArgument (the same input repeats it).
  Status Read(size_t max, InFrame* fr);

  // Cuts what is left to read into `origins.size() + 1` shares of about equal bytes at line
  // starts; keeps the first (its end moves to the first cut) and returns the others, in order,
  // each with its origin. Shares may be empty (begin == end) when little is left.
  std::vector<SourceRange> Split(const std::vector<uint64_t>& origins);
  // Reads nothing at or past `end` (a piece given away before a rebuild).
  void LimitEnd(uint64_t end) { end_ = std::min(end_, std::max(end, begin_)); }
  // Reads up to `end` (a line start): a cut of ours that did not stand gives way to the one
  // that does.
  void SetEnd(uint64_t end) { end_ = std::clamp(end, begin_, total_); }

  bool Exhausted() const { return cur_file_ >= files_.size() || Position() >= end_; }
  SourceRange range() const { return {origin_, begin_, end_}; }
  uint64_t Position() const;  // the byte offset of the next line (at most the end)
  uint64_t left() const { return end_ - std::min(end_, Position()); }  // bytes still to read
  size_t files() const { return files_.size(); }
  uint64_t total_bytes() const { return total_; }
  uint64_t line() const { return cur_line_; }  // the next line's number

 private:
  void Index();  // starts_ and total_ from the files
  void SetRange(SourceRange range);
  uint64_t LineStartAtOrAfter(uint64_t global) const;
  void Seek(uint64_t global);  // to a line start (or the end)
  void NextLine() { PastLine(files_[cur_file_].data.find('\n', cur_off_)); }
  void PastLine(size_t nl);
  void SkipHeader();
  bool IsHeaderFile(size_t i) const;

  std::vector<SourceText> files_;
  std::vector<uint64_t> starts_;  // the byte offset of each file in the concatenation
  std::optional<std::string> csv_header_;
  uint64_t origin_ = 0, begin_ = 0, end_ = 0;
  uint64_t total_ = 0;
  size_t cur_file_ = 0, cur_off_ = 0;
  uint64_t cur_line_ = 1;  // line number (from 1) of the line at cur_off_
};

// A token bucket for a rate-limited source (`rate` tuples/s; 0: unlimited). It reads in batches
// of at least ~2 ms of input (a whole batch when that is less): tiny batches would cost more per
// tuple at every stage than the latency they save.
class SourceRate {
 public:
  SourceRate(uint64_t rate, size_t batch_tuples, TimePoint now)
      : rate_(rate), batch_(batch_tuples), at_(now) {}
  // How many tuples may be read now (0: wait); at most one batch.
  size_t Allowed(TimePoint now);
  void Spend(size_t n) { tokens_ -= static_cast<double>(n); }
  void SetRate(uint64_t rate) { rate_ = rate; }  // the stage grew: its share of INPUT_RATE
  // Milliseconds until a read is allowed (at most 5).
  int WaitMs() const;

 private:
  double MinBatch() const;
  uint64_t rate_;
  size_t batch_;
  double tokens_ = 0;
  TimePoint at_;
};

}  // namespace rs::stream
