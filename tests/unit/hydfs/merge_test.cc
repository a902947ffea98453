#include "daemon/hydfs/merge.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rs::hydfs {
namespace {

constexpr uint64_t kGen = 777;

AppendMeta A(const std::string& client, uint64_t seq, uint64_t gen = kGen) {
  AppendMeta a;
  a.id = AppendId(gen, client, seq);
  a.client = client;
  a.seq = seq;
  a.size = 10;
  a.chunk_size = 1000;
  a.crcs = {static_cast<uint32_t>(a.id)};
  a.wall_ms = 1700000000000 + seq;
  return a;
}

Manifest Copy(std::vector<AppendMeta> appends, uint64_t gen = kGen, uint64_t created_ms = 1000,
              const std::string& creator = "c") {
  Manifest m;
  m.file.name = "f.txt";
  m.file.gen = gen;
  m.file.created_ms = created_ms;
  m.file.creator = creator;
  m.appends = std::move(appends);
  return m;
}

using Key = std::pair<std::string, uint64_t>;

std::vector<Key> Keys(const std::vector<AppendMeta>& order) {
  std::vector<Key> out;
  for (const auto& a : order) out.emplace_back(a.client, a.seq);
  return out;
}

MergePlan Plan(const std::vector<std::optional<Manifest>>& copies) {
  auto plan = PlanMerge(copies);
  INFO(plan.status().ToString());
  REQUIRE(plan.ok());
  return std::move(plan.value());
}

}  // namespace

TEST_CASE("the primary's order is the base and the appends it lacks follow by client and seq",
          "[hydfs][merge]") {
  Manifest primary = Copy({A("c", 0), A("x", 0), A("b", 0)});
  Manifest second = Copy({A("c", 0), A("b", 0), A("x", 0), A("z", 0), A("a", 1)});
  Manifest third = Copy({A("c", 0), A("a", 0), A("b", 1)});
  MergePlan plan = Plan({primary, second, third});
  CHECK(Keys(plan.order) ==
        std::vector<Key>{{"c", 0}, {"x", 0}, {"b", 0}, {"a", 0}, {"a", 1}, {"b", 1}, {"z", 0}});
  CHECK(plan.file.gen == kGen);
  CHECK(plan.file.name == "f.txt");
  CHECK(plan.digest == OrderDigest(kGen, plan.order));

  // Holders: the indexes of the copies holding each append.
  using Holders = std::vector<size_t>;
  CHECK(plan.holders.at(A("c", 0).id) == Holders{0, 1, 2});
  CHECK(plan.holders.at(A("x", 0).id) == Holders{0, 1});
  CHECK(plan.holders.at(A("b", 0).id) == Holders{0, 1});
  CHECK(plan.holders.at(A("z", 0).id) == Holders{1});
  CHECK(plan.holders.at(A("a", 0).id) == Holders{2});
  CHECK(plan.holders.at(A("a", 1).id) == Holders{1});
  CHECK(plan.holders.at(A("b", 1).id) == Holders{2});
  CHECK(plan.holders.size() == 7);
}

TEST_CASE("each client's appends end up in seq order even when a replica holds them out of order",
          "[hydfs][merge]") {
  // The primary got client a's seq 2 before seq 1 and lacks seq 3; b's appends interleave.
  Manifest primary = Copy({A("c", 0), A("a", 2), A("b", 0), A("a", 1)});
  Manifest second = Copy({A("c", 0), A("a", 1), A("a", 3), A("b", 0)});
  MergePlan plan = Plan({primary, second, std::nullopt});
  // Positions of a: 1, 3 (base) and 4 (missing seq 3) take a's appends in seq order.
  CHECK(Keys(plan.order) == std::vector<Key>{{"c", 0}, {"a", 1}, {"b", 0}, {"a", 2}, {"a", 3}});

  // A missing append of a lower seq moves in front of a held higher one.
  Manifest p2 = Copy({A("c", 0), A("a", 2)});
  Manifest s2 = Copy({A("c", 0), A("a", 1)});
  CHECK(Keys(Plan({p2, s2}).order) == std::vector<Key>{{"c", 0}, {"a", 1}, {"a", 2}});
}

