// The stream engine's size limits, one copy (operators/PROTOCOL.md "Limits"). Each is checked
// where the data enters: a source line as a stage-1 task reads it, a line as rainsource reads
// it, an operator's output tuple and state as the task takes them. Going over one fails the job
// at once with a message naming the limit: the same input would fail the same way, so the task
// is not rebuilt.
#pragma once

#include <cstddef>

namespace rs::stream {

// One tuple: key plus value bytes. Frames (64 MiB) and the built-in operators' strings
// (32 MiB) are larger, so a tuple within this limit passes every hop.
inline constexpr size_t kMaxTupleBytes = 16u << 20;
// An operator's state snapshot (it goes into every checkpoint record).
inline constexpr size_t kMaxStateBytes = 64u << 20;

}  // namespace rs::stream
