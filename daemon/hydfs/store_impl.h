// Private to Store: its state, shared by store.cc (opening, manifests in LMDB) and
// store_blobs.cc (blob files, space accounting, BlobWriter). The layout on disk is in store.h,
// the record format in store_format.h.
//
// Thread-safety: the fields above `space_mu` are constant after Store::Open (LMDB serialises
// its own writers); `used` is guarded by `space_mu`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/hydfs/store.h"
#include "daemon/hydfs/store_format.h"
#include "shared/storage/lmdb.h"

namespace rs::hydfs {

struct Store::Impl {
  StoreOptions options;
  std::string blobs_dir, tmp_dir, meta_dir;
  std::unique_ptr<storage::LmdbEnv> env;
  MDB_dbi files = 0;    // name -> FileRecord
  MDB_dbi appends = 0;  // be64(gen) ++ be64(position) -> AppendMeta
  MDB_dbi ids = 0;      // be64(gen) ++ be64(append id) -> be64(position)
  std::atomic<uint64_t> tmp_seq{0};

  // Guards `used` and makes "stat, rename/unlink, adjust used" one step, so two writers of the
  // same blob (a retried transfer) cannot count it twice.
  mutable std::mutex space_mu;
  uint64_t used = 0;  // finished blob bytes + reservations of unfinished writers

  // --- blobs and space (store_blobs.cc) ---

  std::string BlobDir(uint64_t id) const { return blobs_dir + "/" + Hex16(id).substr(0, 2); }
  std::string BlobPath(uint64_t id) const { return BlobDir(id) + "/" + Hex16(id); }

  // Counts `bytes` against the quota; IOError "no space left: quota ..." when it cannot hold them.
  Status Reserve(uint64_t bytes);
  void Release(uint64_t bytes);
  // A blob changed size from `before` to `after` bytes (-1: absent).
  void Adjust(int64_t before, int64_t after);
  // Moves a finished temporary blob into place. The writer's reservation becomes the blob's
  // bytes; a blob already there (the same append sent twice) is replaced and uncounted.
  Status Publish(const std::string& tmp_path, uint64_t id, bool sync);
  // Unlinks the blobs (missing ones are fine) and uncounts them. Not fsynced: a blob that comes
  // back after a crash is only unreferenced space.
  void DeleteBlobs(const std::vector<AppendMeta>& blobs);
  // FailedPrecondition naming every non-empty append whose blob is absent or of the wrong size.
  Status CheckBlobsPresent(const std::vector<AppendMeta>& list) const;

  // --- records inside a transaction (store.cc) ---

  Status CheckName(const std::string& name) const;
  Result<std::optional<FileRecord>> LoadFile(const storage::LmdbTxn& txn,
                                             const std::string& name) const;
  Status PutFile(storage::LmdbTxn& txn, const std::string& name, const FileRecord& rec);
  // The appends of a live record, in order; Corruption unless exactly positions 0..count-1 exist.
  Result<std::vector<AppendMeta>> LoadAppends(const storage::LmdbTxn& txn,
                                              const FileRecord& rec) const;
  // Writes list[from..] at their positions, with their id records.
  Status PutAppends(storage::LmdbTxn& txn, uint64_t gen, const std::vector<AppendMeta>& list,
                    size_t from);
  // Deletes generation `gen`'s appends and id records.
  Status DeleteAppends(storage::LmdbTxn& txn, uint64_t gen);
  // The append `id` of generation `gen` when this copy lists it (one id record, one append).
  Result<std::optional<AppendMeta>> FindAppend(const storage::LmdbTxn& txn, uint64_t gen,
                                               uint64_t id) const;
  // Append keys carry only the generation, so a generation number must belong to one file.
  // Generations are random 64-bit numbers; this guards against a caller reusing one.
  Status CheckGenUnused(const storage::LmdbTxn& txn, const std::string& name, uint64_t gen) const;
  Result<Manifest> ReadManifest(const storage::LmdbTxn& txn, const std::string& name) const;
};

}  // namespace rs::hydfs
