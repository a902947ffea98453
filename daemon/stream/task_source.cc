#include "daemon/stream/task_source.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "shared/stream/limits.h"

namespace rs::stream {

constexpr double kSourceLinger = 0.002;  // seconds of input a rate-limited read waits for

SourcePartition::SourcePartition(std::vector<SourceText> files,
                                 std::optional<std::string> csv_header, SourceRange range)
    : files_(std::move(files)), csv_header_(std::move(csv_header)) {
  Index();
  SetRange(range);
}

SourcePartition::SourcePartition(std::vector<SourceText> files,
                                 std::optional<std::string> csv_header, uint32_t task,
                                 uint32_t tasks)
    : files_(std::move(files)), csv_header_(std::move(csv_header)) {
  Index();
  tasks = std::max<uint32_t>(tasks, 1);
  SourceRange r;
  r.origin = task;
  r.begin = LineStartAtOrAfter(total_ * task / tasks);
  r.end = task + 1 >= tasks ? total_ : LineStartAtOrAfter(total_ * (task + 1) / tasks);
  SetRange(r);
}

void SourcePartition::Index() {
  for (const auto& f : files_) {
    starts_.push_back(total_);
    total_ += f.data.size();
  }
}

void SourcePartition::SetRange(SourceRange range) {
  origin_ = range.origin;
  begin_ = std::min(range.begin, total_);
  end_ = std::clamp(range.end, begin_, total_);
  Seek(begin_);
}

// The first line start at or after byte `global` of the concatenation (the total when none).
uint64_t SourcePartition::LineStartAtOrAfter(uint64_t global) const {
  size_t fi = 0;
  while (fi < files_.size() && global >= starts_[fi] + files_[fi].data.size()) ++fi;
  if (fi == files_.size()) return total_;
  const std::string& d = files_[fi].data;
  size_t o = static_cast<size_t>(global - starts_[fi]);
  if (o > 0 && d[o - 1] != '\n') {
    size_t nl = d.find('\n', o);
    if (nl == std::string::npos || nl + 1 >= d.size()) return starts_[fi] + d.size();
    o = nl + 1;
  }
  return starts_[fi] + o;
}

// To the line that starts at `global` (a line start, a file's start, or the total), past a
// file's header there.
void SourcePartition::Seek(uint64_t global) {
  cur_file_ = 0;
  while (cur_file_ < files_.size() &&
         global >= starts_[cur_file_] + files_[cur_file_].data.size()) {
    ++cur_file_;
  }
  cur_off_ = 0;
  cur_line_ = 1;
  if (cur_file_ < files_.size()) {
    cur_off_ = static_cast<size_t>(global - starts_[cur_file_]);
    const std::string& d = files_[cur_file_].data;
    cur_line_ = 1 + static_cast<uint64_t>(
                        std::count(d.begin(), d.begin() + static_cast<long>(cur_off_), '\n'));
  }
  SkipHeader();
}

uint64_t SourcePartition::Position() const {
  if (cur_file_ >= files_.size()) return total_;
  return std::min<uint64_t>(starts_[cur_file_] + cur_off_, total_);
}

std::vector<SourceRange> SourcePartition::Split(const std::vector<uint64_t>& origins) {
  uint64_t from = std::min(Position(), end_), rest = end_ - from;
  uint64_t shares = origins.size() + 1;
  std::vector<uint64_t> cuts;  // where each piece starts, then the end
  for (uint64_t j = 1; j < shares; ++j) {
    uint64_t c = std::min(LineStartAtOrAfter(from + rest * j / shares), end_);
    cuts.push_back(std::max(c, cuts.empty() ? from : cuts.back()));
  }
  cuts.push_back(end_);
  std::vector<SourceRange> pieces;
  for (size_t j = 0; j < origins.size(); ++j) pieces.push_back({origins[j], cuts[j], cuts[j + 1]});
  end_ = cuts.front();
  return pieces;
}

uint64_t SourcePartition::ResumeAfter(std::string_view id) {
  uint64_t skipped = 0;
  while (!Exhausted() &&
         CompareIds(SourceId(static_cast<uint32_t>(cur_file_), cur_line_), id) <= 0) {
    NextLine();
    ++skipped;
  }
  return skipped;
}

// Moves past the line that ends at `nl` (npos: the file's last line, unterminated), into the
// next file when this one ends.
void SourcePartition::PastLine(size_t nl) {
  const std::string& d = files_[cur_file_].data;
  ++cur_line_;
  cur_off_ = nl == std::string::npos ? d.size() : nl + 1;
  if (cur_off_ >= d.size()) {
    ++cur_file_;
    cur_off_ = 0;
    cur_line_ = 1;
    SkipHeader();
  }
}

// At the start of a file with a CSV header: moves past the header line (never a tuple). The
// first file's line 1 is the header; a later file's line 1 only when it repeats it (part files
// that each carry the header), else it is data (one file cut in parts). A partition whose end is
// a file's start owns that file's header; the next one starts after it.
void SourcePartition::SkipHeader() {
  while (cur_file_ < files_.size() && cur_off_ == 0 && IsHeaderFile(cur_file_)) {
    const std::string& d = files_[cur_file_].data;
    size_t nl = d.find('\n');
    if (nl == std::string::npos || nl + 1 >= d.size()) {
      ++cur_file_;  // the header is the whole file
      continue;
    }
    cur_off_ = nl + 1;
    cur_line_ = 2;
  }
}

bool SourcePartition::IsHeaderFile(size_t i) const {
  if (!files_[i].header) return false;
  if (i == 0) return true;
  if (!csv_header_) return false;
  std::string_view d = files_[i].data;
  std::string_view first = d.substr(0, d.find('\n'));
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  return first == *csv_header_;
}

Status SourcePartition::Read(size_t max, InFrame* fr) {
  auto arena = std::make_shared<std::string>();
  struct Item {
    size_t id_off, key_off, key_len;
    std::string_view value;
  };
  std::vector<Item> items;
  items.reserve(max);
  while (items.size() < max && !Exhausted()) {
    const SourceText& f = files_[cur_file_];
    size_t nl = f.data.find('\n', cur_off_);
    size_t line_end = nl == std::string::npos ? f.data.size() : nl;
    std::string_view value(f.data.data() + cur_off_, line_end - cur_off_);
    if (!value.empty() && value.back() == '\r') value.remove_suffix(1);
    if (value.size() > kMaxTupleBytes) {
      return Status::InvalidArgument(
          "line " + std::to_string(cur_line_) + " of input file " + f.name + " is " +
          std::to_string(value.size()) + " bytes, over the " +
          std::to_string(kMaxTupleBytes >> 20) + " MiB limit of a tuple (PROTOCOL.md Limits)");
    }
    Item it;
    it.id_off = arena->size();
    arena->append(SourceId(static_cast<uint32_t>(cur_file_), cur_line_));
    it.key_off = arena->size();
    arena->append(f.name);
    arena->push_back(':');
    char num[24];
    auto [p, ec] = std::to_chars(num, num + sizeof(num), cur_line_);
    arena->append(num, p);
    it.key_len = arena->size() - it.key_off;
    it.value = value;
    items.push_back(it);
    PastLine(nl);
  }
  fr->end = Exhausted();
  fr->tuples.clear();
  fr->tuples.reserve(items.size());
  for (const auto& it : items) {
    TupleRef r;
    r.origin = origin_;
    r.id = std::string_view(arena->data() + it.id_off, 12);
    r.key = std::string_view(arena->data() + it.key_off, it.key_len);
    r.value = it.value;
    fr->tuples.push_back(r);
  }
  fr->hold = std::move(arena);
  return Status::Ok();
}

double SourceRate::MinBatch() const {
  return std::clamp(static_cast<double>(rate_) * kSourceLinger, 1.0, static_cast<double>(batch_));
}

size_t SourceRate::Allowed(TimePoint now) {
  if (rate_ == 0) return batch_;
  tokens_ += std::chrono::duration<double>(now - at_).count() * static_cast<double>(rate_);
  at_ = now;
  double cap = std::max(1.0, static_cast<double>(rate_) * 0.02);  // 20 ms of burst
  tokens_ = std::min(tokens_, cap);
  if (tokens_ < MinBatch()) return 0;
  return std::min(batch_, static_cast<size_t>(tokens_));
}

int SourceRate::WaitMs() const {
  if (rate_ == 0) return 5;
  double missing = MinBatch() - tokens_;
  if (missing <= 0) return 0;
  return std::clamp(static_cast<int>(std::ceil(missing * 1000 / static_cast<double>(rate_))), 0,
                    5);
}

}  // namespace rs::stream
