#include "daemon/hydfs/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <msgpack.hpp>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <unordered_set>
#include <utility>

#include "shared/logging.h"
#include "shared/storage/lmdb.h"
#include "shared/util/crc32c.h"
#include "shared/util/write_behind.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

namespace fs = std::filesystem;
using storage::LmdbEnv;
using storage::LmdbTxn;

constexpr uint64_t kRecordVersion = 1;  // "v" of every LMDB record
constexpr size_t kMaxTombstones = 16;   // removed generations remembered per name
constexpr uint64_t kDefaultMapSize = 1ull << 30;
constexpr unsigned kMaxDbs = 4;

// ---- small helpers ----

std::string Hex16(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

std::string AppendName(uint64_t id) { return "append " + Hex16(id); }

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// Disk-full errors get a fixed prefix so callers (and users) can tell them from other IO errors.
Status IoStatus(int err, const std::string& what) {
  if (err == ENOSPC || err == EDQUOT) {
    return Status::IOError("no space left on device: " + what + ": " + ErrnoText(err));
  }
  return Status::IOError(what + ": " + ErrnoText(err));
}

Status PwriteAll(int fd, const char* data, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoStatus(errno, "write " + path);
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

// Reads up to `n` bytes at `offset`; fewer only at end of file.
Result<size_t> PreadAll(int fd, char* out, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return IoStatus(errno, "read " + path);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

// Makes a rename or create in `dir` durable.
Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoStatus(errno, "open " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoStatus(err, "fsync " + dir);
}

// -1 when the file does not exist (or cannot be stat'ed).
int64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

void CloseAndUnlink(int* fd, std::string* path) {
  if (*fd >= 0) ::close(std::exchange(*fd, -1));
  if (!path->empty()) ::unlink(path->c_str());
  path->clear();
}

// The number of chunks of an append of `size` bytes, or nullopt when the layout is impossible.
std::optional<uint64_t> ChunkCount(uint64_t size, uint32_t chunk_size) {
  if (size == 0) return 0;
  if (chunk_size == 0) return std::nullopt;
  uint64_t n = (size + chunk_size - 1) / chunk_size;
  if (n > UINT32_MAX) return std::nullopt;
  return n;
}

// An append's CRC list must match its size and chunk size, or ChunkBytes() would lie.
Status CheckLayout(const AppendMeta& a) {
  auto n = ChunkCount(a.size, a.chunk_size);
  if (!n || *n != a.crcs.size()) {
    return Status::InvalidArgument(AppendName(a.id) + ": " + std::to_string(a.crcs.size()) +
                                   " chunk CRCs do not fit size " + std::to_string(a.size) +
                                   " with chunk size " + std::to_string(a.chunk_size));
  }
  return Status::Ok();
}

// ---- keys ----

void PutBe64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t GetBe64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string GenPrefix(uint64_t gen) {
  std::string key;
  PutBe64(&key, gen);
  return key;
}

// Big-endian so that LMDB's byte order is the replica's append order.
std::string AppendKey(uint64_t gen, uint64_t position) {
  std::string key = GenPrefix(gen);
  PutBe64(&key, position);
  return key;
}

// ---- records ----
// Both are MessagePack maps with string keys and a version "v" (readers reject other versions;
// new fields may be added, never renamed):
//   file record:   {v, live: bool, gen, created_ms, creator: str, merged, count, removed: [gen]}
//   append record: {v, id, client: str, seq, size, chunk_size, crcs: [uint32], wall_ms}
// `live` is false when only tombstones remain; `count` appends are stored under be64(gen).

struct FileRecord {
  bool live = false;  // false: only tombstones remain
  FileMeta file;
  uint64_t merged = 0;
  uint64_t count = 0;             // appends stored under be64(file.gen)
  std::vector<uint64_t> removed;  // tombstoned generations, oldest first
};

using Packer = msgpack::packer<msgpack::sbuffer>;

template <typename T>
void PackField(Packer& pk, std::string_view key, const T& value) {
  pk.pack_str(static_cast<uint32_t>(key.size()));
  pk.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
  pk.pack(value);
}

std::string EncodeFileRecord(const FileRecord& r) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(8);
  PackField(pk, "v", kRecordVersion);
  PackField(pk, "live", r.live);
  PackField(pk, "gen", r.file.gen);
  PackField(pk, "created_ms", r.file.created_ms);
  PackField(pk, "creator", r.file.creator);
  PackField(pk, "merged", r.merged);
  PackField(pk, "count", r.count);
  PackField(pk, "removed", r.removed);
  return std::string(buf.data(), buf.size());
}

std::string EncodeAppend(const AppendMeta& a) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(8);
  PackField(pk, "v", kRecordVersion);
  PackField(pk, "id", a.id);
  PackField(pk, "client", a.client);
  PackField(pk, "seq", a.seq);
  PackField(pk, "size", a.size);
  PackField(pk, "chunk_size", a.chunk_size);
  PackField(pk, "crcs", a.crcs);
  PackField(pk, "wall_ms", a.wall_ms);
  return std::string(buf.data(), buf.size());
}

// Unpacks one object that must fill `bytes`. msgpack-cxx throws on malformed input; the
// exception stops here (the store's records could be damaged on disk).
Status Unpack(std::string_view bytes, const std::string& what, msgpack::object_handle* out) {
  try {
    size_t offset = 0;
    msgpack::unpack_limit limit(/*array=*/1u << 24, /*map=*/64, /*str=*/1u << 20, /*bin=*/1u << 20,
                                /*ext=*/1u << 20, /*depth=*/4);
    *out = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, limit);
    if (offset != bytes.size()) return Status::Corruption(what + ": trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(what + ": undecodable: " + e.what());
  }
  return Status::Ok();
}

Status CheckVersion(wire::FieldReader& r) {
  uint64_t v = r.Uint("v");
  if (r.ok() && v != kRecordVersion) r.Fail("unsupported record version " + std::to_string(v));
  return r.status();
}

Result<FileRecord> DecodeFileRecord(std::string_view bytes, const std::string& name) {
  std::string what = "file record of '" + name + "'";
  msgpack::object_handle h;
  RS_RETURN_IF_ERROR(Unpack(bytes, what, &h));
  wire::FieldReader r(h.get(), what);
  RS_RETURN_IF_ERROR(CheckVersion(r));
  FileRecord rec;
  rec.live = r.Bool("live");
  rec.file.name = name;
  rec.file.gen = r.Uint("gen");
  rec.file.created_ms = r.Uint("created_ms");
  rec.file.creator = r.Str("creator");
  rec.merged = r.Uint("merged");
  rec.count = r.Uint("count");
  const msgpack::object* removed = r.Array("removed");
  if (!r.ok()) return r.status();
  for (uint32_t i = 0; i < removed->via.array.size; ++i) {
    uint64_t g = 0;
    if (!wire::ReadUint(removed->via.array.ptr[i], &g)) {
      return Status::Corruption(what + ": a removed generation is not an unsigned integer");
    }
    rec.removed.push_back(g);
  }
  if (rec.merged > rec.count) return Status::Corruption(what + ": merged exceeds the count");
  return rec;
}

Result<AppendMeta> DecodeAppend(std::string_view bytes, const std::string& what) {
  msgpack::object_handle h;
  RS_RETURN_IF_ERROR(Unpack(bytes, what, &h));
  wire::FieldReader r(h.get(), what);
  RS_RETURN_IF_ERROR(CheckVersion(r));
  AppendMeta a;
  a.id = r.Uint("id");
  a.client = r.Str("client");
  a.seq = r.Uint("seq");
  a.size = r.Uint("size");
  a.chunk_size = static_cast<uint32_t>(r.Uint("chunk_size", UINT32_MAX));
  a.wall_ms = r.Uint("wall_ms");
  const msgpack::object* crcs = r.Array("crcs");
  if (!r.ok()) return r.status();
  a.crcs.reserve(crcs->via.array.size);
  for (uint32_t i = 0; i < crcs->via.array.size; ++i) {
    uint64_t c = 0;
    if (!wire::ReadUint(crcs->via.array.ptr[i], &c) || c > UINT32_MAX) {
      return Status::Corruption(what + ": a chunk CRC is not a uint32");
    }
    a.crcs.push_back(static_cast<uint32_t>(c));
  }
  if (!CheckLayout(a).ok()) return Status::Corruption(what + ": " + CheckLayout(a).message());
  return a;
}

bool Contains(const std::vector<uint64_t>& v, uint64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

// ---- Store::Impl ----

struct Store::Impl {
  StoreOptions options;
  std::string blobs_dir, tmp_dir, meta_dir;
  std::unique_ptr<LmdbEnv> env;
  MDB_dbi files = 0;    // name -> FileRecord
  MDB_dbi appends = 0;  // be64(gen) ++ be64(position) -> AppendMeta
  std::atomic<uint64_t> tmp_seq{0};

  // Guards `used` and makes "stat, rename/unlink, adjust used" one step, so two writers of the
  // same blob (a retried transfer) cannot count it twice.
  mutable std::mutex space_mu;
  uint64_t used = 0;  // finished blob bytes + reservations of unfinished writers

  std::string BlobDir(uint64_t id) const { return blobs_dir + "/" + Hex16(id).substr(0, 2); }
  std::string BlobPath(uint64_t id) const { return BlobDir(id) + "/" + Hex16(id); }

  Status Reserve(uint64_t bytes) {
    std::lock_guard lock(space_mu);
    uint64_t quota = options.quota_bytes;
    if (quota != 0 && (used > quota || bytes > quota - used)) {
      return Status::IOError("no space left: quota of " + std::to_string(quota) +
                             " bytes reached (" + std::to_string(used) + " used, " +
                             std::to_string(bytes) + " more needed)");
    }
    used += bytes;
    return Status::Ok();
  }

  void Release(uint64_t bytes) {
    std::lock_guard lock(space_mu);
    used -= std::min(used, bytes);
  }

  void Adjust(int64_t before, int64_t after) {
    std::lock_guard lock(space_mu);
    used += static_cast<uint64_t>(std::max<int64_t>(after, 0));
    used -= std::min(used, static_cast<uint64_t>(std::max<int64_t>(before, 0)));
  }

  // Moves a finished temporary blob into place. The writer's reservation becomes the blob's
  // bytes; a blob already there (the same append sent twice) is replaced and uncounted.
  Status Publish(const std::string& tmp_path, uint64_t id, bool sync) {
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

  // Unlinks the blobs (missing ones are fine) and uncounts them. Not fsynced: a blob that comes
  // back after a crash is only unreferenced space.
  void DeleteBlobs(const std::vector<AppendMeta>& blobs) {
    for (const auto& a : blobs) {
      std::string path = BlobPath(a.id);
      std::lock_guard lock(space_mu);
      int64_t size = FileSize(path);
      if (size >= 0 && ::unlink(path.c_str()) == 0) used -= std::min(used, uint64_t(size));
    }
  }

  // FailedPrecondition naming every non-empty append whose blob is absent or of the wrong size.
  Status CheckBlobsPresent(const std::vector<AppendMeta>& list) const {
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

  Status CheckName(const std::string& name) const {
    if (name.empty() || name.size() > env->max_key_size()) {
      return Status::InvalidArgument("file name must be 1.." + std::to_string(env->max_key_size()) +
                                     " bytes");
    }
    return Status::Ok();
  }

  // --- records inside a transaction ---

  Result<std::optional<FileRecord>> LoadFile(const LmdbTxn& txn, const std::string& name) const {
    auto bytes = txn.Get(files, name);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) return std::optional<FileRecord>();
      return bytes.status();
    }
    auto rec = DecodeFileRecord(*bytes, name);
    if (!rec.ok()) return rec.status();
    return std::optional<FileRecord>(std::move(*rec));
  }

  Status PutFile(LmdbTxn& txn, const std::string& name, const FileRecord& rec) {
    return txn.Put(files, name, EncodeFileRecord(rec));
  }

  // The appends of a live record, in order; Corruption unless exactly positions 0..count-1 exist.
  Result<std::vector<AppendMeta>> LoadAppends(const LmdbTxn& txn, const FileRecord& rec) const {
    const std::string& name = rec.file.name;
    std::vector<AppendMeta> out;
    Status decode_error;
    Status scan = txn.ScanPrefix(
        appends, GenPrefix(rec.file.gen), [&](std::string_view key, std::string_view value) {
          std::string what = "append record " + std::to_string(out.size()) + " of '" + name + "'";
          if (key.size() != 16 || GetBe64(key.substr(8)) != out.size()) {
            decode_error = Status::Corruption(what + ": unexpected key");
            return false;
          }
          auto a = DecodeAppend(value, what);
          if (!a.ok()) {
            decode_error = a.status();
            return false;
          }
          out.push_back(std::move(*a));
          return true;
        });
    RS_RETURN_IF_ERROR(scan);
    RS_RETURN_IF_ERROR(decode_error);
    if (out.size() != rec.count) {
      return Status::Corruption("manifest of '" + name + "' lists " + std::to_string(rec.count) +
                                " appends but " + std::to_string(out.size()) + " are stored");
    }
    return out;
  }

  Status PutAppends(LmdbTxn& txn, uint64_t gen, const std::vector<AppendMeta>& list, size_t from) {
    for (size_t i = from; i < list.size(); ++i) {
      RS_RETURN_IF_ERROR(txn.Put(appends, AppendKey(gen, i), EncodeAppend(list[i])));
    }
    return Status::Ok();
  }

  Status DeleteAppends(LmdbTxn& txn, uint64_t gen) {
    std::vector<std::string> keys;
    RS_RETURN_IF_ERROR(txn.ScanPrefix(appends, GenPrefix(gen), [&](std::string_view k, auto) {
      keys.emplace_back(k);
      return true;
    }));
    for (const auto& k : keys) RS_RETURN_IF_ERROR(txn.Del(appends, k));
    return Status::Ok();
  }

  // Append keys carry only the generation, so a generation number must belong to one file.
  // Generations are random 64-bit numbers; this guards against a caller reusing one.
  Status CheckGenUnused(const LmdbTxn& txn, const std::string& name, uint64_t gen) const {
    bool used_by_other = false;
    RS_RETURN_IF_ERROR(txn.ScanPrefix(appends, GenPrefix(gen), [&](auto, auto) {
      used_by_other = true;
      return false;
    }));
    if (used_by_other) {
      return Status::AlreadyExists("generation " + std::to_string(gen) +
                                   " is already used by another file than '" + name + "'");
    }
    return Status::Ok();
  }

  Result<Manifest> ReadManifest(const LmdbTxn& txn, const std::string& name) const {
    auto rec = LoadFile(txn, name);
    if (!rec.ok()) return rec.status();
    if (!rec->has_value() || !(*rec)->live) {
      return Status::NotFound("no copy of '" + name + "' on this node");
    }
    auto list = LoadAppends(txn, **rec);
    if (!list.ok()) return list.status();
    Manifest m;
    m.file = (*rec)->file;
    m.appends = std::move(*list);
    m.merged = (*rec)->merged;
    return m;
  }
};

namespace {

FileSummary Summarize(const Manifest& m) {
  FileSummary s;
  s.name = m.file.name;
  s.gen = m.file.gen;
  s.size = m.size();
  s.appends = m.appends.size();
  s.merged = m.merged;
  s.digest = OrderDigest(m.file.gen, m.appends);
  return s;
}

// Sums the sizes of the files under `dir`.
uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uint64_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("create " + dir + ": " + ec.message());
  return Status::Ok();
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::IOError("remove " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

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

// ---- Store ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.dir.empty()) return Status::InvalidArgument("store directory is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->blobs_dir = options.dir + "/blobs";
  impl->tmp_dir = options.dir + "/tmp";
  impl->meta_dir = options.dir + "/meta";
  // Only our own subdirectories are wiped: `dir` may hold other files of the node.
  if (options.wipe) {
    for (const auto* d : {&impl->blobs_dir, &impl->meta_dir}) RS_RETURN_IF_ERROR(RemoveAll(*d));
  }
  RS_RETURN_IF_ERROR(RemoveAll(impl->tmp_dir));  // unfinished blobs of an earlier process
  RS_RETURN_IF_ERROR(MakeDirs(impl->tmp_dir));
  RS_RETURN_IF_ERROR(MakeDirs(impl->meta_dir));
  // All 256 fan-out directories exist from the start, so Finish() only fsyncs one directory.
  for (int i = 0; i < 256; ++i) {
    char sub[3];
    std::snprintf(sub, sizeof(sub), "%02x", i);
    RS_RETURN_IF_ERROR(MakeDirs(impl->blobs_dir + "/" + sub));
  }
  RS_RETURN_IF_ERROR(FsyncDir(impl->blobs_dir));
  RS_RETURN_IF_ERROR(FsyncDir(options.dir));
  impl->used = DirBytes(impl->blobs_dir);

  storage::LmdbOptions lmdb;
  lmdb.map_size = options.map_size != 0 ? options.map_size : kDefaultMapSize;
  lmdb.max_dbs = kMaxDbs;
  auto env = LmdbEnv::Open(impl->meta_dir, lmdb);
  if (!env.ok()) return env.status();
  impl->env = std::move(*env);
  auto files = impl->env->OpenDb("files");
  if (!files.ok()) return files.status();
  auto appends = impl->env->OpenDb("appends");
  if (!appends.ok()) return appends.status();
  impl->files = *files;
  impl->appends = *appends;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<Manifest> Store::GetManifest(const std::string& name) const {
  if (!impl_->CheckName(name).ok()) return Status::NotFound("no copy of '" + name + "'");
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) return txn.status();
  return impl_->ReadManifest(*txn, name);
}

Result<FileSummary> Store::Summary(const std::string& name) const {
  auto m = GetManifest(name);
  if (!m.ok()) return m.status();
  return Summarize(*m);
}

std::vector<FileSummary> Store::List(const std::string& prefix) const {
  std::vector<FileSummary> out;
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) {
    Logger("hydfs")->warn("event=list_failed error=\"{}\"", txn.status().ToString());
    return out;
  }
  std::vector<std::string> names;
  Status s = txn->ScanPrefix(impl_->files, prefix, [&](std::string_view key, auto) {
    names.emplace_back(key);
    return true;
  });
  if (!s.ok()) Logger("hydfs")->warn("event=list_failed error=\"{}\"", s.ToString());
  for (const auto& name : names) {
    auto m = impl_->ReadManifest(*txn, name);
    if (m.ok()) {
      out.push_back(Summarize(*m));
    } else if (m.status().code() != StatusCode::kNotFound) {  // NotFound: only tombstones
      // One damaged record must not hide the other files.
      Logger("hydfs")->warn("event=bad_record file={} error=\"{}\"", name, m.status().ToString());
    }
  }
  return out;  // LMDB keys are sorted, so names are too
}

bool Store::IsRemoved(const std::string& name, uint64_t gen) const {
  if (!impl_->CheckName(name).ok()) return false;
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) return false;
  auto rec = impl_->LoadFile(*txn, name);
  return rec.ok() && rec->has_value() && Contains((*rec)->removed, gen);
}

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

Status Store::CommitCreate(const FileMeta& file, const AppendMeta& first) {
  RS_RETURN_IF_ERROR(impl_->CheckName(file.name));
  RS_RETURN_IF_ERROR(CheckLayout(first));
  RS_RETURN_IF_ERROR(impl_->CheckBlobsPresent({first}));
  auto txn = LmdbTxn::BeginWrite(*impl_->env);
  if (!txn.ok()) return txn.status();
  auto loaded = impl_->LoadFile(*txn, file.name);
  if (!loaded.ok()) return loaded.status();
  FileRecord rec = loaded->value_or(FileRecord{});
  if (Contains(rec.removed, file.gen)) {
    return Status::FailedPrecondition("generation " + std::to_string(file.gen) + " of '" +
                                      file.name + "' was removed");
  }
  if (rec.live && rec.file.gen != file.gen) {
    return Status::AlreadyExists("'" + file.name + "' exists here as generation " +
                                 std::to_string(rec.file.gen));
  }
  if (rec.live) {  // same generation: a retried create
    rec.file.name = file.name;
    auto list = impl_->LoadAppends(*txn, rec);
    if (!list.ok()) return list.status();
    for (const auto& a : *list) {
      if (a.id == first.id) return Status::Ok();
    }
    return Status::AlreadyExists("generation " + std::to_string(file.gen) + " of '" + file.name +
                                 "' exists here without " + AppendName(first.id));
  }
  RS_RETURN_IF_ERROR(impl_->CheckGenUnused(*txn, file.name, file.gen));
  rec.live = true;
  rec.file = file;
  rec.merged = 0;
  rec.count = 1;
  RS_RETURN_IF_ERROR(impl_->PutAppends(*txn, file.gen, {first}, 0));
  RS_RETURN_IF_ERROR(impl_->PutFile(*txn, file.name, rec));
  return txn->Commit();
}

Status Store::CommitAppend(const std::string& name, uint64_t gen, const AppendMeta& append) {
  if (!impl_->CheckName(name).ok()) return Status::NotFound("no copy of '" + name + "'");
  RS_RETURN_IF_ERROR(CheckLayout(append));
  RS_RETURN_IF_ERROR(impl_->CheckBlobsPresent({append}));
  auto txn = LmdbTxn::BeginWrite(*impl_->env);
  if (!txn.ok()) return txn.status();
  auto loaded = impl_->LoadFile(*txn, name);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value() || !(*loaded)->live || (*loaded)->file.gen != gen) {
    return Status::NotFound("no copy of generation " + std::to_string(gen) + " of '" + name +
                            "' on this node");
  }
  FileRecord& rec = **loaded;
  auto list = impl_->LoadAppends(*txn, rec);
  if (!list.ok()) return list.status();
  for (const auto& a : *list) {
    if (a.id == append.id) return Status::Ok();  // a retried append
  }
  list->push_back(append);
  rec.count = list->size();
  RS_RETURN_IF_ERROR(impl_->PutAppends(*txn, gen, *list, list->size() - 1));
  RS_RETURN_IF_ERROR(impl_->PutFile(*txn, name, rec));
  return txn->Commit();
}

