// glibc's allocator, set for processes that move data in 1 MiB frames (raind, rainctl,
// rainsource, the transport benchmarks).
//
// By default glibc serves an allocation above a moving threshold (128 KiB at first) with mmap and
// trims the top of the heap once 128 KiB of it is free. A data stream allocates and frees 1 MiB
// buffers all the time (ZeroMQ's receive buffers, CurveZMQ's work buffers, chunk frames), so both
// rules hand the memory back to the kernel and fault it in again for the next frame, page by page.
// On the 2-core VM of BENCHMARKS.md that made a plain 1 GiB PUSH/PULL stream 4x slower
// (620 against 2,400 MiB/s) and a HyDFS get 2.4x slower. TuneMallocForStreams() keeps such
// buffers on the heap: allocations up to 32 MiB never use mmap, and the heap keeps up to 128 MiB
// of free memory at its top. RSS still follows the working set (windows of 1 MiB frames).
#pragma once

namespace rs {

// Call first thing in main(), before any thread starts.
void TuneMallocForStreams();

}  // namespace rs
