// The manifest side of Store: opening it, and the file and append records in LMDB (reads,
// commits, merges, removal). Blob files and their space are in store_blobs.cc.
#include "daemon/hydfs/store.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <unordered_set>
#include <utility>

#include "daemon/hydfs/store_format.h"
#include "daemon/hydfs/store_impl.h"
#include "daemon/hydfs/store_io.h"
#include "shared/logging.h"
#include "shared/storage/lmdb.h"

namespace rs::hydfs {
namespace {

using storage::LmdbEnv;
using storage::LmdbTxn;

constexpr size_t kMaxTombstones = 16;  // removed generations remembered per name
constexpr uint64_t kDefaultMapSize = 1ull << 30;
constexpr unsigned kMaxDbs = 4;  // files, appends, ids

bool Contains(const std::vector<uint64_t>& v, uint64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A live record's summary: kept in the record by every commit, so no append is read.
FileSummary Summarize(const FileRecord& rec) {
  FileSummary s;
  s.name = rec.file.name;
  s.gen = rec.file.gen;
  s.size = rec.size;
  s.appends = rec.count;
  s.merged = rec.merged;
  s.digest = rec.digest;
  return s;
}

// Sets the record's count, size and digest for `list`, the generation's whole order.
void SetTotals(FileRecord* rec, const std::vector<AppendMeta>& list) {
  rec->count = list.size();
  rec->size = 0;
  rec->digest = OrderDigestStart(rec->file.gen);
  for (const auto& a : list) {
    rec->size += a.size;
    rec->digest = OrderDigestStep(rec->digest, a.id);
  }
}

}  // namespace

// ---- Store::Impl: records inside a transaction ----

Status Store::Impl::CheckName(const std::string& name) const {
  if (name.empty() || name.size() > env->max_key_size()) {
    return Status::InvalidArgument("file name must be 1.." + std::to_string(env->max_key_size()) +
                                   " bytes");
  }
  return Status::Ok();
}

Result<std::optional<FileRecord>> Store::Impl::LoadFile(const LmdbTxn& txn,
                                                        const std::string& name) const {
  auto bytes = txn.Get(files, name);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return std::optional<FileRecord>();
    return bytes.status();
  }
  auto rec = DecodeFileRecord(*bytes, name);
  if (!rec.ok()) return rec.status();
  return std::optional<FileRecord>(std::move(*rec));
}

Status Store::Impl::PutFile(LmdbTxn& txn, const std::string& name, const FileRecord& rec) {
  return txn.Put(files, name, EncodeFileRecord(rec));
}

Result<std::vector<AppendMeta>> Store::Impl::LoadAppends(const LmdbTxn& txn,
                                                         const FileRecord& rec) const {
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

Status Store::Impl::PutAppends(LmdbTxn& txn, uint64_t gen, const std::vector<AppendMeta>& list,
                               size_t from) {
  for (size_t i = from; i < list.size(); ++i) {
    RS_RETURN_IF_ERROR(txn.Put(appends, AppendKey(gen, i), EncodeAppend(list[i])));
    RS_RETURN_IF_ERROR(txn.Put(ids, IdKey(gen, list[i].id), EncodePosition(i)));
  }
  return Status::Ok();
}

Status Store::Impl::DeleteAppends(LmdbTxn& txn, uint64_t gen) {
  for (MDB_dbi db : {appends, ids}) {
    std::vector<std::string> keys;
    RS_RETURN_IF_ERROR(txn.ScanPrefix(db, GenPrefix(gen), [&](std::string_view k, auto) {
      keys.emplace_back(k);
      return true;
    }));
    for (const auto& k : keys) RS_RETURN_IF_ERROR(txn.Del(db, k));
  }
  return Status::Ok();
}

Result<std::optional<AppendMeta>> Store::Impl::FindAppend(const LmdbTxn& txn, uint64_t gen,
                                                          uint64_t id) const {
  auto pos = txn.Get(ids, IdKey(gen, id));
  if (!pos.ok()) {
    if (pos.status().code() == StatusCode::kNotFound) return std::optional<AppendMeta>();
    return pos.status();
  }
  auto at = DecodePosition(*pos);
  if (!at.ok()) return at.status();
  std::string what = "append record " + std::to_string(*at) + " of generation " +
                     std::to_string(gen);
  auto bytes = txn.Get(appends, AppendKey(gen, *at));
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) {
      return Status::Corruption(what + ": listed by the id index but missing");
    }
    return bytes.status();
  }
  auto a = DecodeAppend(*bytes, what);
  if (!a.ok()) return a.status();
  if (a->id != id) return Status::Corruption(what + ": the id index points at another append");
  return std::optional<AppendMeta>(std::move(*a));
}

