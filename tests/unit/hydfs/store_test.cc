#include "daemon/hydfs/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shared/storage/lmdb.h"
#include "shared/util/crc32c.h"
#include "tests/unit/hydfs/store_rig.h"
#include "tests/unit/temp_dir.h"

namespace rs::hydfs {
namespace {

using namespace store_rig;  // store_rig.h

}  // namespace

TEST_CASE("a created file with appends reads back chunk by chunk", "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();
  auto m = fx.store->GetManifest("f");
  REQUIRE(m.ok());
  CHECK(m->file.gen == 7);
  CHECK(m->file.creator == "node1");
  CHECK(Ids(m->appends) == Ids(fx.metas));
  CHECK(m->appends[0].crcs == fx.metas[0].crcs);
  CHECK(m->appends[0].chunk_count() == 4);
  CHECK(ReadAll(*fx.store, *m) == fx.data[0] + fx.data[1] + fx.data[2]);

  auto summary = fx.store->Summary("f");
  REQUIRE(summary.ok());
  CHECK(summary->size == 5510);
  CHECK(summary->appends == 3);
  CHECK(summary->digest == OrderDigest(7, fx.metas));
  CHECK(fx.store->used_bytes() == 5510);
  CHECK(fx.store->HasBlob(fx.metas[1].id));
  CHECK(fx.store->GetManifest("g").status().code() == StatusCode::kNotFound);
}

TEST_CASE("a chunk whose size or CRC disagrees is refused", "[hydfs]") {
  Fixture fx;
  const AppendMeta& m = fx.metas[0];
  auto writer = fx.store->NewBlob(m);
  REQUIRE(writer.ok());
  std::string chunk = ChunkOf(m, fx.data[0], 1);
  Status bad_crc = (*writer)->WriteChunk(1, chunk, m.crcs[1] ^ 1);
  CHECK(bad_crc.code() == StatusCode::kCorruption);
  CHECK(Contains(bad_crc.message(), Hex16(m.id)));
  CHECK((*writer)
            ->WriteChunk(1, chunk.substr(1), Crc32c(chunk.data() + 1, chunk.size() - 1))
            .code() == StatusCode::kCorruption);
  CHECK((*writer)->WriteChunk(4, chunk, m.crcs[1]).code() == StatusCode::kInvalidArgument);
  // The writer is still usable after refused chunks.
  CHECK((*writer)->WriteChunk(1, chunk, m.crcs[1]).ok());
}

TEST_CASE("finishing a blob before every chunk is written fails", "[hydfs]") {
  Fixture fx;
  const AppendMeta& m = fx.metas[0];
  auto writer = fx.store->NewBlob(m);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->WriteChunk(0, ChunkOf(m, fx.data[0], 0), m.crcs[0]).ok());
  REQUIRE((*writer)->WriteChunk(3, ChunkOf(m, fx.data[0], 3), m.crcs[3]).ok());
  auto early = (*writer)->Finish();
  CHECK(early.status().code() == StatusCode::kFailedPrecondition);
  CHECK_FALSE(fx.store->HasBlob(m.id));
  // A create cannot name an unfinished blob.
  CHECK(fx.store->CommitCreate(fx.file, m).code() == StatusCode::kFailedPrecondition);
  REQUIRE((*writer)->WriteChunk(1, ChunkOf(m, fx.data[0], 1), m.crcs[1]).ok());
  REQUIRE((*writer)->WriteChunk(2, ChunkOf(m, fx.data[0], 2), m.crcs[2]).ok());
  auto done = (*writer)->Finish();
  REQUIRE(done.ok());
  CHECK(done->crcs == m.crcs);
  CHECK(fx.store->HasBlob(m.id));
  CHECK(CountFiles(fx.dir.path() + "/tmp") == 0);
}

TEST_CASE("a dropped writer leaves no temporary file and releases its space", "[hydfs]") {
  Fixture fx;
  {
    auto writer = fx.store->NewBlob(fx.metas[0]);
    REQUIRE(writer.ok());
    REQUIRE(
        (*writer)->WriteChunk(0, ChunkOf(fx.metas[0], fx.data[0], 0), fx.metas[0].crcs[0]).ok());
    CHECK(fx.store->used_bytes() == 3500);
    CHECK(CountFiles(fx.dir.path() + "/tmp") == 1);
  }
  CHECK(fx.store->used_bytes() == 0);
  CHECK(CountFiles(fx.dir.path() + "/tmp") == 0);
}

