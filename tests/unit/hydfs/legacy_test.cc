// Legacy copies (legacy.h): a node's copies quarantined on a rejoin keep every byte, move out of
// the live store, and tell which appends a replica lacks. Real LMDB and files in a temp dir.
#include "daemon/hydfs/legacy.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "shared/util/crc32c.h"
#include "tests/unit/temp_dir.h"

namespace rs::hydfs {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;

std::unique_ptr<Store> Open(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.map_size = 64ull << 20;
  auto s = Store::Open(o);
  REQUIRE(s.ok());
  return std::move(*s);
}

AppendMeta Meta(uint64_t gen, const std::string& client, uint64_t seq, const std::string& data) {
  AppendMeta m;
  m.id = AppendId(gen, client, seq);
  m.client = client;
  m.seq = seq;
  m.size = data.size();
  m.chunk_size = 1000;
  for (size_t off = 0; off < data.size(); off += 1000) {
    m.crcs.push_back(Crc32c(data.data() + off, std::min<size_t>(1000, data.size() - off)));
  }
  return m;
}

void Blob(Store& s, const AppendMeta& m, const std::string& data) {
  auto w = s.NewBlob(m);
  REQUIRE(w.ok());
  for (uint32_t i = 0; i < m.chunk_count(); ++i) {
    REQUIRE((*w)->WriteChunk(i, data.substr(i * 1000, m.ChunkBytes(i)), m.crcs[i]).ok());
  }
  REQUIRE((*w)->Finish().ok());
}

std::string ReadAll(const Store& s, const Manifest& m) {
  std::string out;
  for (const auto& a : m.appends) {
    for (uint32_t i = 0; i < a.chunk_count(); ++i) {
      std::string c(a.ChunkBytes(i), '\0');
      REQUIRE(s.ReadChunk(a, i, c.data()).ok());
      out += c;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("quarantined copies leave the live store and keep every byte in the legacy store",
          "[hydfs][legacy]") {
  TempDir dir;
  auto live = Open(dir.path() + "/store");
  auto legacy = Open(dir.path() + "/legacy");
  FileMeta f{"f", 7, 1, "n1"};
  std::string d0(2500, 'a'), d1(1200, 'b');
  auto a0 = Meta(7, "n1", 0, d0), a1 = Meta(7, "n2", 1, d1);
  Blob(*live, a0, d0);
  Blob(*live, a1, d1);
  REQUIRE(live->CommitCreate(f, a0).ok());
  REQUIRE(live->CommitAppend("f", 7, a1).ok());
  REQUIRE(live->used_bytes() == 3700);

  QuarantineResult r = QuarantineAll(*live, *legacy);
  CHECK(r.files == 1);
  CHECK(r.bytes == 3700);
  CHECK(r.appends_lost == 0);
  CHECK(live->List().empty());  // not served as this node's replica
  CHECK_FALSE(live->GetManifest("f").ok());
  CHECK_FALSE(live->HasBlob(a0.id));
  CHECK(live->used_bytes() == 0);
  CHECK(legacy->used_bytes() == 3700);
  auto m = legacy->GetManifest("f");
  REQUIRE(m.ok());
  CHECK(ReadAll(*legacy, *m) == d0 + d1);
  CHECK_FALSE(live->IsRemoved("f", 7));  // no tombstone: the file is not removed

  // The node becomes a replica again and takes a new write: a second expulsion merges it into
  // the legacy copy of the same generation.
  std::string d2(300, 'c');
  auto a2 = Meta(7, "n3", 1, d2);
  Blob(*live, a0, d0);
  Blob(*live, a2, d2);
  REQUIRE(live->SetOrder(f, {a0, a2}, 0).ok());
  REQUIRE(QuarantineFile(*live, *legacy, "f", &r).ok());
  m = legacy->GetManifest("f");
  REQUIRE(m.ok());
  CHECK(AppendIds(*m) == std::vector<uint64_t>{a0.id, a1.id, a2.id});
  CHECK(ReadAll(*legacy, *m) == d0 + d1 + d2);
  CHECK(live->List().empty());

  REQUIRE(legacy->Remove("f", 7, /*tombstone=*/false).ok());
  CHECK(legacy->used_bytes() == 0);
  CHECK(legacy->List().empty());
}

TEST_CASE("a remove that expects an append count removes nothing when an append came meanwhile",
          "[hydfs][legacy]") {
  TempDir dir;
  auto live = Open(dir.path() + "/store");
  FileMeta f{"f", 7, 1, "n1"};
  std::string d0(1500, 'a'), d1(10, 'b');
  auto a0 = Meta(7, "n1", 0, d0), a1 = Meta(7, "n2", 1, d1);
  Blob(*live, a0, d0);
  Blob(*live, a1, d1);
  REQUIRE(live->CommitCreate(f, a0).ok());
  REQUIRE(live->CommitAppend("f", 7, a1).ok());  // committed after the caller looked
  Status st = live->Remove("f", 7, /*tombstone=*/false, /*expect_appends=*/1);
  CHECK(st.code() == StatusCode::kFailedPrecondition);
  auto m = live->GetManifest("f");
  REQUIRE(m.ok());
  CHECK(m->appends.size() == 2);
  CHECK(live->HasBlob(a1.id));
  CHECK(live->Remove("f", 7, false, 2).ok());
  CHECK(live->List().empty());
}

TEST_CASE("CountLacking compares append ids, not order", "[hydfs][legacy]") {
  Manifest m;
  m.file = FileMeta{"f", 7, 1, "n1"};
  for (uint64_t seq : {0, 1, 2}) m.appends.push_back(Meta(7, "n1", seq, "x"));
  auto ids = AppendIds(m);
  std::reverse(m.appends.begin(), m.appends.end());  // another order: still holds them all
  CHECK(CountLacking(m, 7, ids) == 0);
  ids.push_back(AppendId(7, "n2", 5));
  CHECK(CountLacking(m, 7, ids) == 1);
  CHECK(CountLacking(m, 8, ids) == ids.size());  // another generation holds none
  CHECK(CountLacking(std::nullopt, 7, ids) == ids.size());
}

}  // namespace rs::hydfs