TEST_CASE("the creator's later appends never move ahead of the create", "[hydfs][merge]") {
  Manifest primary = Copy({A("c", 0), A("c", 2), A("d", 0)});
  Manifest second = Copy({A("c", 0), A("c", 1), A("d", 0), A("c", 2)});
  MergePlan plan = Plan({primary, second});
  CHECK(Keys(plan.order) == std::vector<Key>{{"c", 0}, {"c", 1}, {"d", 0}, {"c", 2}});
}

TEST_CASE("without a primary copy the longest copy is the base, earlier successors winning ties",
          "[hydfs][merge]") {
  Manifest shorter = Copy({A("c", 0), A("b", 0)});
  Manifest longer = Copy({A("c", 0), A("y", 0), A("x", 0)});
  Manifest other_longer = Copy({A("c", 0), A("x", 0), A("y", 0)});
  // Index 2 has more appends than index 1: its order wins, b follows.
  CHECK(Keys(Plan({std::nullopt, shorter, longer}).order) ==
        std::vector<Key>{{"c", 0}, {"y", 0}, {"x", 0}, {"b", 0}});
  // A tie: the earlier successor's order.
  CHECK(Keys(Plan({std::nullopt, longer, other_longer}).order) ==
        std::vector<Key>{{"c", 0}, {"y", 0}, {"x", 0}});
  CHECK(Keys(Plan({std::nullopt, other_longer, longer}).order) ==
        std::vector<Key>{{"c", 0}, {"x", 0}, {"y", 0}});
  // An empty primary copy is still the base (it holds the chosen generation).
  CHECK(Keys(Plan({Copy({A("c", 0)}), longer}).order) ==
        std::vector<Key>{{"c", 0}, {"x", 0}, {"y", 0}});
}

TEST_CASE("a merge with no copy at all is not found", "[hydfs][merge]") {
  CHECK(PlanMerge({}).status().code() == StatusCode::kNotFound);
  CHECK(PlanMerge({std::nullopt, std::nullopt, std::nullopt}).status().code() ==
        StatusCode::kNotFound);
  CHECK_FALSE(ChooseGeneration({}).has_value());
  CHECK_FALSE(ChooseGeneration({std::nullopt, std::nullopt}).has_value());
}

TEST_CASE("the generation kept is the primary's, else the most held, then newest, then largest",
          "[hydfs][merge]") {
  Manifest g1 = Copy({A("c", 0, 1)}, 1, 5000);
  Manifest g2 = Copy({A("c", 0, 2)}, 2, 1000);
  Manifest g3 = Copy({A("c", 0, 3)}, 3, 9000);
  Manifest g4 = Copy({A("c", 0, 4)}, 4, 9000);
  // The primary's generation, even when outvoted.
  CHECK(ChooseGeneration({g2, g1, g1}) == std::optional<uint64_t>(2));
  // No primary: the generation most copies hold, whatever its age.
  CHECK(ChooseGeneration({std::nullopt, g2, g3, g2}) == std::optional<uint64_t>(2));
  // A tie in copies: the newer created_ms.
  CHECK(ChooseGeneration({std::nullopt, g1, g2}) == std::optional<uint64_t>(1));
  CHECK(ChooseGeneration({std::nullopt, g2, g1}) == std::optional<uint64_t>(1));
  // A tie in copies and created_ms: the larger gen.
  CHECK(ChooseGeneration({std::nullopt, g4, g3}) == std::optional<uint64_t>(4));
  CHECK(ChooseGeneration({std::nullopt, g3, g4}) == std::optional<uint64_t>(4));

  // Copies of another generation are left out of the plan and of the holders.
  Manifest stale = Copy({A("c", 0, 9), A("z", 0, 9)}, 9, 100);
  Manifest current = Copy({A("c", 0), A("a", 0)});
  MergePlan plan = Plan({current, stale, Copy({A("c", 0), A("b", 0)})});
  CHECK(plan.file.gen == kGen);
  CHECK(Keys(plan.order) == std::vector<Key>{{"c", 0}, {"a", 0}, {"b", 0}});
  CHECK(plan.holders.count(A("z", 0, 9).id) == 0);
  CHECK(plan.holders.count(A("c", 0, 9).id) == 0);
  CHECK(plan.holders.at(A("c", 0).id) == std::vector<size_t>{0, 2});
  // Without the primary the two-copy generation wins over a longer lone copy.
  MergePlan outvoted = Plan({std::nullopt, stale, current, Copy({A("c", 0), A("b", 0)})});
  CHECK(outvoted.file.gen == kGen);
  CHECK(Keys(outvoted.order) == std::vector<Key>{{"c", 0}, {"a", 0}, {"b", 0}});
}

