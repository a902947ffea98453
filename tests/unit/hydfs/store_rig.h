// Helpers of the Store unit tests (store_test.cc, store_index_test.cc): a store in a temporary
// dir, random data, append and file metadata, blobs written and read back chunk by chunk.
#pragma once

#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "daemon/hydfs/store.h"
#include "shared/util/crc32c.h"
#include "tests/unit/temp_dir.h"

namespace rs::hydfs::store_rig {

namespace fs = std::filesystem;

inline constexpr uint32_t kChunk = 1000;

using test_util::TempDir;  // tests/unit/temp_dir.h

inline std::unique_ptr<Store> OpenStore(const std::string& dir, bool wipe = true, uint64_t quota = 0) {
  StoreOptions options;
  options.dir = dir;
  options.wipe = wipe;
  options.map_size = 64ull << 20;
  options.quota_bytes = quota;
  auto store = Store::Open(options);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return std::move(*store);
}

inline std::string RandomData(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

inline AppendMeta MakeMeta(uint64_t gen, const std::string& client, uint64_t seq, const std::string& data,
                    uint32_t chunk_size = kChunk) {
  AppendMeta m;
  m.id = AppendId(gen, client, seq);
  m.client = client;
  m.seq = seq;
  m.size = data.size();
  m.chunk_size = chunk_size;
  for (size_t off = 0; off < data.size(); off += chunk_size) {
    size_t n = std::min<size_t>(chunk_size, data.size() - off);
    m.crcs.push_back(Crc32c(data.data() + off, n));
  }
  m.wall_ms = 1700000000000 + seq;
  return m;
}

inline FileMeta MakeFile(const std::string& name, uint64_t gen) {
  FileMeta f;
  f.name = name;
  f.gen = gen;
  f.created_ms = 1700000000000;
  f.creator = "node1";
  return f;
}

inline std::string ChunkOf(const AppendMeta& m, const std::string& data, uint32_t index) {
  return data.substr(uint64_t{index} * m.chunk_size, m.ChunkBytes(index));
}

// Writes the blob of `m`, last chunk first (chunks may arrive in any order).
inline void WriteBlob(Store& store, const AppendMeta& m, const std::string& data) {
  auto writer = store.NewBlob(m);
  INFO(writer.status().ToString());
  REQUIRE(writer.ok());
  for (uint32_t i = m.chunk_count(); i-- > 0;) {
    Status s = (*writer)->WriteChunk(i, ChunkOf(m, data, i), m.crcs[i]);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  auto done = (*writer)->Finish();
  INFO(done.status().ToString());
  REQUIRE(done.ok());
  CHECK(done->crcs == m.crcs);
}

// The file's content, read chunk by chunk with CRC checks.
inline std::string ReadAll(const Store& store, const Manifest& manifest) {
  std::string out;
  for (const auto& a : manifest.appends) {
    for (uint32_t i = 0; i < a.chunk_count(); ++i) {
      std::string chunk(a.ChunkBytes(i), '\0');
      Status s = store.ReadChunk(a, i, chunk.data());
      INFO(s.ToString());
      REQUIRE(s.ok());
      out += chunk;
    }
  }
  return out;
}

inline std::vector<uint64_t> Ids(const std::vector<AppendMeta>& appends) {
  std::vector<uint64_t> ids;
  for (const auto& a : appends) ids.push_back(a.id);
  return ids;
}

inline size_t CountFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

inline std::string Hex16(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return buf;
}

inline std::string BlobPath(const Store& store, uint64_t id) {
  std::string hex = Hex16(id);
  return store.dir() + "/blobs/" + hex.substr(0, 2) + "/" + hex;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A file "f" of generation 7 with a 3.5-chunk create and two appends by two clients.
struct Fixture {
  TempDir dir;
  std::unique_ptr<Store> store = OpenStore(dir.path());
  FileMeta file = MakeFile("f", 7);
  std::vector<std::string> data = {RandomData(3500, 1), RandomData(10, 2), RandomData(2000, 3)};
  std::vector<AppendMeta> metas = {MakeMeta(7, "node1", 0, data[0]),
                                   MakeMeta(7, "node2", 0, data[1]),
                                   MakeMeta(7, "node1", 1, data[2])};

  void CreateWithAppends() {
    for (size_t i = 0; i < metas.size(); ++i) WriteBlob(*store, metas[i], data[i]);
    REQUIRE(store->CommitCreate(file, metas[0]).ok());
    REQUIRE(store->CommitAppend("f", 7, metas[1]).ok());
    REQUIRE(store->CommitAppend("f", 7, metas[2]).ok());
  }
};

}  // namespace rs::hydfs::store_rig
