#include "daemon/hydfs/cache.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "daemon/hydfs/ring.h"
#include "tests/unit/temp_dir.h"

namespace rs::hydfs {
namespace {

namespace fs = std::filesystem;

using test_util::TempDir;  // tests/unit/temp_dir.h

std::set<std::string> Files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `size` bytes of `fill` to a fill path of `name` and inserts it at `version`.
void Put(FileCache& cache, const std::string& name, uint64_t version, uint64_t size,
         char fill = 'x') {
  std::string path = cache.FillPath(name);
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(size, fill);
  }
  cache.Insert(name, version, path, size);
}

std::string EntryName(const std::string& name, uint64_t version) {
  return Hex64(FileId(name)) + "-" + Hex64(version);
}

}  // namespace

TEST_CASE("the cache starts empty in a fresh directory and serves the exact version only",
          "[hydfs][cache]") {
  TempDir tmp;
  std::string dir = tmp.path() + "/cache";
  fs::create_directories(dir);
  { std::ofstream(dir + "/stale") << "left over"; }
  FileCache cache(dir, 1000);
  REQUIRE(cache.Init().ok());
  CHECK(Files(dir).empty());

  CHECK_FALSE(cache.Lookup("a", 1).has_value());
  Put(cache, "a", 7, 100, 'a');
  CHECK(cache.entries() == 1);
  CHECK(cache.used_bytes() == 100);
  CHECK(Files(dir) == std::set<std::string>{EntryName("a", 7)});

  auto hit = cache.Lookup("a", 7);
  REQUIRE(hit.has_value());
  CHECK(hit->size == 100);
  CHECK(hit->path == dir + "/" + EntryName("a", 7));
  CHECK(ReadAll(hit->path) == std::string(100, 'a'));
  CHECK_FALSE(cache.Lookup("a", 8).has_value());  // another version is a miss
  CHECK_FALSE(cache.Lookup("b", 7).has_value());
  CHECK(cache.hits() == 1);
  CHECK(cache.misses() == 3);

  // A new version replaces the old entry and its file.
  Put(cache, "a", 8, 150, 'b');
  CHECK(cache.entries() == 1);
  CHECK(cache.used_bytes() == 150);
  CHECK_FALSE(cache.Lookup("a", 7).has_value());
  REQUIRE(cache.Lookup("a", 8).has_value());
  CHECK(Files(dir) == std::set<std::string>{EntryName("a", 8)});
}

TEST_CASE("the least recently used entries are evicted to make room", "[hydfs][cache]") {
  TempDir tmp;
  FileCache cache(tmp.path() + "/c", 300);
  REQUIRE(cache.Init().ok());
  Put(cache, "a", 1, 100);
  Put(cache, "b", 1, 100);
  Put(cache, "c", 1, 100);
  CHECK(cache.used_bytes() == 300);
  REQUIRE(cache.Lookup("a", 1).has_value());  // a is now the most recently used

  Put(cache, "d", 1, 100);  // evicts b, the least recently used
  CHECK(cache.entries() == 3);
  CHECK(cache.used_bytes() == 300);
  CHECK_FALSE(cache.Lookup("b", 1).has_value());
  CHECK(cache.Lookup("a", 1).has_value());
  CHECK(cache.Lookup("c", 1).has_value());
  CHECK(cache.Lookup("d", 1).has_value());
  CHECK(Files(tmp.path() + "/c") ==
        std::set<std::string>{EntryName("a", 1), EntryName("c", 1), EntryName("d", 1)});

  // Oldest first: a, c, d. A 250-byte entry needs them all gone (100 + 250 > 300).
  Put(cache, "e", 1, 250);
  CHECK(cache.entries() == 1);
  CHECK(cache.used_bytes() == 250);
  CHECK(Files(tmp.path() + "/c") == std::set<std::string>{EntryName("e", 1)});

  // An entry that fits beside others evicts only the oldest.
  Put(cache, "f", 1, 50);
  CHECK(cache.entries() == 2);
  Put(cache, "g", 1, 50);  // 250 + 50 + 50 > 300: e goes
  CHECK(cache.entries() == 2);
  CHECK(cache.used_bytes() == 100);
  CHECK_FALSE(cache.Lookup("e", 1).has_value());
}

TEST_CASE("a fill larger than the cache is discarded and fits tells so in advance",
          "[hydfs][cache]") {
  TempDir tmp;
  FileCache cache(tmp.path(), 300);
  REQUIRE(cache.Init().ok());
  CHECK(cache.Fits(0));
  CHECK(cache.Fits(300));
  CHECK_FALSE(cache.Fits(301));

  Put(cache, "small", 1, 100);
  Put(cache, "huge", 1, 301);
  CHECK_FALSE(cache.Lookup("huge", 1).has_value());
  CHECK(cache.entries() == 1);
  CHECK(cache.used_bytes() == 100);
  CHECK(cache.Lookup("small", 1).has_value());  // nothing evicted for a fill that cannot fit
  CHECK(Files(tmp.path()) == std::set<std::string>{EntryName("small", 1)});

  // Discard() removes an unfinished fill.
  std::string fill = cache.FillPath("x");
  { std::ofstream(fill) << "partial"; }
  CHECK(fs::exists(fill));
  cache.Discard(fill);
  CHECK_FALSE(fs::exists(fill));
  CHECK(cache.FillPath("x") != fill);  // fills never collide
}

TEST_CASE("invalidate drops an entry and its file", "[hydfs][cache]") {
  TempDir tmp;
  FileCache cache(tmp.path(), 1000);
  REQUIRE(cache.Init().ok());
  Put(cache, "a", 1, 10);
  Put(cache, "b", 2, 20);
  cache.Invalidate("a");
  cache.Invalidate("never-cached");
  CHECK(cache.entries() == 1);
  CHECK(cache.used_bytes() == 20);
  CHECK_FALSE(cache.Lookup("a", 1).has_value());
  CHECK(Files(tmp.path()) == std::set<std::string>{EntryName("b", 2)});

  // A file removed behind the cache's back is a miss and leaves the index.
  fs::remove(tmp.path() + "/" + EntryName("b", 2));
  CHECK_FALSE(cache.Lookup("b", 2).has_value());
  CHECK(cache.entries() == 0);
  CHECK(cache.used_bytes() == 0);
}

TEST_CASE("a cache of capacity zero keeps nothing", "[hydfs][cache]") {
  TempDir tmp;
  FileCache cache(tmp.path(), 0);
  REQUIRE(cache.Init().ok());
  CHECK_FALSE(cache.Fits(0));
  CHECK_FALSE(cache.Fits(1));
  Put(cache, "a", 1, 0);
  Put(cache, "b", 1, 10);
  CHECK(cache.entries() == 0);
  CHECK(cache.used_bytes() == 0);
  CHECK_FALSE(cache.Lookup("a", 1).has_value());
  CHECK(Files(tmp.path()).empty());
}

}  // namespace rs::hydfs
