// The kept summaries and the id index of Store (store.h): a file record keeps its copy's size,
// count and order digest, and the id index finds an append without a scan, so a head, a listing
// and an append read a record or two however many appends the file has.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "daemon/hydfs/store.h"
#include "tests/unit/hydfs/store_rig.h"

namespace rs::hydfs {
namespace {

using namespace store_rig;  // store_rig.h

}  // namespace

// A file record keeps its copy's size, count and order digest, and the id index finds appends
// without a scan (store.h). Random creates, appends (some retried), merges, replacements by
// another generation and removals: after every step the kept summary equals one computed from
// the full manifest, and every listed append (and no other) is found at its position.
TEST_CASE("kept summaries and the id index agree with the manifest through random operations",
          "[hydfs]") {
  TempDir dir;
  auto store = OpenStore(dir.path());
  std::mt19937_64 rng(20261204);
  const std::vector<std::string> names = {"a", "b", "c"};
  std::map<std::string, std::vector<AppendMeta>> ever;  // every append made for a name
  uint64_t next_gen = 100, seq = 0;
  std::map<std::string, uint64_t> gen_of;
  auto check = [&](const std::string& name) {
    auto m = store->GetManifest(name);
    auto s = store->Summary(name);
    REQUIRE(m.ok() == s.ok());
    for (const auto& a : ever[name]) {
      auto f = store->FindAppend(name, gen_of[name], a.id);
      if (!m.ok()) {
        CHECK(f.status().code() == StatusCode::kNotFound);
        continue;
      }
      REQUIRE(f.ok());
      bool listed = false;
      for (const auto& b : m->appends) listed |= b.id == a.id;
      CHECK(f->has_value() == listed);
      if (listed) CHECK((*f)->size == a.size);
    }
    if (!m.ok()) return;
    CHECK(s->gen == m->file.gen);
    CHECK(s->appends == m->appends.size());
    CHECK(s->size == m->size());
    CHECK(s->merged == m->merged);
    CHECK(s->digest == OrderDigest(m->file.gen, m->appends));
    bool in_list = false;
    for (const auto& l : store->List()) {
      if (l.name != name) continue;
      in_list = true;
      CHECK(l.digest == s->digest);
      CHECK(l.size == s->size);
    }
    CHECK(in_list);
  };
  auto new_append = [&](const std::string& name, uint64_t gen) {
    std::string data = RandomData(1 + rng() % 3000, rng());
    AppendMeta a = MakeMeta(gen, "node" + std::to_string(rng() % 3), seq++, data, 1024);
    WriteBlob(*store, a, data);
    ever[name].push_back(a);
    return a;
  };
  for (int step = 0; step < 400; ++step) {
    const std::string& name = names[rng() % names.size()];
    auto m = store->GetManifest(name);
    int op = static_cast<int>(rng() % 10);
    if (!m.ok()) {
      uint64_t gen = next_gen++;
      gen_of[name] = gen;
      REQUIRE(store->CommitCreate(MakeFile(name, gen), new_append(name, gen)).ok());
    } else if (op < 6) {
      REQUIRE(store->CommitAppend(name, m->file.gen, new_append(name, m->file.gen)).ok());
    } else if (op == 6) {  // a retried append or create: no change
      const AppendMeta& again = m->appends[rng() % m->appends.size()];
      REQUIRE(store->CommitAppend(name, m->file.gen, again).ok());
      REQUIRE(store->CommitCreate(m->file, m->appends[0]).ok());
      auto after = store->GetManifest(name);
      CHECK(Ids(after->appends) == Ids(m->appends));
    } else if (op == 7) {  // a merge: the same appends (and maybe one more) in another order
      std::vector<AppendMeta> order = m->appends;
      if (rng() % 2) order.push_back(new_append(name, m->file.gen));
      std::shuffle(order.begin(), order.end(), rng);
      REQUIRE(store->SetOrder(m->file, order, rng() % (order.size() + 1)).ok());
    } else if (op == 8) {  // replaced by another generation (a repair of a newer create)
      uint64_t gen = next_gen++;
      gen_of[name] = gen;
      ever[name].clear();
      std::vector<AppendMeta> order = {new_append(name, gen), new_append(name, gen)};
      REQUIRE(store->SetOrder(MakeFile(name, gen), order, 0, /*replace_other_gen=*/true).ok());
    } else {
      REQUIRE(store->Remove(name, m->file.gen, rng() % 2 == 0).ok());
      ever[name].clear();
    }
    check(name);
  }
}


}  // namespace rs::hydfs
