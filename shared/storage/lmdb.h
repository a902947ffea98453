// RAII wrappers over the LMDB C API: an environment, named databases, read/write transactions
// and a cursor with prefix scans. Errors come back as Status (NotFound, Corruption for damaged
// pages, IOError otherwise, each with LMDB's mdb_strerror text); nothing throws.
//
// Thread-safety: an LmdbEnv is thread-safe. LMDB allows one write transaction at a time
// (LmdbTxn::BeginWrite blocks until the previous writer ends); a write transaction and its
// cursors must stay on the thread that began it. The environment is opened with MDB_NOTLS, so a
// read transaction is not tied to its thread: any thread of a pool may use it, one at a time.
// Every view returned by Get/key()/value() points into the map and is valid only until the
// transaction ends (and, in a write transaction, until its next write).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace rs::storage {

// A status for LMDB return code `rc` (MDB_SUCCESS gives Ok), prefixed by `what`.
Status LmdbStatus(int rc, std::string_view what);

struct LmdbOptions {
  uint64_t map_size = 1ull << 30;  // bytes of address space; the database cannot grow beyond it
  unsigned max_dbs = 4;            // named databases
  unsigned max_readers = 126;      // concurrent read transactions
  bool durable = true;             // false adds MDB_NOSYNC (tests, scratch data only)
};

class LmdbEnv {
 public:
  // Opens (creating) the environment in directory `dir`, which must exist.
  static Result<std::unique_ptr<LmdbEnv>> Open(const std::string& dir, const LmdbOptions& options);
  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  // The handle of named database `name`, created if missing (in its own write transaction).
  // Handles stay valid for the environment's lifetime; open each once, before concurrent use.
  Result<MDB_dbi> OpenDb(const std::string& name);

  size_t max_key_size() const;
  MDB_env* raw() const { return env_; }

 private:
  explicit LmdbEnv(MDB_env* env) : env_(env) {}
  MDB_env* env_;
};

class LmdbTxn {
 public:
  static Result<LmdbTxn> BeginRead(const LmdbEnv& env);
  static Result<LmdbTxn> BeginWrite(LmdbEnv& env);
  ~LmdbTxn();  // aborts when neither committed nor aborted
  LmdbTxn(LmdbTxn&& other) noexcept;
  LmdbTxn& operator=(LmdbTxn&& other) noexcept;
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;

  // NotFound when `key` is absent.
  Result<std::string_view> Get(MDB_dbi dbi, std::string_view key) const;
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value);
  // NotFound when `key` is absent.
  Status Del(MDB_dbi dbi, std::string_view key);
  // Calls `fn(key, value)` for each key starting with `prefix`, in key order, until it returns
  // false. Do not write to `dbi` from inside `fn`.
  Status ScanPrefix(MDB_dbi dbi, std::string_view prefix,
                    const std::function<bool(std::string_view, std::string_view)>& fn) const;

  // Ends the transaction; after either, only destruction and assignment are valid.
  Status Commit();
  void Abort();
  bool active() const { return txn_ != nullptr; }
  MDB_txn* raw() const { return txn_; }

 private:
  explicit LmdbTxn(MDB_txn* txn) : txn_(txn) {}
  MDB_txn* txn_ = nullptr;
};

// A cursor over one database inside a transaction; must not outlive it.
class LmdbCursor {
 public:
  static Result<LmdbCursor> Open(const LmdbTxn& txn, MDB_dbi dbi);
  ~LmdbCursor();
  LmdbCursor(LmdbCursor&& other) noexcept;
  LmdbCursor& operator=(LmdbCursor&& other) noexcept;
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  // Positions at the first key >= `key` (invalid when there is none).
  Status Seek(std::string_view key);
  Status SeekFirst();
  Status Next();
  bool Valid() const { return valid_; }
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }

 private:
  explicit LmdbCursor(MDB_cursor* cursor) : cursor_(cursor) {}
  Status Move(MDB_cursor_op op, std::string_view key = {});
  MDB_cursor* cursor_ = nullptr;
  bool valid_ = false;
  std::string_view key_;
  std::string_view value_;
};

}  // namespace rs::storage
