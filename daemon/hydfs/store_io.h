// Private to Store (store.cc, store_blobs.cc): small POSIX file helpers that report failures as
// Status, with disk-full errors told apart. Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "shared/status.h"

namespace rs::hydfs {

// IOError "WHAT: <errno text>"; for ENOSPC and EDQUOT "no space left on device: WHAT: ...", a
// fixed prefix so callers (and users) can tell a full disk from other IO errors.
Status IoStatus(int err, const std::string& what);

// Writes all `n` bytes at `offset` (retrying short writes and EINTR). `path` names the file in
// errors.
Status PwriteAll(int fd, const char* data, size_t n, uint64_t offset, const std::string& path);
// Reads up to `n` bytes at `offset`; fewer only at end of file.
Result<size_t> PreadAll(int fd, char* out, size_t n, uint64_t offset, const std::string& path);
// Makes a rename or create in `dir` durable.
Status FsyncDir(const std::string& dir);

// -1 when the file does not exist (or cannot be stat'ed).
int64_t FileSize(const std::string& path);
// Closes *fd (when open) and unlinks *path (when set); leaves *fd = -1 and *path empty.
void CloseAndUnlink(int* fd, std::string* path);

// Sums the sizes of the files under `dir`.
uint64_t DirBytes(const std::string& dir);
Status MakeDirs(const std::string& dir);
Status RemoveAll(const std::string& path);

}  // namespace rs::hydfs