TEST_CASE("creates and appends are idempotent", "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();
  CHECK(fx.store->CommitCreate(fx.file, fx.metas[0]).ok());
  CHECK(fx.store->CommitAppend("f", 7, fx.metas[1]).ok());
  CHECK(fx.store->CommitAppend("f", 7, fx.metas[2]).ok());
  // The same blob sent twice is counted once.
  WriteBlob(*fx.store, fx.metas[2], fx.data[2]);
  CHECK(fx.store->used_bytes() == 5510);
  auto m = fx.store->GetManifest("f");
  REQUIRE(m.ok());
  CHECK(Ids(m->appends) == Ids(fx.metas));
}

TEST_CASE("a create of another generation or an append to a missing copy is refused", "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();
  std::string other = RandomData(50, 9);
  AppendMeta first8 = MakeMeta(8, "node3", 0, other);
  WriteBlob(*fx.store, first8, other);
  CHECK(fx.store->CommitCreate(MakeFile("f", 8), first8).code() == StatusCode::kAlreadyExists);
  CHECK(fx.store->CommitAppend("f", 8, first8).code() == StatusCode::kNotFound);
  CHECK(fx.store->CommitAppend("nope", 7, fx.metas[1]).code() == StatusCode::kNotFound);
  // An append whose blob never arrived cannot be committed.
  AppendMeta ghost = MakeMeta(7, "node4", 0, other);
  CHECK(fx.store->CommitAppend("f", 7, ghost).code() == StatusCode::kFailedPrecondition);
  CHECK(fx.store->GetManifest("f")->appends.size() == 3);
}

TEST_CASE("a removed generation leaves a tombstone and its blobs go", "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();
  REQUIRE(fx.store->Remove("f", 7, /*tombstone=*/true).ok());
  CHECK(fx.store->GetManifest("f").status().code() == StatusCode::kNotFound);
  CHECK(fx.store->IsRemoved("f", 7));
  CHECK_FALSE(fx.store->IsRemoved("f", 8));
  for (const auto& m : fx.metas) CHECK_FALSE(fx.store->HasBlob(m.id));
  CHECK(fx.store->used_bytes() == 0);
  CHECK(fx.store->List().empty());

  // A stale create or repair of the removed generation is refused; a new generation is fine.
  WriteBlob(*fx.store, fx.metas[0], fx.data[0]);
  CHECK(fx.store->CommitCreate(fx.file, fx.metas[0]).code() == StatusCode::kFailedPrecondition);
  CHECK(fx.store->SetOrder(fx.file, {fx.metas[0]}, 0).code() == StatusCode::kFailedPrecondition);
  std::string data9 = RandomData(100, 4);
  AppendMeta first9 = MakeMeta(9, "node1", 0, data9);
  WriteBlob(*fx.store, first9, data9);
  REQUIRE(fx.store->CommitCreate(MakeFile("f", 9), first9).ok());
  CHECK(fx.store->IsRemoved("f", 7));
  CHECK(fx.store->GetManifest("f")->file.gen == 9);

  // Without a tombstone nothing is remembered; removing what is absent is not an error.
  REQUIRE(fx.store->Remove("f", 9, /*tombstone=*/false).ok());
  CHECK_FALSE(fx.store->IsRemoved("f", 9));
  CHECK(fx.store->Remove("never", 1, false).ok());
  // Only the last 16 generations per name are remembered.
  for (uint64_t gen = 100; gen < 120; ++gen) REQUIRE(fx.store->Remove("f", gen, true).ok());
  CHECK_FALSE(fx.store->IsRemoved("f", 7));
  CHECK_FALSE(fx.store->IsRemoved("f", 103));
  CHECK(fx.store->IsRemoved("f", 104));
  CHECK(fx.store->IsRemoved("f", 119));
}

