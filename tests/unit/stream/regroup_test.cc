// Rescaling's pure parts (shared/stream/regroup.h): the groups a table change moves, and the
// handoff codec, including hostile bytes.
#include "shared/stream/regroup.h"

#include <catch2/catch.hpp>
#include <random>

namespace rs::stream {
namespace {

Handoff Sample() {
  Handoff h;
  h.job = "j7-ab";
  h.stage = 3;
  h.epoch = 12;
  h.from_task = 1;
  h.groups = {4, 5, 9, 127};
  h.state[4] = std::string(
      "\x81\xa3"
      "abc\x05",
      6);  // {"abc": 5}
  h.state[127] = std::string("\x80", 1);
  h.marks.push_back(
      {4, 2, 0, 0, std::string("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07", 12)});
  h.marks.push_back({9, 2, 1, 3, "id"});
  return h;
}

TEST_CASE("group moves are the groups whose owner changed", "[stream][regroup]") {
  KeyGroupMap a = KeyGroupMap::Even(8, 2);  // 0-3 -> 0, 4-7 -> 1
  KeyGroupMap b = a.Rescaled(3);
  auto moves = GroupMoves(a, b);
  REQUIRE(!moves.empty());
  for (const auto& m : moves) {
    CHECK(m.from == a.Owner(m.group));
    CHECK(m.to == b.Owner(m.group));
    CHECK(m.to == 2);  // only the new task gains
  }
  CHECK(GroupMoves(a, a).empty());
  auto back = GroupMoves(b, a);
  CHECK(back.size() == moves.size());
}

TEST_CASE("a handoff survives encode and decode", "[stream][regroup]") {
  Handoff h = Sample();
  auto d = DecodeHandoff(EncodeHandoff(h));
  REQUIRE(d.ok());
  CHECK(*d == h);
  Handoff empty;
  empty.job = "j";
  auto e = DecodeHandoff(EncodeHandoff(empty));
  REQUIRE(e.ok());
  CHECK(*e == empty);
  CHECK(HandoffFileName("j7-ab", 3, 12, 1) == "rainstorm/j7-ab/handoff-3-12.1");
}

TEST_CASE("a handoff naming a group it does not hand over is refused", "[stream][regroup]") {
  Handoff h = Sample();
  h.state[5 + 1] = "x";  // group 6 is not in groups
  CHECK(DecodeHandoff(EncodeHandoff(h)).status().code() == StatusCode::kCorruption);
  h = Sample();
  h.marks.push_back({200, 1, 0, 0, "x"});
  CHECK(DecodeHandoff(EncodeHandoff(h)).status().code() == StatusCode::kCorruption);
  h = Sample();
  h.groups = {5, 4};
  h.state.clear();
  h.marks.clear();
  CHECK_THAT(DecodeHandoff(EncodeHandoff(h)).status().message(), Catch::Contains("ascending"));
}

TEST_CASE("a taker's part of a handoff: its groups, their state and marks", "[stream][regroup]") {
  // 1 -> 3 tasks: the giver's one file serves two takers.
  auto part = HandoffPart(Sample(), {9, 4});
  REQUIRE(part.ok());
  CHECK(part->groups == std::vector<uint32_t>{4, 9});
  CHECK(part->state.size() == 1);
  CHECK(part->state.count(4) == 1);
  REQUIRE(part->marks.size() == 2);
  CHECK(part->marks[0].group == 4);
  CHECK(part->marks[1].group == 9);
  auto other = HandoffPart(Sample(), {5, 127});
  REQUIRE(other.ok());
  CHECK(other->state.count(127) == 1);
  CHECK(other->marks.empty());
  auto whole = HandoffPart(Sample(), Sample().groups);
  REQUIRE(whole.ok());
  CHECK(*whole == Sample());
  CHECK(HandoffPart(Sample(), {4, 6}).status().code() == StatusCode::kCorruption);
}

TEST_CASE("hostile handoff bytes give Corruption, never a throw", "[stream][regroup]") {
  std::string good = EncodeHandoff(Sample());
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = DecodeHandoff(std::string_view(good.data(), n));
    CHECK_FALSE(d.ok());
  }
  CHECK_FALSE(DecodeHandoff(good + "x").ok());
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    auto d = DecodeHandoff(b);  // any answer but a throw or a crash
    if (d.ok()) CHECK(std::is_sorted(d->groups.begin(), d->groups.end()));
  }
  // A claim of a huge container in a few bytes.
  std::string huge = "\x87\xa6groups\xdd\xff\xff\xff\xff";
  CHECK_FALSE(DecodeHandoff(huge).ok());
}

TEST_CASE("source pieces round-trip; hostile bytes are refused; their file name",
          "[stream][regroup]") {
  SourcePieces p{"j1-2", 4, 0, {{1, 70, 1000, 2500}, {2, 71, 2500, 2500}, {3, 72, 2500, 4000}}};
  auto d = DecodeSourcePieces(EncodeSourcePieces(p));
  REQUIRE(d.ok());
  CHECK(*d == p);
  std::string good = EncodeSourcePieces(p);
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK_FALSE(DecodeSourcePieces(std::string_view(good.data(), n)).ok());
  }
  for (auto bad : {SourcePieces{"j", 1, 0, {{1, 2, 30, 20}}},                     // backwards
                   SourcePieces{"j", 1, 0, {{1, 2, 10, 20}, {2, 3, 25, 30}}}}) {  // a gap
    CHECK(DecodeSourcePieces(EncodeSourcePieces(bad)).status().code() == StatusCode::kCorruption);
  }
  std::mt19937 rng(5);
  for (int i = 0; i < 5000; ++i) {
    std::string b = good;
    b[rng() % b.size()] = static_cast<char>(rng());
    auto x = DecodeSourcePieces(b);  // any answer but a throw
    if (x.ok()) {
      for (const auto& piece : x->pieces) CHECK(piece.begin <= piece.end);
    }
  }
  std::string name = PieceFileName("j1-2", 4, 3);
  CHECK(name == "rainstorm/j1-2/piece-4.3");
}

}  // namespace
}  // namespace rs::stream