Status Store::SetOrder(const FileMeta& file, const std::vector<AppendMeta>& order, uint64_t merged,
                       bool replace_other_gen) {
  RS_RETURN_IF_ERROR(impl_->CheckName(file.name));
  if (merged > order.size()) {
    return Status::InvalidArgument("merged " + std::to_string(merged) + " exceeds the " +
                                   std::to_string(order.size()) + " appends of the order");
  }
  std::unordered_set<uint64_t> ids;
  for (const auto& a : order) {
    RS_RETURN_IF_ERROR(CheckLayout(a));
    if (!ids.insert(a.id).second) {
      return Status::InvalidArgument(AppendName(a.id) + " is listed twice in the order");
    }
  }
  RS_RETURN_IF_ERROR(impl_->CheckBlobsPresent(order));

  std::vector<AppendMeta> replaced;  // appends of another generation, deleted after the commit
  {
    auto txn = LmdbTxn::BeginWrite(*impl_->env);
    if (!txn.ok()) return txn.status();
    auto loaded = impl_->LoadFile(*txn, file.name);
    if (!loaded.ok()) return loaded.status();
    FileRecord rec = loaded->value_or(FileRecord{});
    rec.file.name = file.name;
    // A repair must never resurrect a removed generation.
    if (Contains(rec.removed, file.gen)) {
      return Status::FailedPrecondition("generation " + std::to_string(file.gen) + " of '" +
                                        file.name + "' was removed");
    }
    bool same_gen = rec.live && rec.file.gen == file.gen;
    if (rec.live && !same_gen) {
      if (!replace_other_gen) {
        return Status::AlreadyExists("'" + file.name + "' exists here as generation " +
                                     std::to_string(rec.file.gen));
      }
      auto old = impl_->LoadAppends(*txn, rec);
      if (!old.ok()) return old.status();
      replaced = std::move(*old);
      RS_RETURN_IF_ERROR(impl_->DeleteAppends(*txn, rec.file.gen));
    }
    if (same_gen) {
      // A merge only adds and reorders: every append held here must be in the new order.
      auto local = impl_->LoadAppends(*txn, rec);
      if (!local.ok()) return local.status();
      std::string dropped;
      size_t n = 0;
      for (const auto& a : *local) {
        if (ids.count(a.id) == 0 && n++ < 8) dropped += (dropped.empty() ? "" : ", ") + Hex16(a.id);
      }
      if (n > 0) {
        return Status::FailedPrecondition("the new order of '" + file.name + "' lacks " +
                                          std::to_string(n) + " append(s) held here: " + dropped);
      }
    } else {
      RS_RETURN_IF_ERROR(impl_->CheckGenUnused(*txn, file.name, file.gen));
      rec.file = file;
    }
    rec.live = true;
    rec.merged = merged;
    rec.count = order.size();
    // The order is a superset of what was stored, so rewriting positions 0..n-1 leaves no stale
    // position behind.
    RS_RETURN_IF_ERROR(impl_->PutAppends(*txn, file.gen, order, 0));
    RS_RETURN_IF_ERROR(impl_->PutFile(*txn, file.name, rec));
    RS_RETURN_IF_ERROR(txn->Commit());
  }
  impl_->DeleteBlobs(replaced);
  return Status::Ok();
}

