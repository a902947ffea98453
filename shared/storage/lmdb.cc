#include "shared/storage/lmdb.h"

#include <utility>

namespace rs::storage {
namespace {

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

std::string_view View(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

}  // namespace

Status LmdbStatus(int rc, std::string_view what) {
  if (rc == MDB_SUCCESS) return Status::Ok();
  std::string message = std::string(what) + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_NOTFOUND:
      return Status::NotFound(std::move(message));
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PANIC:
      return Status::Corruption(std::move(message));
    default:
      return Status::IOError(std::move(message));
  }
}

// ---- LmdbEnv ----

Result<std::unique_ptr<LmdbEnv>> LmdbEnv::Open(const std::string& dir, const LmdbOptions& options) {
  MDB_env* raw = nullptr;
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_env_create(&raw), "mdb_env_create"));
  std::unique_ptr<LmdbEnv> env(new LmdbEnv(raw));  // closes the env on every error path below
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_env_set_mapsize(raw, options.map_size), "mdb_env_set_mapsize"));
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_env_set_maxdbs(raw, options.max_dbs), "mdb_env_set_maxdbs"));
  RS_RETURN_IF_ERROR(
      LmdbStatus(mdb_env_set_maxreaders(raw, options.max_readers), "mdb_env_set_maxreaders"));
  unsigned flags = MDB_NOTLS | (options.durable ? 0 : MDB_NOSYNC);
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_env_open(raw, dir.c_str(), flags, 0644), "open " + dir));
  // Reader slots left behind by a crashed process would pin old pages forever.
  int dead = 0;
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_reader_check(raw, &dead), "mdb_reader_check"));
  return env;
}

LmdbEnv::~LmdbEnv() { mdb_env_close(env_); }

Result<MDB_dbi> LmdbEnv::OpenDb(const std::string& name) {
  auto txn = LmdbTxn::BeginWrite(*this);
  if (!txn.ok()) return txn.status();
  MDB_dbi dbi = 0;
  RS_RETURN_IF_ERROR(
      LmdbStatus(mdb_dbi_open(txn->raw(), name.c_str(), MDB_CREATE, &dbi), "open db " + name));
  RS_RETURN_IF_ERROR(txn->Commit());
  return dbi;
}

size_t LmdbEnv::max_key_size() const { return static_cast<size_t>(mdb_env_get_maxkeysize(env_)); }

// ---- LmdbTxn ----

Result<LmdbTxn> LmdbTxn::BeginRead(const LmdbEnv& env) {
  MDB_txn* txn = nullptr;
  RS_RETURN_IF_ERROR(
      LmdbStatus(mdb_txn_begin(env.raw(), nullptr, MDB_RDONLY, &txn), "begin read txn"));
  return LmdbTxn(txn);
}

Result<LmdbTxn> LmdbTxn::BeginWrite(LmdbEnv& env) {
  MDB_txn* txn = nullptr;
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_txn_begin(env.raw(), nullptr, 0, &txn), "begin write txn"));
  return LmdbTxn(txn);
}

LmdbTxn::~LmdbTxn() { Abort(); }

LmdbTxn::LmdbTxn(LmdbTxn&& other) noexcept : txn_(std::exchange(other.txn_, nullptr)) {}

LmdbTxn& LmdbTxn::operator=(LmdbTxn&& other) noexcept {
  if (this != &other) {
    Abort();
    txn_ = std::exchange(other.txn_, nullptr);
  }
  return *this;
}

Result<std::string_view> LmdbTxn::Get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = Val(key), v{};
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc != MDB_SUCCESS) return LmdbStatus(rc, "get");
  return View(v);
}

Status LmdbTxn::Put(MDB_dbi dbi, std::string_view key, std::string_view value) {
  MDB_val k = Val(key), v = Val(value);
  return LmdbStatus(mdb_put(txn_, dbi, &k, &v, 0), "put");
}

Status LmdbTxn::Del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = Val(key);
  return LmdbStatus(mdb_del(txn_, dbi, &k, nullptr), "del");
}

Status LmdbTxn::ScanPrefix(
    MDB_dbi dbi, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  auto cursor = LmdbCursor::Open(*this, dbi);
  if (!cursor.ok()) return cursor.status();
  RS_RETURN_IF_ERROR(cursor->Seek(prefix));
  while (cursor->Valid() && cursor->key().substr(0, prefix.size()) == prefix) {
    if (!fn(cursor->key(), cursor->value())) break;
    RS_RETURN_IF_ERROR(cursor->Next());
  }
  return Status::Ok();
}

Status LmdbTxn::Commit() {
  if (txn_ == nullptr) return Status::FailedPrecondition("commit of an ended transaction");
  // mdb_txn_commit frees the transaction even when it fails.
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  return LmdbStatus(rc, "commit");
}

void LmdbTxn::Abort() {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

// ---- LmdbCursor ----

Result<LmdbCursor> LmdbCursor::Open(const LmdbTxn& txn, MDB_dbi dbi) {
  MDB_cursor* cursor = nullptr;
  RS_RETURN_IF_ERROR(LmdbStatus(mdb_cursor_open(txn.raw(), dbi, &cursor), "open cursor"));
  return LmdbCursor(cursor);
}

LmdbCursor::~LmdbCursor() {
  if (cursor_ != nullptr) mdb_cursor_close(cursor_);
}

LmdbCursor::LmdbCursor(LmdbCursor&& other) noexcept
    : cursor_(std::exchange(other.cursor_, nullptr)),
      valid_(std::exchange(other.valid_, false)),
      key_(other.key_),
      value_(other.value_) {}

LmdbCursor& LmdbCursor::operator=(LmdbCursor&& other) noexcept {
  if (this != &other) {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
    cursor_ = std::exchange(other.cursor_, nullptr);
    valid_ = std::exchange(other.valid_, false);
    key_ = other.key_;
    value_ = other.value_;
  }
  return *this;
}

Status LmdbCursor::Move(MDB_cursor_op op, std::string_view key) {
  MDB_val k = Val(key), v{};
  int rc = mdb_cursor_get(cursor_, &k, &v, op);
  valid_ = rc == MDB_SUCCESS;
  if (rc == MDB_NOTFOUND) return Status::Ok();  // simply the end
  RS_RETURN_IF_ERROR(LmdbStatus(rc, "cursor"));
  key_ = View(k);
  value_ = View(v);
  return Status::Ok();
}

Status LmdbCursor::Seek(std::string_view key) {
  // LMDB rejects zero-length keys; every key is >= "".
  return key.empty() ? SeekFirst() : Move(MDB_SET_RANGE, key);
}
Status LmdbCursor::SeekFirst() { return Move(MDB_FIRST); }
Status LmdbCursor::Next() { return Move(MDB_NEXT); }

}  // namespace rs::storage
