#include "daemon/hydfs/cache.h"

#include <filesystem>

#include "daemon/hydfs/ring.h"

namespace rs::hydfs {
namespace fs = std::filesystem;

FileCache::FileCache(std::string dir, uint64_t capacity_bytes)
    : dir_(std::move(dir)), capacity_(capacity_bytes) {}

Status FileCache::Init() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
  fs::create_directories(dir_, ec);
  if (ec) return Status::IOError("cannot create cache dir " + dir_ + ": " + ec.message());
  return Status::Ok();
}

std::optional<FileCache::Entry> FileCache::Lookup(const std::string& name, uint64_t version) {
  auto it = index_.find(name);
  if (it == index_.end() || it->second.version != version) {
    ++misses_;
    return std::nullopt;
  }
  std::error_code ec;
  if (!fs::exists(it->second.path, ec)) {  // removed behind our back
    Evict(name);
    ++misses_;
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  ++hits_;
  return Entry{it->second.path, it->second.size};
}

std::string FileCache::FillPath(const std::string& name) {
  return dir_ + "/" + Hex64(FileId(name)) + ".fill" + std::to_string(++fills_);
}

void FileCache::Insert(const std::string& name, uint64_t version, const std::string& fill_path,
                       uint64_t size) {
  Evict(name);
  if (!Fits(size)) {
    Discard(fill_path);
    return;
  }
  while (used_ + size > capacity_ && !lru_.empty()) Evict(lru_.back());
  std::string path = dir_ + "/" + Hex64(FileId(name)) + "-" + Hex64(version);
  std::error_code ec;
  fs::rename(fill_path, path, ec);
  if (ec) {
    Discard(fill_path);
    return;
  }
  lru_.push_front(name);
  index_[name] = Slot{version, path, size, lru_.begin()};
  used_ += size;
}

void FileCache::Discard(const std::string& fill_path) {
  std::error_code ec;
  fs::remove(fill_path, ec);
}

void FileCache::Invalidate(const std::string& name) { Evict(name); }

void FileCache::Evict(const std::string& name) {
  auto it = index_.find(name);
  if (it == index_.end()) return;
  std::error_code ec;
  fs::remove(it->second.path, ec);
  used_ -= it->second.size;
  lru_.erase(it->second.lru);
  index_.erase(it);
}

}  // namespace rs::hydfs