Status Store::Remove(const std::string& name, uint64_t gen, bool tombstone,
                     std::optional<uint64_t> expect_appends) {
  RS_RETURN_IF_ERROR(impl_->CheckName(name));
  std::vector<AppendMeta> doomed;
  {
    auto txn = LmdbTxn::BeginWrite(*impl_->env);
    if (!txn.ok()) return txn.status();
    auto loaded = impl_->LoadFile(*txn, name);
    if (!loaded.ok()) return loaded.status();
    FileRecord rec = loaded->value_or(FileRecord{});
    rec.file.name = name;
    if (rec.live && rec.file.gen == gen) {
      auto list = impl_->LoadAppends(*txn, rec);
      if (!list.ok()) return list.status();
      if (expect_appends && list->size() != *expect_appends) {
        return Status::FailedPrecondition("'" + name + "' changed: " +
                                          std::to_string(list->size()) + " appends, expected " +
                                          std::to_string(*expect_appends));
      }
      doomed = std::move(*list);
      RS_RETURN_IF_ERROR(impl_->DeleteAppends(*txn, gen));
      rec.live = false;
      rec.merged = rec.count = 0;
    }
    // Removing a copy this node does not hold (or holds as another generation) is not an
    // error: the tombstone alone still stops a stale repair.
    if (tombstone && !Contains(rec.removed, gen)) {
      rec.removed.push_back(gen);
      if (rec.removed.size() > kMaxTombstones) rec.removed.erase(rec.removed.begin());
    }
    if (!rec.live && rec.removed.empty()) {
      Status del = txn->Del(impl_->files, name);
      if (!del.ok() && del.code() != StatusCode::kNotFound) return del;
    } else {
      RS_RETURN_IF_ERROR(impl_->PutFile(*txn, name, rec));
    }
    RS_RETURN_IF_ERROR(txn->Commit());
  }
  // Blobs go only after the commit: a crash in between leaves unreferenced blobs, never a
  // manifest naming a missing blob.
  impl_->DeleteBlobs(doomed);
  return Status::Ok();
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

uint64_t Store::used_bytes() const {
  std::lock_guard lock(impl_->space_mu);
  return impl_->used;
}

uint64_t Store::quota_bytes() const { return impl_->options.quota_bytes; }

const std::string& Store::dir() const { return impl_->options.dir; }

}  // namespace rs::hydfs
