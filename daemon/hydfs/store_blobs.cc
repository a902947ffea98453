// The blob side of Store: blob files under blobs/ and tmp/, the space they hold against the
// quota, BlobWriter, and chunk reads, rewrites, syncs and moves. Manifests are in store.cc.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "daemon/hydfs/store.h"
#include "daemon/hydfs/store_format.h"
#include "daemon/hydfs/store_impl.h"
#include "daemon/hydfs/store_io.h"
#include "shared/util/crc32c.h"

namespace rs::hydfs {

// ---- Store::Impl: blobs and space ----

Status Store::Impl::Reserve(uint64_t bytes) {
  std::lock_guard lock(space_mu);
  uint64_t quota = options.quota_bytes;
  if (quota != 0 && (used > quota || bytes > quota - used)) {
    return Status::IOError("no space left: quota of " + std::to_string(quota) + " bytes reached (" +
                           std::to_string(used) + " used, " + std::to_string(bytes) +
                           " more needed)");
  }
  used += bytes;
  return Status::Ok();
}

void Store::Impl::Release(uint64_t bytes) {
  std::lock_guard lock(space_mu);
  used -= std::min(used, bytes);
}

void Store::Impl::Adjust(int64_t before, int64_t after) {
  std::lock_guard lock(space_mu);
  used += static_cast<uint64_t>(std::max<int64_t>(after, 0));
  used -= std::min(used, static_cast<uint64_t>(std::max<int64_t>(before, 0)));
}

Status Store::Impl::Publish(const std::string& tmp_path, uint64_t id, bool sync) {
  std::string path = BlobPath(id);
  {
    std::lock_guard lock(space_mu);
    int64_t old_size = FileSize(path);
    if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
      return IoStatus(errno, "rename " + tmp_path + " to " + path);
    }
    if (old_size > 0) used -= std::min(used, static_cast<uint64_t>(old_size));
  }
  // Once renamed the blob stays: if this fsync fails, the caller sees the error and does not
  // commit a manifest naming the blob.
  return sync ? FsyncDir(BlobDir(id)) : Status::Ok();
}

void Store::Impl::DeleteBlobs(const std::vector<AppendMeta>& blobs) {
  for (const auto& a : blobs) {
    std::string path = BlobPath(a.id);
    std::lock_guard lock(space_mu);
    int64_t size = FileSize(path);
    if (size >= 0 && ::unlink(path.c_str()) == 0) used -= std::min(used, uint64_t(size));
  }
}

Status Store::Impl::CheckBlobsPresent(const std::vector<AppendMeta>& list) const {
  std::string missing;
  size_t n = 0;
  for (const auto& a : list) {
    if (a.size == 0) continue;  // an empty append needs no blob
    if (FileSize(BlobPath(a.id)) == static_cast<int64_t>(a.size)) continue;
    if (n++ < 8) missing += (missing.empty() ? "" : ", ") + Hex16(a.id);
  }
  if (n == 0) return Status::Ok();
  if (n > 8) missing += ", ...";
  return Status::FailedPrecondition(std::to_string(n) +
                                    " blob(s) missing or incomplete: " + missing);
}

// ---- BlobWriter ----

BlobWriter::BlobWriter(Store* store, AppendMeta meta, std::string tmp_path, int fd)
    : store_(store), meta_(std::move(meta)), tmp_path_(std::move(tmp_path)), fd_(fd) {
  written_.assign(meta_.chunk_count(), false);
}

BlobWriter::~BlobWriter() {
  if (finished_) return;
  CloseAndUnlink(&fd_, &tmp_path_);
  store_->impl_->Release(std::exchange(reserved_, 0));
}