TEST_CASE("SetOrder reorders, creates on a new replica, never drops, needs every blob", "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();

  SECTION("reorder and mark merged") {
    std::vector<AppendMeta> order = {fx.metas[1], fx.metas[0], fx.metas[2]};
    REQUIRE(fx.store->SetOrder(fx.file, order, 3).ok());
    auto m = fx.store->GetManifest("f");
    REQUIRE(m.ok());
    CHECK(Ids(m->appends) == Ids(order));
    CHECK(m->merged == 3);
    CHECK(ReadAll(*fx.store, *m) == fx.data[1] + fx.data[0] + fx.data[2]);
    CHECK(fx.store->Summary("f")->digest == OrderDigest(7, order));
  }
  SECTION("adding an append this replica missed") {
    std::string extra = RandomData(1500, 5);
    AppendMeta m3 = MakeMeta(7, "node3", 0, extra);
    std::vector<AppendMeta> order = {fx.metas[0], m3, fx.metas[1], fx.metas[2]};
    Status missing = fx.store->SetOrder(fx.file, order, 4);
    CHECK(missing.code() == StatusCode::kFailedPrecondition);
    CHECK(Contains(missing.message(), Hex16(m3.id)));
    CHECK(fx.store->GetManifest("f")->appends.size() == 3);
    WriteBlob(*fx.store, m3, extra);
    REQUIRE(fx.store->SetOrder(fx.file, order, 4).ok());
    auto m = fx.store->GetManifest("f");
    CHECK(Ids(m->appends) == Ids(order));
    CHECK(ReadAll(*fx.store, *m) == fx.data[0] + extra + fx.data[1] + fx.data[2]);
  }
  SECTION("refusing to drop an append") {
    Status s = fx.store->SetOrder(fx.file, {fx.metas[0], fx.metas[2]}, 2);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK(Contains(s.message(), Hex16(fx.metas[1].id)));
    CHECK(Ids(fx.store->GetManifest("f")->appends) == Ids(fx.metas));
  }
  SECTION("invalid orders") {
    CHECK(fx.store->SetOrder(fx.file, {fx.metas[0], fx.metas[0]}, 0).code() ==
          StatusCode::kInvalidArgument);
    CHECK(fx.store->SetOrder(fx.file, fx.metas, 4).code() == StatusCode::kInvalidArgument);
  }
  SECTION("creating the copy on a new replica") {
    TempDir dir2;
    auto replica = OpenStore(dir2.path());
    CHECK(replica->SetOrder(fx.file, fx.metas, 3).code() == StatusCode::kFailedPrecondition);
    for (size_t i = 0; i < fx.metas.size(); ++i) WriteBlob(*replica, fx.metas[i], fx.data[i]);
    REQUIRE(replica->SetOrder(fx.file, fx.metas, 3).ok());
    auto m = replica->GetManifest("f");
    REQUIRE(m.ok());
    CHECK(m->file.creator == "node1");
    CHECK(m->merged == 3);
    CHECK(ReadAll(*replica, *m) == fx.data[0] + fx.data[1] + fx.data[2]);
    CHECK(replica->Summary("f")->digest == fx.store->Summary("f")->digest);
  }
  SECTION("another live generation is replaced only when asked") {
    std::string data8 = RandomData(700, 6);
    AppendMeta first8 = MakeMeta(8, "node2", 0, data8);
    WriteBlob(*fx.store, first8, data8);
    FileMeta file8 = MakeFile("f", 8);
    CHECK(fx.store->SetOrder(file8, {first8}, 1).code() == StatusCode::kAlreadyExists);
    REQUIRE(fx.store->SetOrder(file8, {first8}, 1, /*replace_other_gen=*/true).ok());
    auto m = fx.store->GetManifest("f");
    CHECK(m->file.gen == 8);
    CHECK(Ids(m->appends) == std::vector<uint64_t>{first8.id});
    for (const auto& old : fx.metas) CHECK_FALSE(fx.store->HasBlob(old.id));
    CHECK(fx.store->used_bytes() == 700);
  }
}