TEST_CASE("random concurrent appends merge to one order that keeps every invariant",
          "[hydfs][merge]") {
  std::mt19937 rng(20240611);
  auto coin = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  const std::vector<std::string> clients = {"c", "n2", "n3", "n4"};

  for (int round = 0; round < 2000; ++round) {
    INFO("round " << round);
    // Each client writes a sequence; "c" created the file (its seq 0 is the create).
    std::vector<std::vector<AppendMeta>> per_client(clients.size());
    for (size_t k = 0; k < clients.size(); ++k) {
      size_t count = rng() % 6 + (k == 0 ? 1 : 0);
      for (size_t s = 0; s < count; ++s) per_client[k].push_back(A(clients[k], s));
    }
    const AppendMeta create = per_client[0][0];

    // Three replicas, each holding a random subset in a random interleaving of the clients'
    // sequences, sometimes with neighbours swapped (a client's appends out of order).
    std::vector<std::optional<Manifest>> copies(3);
    for (auto& copy : copies) {
      std::vector<size_t> next(clients.size(), 0);
      next[0] = 1;  // the create is placed first below
      std::vector<AppendMeta> appends = {create};
      for (;;) {
        std::vector<size_t> live;
        for (size_t k = 0; k < clients.size(); ++k) {
          if (next[k] < per_client[k].size()) live.push_back(k);
        }
        if (live.empty()) break;
        size_t k = live[rng() % live.size()];
        const AppendMeta& a = per_client[k][next[k]++];
        if (coin(80)) appends.push_back(a);
      }
      for (size_t i = 2; i < appends.size(); ++i) {
        if (coin(15)) std::swap(appends[i - 1], appends[i]);
      }
      copy = Copy(std::move(appends));
    }
    if (coin(20)) copies[0] = std::nullopt;  // the primary lost its copy
    if (coin(10)) copies[rng() % 2 + 1] = std::nullopt;

    auto result = PlanMerge(copies);
    if (!copies[0] && !copies[1] && !copies[2]) {
      CHECK(result.status().code() == StatusCode::kNotFound);
      continue;
    }
    REQUIRE(result.ok());
    const MergePlan& plan = *result;

    // The union of the copies' appends appears exactly once.
    std::map<uint64_t, std::vector<size_t>> expected_holders;
    for (size_t i = 0; i < copies.size(); ++i) {
      if (!copies[i]) continue;
      for (const auto& a : copies[i]->appends) expected_holders[a.id].push_back(i);
    }
    std::multiset<uint64_t> ids;
    for (const auto& a : plan.order) ids.insert(a.id);
    CHECK(ids.size() == expected_holders.size());
    for (const auto& [id, holders] : expected_holders) CHECK(ids.count(id) == 1);
    CHECK(plan.holders == expected_holders);

    // The create is first, and each client's appends are in seq order.
    REQUIRE_FALSE(plan.order.empty());
    CHECK(plan.order[0].id == create.id);
    std::map<std::string, uint64_t> last_seq;
    for (const auto& a : plan.order) {
      auto it = last_seq.find(a.client);
      if (it != last_seq.end()) CHECK(a.seq > it->second);
      last_seq[a.client] = a.seq;
    }
    CHECK(plan.digest == OrderDigest(kGen, plan.order));

    // The slots: the base's clients in its order, then the missing appends' clients sorted.
    size_t base = 0;
    if (!copies[0]) {
      base = copies[1] && (!copies[2] || copies[1]->appends.size() >= copies[2]->appends.size())
                 ? 1
                 : 2;
    }
    std::vector<std::string> slots;
    std::set<uint64_t> in_base;
    for (const auto& a : copies[base]->appends) {
      slots.push_back(a.client);
      in_base.insert(a.id);
    }
    std::map<uint64_t, Key> key_of;
    for (const auto& copy : copies) {
      if (!copy) continue;
      for (const auto& a : copy->appends) key_of[a.id] = {a.client, a.seq};
    }
    std::vector<Key> missing;
    for (const auto& [id, key] : key_of) {
      if (!in_base.count(id)) missing.push_back(key);
    }
    std::sort(missing.begin(), missing.end());
    for (const auto& [client, seq] : missing) slots.push_back(client);
    std::vector<std::string> got_slots;
    for (const auto& a : plan.order) got_slots.push_back(a.client);
    CHECK(got_slots == slots);

    // Re-planning from the merged result is a fixpoint.
    Manifest merged = Copy(plan.order);
    MergePlan again = Plan({merged, merged, merged});
    CHECK(again.digest == plan.digest);
    CHECK(Keys(again.order) == Keys(plan.order));
    // ...also when only some replicas have adopted it yet and the rest hold subsets.
    MergePlan partial = Plan({merged, copies[1], copies[2]});
    CHECK(partial.digest == plan.digest);

    // Deterministic: the non-primary copies in the other order give the same order, when the
    // primary holds a copy (without one, ties between equally long copies go to the earlier
    // successor by design).
    if (copies[0]) {
      MergePlan swapped = Plan({copies[0], copies[2], copies[1]});
      CHECK(swapped.digest == plan.digest);
      CHECK(Keys(swapped.order) == Keys(plan.order));
      // And the same again: no hidden state.
      CHECK(Plan(copies).digest == plan.digest);
    }
  }
}

