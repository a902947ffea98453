// Key groups (shared/stream/key_groups.h): the even assignment, explicit tables, and keyed
// states cut into groups and joined again.
#include "shared/stream/key_groups.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <random>

#include "shared/util/hash.h"

using namespace rs::stream;

TEST_CASE("an even assignment gives each task one contiguous range of groups", "[key_groups]") {
  for (uint32_t groups : {1u, 7u, 128u, 4096u}) {
    for (uint32_t tasks = 1; tasks <= std::min(groups, 64u); ++tasks) {
      KeyGroupMap m = KeyGroupMap::Even(groups, tasks);
      REQUIRE(m.groups() == groups);
      REQUIRE(m.tasks() == tasks);
      uint32_t next = 0;
      for (uint32_t t = 0; t < tasks; ++t) {
        auto mine = m.GroupsOf(t);
        REQUIRE(!mine.empty());
        CHECK(mine.front() == next);  // contiguous, in task order
        CHECK(mine.back() == next + mine.size() - 1);
        // As even as can be: sizes differ by at most one.
        CHECK(mine.size() >= groups / tasks);
        CHECK(mine.size() <= groups / tasks + 1);
        for (uint32_t g : mine) CHECK(m.Owns(t, g));
        next += static_cast<uint32_t>(mine.size());
      }
      CHECK(next == groups);
    }
  }
  KeyGroupMap m = KeyGroupMap::Even(128, 3);
  CHECK(KeyGroupMap::FormatGroups(m.GroupsOf(0)) == "0-42");
  CHECK(KeyGroupMap::FormatGroups(m.GroupsOf(2)) == "86-127");
  CHECK_FALSE(m.Owns(0, 128));
}

TEST_CASE("a key's group does not depend on the task count", "[key_groups]") {
  // The point of key groups: rescaling moves whole groups, never re-hashes keys.
  for (int k = 0; k < 1000; ++k) {
    std::string key = "user" + std::to_string(k);
    uint32_t g = KeyGroupOf(rs::StableHash64(key), 128);
    CHECK(g < 128);
    for (uint32_t tasks : {1u, 2u, 3u, 5u}) {
      CHECK(KeyGroupMap::Even(128, tasks).Owner(g) == g * tasks / 128);
    }
  }
}

TEST_CASE("an explicit table is checked", "[key_groups]") {
  auto ok = KeyGroupMap::FromOwners({1, 0, 1, 0}, 2);
  REQUIRE(ok.ok());
  CHECK(ok->GroupsOf(0) == std::vector<uint32_t>{1, 3});
  CHECK(KeyGroupMap::FormatGroups(ok->GroupsOf(1)) == "0,2");
  CHECK(KeyGroupMap::FromOwners({0, 2}, 2).status().code() == rs::StatusCode::kInvalidArgument);
  CHECK(KeyGroupMap::FromOwners({0, 0}, 2).status().message().find("task 1 owns no") !=
        std::string::npos);
  CHECK(!KeyGroupMap::FromOwners({}, 1).ok());
  CHECK(!KeyGroupMap::FromOwners({0}, 0).ok());
  CHECK(!KeyGroupMap::FromOwners(std::vector<uint32_t>(kMaxKeyGroups + 1, 0), 1).ok());
}

namespace {

std::string Pack(const std::function<void(msgpack::packer<msgpack::sbuffer>&)>& fn) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  fn(pk);
  return std::string(b.data(), b.size());
}

}  // namespace