TEST_CASE("a flipped byte, a truncated blob and a missing blob are detected and repaired",
          "[hydfs]") {
  Fixture fx;
  fx.CreateWithAppends();
  const AppendMeta& m = fx.metas[0];
  std::string path = BlobPath(*fx.store, m.id);
  std::string buf(kChunk, '\0');

  SECTION("flipped byte") {
    int fd = ::open(path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    char c = 0;
    REQUIRE(::pread(fd, &c, 1, kChunk + 17) == 1);
    c ^= 0x40;
    REQUIRE(::pwrite(fd, &c, 1, kChunk + 17) == 1);
    ::close(fd);
    Status s = fx.store->ReadChunk(m, 1, buf.data());
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(Contains(s.message(), Hex16(m.id)));
    CHECK(Contains(s.message(), "chunk 1"));
    CHECK(fx.store->ReadChunk(m, 0, buf.data()).ok());
    CHECK(fx.store->ReadChunk(m, 2, buf.data()).ok());
    // A repair with wrong data is refused; the right data heals the blob.
    CHECK(fx.store->RewriteChunk(m, 1, ChunkOf(m, fx.data[0], 2)).code() ==
          StatusCode::kCorruption);
    REQUIRE(fx.store->RewriteChunk(m, 1, ChunkOf(m, fx.data[0], 1)).ok());
    CHECK(ReadAll(*fx.store, *fx.store->GetManifest("f")) == fx.data[0] + fx.data[1] + fx.data[2]);
  }
  SECTION("truncated blob") {
    REQUIRE(::truncate(path.c_str(), 2500) == 0);
    CHECK(fx.store->ReadChunk(m, 1, buf.data()).ok());
    Status s = fx.store->ReadChunk(m, 2, buf.data());
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(Contains(s.message(), Hex16(m.id)));
    CHECK(Contains(s.message(), "chunk 2"));
    CHECK(fx.store->ReadChunk(m, 3, buf.data()).code() == StatusCode::kCorruption);
    REQUIRE(fx.store->RewriteChunk(m, 2, ChunkOf(m, fx.data[0], 2)).ok());
    REQUIRE(fx.store->RewriteChunk(m, 3, ChunkOf(m, fx.data[0], 3)).ok());
    CHECK(ReadAll(*fx.store, *fx.store->GetManifest("f")) == fx.data[0] + fx.data[1] + fx.data[2]);
    CHECK(fs::file_size(path) == 3500);
  }
  SECTION("missing blob") {
    REQUIRE(::unlink(path.c_str()) == 0);
    Status s = fx.store->ReadChunk(m, 0, buf.data());
    CHECK(s.code() == StatusCode::kCorruption);
    CHECK(Contains(s.message(), Hex16(m.id)));
    CHECK(Contains(s.message(), "chunk 0"));
    CHECK(fx.store->RewriteChunk(m, 0, ChunkOf(m, fx.data[0], 0)).code() == StatusCode::kNotFound);
  }
}

TEST_CASE("a full quota refuses new blobs and leaves nothing behind", "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path(), true, /*quota=*/5000);
  CHECK(store->quota_bytes() == 5000);
  std::string a = RandomData(3000, 1), b = RandomData(2500, 2), c = RandomData(2000, 3);
  AppendMeta ma = MakeMeta(1, "n", 0, a), mb = MakeMeta(1, "n", 1, b), mc = MakeMeta(1, "n", 2, c);
  WriteBlob(*store, ma, a);
  CHECK(store->used_bytes() == 3000);
  auto refused = store->NewBlob(mb);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kIOError);
  CHECK(refused.status().message().rfind("no space left: quota of 5000 bytes reached", 0) == 0);
  CHECK(store->used_bytes() == 3000);
  CHECK(CountFiles(dir.path() + "/tmp") == 0);

  // A writer in progress holds its reservation.
  auto writer = store->NewBlob(mc);
  REQUIRE(writer.ok());
  CHECK(store->used_bytes() == 5000);
  CHECK_FALSE(store->NewBlob(MakeMeta(1, "n", 3, "x")).ok());
  writer->reset();
  CHECK(store->used_bytes() == 3000);
  CHECK(CountFiles(dir.path() + "/tmp") == 0);
  // Removing a file frees its bytes.
  REQUIRE(store->CommitCreate(MakeFile("q", 1), ma).ok());
  REQUIRE(store->Remove("q", 1, false).ok());
  CHECK(store->used_bytes() == 0);
  CHECK(store->NewBlob(mb).ok());
}

