// Checkpoint files: records round trip field by field (binary ids and state, nil state, empty
// lists), files split into records with a torn tail left out, and hostile bytes (truncations,
// wrong types, random bytes) give Corruption, never a throw.
#include "shared/stream/checkpoint.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <random>
#include <string>

#include "shared/wire/envelope.h"

namespace rs::stream {
namespace {

// A record with a bit of everything; its strings live in `store`.
CheckpointRecord Sample(std::vector<std::string>& store) {
  store = {std::string("\x00\x01\xff id", 6), std::string(70000, 'f'),
           std::string("state\0bytes", 11), std::string("\x00", 1)};
  CheckpointRecord r;
  r.time_ms = 1795257988812;
  r.commits = 12345;
  r.wm = {{9, 0, 2, 2, store[0]}, {4095, 1, 0, 0xffffffffffffull, store[3]}};
  r.in = {{0, 2, 7, 41, false}, {1, 0, (1ull << 60) + 3, 0, true}};
  r.pending = {{0, 5, store[1]}, {2, 6, "x"}};
  r.state = store[2];
  r.spool_bytes = 99;
  r.tuples_in = 1u << 20;
  r.tuples_out = UINT64_MAX;
  r.duplicates = 3;
  return r;
}

TEST_CASE("a checkpoint record round-trips every field", "[checkpoint]") {
  std::vector<std::string> store;
  CheckpointRecord r = Sample(store);
  std::string file;
  AppendCheckpointRecord(r, &file);
  CheckpointRecords split = SplitCheckpointFile(file);
  REQUIRE(split.records.size() == 1);
  CHECK(split.torn_bytes == 0);
  auto got = DecodeCheckpointRecord(split.records[0]);
  REQUIRE(got.ok());
  CHECK(got->time_ms == r.time_ms);
  CHECK(got->commits == r.commits);
  CHECK(got->spool_bytes == 99);
  CHECK(got->tuples_in == 1u << 20);
  CHECK(got->tuples_out == UINT64_MAX);
  CHECK(got->duplicates == 3);
  REQUIRE(got->wm.size() == 2);
  CHECK(got->wm[0].group == 9);
  CHECK(got->wm[1].group == 4095);
  CHECK(got->wm[0].stage == 0);
  CHECK(got->wm[0].task == 2);
  CHECK(got->wm[0].origin == 2);
  CHECK(got->wm[0].id == store[0]);
  CHECK(got->wm[1].origin == 0xffffffffffffull);
  CHECK(got->wm[1].id == store[3]);
  REQUIRE(got->in.size() == 2);
  CHECK(got->in[0].incarnation == 7);
  CHECK(got->in[0].processed == 41);
  CHECK_FALSE(got->in[0].ended);
  CHECK(got->in[1].incarnation == (1ull << 60) + 3);
  CHECK(got->in[1].ended);
  REQUIRE(got->pending.size() == 2);
  CHECK(got->pending[0].to == 0);
  CHECK(got->pending[0].seq == 5);
  CHECK(got->pending[0].bytes == store[1]);
  CHECK(got->pending[1].to == 2);
  CHECK(got->pending[1].bytes == "x");
  REQUIRE(got->state.has_value());
  CHECK(*got->state == store[2]);
  CHECK_FALSE(got->state_changes);      // absent: a full state
  CHECK_FALSE(got->order.has_value());  // absent: the task logs no input order
  CHECK(got->epoch == 0);               // absent: the stage was never rescaled
  {
    CheckpointRecord e = r;
    e.epoch = 7;
    std::string one;
    AppendCheckpointRecord(e, &one);
    auto back = DecodeCheckpointRecord(SplitCheckpointFile(one).records.at(0));
    REQUIRE(back.ok());
    CHECK(back->epoch == 7);
    CHECK_FALSE(back->source.has_value());  // absent: no range of a rescalable stage 1
    // Stage 1 of a rescalable job reading files: its range (origin, begin, end).
    e.source = CheckpointRecord::Source{70, 1000, 2500};
    one.clear();
    AppendCheckpointRecord(e, &one);
    back = DecodeCheckpointRecord(SplitCheckpointFile(one).records.at(0));
    REQUIRE(back.ok());
    REQUIRE(back->source.has_value());
    CHECK((back->source->origin == 70 && back->source->begin == 1000 && back->source->end == 2500));
    e.source = CheckpointRecord::Source{70, 3000, 2500};  // ends before it begins
    one.clear();
    AppendCheckpointRecord(e, &one);
    CHECK_FALSE(DecodeCheckpointRecord(SplitCheckpointFile(one).records.at(0)).ok());
  }
  // A task that logs its input order records the runs its state covers (0 included).
  for (uint64_t order : {uint64_t{0}, uint64_t{1} << 40}) {
    r.order = order;
    std::string one;
    AppendCheckpointRecord(r, &one);
    auto back = DecodeCheckpointRecord(SplitCheckpointFile(one).records.at(0));
    REQUIRE(back.ok());
    CHECK(back->order == order);
  }
}

TEST_CASE("the state a rebuild restores: the last full state with the later changes applied",
          "[checkpoint]") {
  using State = std::map<uint32_t, std::map<std::string, int>>;
  auto pack = [](const State& st) {
    msgpack::sbuffer b;
    msgpack::pack(b, st);
    return std::string(b.data(), b.size());
  };
  std::vector<std::string> states = {pack({{1, {{"a", 1}}}}), pack({{1, {{"a", 2}}}}),
                                     pack({{1, {{"a", 5}, {"b", 1}}}}), pack({{2, {{"c", 1}}}})};
  std::string file;
  for (size_t i = 0; i < states.size(); ++i) {
    CheckpointRecord r;
    r.state = states[i];
    r.state_changes = i != 0 && i != 2;  // full, changes, full, changes
    AppendCheckpointRecord(r, &file);
  }
  std::vector<CheckpointRecord> all;
  for (auto bytes : SplitCheckpointFile(file).records)
    all.push_back(*DecodeCheckpointRecord(bytes));
  REQUIRE(all.size() == 4);
  CHECK(all[1].state_changes);
  CHECK_FALSE(all[2].state_changes);
  auto at = [&](size_t n) {
    auto st = StateAt(std::vector<CheckpointRecord>(all.begin(), all.begin() + n));
    REQUIRE(st.ok());
    return st->empty() ? State{} : msgpack::unpack(st->data(), st->size()).get().as<State>();
  };
  CHECK(at(1) == State{{1, {{"a", 1}}}});
  CHECK(at(2) == State{{1, {{"a", 2}}}});
  CHECK(at(3) == State{{1, {{"a", 5}, {"b", 1}}}});
  CHECK(at(4) == State{{1, {{"a", 5}, {"b", 1}}}, {2, {{"c", 1}}}});
  CHECK(at(0).empty());
  // Changes with no full state before them cannot be restored.
  auto orphan = StateAt(std::vector<CheckpointRecord>(all.begin() + 1, all.begin() + 2));
  CHECK(orphan.status().code() == StatusCode::kCorruption);
}

TEST_CASE("pending frames are assembled from a generation's incremental records", "[checkpoint]") {
  // Record 1 (a generation's first) lists frames 1-3 to task 0 and 1 to task 1; record 2 lists
  // only the new ones (4 to task 0), with frames up to 1 to task 0 and every one to task 1 now
  // durable downstream; record 3 lists frame 5 to task 0, with 2 still the lowest pending.
  auto frame = [](uint32_t to, uint64_t seq) {
    return "frame " + std::to_string(to) + "/" + std::to_string(seq);
  };
  std::vector<std::string> bytes;
  std::string file;
  auto add = [&](std::vector<std::pair<uint32_t, uint64_t>> listed,
                 std::map<uint32_t, uint64_t> from) {
    std::vector<std::string> keep;
    CheckpointRecord r;
    for (const auto& [to, seq] : listed) keep.push_back(frame(to, seq));
    for (size_t i = 0; i < listed.size(); ++i) {
      r.pending.push_back({listed[i].first, listed[i].second, keep[i]});
    }
    r.pending_from = std::move(from);
    AppendCheckpointRecord(r, &file);
  };
  add({{0, 1}, {0, 2}, {0, 3}, {1, 1}}, {{0, 1}, {1, 1}});
  add({{0, 4}}, {{0, 2}});
  add({{0, 5}}, {{0, 2}});
  std::vector<CheckpointRecord> records;
  for (std::string_view rec : SplitCheckpointFile(file).records) {
    auto d = DecodeCheckpointRecord(rec);
    REQUIRE(d.ok());
    CHECK(d->incremental);
    records.push_back(std::move(*d));
  }
  REQUIRE(records.size() == 3);
  auto names = [&](const std::vector<CheckpointFrame>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames) {
      CHECK(f.bytes == frame(f.to, f.seq));
      out.push_back(std::to_string(f.to) + "/" + std::to_string(f.seq));
    }
    return out;
  };
  CHECK(names(PendingFrames(records)) == std::vector<std::string>{"0/2", "0/3", "0/4", "0/5"});
  records.resize(2);  // recovery from record 2: frame 5 was never listed
  CHECK(names(PendingFrames(records)) == std::vector<std::string>{"0/2", "0/3", "0/4"});
  records.resize(1);
  CHECK(names(PendingFrames(records)) == std::vector<std::string>{"0/1", "0/2", "0/3", "1/1"});
  CHECK(PendingFrames({}).empty());
}

TEST_CASE("the decoded views outlive the file they came from", "[checkpoint]") {
  std::vector<std::string> store;
  CheckpointRecord r = Sample(store);
  auto file = std::make_unique<std::string>();
  AppendCheckpointRecord(r, file.get());
  auto got = DecodeCheckpointRecord(SplitCheckpointFile(*file).records[0]);
  REQUIRE(got.ok());
  std::fill(file->begin(), file->end(), '\xee');
  file.reset();
  CHECK(got->wm[0].id == store[0]);
  CHECK(got->pending[0].bytes == store[1]);
  CHECK(*got->state == store[2]);
}

TEST_CASE("an empty record: no state is nil, lists are empty", "[checkpoint]") {
  std::string file;
  AppendCheckpointRecord(CheckpointRecord{}, &file);
  auto got = DecodeCheckpointRecord(SplitCheckpointFile(file).records.at(0));
  REQUIRE(got.ok());
  CHECK(got->wm.empty());
  CHECK(got->in.empty());
  CHECK(got->pending.empty());
  CHECK_FALSE(got->state.has_value());
}

TEST_CASE("a file splits into its records; a torn tail is left out", "[checkpoint]") {
  std::vector<std::string> store;
  std::string file;
  for (uint64_t i = 1; i <= 3; ++i) {
    CheckpointRecord r = Sample(store);
    r.commits = i;
    AppendCheckpointRecord(r, &file);
  }
  size_t whole = file.size();
  CheckpointRecord last;
  last.commits = 4;
  AppendCheckpointRecord(last, &file);
  for (size_t cut : {whole + 1, whole + 3, whole + 4, file.size() - 1}) {
    CAPTURE(cut);
    CheckpointRecords split = SplitCheckpointFile(std::string_view(file).substr(0, cut));
    REQUIRE(split.records.size() == 3);
    CHECK(split.torn_bytes == cut - whole);
    auto got = DecodeCheckpointRecord(split.records.back());
    REQUIRE(got.ok());
    CHECK(got->commits == 3);
  }
  CheckpointRecords all = SplitCheckpointFile(file);
  REQUIRE(all.records.size() == 4);
  CHECK(DecodeCheckpointRecord(all.records.back())->commits == 4);
  CHECK(SplitCheckpointFile("").records.empty());
  // A length that claims more than the file holds (4 GiB - 1) is a torn tail, not a read past.
  CheckpointRecords huge =
      SplitCheckpointFile(std::string("\xff\xff\xff\xff"
                                      "abc",
                                      7));
  CHECK(huge.records.empty());
  CHECK(huge.torn_bytes == 7);
}

std::string Packed(const std::function<void(wire::Packer&)>& body) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  body(pk);
  return std::string(buf.data(), buf.size());
}