TEST_CASE("a rescale moves as few groups as it can, and keeps the shares even", "[key_groups]") {
  auto moved = [](const KeyGroupMap& a, const KeyGroupMap& b) {
    size_t n = 0;
    for (uint32_t g = 0; g < a.groups(); ++g) n += a.Owner(g) != b.Owner(g) ? 1 : 0;
    return n;
  };
  auto check_even = [](const KeyGroupMap& m) {
    std::vector<uint32_t> count(m.tasks(), 0);
    for (uint32_t g = 0; g < m.groups(); ++g) {
      REQUIRE(m.Owner(g) < m.tasks());
      ++count[m.Owner(g)];
    }
    auto [lo, hi] = std::minmax_element(count.begin(), count.end());
    CHECK(*lo >= 1);
    CHECK(*hi - *lo <= 1);
  };
  // 1 -> 3 -> 1 -> 2 on 128 groups: each step moves only what must move.
  KeyGroupMap m = KeyGroupMap::Even(128, 1);
  KeyGroupMap up = m.Rescaled(3);
  check_even(up);
  CHECK(moved(m, up) == 128 - 43);  // task 0 keeps its share of 43 (128 = 43 + 43 + 42)
  CHECK(up.GroupsOf(0) == KeyGroupMap::Even(128, 3).GroupsOf(0));
  KeyGroupMap down = up.Rescaled(1);
  CHECK(moved(up, down) == 128 - 43);
  CHECK(down.owners() == m.owners());
  KeyGroupMap two = down.Rescaled(2);
  check_even(two);
  CHECK(moved(down, two) == 64);
  // Many random steps: always even, always a valid table, and a step moves exactly the
  // groups above the kept tasks' shares plus those of the tasks that went.
  std::mt19937 rng(3);
  for (uint32_t groups : {1u, 7u, 128u, 4096u}) {
    KeyGroupMap cur = KeyGroupMap::Even(groups, 1);
    for (int step = 0; step < 60; ++step) {
      uint32_t tasks =
          std::uniform_int_distribution<uint32_t>(1, std::min<uint32_t>(groups, 64))(rng);
      KeyGroupMap next = cur.Rescaled(tasks);
      REQUIRE(next.groups() == groups);
      REQUIRE(next.tasks() == tasks);
      check_even(next);
      REQUIRE(KeyGroupMap::FromOwners(next.owners(), tasks).ok());
      // The least any rescale can move: every group of a task that went, and whatever a kept
      // task holds above the largest share it could be given.
      std::vector<size_t> held(cur.tasks(), 0);
      for (uint32_t g = 0; g < groups; ++g) ++held[cur.Owner(g)];
      size_t must = 0, over_base = 0;
      uint32_t base = groups / tasks, extra = groups % tasks;
      std::vector<size_t> kept;
      for (uint32_t t = 0; t < cur.tasks(); ++t) {
        if (t >= tasks) {
          must += held[t];
        } else {
          kept.push_back(held[t]);
        }
      }
      std::sort(kept.rbegin(), kept.rend());
      for (size_t i = 0; i < kept.size(); ++i) {
        size_t share = base + (i < extra ? 1 : 0);
        over_base += kept[i] > share ? kept[i] - share : 0;
      }
      CHECK(moved(cur, next) == must + over_base);
      cur = next;
    }
  }
}

