// Store: one node's HyDFS storage, under <dir>:
//   blobs/<2 hex>/<16 hex append id>   the chunk data of one append; chunk i at i * chunk_size
//   tmp/                               blobs being written (removed at Open)
//   meta/                              LMDB environment with the manifests:
//     db "files":   name -> file record (gen, created_ms, creator, merged, append count, size,
//                   order digest, removed generations)
//     db "appends": be64(gen) ++ be64(position) -> AppendMeta, in this replica's order
//     db "ids":     be64(gen) ++ be64(append id) -> be64(position)
// A file record also holds its copy's size and order digest, so heads, listings and appends
// cost the same whatever the number of appends (only GetManifest and merges read them all).
// Every chunk's CRC32C is checked when written, when read and when rewritten by a repair.
// Durability: BlobWriter::Finish() fdatasyncs the blob and renames it into place (directory
// fsynced) before any manifest can name it; manifest commits are durable LMDB commits. So once a
// Commit* returns Ok the append survives a crash of this process or machine.
//
// Thread-safety: every method may be called from any thread. LMDB serialises writers; reads
// use their own read transactions. Methods that write (commits, fsyncs) block on the disk: call
// them from an IO thread, never from an event loop. A BlobWriter belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/hydfs/types.h"
#include "shared/status.h"
#include "shared/util/write_behind.h"

namespace rs::hydfs {

struct StoreOptions {
  std::string dir;                 // created if missing
  bool wipe = true;                // start empty (a raind process is a new member: no blocks)
  uint64_t map_size = 1ull << 30;  // LMDB map size, bytes (address space, not memory)
  uint64_t quota_bytes = 0;        // blob bytes this node may hold; 0 = until the disk is full
};

class Store;

// Writes one append's blob. Chunks may arrive in any order; each is CRC-checked against the
// CRC its sender computed. Destroying an unfinished writer deletes its temporary file.
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Corruption if crc32c(data) != crc or the size disagrees with the append's layout;
  // IOError "no space left ..." when the quota or the disk is full; InvalidArgument for an index
  // out of range.
  Status WriteChunk(uint32_t index, std::string_view data, uint32_t crc);
  // FailedPrecondition unless every chunk was written; then fdatasync (when `sync`) + rename
  // into place. Returns the append's metadata with its CRCs filled in. Without `sync` the blob
  // is only in the page cache: it survives a crash of this process but not of the machine until
  // Store::SyncBlob() (the service syncs it in the background).
  Result<AppendMeta> Finish(bool sync = true);
  const AppendMeta& meta() const { return meta_; }

 private:
  friend class Store;
  BlobWriter(Store* store, AppendMeta meta, std::string tmp_path, int fd);
  Store* store_;
  AppendMeta meta_;  // crcs sized to the chunk count; filled as chunks arrive
  std::vector<bool> written_;
  std::string tmp_path_;
  int fd_ = -1;
  uint64_t reserved_ = 0;  // bytes counted against the quota
  WriteBehind behind_;     // write-behind and drop-behind as the blob grows
  bool finished_ = false;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  // --- reading manifests ---
  // NotFound when this node holds no live copy of `name`.
  Result<Manifest> GetManifest(const std::string& name) const;
  Result<FileSummary> Summary(const std::string& name) const;  // one record read
  // Append `id` of generation `gen` when this copy lists it. NotFound when this node holds no
  // live copy of that generation.
  Result<std::optional<AppendMeta>> FindAppend(const std::string& name, uint64_t gen,
                                               uint64_t id) const;
  // Live files whose name starts with `prefix` ("" = all), sorted by name.
  std::vector<FileSummary> List(const std::string& prefix = "") const;
  // True when generation `gen` of `name` was removed here (a tombstone).
  bool IsRemoved(const std::string& name, uint64_t gen) const;
  bool HasBlob(uint64_t append_id) const;

  // --- writing ---
  // A writer for `meta` (id, client, seq, size, chunk_size set; crcs ignored). IOError when the
  // quota cannot hold meta.size more bytes.
  Result<std::unique_ptr<BlobWriter>> NewBlob(const AppendMeta& meta);
  // Makes `file` exist with `first` as its only append (its blob must be finished, unless empty).
  // AlreadyExists when a live copy of another generation exists; FailedPrecondition when this
  // generation was removed. Idempotent for the same gen and append.
  Status CommitCreate(const FileMeta& file, const AppendMeta& first);
  // Adds `append` at the end of the local order. NotFound when no live copy of (name, gen);
  // Ok without change when the append is already listed.
  Status CommitAppend(const std::string& name, uint64_t gen, const AppendMeta& append);
  // Replaces the local order of (file.name, file.gen) with `order`, creating the file record if
  // this node holds no copy (repair onto a new replica). Every blob in `order` must be present
  // (FailedPrecondition names the missing ones). Refuses (FailedPrecondition) to drop an append
  // the local copy has that `order` lacks: a merge only ever adds and reorders. Blobs of a
  // different live generation are replaced (AlreadyExists is returned instead when
  // `replace_other_gen` is false).
  Status SetOrder(const FileMeta& file, const std::vector<AppendMeta>& order, uint64_t merged,
                  bool replace_other_gen = false);
  // Deletes the local copy and its blobs. With `tombstone`, remembers (name, gen) as removed so a
  // stale copy elsewhere is recognised (the last 16 generations per name are kept).
  // With `expect_appends`, FailedPrecondition (and nothing removed) unless the copy holds exactly
  // that many appends: a caller that moved the blobs it saw away loses no append committed since.
  Status Remove(const std::string& name, uint64_t gen, bool tombstone,
                std::optional<uint64_t> expect_appends = std::nullopt);

  // --- chunk data ---
  // Reads chunk `index` of `append` into `out` (capacity append.ChunkBytes(index)) and checks its
  // CRC: Corruption (naming the blob and chunk) on mismatch or a short/missing blob.
  Status ReadChunk(const AppendMeta& append, uint32_t index, char* out) const;
  // fdatasyncs a finished blob and its directory, then drops the blob's pages from the page
  // cache (drop-behind: written data is not kept in memory three times over).
  Status SyncBlob(uint64_t append_id);
  // A repair: overwrites chunk `index` of an existing blob with `data` (CRC-checked) and fsyncs.
  Status RewriteChunk(const AppendMeta& append, uint32_t index, std::string_view data);

  // Moves a finished blob into `dest`'s blob directory (a rename: both stores must be on one
  // filesystem), moving its bytes from this store's used_bytes to dest's. NotFound when absent.
  // Used to quarantine a node's old copies (legacy.h).
  Status MoveBlobTo(Store& dest, uint64_t append_id);

  uint64_t used_bytes() const;   // blob bytes held, including blobs being written
  uint64_t quota_bytes() const;  // 0 = unlimited
  const std::string& dir() const;

 private:
  friend class BlobWriter;
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rs::hydfs