TEST_CASE("a snapshot keeps its appends when more arrive, and refuses an order changed under it",
          "[hydfs][merge][snapshot]") {
  // The snapshot: the merged order of two appends after the create.
  MergePlan then = Plan({Copy({A("c", 0), A("w", 1), A("w", 2)})});
  FileSnapshot snap{kGen, then.order.size(), 30, then.digest};

  SECTION("appends after it are cut off, whichever replica took them") {
    MergePlan now = Plan({Copy({A("c", 0), A("w", 1), A("w", 2), A("w", 3)}),
                          Copy({A("c", 0), A("w", 1), A("w", 2), A("v", 1)})});
    REQUIRE(now.order.size() == 5);
    REQUIRE(RestrictToSnapshot("f.txt", snap, &now).ok());
    CHECK(Keys(now.order) == Keys(then.order));
    CHECK(now.digest == then.digest);
  }
  SECTION("the same order is kept as is") {
    MergePlan now = then;
    REQUIRE(RestrictToSnapshot("f.txt", snap, &now).ok());
    CHECK(now.digest == snap.digest);
  }
  SECTION("an append merged in among the snapshot's: refused, named") {
    // w's seq 1 was in flight and reached only the second replica: w's appends are put back in
    // seq order, so seq 1 takes the place the snapshot had seq 2 in.
    MergePlan before = Plan({Copy({A("c", 0), A("w", 2)})});
    FileSnapshot s2{kGen, before.order.size(), 20, before.digest};
    MergePlan now = Plan({Copy({A("c", 0), A("w", 2)}), Copy({A("c", 0), A("w", 1)})});
    Status st = RestrictToSnapshot("f.txt", s2, &now);
    CHECK(st.code() == StatusCode::kFailedPrecondition);
    CHECK(st.message().find("no longer those of its snapshot") != std::string::npos);
  }
  SECTION("a replaced file or a shorter one: refused") {
    MergePlan other = Plan({Copy({A("c", 0, 778), A("w", 1, 778), A("w", 2, 778)}, 778)});
    Status st = RestrictToSnapshot("f.txt", snap, &other);
    CHECK(st.code() == StatusCode::kFailedPrecondition);
    CHECK(st.message().find("was replaced") != std::string::npos);
    MergePlan shorter = Plan({Copy({A("c", 0), A("w", 1)})});
    CHECK(RestrictToSnapshot("f.txt", snap, &shorter).code() == StatusCode::kFailedPrecondition);
  }
}

}  // namespace rs::hydfs