TEST_CASE("a keyed state splits into its groups' states and joins back", "[key_groups]") {
  std::string state = Pack([](auto& pk) {
    pk.pack_map(2);
    pk.pack_uint32(7);
    pk.pack_map(1);
    pk.pack(std::string("a"));
    pk.pack(3);
    pk.pack_uint32(100);
    pk.pack(std::string("anything"));
  });
  auto split = SplitKeyedState(state);
  REQUIRE(split.ok());
  REQUIRE(split->size() == 2);
  auto g7 = msgpack::unpack(split->at(7).data(), split->at(7).size());
  CHECK(g7.get().as<std::map<std::string, int>>() == std::map<std::string, int>{{"a", 3}});
  CHECK(split->at(100) == Pack([](auto& pk) { pk.pack(std::string("anything")); }));
  // Joined back, the groups' states are the same.
  auto again = SplitKeyedState(JoinKeyedState(*split));
  REQUIRE(again.ok());
  CHECK(*again == *split);
  // nil is no state at all.
  auto none = SplitKeyedState(Pack([](auto& pk) { pk.pack_nil(); }));
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("state changes apply to a full keyed state entry by entry", "[key_groups]") {
  using State = std::map<uint32_t, std::map<std::string, int>>;
  std::string full = Pack([](auto& pk) {
    pk.pack(State{{3, {{"a", 1}, {"b", 2}}}, {7, {{"c", 5}}}});
  });
  std::string change1 = Pack([](auto& pk) { pk.pack(State{{3, {{"a", 4}}}, {9, {{"d", 1}}}}); });
  std::string change2 = Pack([](auto& pk) {
    pk.pack_map(2);
    pk.pack_uint32(3);
    pk.pack_map(1);
    pk.pack(std::string("b"));
    pk.pack_nil();  // removed
    pk.pack_uint32(7);
    pk.pack_map(1);
    pk.pack(std::string("c"));
    pk.pack_nil();  // the group's last entry: the group goes
  });
  auto merged = ApplyKeyedStateChanges(full, {change1, change2});
  REQUIRE(merged.ok());
  auto oh = msgpack::unpack(merged->data(), merged->size());
  CHECK(oh.get().as<State>() == State{{3, {{"a", 4}}}, {9, {{"d", 1}}}});
  // No changes: the full state, re-packed; a nil full state is an empty one.
  auto same = ApplyKeyedStateChanges(full, {});
  REQUIRE(same.ok());
  CHECK(msgpack::unpack(same->data(), same->size()).get().as<State>() ==
        State{{3, {{"a", 1}, {"b", 2}}}, {7, {{"c", 5}}}});
  auto from_nil = ApplyKeyedStateChanges(Pack([](auto& pk) { pk.pack_nil(); }), {change1});
  REQUIRE(from_nil.ok());
  CHECK(msgpack::unpack(from_nil->data(), from_nil->size()).get().as<State>() ==
        State{{3, {{"a", 4}}}, {9, {{"d", 1}}}});
  // Not of the shape: Corruption.
  std::string not_map = Pack([](auto& pk) { pk.pack(std::map<uint32_t, int>{{3, 1}}); });
  CHECK(ApplyKeyedStateChanges(full, {not_map}).status().code() == rs::StatusCode::kCorruption);
  std::string int_entry = Pack([](auto& pk) {
    pk.pack(std::map<uint32_t, std::map<int, int>>{{3, {{1, 1}}}});
  });
  CHECK(ApplyKeyedStateChanges(full, {int_entry}).status().code() == rs::StatusCode::kCorruption);
  CHECK(ApplyKeyedStateChanges(std::string("\xc1", 1), {}).status().code() ==
        rs::StatusCode::kCorruption);
}

TEST_CASE("hostile keyed states give Corruption, never a throw", "[key_groups]") {
  std::vector<std::string> bad = {
      "",
      "\xc1",                              // never used
      Pack([](auto& pk) { pk.pack(5); }),  // not a map
      Pack([](auto& pk) {
        pk.pack_map(1);
        pk.pack(std::string("g"));
        pk.pack(1);
      }),
      Pack([](auto& pk) {
        pk.pack_map(1);
        pk.pack(-1);
        pk.pack(1);
      }),
      Pack([](auto& pk) {
        pk.pack_map(1);
        pk.pack_uint32(kMaxKeyGroups);
        pk.pack(1);
      }),
      Pack([](auto& pk) {
        pk.pack_map(2);
        pk.pack(1);
        pk.pack(1);
        pk.pack(1);
        pk.pack(2);
      }),
      Pack([](auto& pk) {
        pk.pack_nil();
        pk.pack_nil();
      }),  // trailing bytes
      Pack([](auto& pk) {
        pk.pack_map(3);
        pk.pack(1);
      }),  // cut short
  };
  for (const auto& b : bad) {
    auto r = SplitKeyedState(b);
    CHECK(r.status().code() == rs::StatusCode::kCorruption);
  }
  // Random bytes and random cuts of a good state: an answer, never a crash.
  std::mt19937 rng(7);
  std::string good = Pack([](auto& pk) {
    pk.pack_map(3);
    for (int g = 0; g < 3; ++g) {
      pk.pack(g);
      pk.pack_map(2);
      pk.pack(std::string("k") + std::to_string(g));
      pk.pack(g);
      pk.pack(std::string("x"));
      pk.pack_array(2);
      pk.pack(1);
      pk.pack(std::string("y"));
    }
  });
  REQUIRE(SplitKeyedState(good).ok());
  for (int i = 0; i < 2000; ++i) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    if (rng() % 3 == 0) b.resize(rng() % b.size());
    (void)SplitKeyedState(b);
  }
}