TEST_CASE("a store reopened without wipe keeps its files; with wipe it starts empty", "[hydfs]") {
  TempDir dir;
  std::string data = RandomData(4321, 11);
  AppendMeta first = MakeMeta(5, "node1", 0, data);
  {
    auto store = OpenStore(dir.path());
    WriteBlob(*store, first, data);
    REQUIRE(store->CommitCreate(MakeFile("dir/keep", 5), first).ok());
    REQUIRE(store->Remove("gone", 3, true).ok());
    auto unfinished = store->NewBlob(MakeMeta(5, "node1", 1, "abc"));
    REQUIRE(unfinished.ok());
    // As if the process died mid-transfer: a temporary file stays on disk.
    REQUIRE(fs::copy_file(BlobPath(*store, first.id), dir.path() + "/tmp/leftover"));
  }
  {
    auto store = OpenStore(dir.path(), /*wipe=*/false);
    auto m = store->GetManifest("dir/keep");
    REQUIRE(m.ok());
    CHECK(m->file.gen == 5);
    CHECK(ReadAll(*store, *m) == data);
    CHECK(store->IsRemoved("gone", 3));
    CHECK(store->used_bytes() == 4321);
    CHECK(CountFiles(dir.path() + "/tmp") == 0);
  }
  {
    auto store = OpenStore(dir.path(), /*wipe=*/true);
    CHECK(store->GetManifest("dir/keep").status().code() == StatusCode::kNotFound);
    CHECK_FALSE(store->IsRemoved("gone", 3));
    CHECK_FALSE(store->HasBlob(first.id));
    CHECK(store->List().empty());
    CHECK(store->used_bytes() == 0);
  }
}

TEST_CASE("List returns the live files under a prefix, sorted by name", "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path());
  uint64_t gen = 20;
  for (const char* name : {"b/1", "a/2", "a/1", "ab", "c"}) {
    std::string data = RandomData(10 * gen, gen);
    AppendMeta m = MakeMeta(gen, "n", 0, data);
    WriteBlob(*store, m, data);
    REQUIRE(store->CommitCreate(MakeFile(name, gen), m).ok());
    ++gen;
  }
  REQUIRE(store->Remove("c", 24, true).ok());
  auto names = [](const std::vector<FileSummary>& list) {
    std::vector<std::string> out;
    for (const auto& s : list) out.push_back(s.name);
    return out;
  };
  CHECK(names(store->List()) == std::vector<std::string>{"a/1", "a/2", "ab", "b/1"});
  CHECK(names(store->List("a/")) == std::vector<std::string>{"a/1", "a/2"});
  CHECK(names(store->List("a")) == std::vector<std::string>{"a/1", "a/2", "ab"});
  CHECK(store->List("zzz").empty());
  auto list = store->List("b/");
  REQUIRE(list.size() == 1);
  CHECK(list[0].gen == 20);
  CHECK(list[0].size == 200);
  CHECK(list[0].appends == 1);
}

TEST_CASE("an empty create has size 0 and no chunks", "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path());
  AppendMeta empty = MakeMeta(3, "node1", 0, "");
  CHECK(empty.chunk_count() == 0);
  // No blob is needed for an empty append, but writing one works too.
  REQUIRE(store->CommitCreate(MakeFile("e", 3), empty).ok());
  WriteBlob(*store, empty, "");
  auto m = store->GetManifest("e");
  REQUIRE(m.ok());
  CHECK(m->size() == 0);
  REQUIRE(m->appends.size() == 1);
  CHECK(m->appends[0].crcs.empty());
  char c;
  CHECK(store->ReadChunk(m->appends[0], 0, &c).code() == StatusCode::kInvalidArgument);
  CHECK(store->Summary("e")->size == 0);
  CHECK(store->used_bytes() == 0);
  // An append to the empty file.
  std::string data = RandomData(1, 1);
  AppendMeta one = MakeMeta(3, "node1", 1, data);
  WriteBlob(*store, one, data);
  REQUIRE(store->CommitAppend("e", 3, one).ok());
  CHECK(ReadAll(*store, *store->GetManifest("e")) == data);
}

TEST_CASE("a generation number is owned by one file", "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::string data = RandomData(10, 1);
  AppendMeta first = MakeMeta(42, "n", 0, data);
  WriteBlob(*store, first, data);
  REQUIRE(store->CommitCreate(MakeFile("one", 42), first).ok());
  CHECK(store->CommitCreate(MakeFile("two", 42), first).code() == StatusCode::kAlreadyExists);
  CHECK(store->SetOrder(MakeFile("two", 42), {first}, 0).code() == StatusCode::kAlreadyExists);
  CHECK(store->GetManifest("one")->appends.size() == 1);
}