TEST_CASE("hostile records give Corruption, never a throw", "[checkpoint]") {
  std::vector<std::string> store;
  std::string file;
  AppendCheckpointRecord(Sample(store), &file);
  std::string_view rec = SplitCheckpointFile(file).records.at(0);
  SECTION("every truncation") {
    for (size_t n = 0; n < rec.size(); n += (n < 200 ? 1 : 997)) {
      CAPTURE(n);
      auto got = DecodeCheckpointRecord(rec.substr(0, n));
      CHECK_FALSE(got.ok());
    }
  }
  SECTION("wrong shapes and types") {
    auto bad = [](const std::function<void(wire::Packer&)>& body) {
      auto got = DecodeCheckpointRecord(Packed(body));
      INFO(got.status().ToString());
      CHECK(got.status().code() == StatusCode::kCorruption);
    };
    bad([](wire::Packer& pk) { pk.pack_array(0); });
    bad([](wire::Packer& pk) { pk.pack("not a map"); });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("time_ms");
      pk.pack("soon");
    });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("wm");
      pk.pack(7);
    });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("wm");
      pk.pack_array(1);
      pk.pack_array(4);  // one short
      pk.pack(0);
      pk.pack(0);
      pk.pack(0);
      pk.pack(0);
    });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("in");
      pk.pack_array(1);
      pk.pack_array(5);
      pk.pack(1ull << 40);  // a stage beyond 32 bits
      pk.pack(0);
      pk.pack(0);
      pk.pack(0);
      pk.pack(false);
    });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("pending");
      pk.pack_array(1);
      pk.pack_array(3);
      pk.pack(0);
      pk.pack(1);
      pk.pack(2);  // frame bytes that are a number
    });
    bad([](wire::Packer& pk) {
      pk.pack_map(1);
      pk.pack("state");
      pk.pack(3.5);
    });
    bad([](wire::Packer& pk) {  // trailing bytes after the map
      pk.pack_map(0);
      pk.pack(1);
    });
  }
  SECTION("random bytes") {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2000; ++i) {
      std::string junk(rng() % 64, '\0');
      for (auto& c : junk) c = static_cast<char>(rng());
      (void)DecodeCheckpointRecord(junk);
      (void)SplitCheckpointFile(junk);
    }
    // The sample with bytes flipped: decodes or is refused.
    for (int i = 0; i < 2000; ++i) {
      std::string flipped(rec);
      flipped[rng() % flipped.size()] ^= static_cast<char>(1 + rng() % 255);
      (void)DecodeCheckpointRecord(flipped);
    }
  }
}

}  // namespace
TEST_CASE("counters are optional (older records restore 0) and must be three uints",
          "[checkpoint]") {
  auto record = [](bool with_counters, const std::function<void(wire::Packer&)>& counters) {
    return Packed([&](wire::Packer& pk) {
      pk.pack_map(with_counters ? 7 : 6);
      pk.pack("time_ms");
      pk.pack(1);
      pk.pack("commits");
      pk.pack(2);
      pk.pack("spool_bytes");
      pk.pack(0);
      for (const char* list : {"wm", "in", "pending"}) {
        pk.pack(list);
        pk.pack_array(0);
      }
      if (with_counters) {
        pk.pack("counters");
        counters(pk);
      }
    });
  };
  auto old = DecodeCheckpointRecord(record(false, nullptr));
  INFO(old.status().ToString());
  REQUIRE(old.ok());
  CHECK(old->tuples_in == 0);
  CHECK(old->tuples_out == 0);
  CHECK(old->duplicates == 0);
  for (int shape = 0; shape < 3; ++shape) {
    CAPTURE(shape);
    auto bad = DecodeCheckpointRecord(record(true, [shape](wire::Packer& pk) {
      if (shape == 0) pk.pack(5);
      if (shape == 1) pk.pack(std::vector<uint64_t>{1, 2});
      if (shape == 2) pk.pack(std::vector<std::string>{"a", "b", "c"});
    }));
    CHECK(bad.status().code() == StatusCode::kCorruption);
  }
}

}  // namespace rs::stream
