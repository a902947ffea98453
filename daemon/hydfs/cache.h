// FileCache: the client node's LRU cache of recently read files, kept on disk (so caching a
// large file costs no memory) under <dir>/<16 hex file id>-<16 hex version>. An entry is valid
// only for the exact version (the merged-order digest) it was filled from; every get first asks
// the replicas for the current version, so a cached get never returns data older than a
// completed append, and a hit moves no file data. Capacity 0 disables the cache.
// Thread-safety: loop thread only, but for used_bytes(), capacity_bytes(), hits() and misses(),
// which any thread may read (GET /metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>

#include "shared/status.h"

namespace rs::hydfs {

class FileCache {
 public:
  FileCache(std::string dir, uint64_t capacity_bytes);

  Status Init();  // creates the directory, empties it

  struct Entry {
    std::string path;
    uint64_t size = 0;
  };
  // The cached copy of `name` at `version` (marked most recently used), or nullopt.
  std::optional<Entry> Lookup(const std::string& name, uint64_t version);
  // Where to write a fill of `name`; Insert() adopts it, Discard() deletes it.
  std::string FillPath(const std::string& name);
  bool Fits(uint64_t size) const { return capacity_ > 0 && size <= capacity_; }
  // Adopts a finished fill as the entry of `name`, evicting least recently used entries.
  void Insert(const std::string& name, uint64_t version, const std::string& fill_path,
              uint64_t size);
  void Discard(const std::string& fill_path);
  void Invalidate(const std::string& name);

  uint64_t used_bytes() const { return used_.load(std::memory_order_relaxed); }
  uint64_t capacity_bytes() const { return capacity_; }
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  size_t entries() const { return index_.size(); }

 private:
  struct Slot {
    uint64_t version = 0;
    std::string path;
    uint64_t size = 0;
    std::list<std::string>::iterator lru;  // position in lru_
  };
  void Evict(const std::string& name);

  std::string dir_;
  const uint64_t capacity_;
  // Written on the loop thread only; atomic for the readers above.
  std::atomic<uint64_t> used_{0}, hits_{0}, misses_{0};
  uint64_t fills_ = 0;
  std::map<std::string, Slot> index_;
  std::list<std::string> lru_;  // most recently used first
};

}  // namespace rs::hydfs
