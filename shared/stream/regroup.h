// Rescaling a keyed stage (daemon/stream/README.md "Autoscaling"), the pure parts: which groups
// a change of a stage's group table moves, and the handoff a task writes for the groups it
// gives up (their operator state and their dedup watermarks), read by their new owner. The
// handoff travels as a HyDFS file, `rainstorm/<job>/handoff-S-E.T` (stage S, the table's epoch E,
// the giving task T), so a new owner rebuilt after a failure reads it again. Hostile bytes give
// Corruption, never a throw. Pure and thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"
#include "shared/stream/key_groups.h"

namespace rs::stream {

// One group changing owner.
struct GroupMove {
  uint32_t group = 0, from = 0, to = 0;
  bool operator==(const GroupMove&) const = default;
};
// The groups whose owner differs between the two tables (same group count), by group.
std::vector<GroupMove> GroupMoves(const KeyGroupMap& before, const KeyGroupMap& after);

// A watermark handed over: the highest id processed of (group, upstream stage, upstream task,
// origin).
struct HandoffMark {
  uint32_t group = 0, stage = 0, task = 0;
  uint64_t origin = 0;
  std::string id;
  bool operator==(const HandoffMark&) const = default;
};

struct Handoff {
  std::string job;
  uint32_t stage = 0;                     // the keyed stage
  uint64_t epoch = 0;                     // the group table the groups move under
  uint32_t from_task = 0;                 // the task that gave them up
  std::vector<uint32_t> groups;           // every group handed over, ascending
  std::map<uint32_t, std::string> state;  // per group with state, its state's MessagePack bytes
  std::vector<HandoffMark> marks;
  // The giver's counters for these groups are not split out: counts stay with the task that
  // made them (job status sums a stage's tasks).
  bool operator==(const Handoff&) const = default;
};

std::string EncodeHandoff(const Handoff& h);
// Corruption when the bytes are not a handoff, or a state or mark names a group not in
// `groups`.
Result<Handoff> DecodeHandoff(std::string_view bytes);

// The part of a giver's handoff that one taker takes: `groups` (ascending), their state and
// their marks. One giver may give to several takers (1 -> 3 tasks), all from one file.
// Corruption when the handoff lacks one of `groups`.
Result<Handoff> HandoffPart(Handoff h, const std::vector<uint32_t>& groups);

std::string HandoffFileName(std::string_view job, uint32_t stage, uint64_t epoch,
                            uint32_t from_task);

// Stage 1 of a job reading a file grows by cutting tasks' unread bytes (README.md
// "Autoscaling"): each giving task writes one file, `rainstorm/<job>/piece-E.G` (the stage's
// epoch E, giver G), with a piece for each task it gives to: the bytes [begin, end) of the
// input's concatenation, read under `origin` (never used before). One file per giver, so that
// a giver rebuilt from a record older than the cut finds all it gave or nothing. The leader writes
// one with empty pieces for a giver that ended before the order came.
struct SourcePiece {
  uint32_t taker = 0;
  uint64_t origin = 0, begin = 0, end = 0;
  bool operator==(const SourcePiece&) const = default;
};
struct SourcePieces {
  std::string job;
  uint64_t epoch = 0;
  uint32_t giver = 0;
  std::vector<SourcePiece> pieces;  // contiguous and in order: each begins where the last ends
  bool operator==(const SourcePieces&) const = default;
};
std::string EncodeSourcePieces(const SourcePieces& p);
// Corruption when the bytes are not pieces (or a piece ends before it begins, or they are not
// in order).
Result<SourcePieces> DecodeSourcePieces(std::string_view bytes);
std::string PieceFileName(std::string_view job, uint64_t epoch, uint32_t giver);

}  // namespace rs::stream
