// DedupLog: a task's LMDB-backed append-only log (README.md "Exactly-once"). Each record is the
// MessagePack bytes of one group commit (watermarks, channel positions, new output frames, acks);
// records are numbered from 1 and never rewritten. Records wholly superseded (every output frame
// they hold acknowledged, and a later record carrying the full watermarks) may be trimmed from
// the front so the file does not grow without bound.
// Thread-compatible: owned by one task thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "shared/status.h"
#include "shared/storage/lmdb.h"

namespace rs::stream {

class DedupLog {
 public:
  // Opens (creating) the log in directory `dir`. Scratch durability: commits are not fsynced
  // (MDB_NOSYNC), since the durable copy of a task's progress is its HyDFS checkpoint; a process
  // crash loses nothing, a machine crash is covered by the HyDFS copy.
  static Result<std::unique_ptr<DedupLog>> Open(const std::string& dir);

  // Appends one record in its own transaction; returns its index.
  Result<uint64_t> Append(std::string_view record);
  // Deletes every record with index < `index`.
  Status TrimBefore(uint64_t index);
  // Calls fn(index, record) in order.
  Status ForEach(const std::function<void(uint64_t, std::string_view)>& fn) const;

  uint64_t next_index() const { return next_; }
  uint64_t first_index() const { return first_; }
  uint64_t bytes_appended() const { return bytes_; }

 private:
  DedupLog(std::unique_ptr<storage::LmdbEnv> env, MDB_dbi dbi) : env_(std::move(env)), dbi_(dbi) {}
  std::unique_ptr<storage::LmdbEnv> env_;
  MDB_dbi dbi_;
  uint64_t next_ = 1, first_ = 1, bytes_ = 0;
};

}  // namespace rs::stream