Status BlobWriter::WriteChunk(uint32_t index, std::string_view data, uint32_t crc) {
  std::string what = AppendName(meta_.id) + " chunk " + std::to_string(index);
  if (finished_) return Status::FailedPrecondition(what + ": the blob is already finished");
  if (fd_ < 0) return Status::IOError(what + ": the writer was abandoned after an error");
  if (index >= meta_.chunk_count()) {
    return Status::InvalidArgument(what + ": out of range (" + std::to_string(meta_.chunk_count()) +
                                   " chunks)");
  }
  if (data.size() != meta_.ChunkBytes(index)) {
    return Status::Corruption(what + ": " + std::to_string(data.size()) + " bytes, expected " +
                              std::to_string(meta_.ChunkBytes(index)));
  }
  uint32_t actual = Crc32c(data.data(), data.size());
  if (actual != crc) {
    return Status::Corruption(what + ": crc32c " + std::to_string(actual) +
                              " differs from the sender's " + std::to_string(crc));
  }
  Status s =
      PwriteAll(fd_, data.data(), data.size(), uint64_t{index} * meta_.chunk_size, tmp_path_);
  if (!s.ok()) {
    // A failed write (disk full included) abandons the blob: nothing stays behind.
    CloseAndUnlink(&fd_, &tmp_path_);
    store_->impl_->Release(std::exchange(reserved_, 0));
    return s;
  }
  meta_.crcs[index] = crc;
  written_[index] = true;
  // Chunks arrive in order in practice; write-behind keeps a large blob out of the page cache.
  behind_.Advance(fd_, uint64_t{index} * meta_.chunk_size + data.size());
  return Status::Ok();
}

Result<AppendMeta> BlobWriter::Finish(bool sync) {
  std::string what = AppendName(meta_.id);
  if (finished_) return meta_;
  if (fd_ < 0) return Status::IOError(what + ": the writer was abandoned after an error");
  auto missing = static_cast<size_t>(std::count(written_.begin(), written_.end(), false));
  if (missing > 0) {
    size_t first = std::find(written_.begin(), written_.end(), false) - written_.begin();
    return Status::FailedPrecondition(what + ": " + std::to_string(missing) + " of " +
                                      std::to_string(written_.size()) +
                                      " chunks not written (first: " + std::to_string(first) + ")");
  }
  Status s;
  if (sync && ::fdatasync(fd_) != 0) s = IoStatus(errno, "fdatasync " + tmp_path_);
  if (s.ok() && ::close(std::exchange(fd_, -1)) != 0) s = IoStatus(errno, "close " + tmp_path_);
  if (s.ok()) s = store_->impl_->Publish(tmp_path_, meta_.id, sync);
  if (!s.ok() && FileSize(tmp_path_) >= 0) {  // not renamed: drop the temporary file
    CloseAndUnlink(&fd_, &tmp_path_);
    store_->impl_->Release(std::exchange(reserved_, 0));
    return s;
  }
  // Renamed (possibly with a failed directory fsync): the reservation now counts the blob.
  finished_ = true;
  reserved_ = 0;
  tmp_path_.clear();
  if (!s.ok()) return s;
  return meta_;
}

// ---- Store: blobs ----

bool Store::HasBlob(uint64_t append_id) const {
  return ::access(impl_->BlobPath(append_id).c_str(), F_OK) == 0;
}

Result<std::unique_ptr<BlobWriter>> Store::NewBlob(const AppendMeta& meta) {
  auto count = ChunkCount(meta.size, meta.chunk_size);
  if (!count) {
    return Status::InvalidArgument(AppendName(meta.id) + ": size " + std::to_string(meta.size) +
                                   " cannot be cut into chunks of " +
                                   std::to_string(meta.chunk_size) + " bytes");
  }
  RS_RETURN_IF_ERROR(impl_->Reserve(meta.size));
  std::string tmp =
      impl_->tmp_dir + "/" + Hex16(meta.id) + "." + std::to_string(impl_->tmp_seq.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    impl_->Release(meta.size);
    return IoStatus(err, "create " + tmp);
  }
  // Allocating up front turns a full disk into an error now rather than mid-transfer.
  // Filesystems without fallocate simply skip it.
  if (meta.size > 0 && ::fallocate(fd, 0, 0, static_cast<off_t>(meta.size)) != 0 &&
      errno != EOPNOTSUPP && errno != ENOSYS) {
    int err = errno;
    CloseAndUnlink(&fd, &tmp);
    impl_->Release(meta.size);
    return IoStatus(err,
                    "allocate " + std::to_string(meta.size) + " bytes for " + AppendName(meta.id));
  }
  AppendMeta m = meta;
  m.crcs.assign(*count, 0);
  std::unique_ptr<BlobWriter> writer(new BlobWriter(this, std::move(m), std::move(tmp), fd));
  writer->reserved_ = meta.size;
  return writer;
}