TEST_CASE("garbage under a record key is Corruption, never a crash", "[hydfs]") {
  TempDir dir;
  constexpr int kFiles = 50;
  std::vector<std::string> good_records;
  {
    auto store = OpenStore(dir.path());
    for (int i = 0; i < kFiles; ++i) {
      std::string data = RandomData(100, i);
      AppendMeta m = MakeMeta(1000 + i, "n", 0, data, 7);
      WriteBlob(*store, m, data);
      REQUIRE(store->CommitCreate(MakeFile("ok" + std::to_string(i), 1000 + i), m).ok());
    }
  }
  // Damage the records behind the store's back.
  {
    auto env = storage::LmdbEnv::Open(dir.path() + "/meta", {});
    REQUIRE(env.ok());
    auto files = (*env)->OpenDb("files");
    auto appends = (*env)->OpenDb("appends");
    REQUIRE((files.ok() && appends.ok()));
    auto txn = storage::LmdbTxn::BeginWrite(**env);
    REQUIRE(txn.ok());
    std::mt19937_64 rng(99);
    for (int i = 0; i < 200; ++i) {  // pure garbage as file records
      std::string junk = RandomData(1 + rng() % 64, 1000 + i);
      REQUIRE(txn->Put(*files, "junk" + std::to_string(i), junk).ok());
    }
    for (int i = 0; i < kFiles; ++i) {  // mutated append records of real files
      std::string key(16, '\0');
      uint64_t gen = 1000 + i;
      for (int b = 0; b < 8; ++b) key[b] = static_cast<char>(gen >> (56 - 8 * b));
      auto value = txn->Get(*appends, key);
      REQUIRE(value.ok());
      std::string bytes(*value);
      for (int flips = 1 + rng() % 3; flips > 0; --flips) bytes[rng() % bytes.size()] ^= rng();
      if (i % 5 == 0) bytes.resize(rng() % bytes.size());  // truncated
      if (bytes.empty()) bytes = "\xc1";                   // never-used msgpack byte
      REQUIRE(txn->Put(*appends, key, bytes).ok());
    }
    REQUIRE(txn->Commit().ok());
  }
  auto store = OpenStore(dir.path(), /*wipe=*/false);
  for (int i = 0; i < 200; ++i) {
    auto m = store->GetManifest("junk" + std::to_string(i));
    CHECK(m.status().code() == StatusCode::kCorruption);
    CHECK_FALSE(store->IsRemoved("junk" + std::to_string(i), 0));
  }
  int corrupt = 0;
  for (int i = 0; i < kFiles; ++i) {
    auto m = store->GetManifest("ok" + std::to_string(i));
    if (!m.ok()) {
      CHECK(m.status().code() == StatusCode::kCorruption);
      ++corrupt;
    }
  }
  CHECK(corrupt > kFiles / 2);
  // Damaged file records are skipped, the rest listed: a listing reads file records only (they
  // hold the size and digest), so a damaged append shows when the manifest is read (above).
  CHECK(store->List().size() == static_cast<size_t>(kFiles));
  CHECK(store->Remove("junk1", 1, true).code() == StatusCode::kCorruption);
}

TEST_CASE("concurrent writers and readers on different files", "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path());
  constexpr int kThreads = 4, kAppends = 20;
  std::vector<std::thread> threads;
  std::vector<std::string> expected(kThreads), names;
  for (int t = 0; t < kThreads; ++t) names.push_back(fmt::format("t{}", t));
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t gen = 500 + t;
      const std::string& name = names[t];
      for (int s = 0; s < kAppends; ++s) {
        std::string data = RandomData(1 + (s * 37) % 3000, t * 100 + s);
        AppendMeta m = MakeMeta(gen, "n", s, data);
        auto w = store->NewBlob(m);
        if (!w.ok()) return;
        for (uint32_t i = 0; i < m.chunk_count(); ++i) {
          if (!(*w)->WriteChunk(i, ChunkOf(m, data, i), m.crcs[i]).ok()) return;
        }
        if (!(*w)->Finish().ok()) return;
        Status c = s == 0 ? store->CommitCreate(MakeFile(name, gen), m)
                          : store->CommitAppend(name, gen, m);
        if (!c.ok()) return;
        expected[t] += data;
        (void)store->List();
      }
    });
  }
  for (auto& th : threads) th.join();
  uint64_t total = 0;
  for (int t = 0; t < kThreads; ++t) {
    auto m = store->GetManifest(names[t]);
    REQUIRE(m.ok());
    CHECK(m->appends.size() == kAppends);
    CHECK(ReadAll(*store, *m) == expected[t]);
    total += m->size();
  }
  CHECK(store->used_bytes() == total);
}


}  // namespace rs::hydfs