Status Store::Impl::CheckGenUnused(const LmdbTxn& txn, const std::string& name,
                                   uint64_t gen) const {
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

Result<Manifest> Store::Impl::ReadManifest(const LmdbTxn& txn, const std::string& name) const {
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
  auto ids = impl->env->OpenDb("ids");
  if (!ids.ok()) return ids.status();
  impl->files = *files;
  impl->appends = *appends;
  impl->ids = *ids;
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<Manifest> Store::GetManifest(const std::string& name) const {
  if (!impl_->CheckName(name).ok()) return Status::NotFound("no copy of '" + name + "'");
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) return txn.status();
  return impl_->ReadManifest(*txn, name);
}

Result<FileSummary> Store::Summary(const std::string& name) const {
  if (!impl_->CheckName(name).ok()) return Status::NotFound("no copy of '" + name + "'");
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) return txn.status();
  auto rec = impl_->LoadFile(*txn, name);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value() || !(*rec)->live) {
    return Status::NotFound("no copy of '" + name + "' on this node");
  }
  return Summarize(**rec);
}

Result<std::optional<AppendMeta>> Store::FindAppend(const std::string& name, uint64_t gen,
                                                    uint64_t id) const {
  if (!impl_->CheckName(name).ok()) return Status::NotFound("no copy of '" + name + "'");
  auto txn = LmdbTxn::BeginRead(*impl_->env);
  if (!txn.ok()) return txn.status();
  auto rec = impl_->LoadFile(*txn, name);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value() || !(*rec)->live || (*rec)->file.gen != gen) {
    return Status::NotFound("no copy of generation " + std::to_string(gen) + " of '" + name +
                            "' on this node");
  }
  return impl_->FindAppend(*txn, gen, id);
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
    auto rec = impl_->LoadFile(*txn, name);
    if (!rec.ok()) {
      // One damaged record must not hide the other files.
      Logger("hydfs")->warn("event=bad_record file={} error=\"{}\"", name,
                            rec.status().ToString());
    } else if (rec->has_value() && (*rec)->live) {  // else only tombstones
      out.push_back(Summarize(**rec));
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
    auto listed = impl_->FindAppend(*txn, file.gen, first.id);
    if (!listed.ok()) return listed.status();
    if (listed->has_value()) return Status::Ok();
    return Status::AlreadyExists("generation " + std::to_string(file.gen) + " of '" + file.name +
                                 "' exists here without " + AppendName(first.id));
  }
  RS_RETURN_IF_ERROR(impl_->CheckGenUnused(*txn, file.name, file.gen));
  rec.live = true;
  rec.file = file;
  rec.merged = 0;
  SetTotals(&rec, {first});
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
  // One id record and one append are read, whatever the number of appends: a task's checkpoint
  // file takes an append ten times a second for as long as its job runs.
  auto listed = impl_->FindAppend(*txn, gen, append.id);
  if (!listed.ok()) return listed.status();
  if (listed->has_value()) return Status::Ok();  // a retried append
  uint64_t position = rec.count;
  RS_RETURN_IF_ERROR(txn->Put(impl_->appends, AppendKey(gen, position), EncodeAppend(append)));
  RS_RETURN_IF_ERROR(txn->Put(impl_->ids, IdKey(gen, append.id), EncodePosition(position)));
  rec.count = position + 1;
  rec.size += append.size;
  rec.digest = OrderDigestStep(rec.digest, append.id);
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
    SetTotals(&rec, order);
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
        return Status::FailedPrecondition("'" + name +
                                          "' changed: " + std::to_string(list->size()) +
                                          " appends, expected " + std::to_string(*expect_appends));
      }
      doomed = std::move(*list);
      RS_RETURN_IF_ERROR(impl_->DeleteAppends(*txn, gen));
      rec.live = false;
      rec.merged = rec.count = rec.size = rec.digest = 0;
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

uint64_t Store::used_bytes() const {
  std::lock_guard lock(impl_->space_mu);
  return impl_->used;
}

uint64_t Store::quota_bytes() const { return impl_->options.quota_bytes; }

const std::string& Store::dir() const { return impl_->options.dir; }

}  // namespace rs::hydfs