Status Store::ReadChunk(const AppendMeta& append, uint32_t index, char* out) const {
  std::string what = AppendName(append.id) + " chunk " + std::to_string(index);
  if (index >= append.chunk_count()) {
    return Status::InvalidArgument(what + ": out of range (" +
                                   std::to_string(append.chunk_count()) + " chunks)");
  }
  std::string path = impl_->BlobPath(append.id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Corruption(what + ": the blob is missing");
    return IoStatus(errno, "open " + path);
  }
  uint32_t n = append.ChunkBytes(index);
  auto got = PreadAll(fd, out, n, uint64_t{index} * append.chunk_size, path);
  ::close(fd);
  if (!got.ok()) return got.status();
  if (*got != n) {
    return Status::Corruption(what + ": the blob is truncated (" + std::to_string(*got) + " of " +
                              std::to_string(n) + " bytes)");
  }
  uint32_t actual = Crc32c(out, n);
  if (actual != append.crcs[index]) {
    return Status::Corruption(what + ": crc32c mismatch (stored " + std::to_string(actual) +
                              ", expected " + std::to_string(append.crcs[index]) + ")");
  }
  return Status::Ok();
}

Status Store::RewriteChunk(const AppendMeta& append, uint32_t index, std::string_view data) {
  std::string what = AppendName(append.id) + " chunk " + std::to_string(index);
  RS_RETURN_IF_ERROR(CheckLayout(append));
  if (index >= append.chunk_count()) {
    return Status::InvalidArgument(what + ": out of range (" +
                                   std::to_string(append.chunk_count()) + " chunks)");
  }
  if (data.size() != append.ChunkBytes(index) ||
      Crc32c(data.data(), data.size()) != append.crcs[index]) {
    return Status::Corruption(what + ": the repair data does not match the chunk's size and CRC");
  }
  std::string path = impl_->BlobPath(append.id);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(what + ": no blob to repair");
    return IoStatus(errno, "open " + path);
  }
  int64_t before = FileSize(path);
  Status s = PwriteAll(fd, data.data(), data.size(), uint64_t{index} * append.chunk_size, path);
  if (s.ok() && ::fdatasync(fd) != 0) s = IoStatus(errno, "fdatasync " + path);
  ::close(fd);
  // Rewriting the tail of a truncated blob grows it back: keep used_bytes in step.
  impl_->Adjust(before, FileSize(path));
  return s;
}

Status Store::SyncBlob(uint64_t append_id) {
  std::string path = impl_->BlobPath(append_id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoStatus(errno, "open " + path);
  Status s;
  if (::fdatasync(fd) != 0) s = IoStatus(errno, "fdatasync " + path);
  // Drop-behind (as HDFS datanodes do): the data is on disk now, so its page-cache copy only
  // crowds out other pages. Replicas write 3 copies of everything on a shared machine; keeping
  // them cached made 1 GB creates 2-3x slower here. Reads that follow come from the disk.
  if (s.ok()) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (s.ok()) s = FsyncDir(impl_->BlobDir(append_id));
  return s;
}

Status Store::MoveBlobTo(Store& dest, uint64_t append_id) {
  std::string from = impl_->BlobPath(append_id), to = dest.impl_->BlobPath(append_id);
  int64_t size = FileSize(from);
  if (size < 0) return Status::NotFound("no blob " + Hex16(append_id));
  {
    std::lock_guard lock(dest.impl_->space_mu);
    int64_t old_size = FileSize(to);
    if (::rename(from.c_str(), to.c_str()) != 0) return IoStatus(errno, "rename " + from);
    if (old_size > 0) dest.impl_->used -= std::min(dest.impl_->used, uint64_t(old_size));
    dest.impl_->used += static_cast<uint64_t>(size);
  }
  impl_->Release(static_cast<uint64_t>(size));
  return FsyncDir(dest.impl_->BlobDir(append_id));
}

}  // namespace rs::hydfs
