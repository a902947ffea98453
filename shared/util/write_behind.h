// WriteBehind: keeps a large sequential file write from filling the page cache. Every `stretch`
// bytes it starts the writeback of what was just written, waits for the writeback of the stretch
// before (usually long finished) and drops that stretch from the page cache, so at most about two
// stretches stay dirty or cached. HDFS datanodes do the same (sync and drop "behind" writes).
// On VMs that back guest memory lazily, growing the page cache is what makes large writes slow;
// see daemon/hydfs/README.md. Best effort: errors surface at fsync. Thread-compatible.
#pragma once

#include <fcntl.h>

#include <cstdint>

namespace rs {

class WriteBehind {
 public:
  explicit WriteBehind(uint64_t stretch = 8u << 20) : stretch_(stretch) {}

  // `end`: every byte of the file before this offset has been written (sequentially).
  void Advance(int fd, uint64_t end) {
    if (end < behind_ + 2 * stretch_) return;
    uint64_t start_new = end - stretch_;
    ::sync_file_range(fd, static_cast<off_t>(start_new), static_cast<off_t>(stretch_),
                      SYNC_FILE_RANGE_WRITE);
    uint64_t len = start_new - behind_;
    ::sync_file_range(
        fd, static_cast<off_t>(behind_), static_cast<off_t>(len),
        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    ::posix_fadvise(fd, static_cast<off_t>(behind_), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
    behind_ = start_new;
  }

 private:
  uint64_t stretch_;
  uint64_t behind_ = 0;  // bytes before this offset were written back and dropped
};

}  // namespace rs
