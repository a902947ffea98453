#include "daemon/hydfs/fetch.h"

#include <catch2/catch.hpp>

#include "tests/unit/hydfs/fetch_rig.h"

namespace rs::hydfs {
namespace {

using namespace fetch_testing;  // NOLINT(build/namespaces)

TEST_CASE("a fetch delivers every chunk in order from its first source", "[hydfs][fetch]") {
  Rig rig;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.done_calls == 1);
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.delivered == rig.WholeFileChunks());
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.corrupt.empty());
  CHECK(rig.fetch->finished());
  CHECK(rig.fetch->next_seq() == 8);
  CHECK(rig.fetch->bytes() == 7000);
  CHECK(rig.fetch->sources_used() == Ids({&rig.s1}));
  REQUIRE(rig.s1.reads.size() == 1);
  const ReadSeen& read = rig.s1.reads[0];
  CHECK(read.first_seq == 0);
  CHECK(read.window == 2);
  CHECK(read.reader == rig.reader.endpoint());
  CHECK(read.lane >= 1);
  CHECK(read.lane <= 126);
  using R = std::tuple<uint64_t, uint32_t, uint32_t>;
  CHECK(read.items == std::vector<R>{R{rig.file[0].meta.id, 0, 5}, R{rig.file[1].meta.id, 0, 3}});
  CHECK(rig.s2.reads.empty());
}

TEST_CASE("a fetch of partial ranges reads exactly those chunks", "[hydfs][fetch]") {
  Rig rig;
  // Empty ranges are dropped.
  std::vector<FetchItem> items = {rig.Item(0, 2, 5, {rig.s1.node()}),
                                  rig.Item(0, 3, 3, {rig.s1.node()}),
                                  rig.Item(1, 1, 2, {rig.s1.node()})};
  rig.Start(items, {});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(4));
  using P = std::pair<uint64_t, uint32_t>;
  CHECK(rig.delivered == std::vector<P>{P{rig.file[0].meta.id, 2}, P{rig.file[0].meta.id, 3},
                                        P{rig.file[0].meta.id, 4}, P{rig.file[1].meta.id, 1}});
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.fetch->bytes() == 3500);
  REQUIRE(rig.s1.reads.size() == 1);
  CHECK(rig.s1.reads[0].items.size() == 2);
}

TEST_CASE("a fetch with nothing to read finishes at once without asking anyone", "[hydfs][fetch]") {
  Rig rig;
  rig.Start({rig.Item(0, 2, 2, {rig.s1.node()})}, {});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.done_calls == 1);
  CHECK(rig.seqs.empty());
  CHECK(rig.s1.reads.empty());
}

TEST_CASE("a chunk that fails its manifest crc moves the fetch to the next source at that chunk",
          "[hydfs][fetch]") {
  const int64_t bad = GENERATE(0, 3, 4, 5, 7);
  const uint32_t window = GENERATE(1u, 8u);
  INFO("corrupt seq " << bad << " window " << window);
  Rig rig;
  rig.s1.corrupt_seq = bad;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = window});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  CHECK(rig.Eventually([&] { return !rig.s1.ends_from_reader.empty(); }));
  rig.Stop();
  // Nothing lost, nothing twice: the older lane's in-flight chunks were ignored.
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.delivered == rig.WholeFileChunks());
  CHECK(rig.bytes == rig.Expected(items));
  REQUIRE(rig.corrupt.size() == 1);
  CHECK(rig.corrupt[0].source == rig.s1.node().id);
  CHECK(rig.corrupt[0].append == rig.file[bad < 5 ? 0 : 1].meta.id);
  CHECK(rig.corrupt[0].chunk == static_cast<uint32_t>(bad < 5 ? bad : bad - 5));
  CHECK(rig.fetch->sources_used() == Ids({&rig.s1, &rig.s2}));
  // The second source was asked for exactly the rest, numbered from the bad chunk on, on a new
  // lane; the first was told to stop.
  REQUIRE(rig.s2.reads.size() == 1);
  const ReadSeen& read = rig.s2.reads[0];
  CHECK(read.first_seq == static_cast<uint64_t>(bad));
  REQUIRE_FALSE(read.items.empty());
  CHECK(std::get<1>(read.items[0]) == static_cast<uint32_t>(bad < 5 ? bad : bad - 5));
  CHECK(read.lane != rig.s1.reads[0].lane);
  REQUIRE(rig.s1.ends_from_reader.size() == 1);
  CHECK_FALSE(rig.s1.ends_from_reader[0].ok());
}

TEST_CASE("a source that reports a corrupt chunk is replaced at that chunk", "[hydfs][fetch]") {
  Rig rig;
  rig.s1.end_corrupt_seq = 6;  // B's chunk 1
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 3});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  REQUIRE(rig.corrupt.size() == 1);
  CHECK(rig.corrupt[0].source == rig.s1.node().id);
  CHECK(rig.corrupt[0].append == rig.file[1].meta.id);
  CHECK(rig.corrupt[0].chunk == 1);
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 6);
  using R = std::tuple<uint64_t, uint32_t, uint32_t>;
  CHECK(rig.s2.reads[0].items == std::vector<R>{R{rig.file[1].meta.id, 1, 3}});
}

TEST_CASE("a source that goes silent is replaced after the idle timeout", "[hydfs][fetch]") {
  Rig rig;
  rig.s1.silent_from_seq = 4;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .idle_timeout = std::chrono::milliseconds(300)});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  CHECK(rig.elapsed >= std::chrono::milliseconds(300));
  CHECK(rig.elapsed < std::chrono::seconds(3));
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.corrupt.empty());  // silence is not corruption
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 4);
  CHECK(rig.fetch->sources_used() == Ids({&rig.s1, &rig.s2}));
}

TEST_CASE("a source that refuses the read is replaced from the first chunk", "[hydfs][fetch]") {
  Rig rig;
  rig.s1.refuse = true;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.s1.reads.size() == 1);
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 0);
  CHECK(rig.s1.sent.empty());
}

TEST_CASE("a fetch fails unavailable when every source fails", "[hydfs][fetch]") {
  Rig rig;
  rig.s1.refuse = true;
  rig.s2.corrupt_seq = 2;
  rig.Start(rig.WholeFile({rig.s1.node(), rig.s2.node()}), {});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->code() == StatusCode::kUnavailable);
  // Late frames of the failed sources change nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  rig.Stop();
  CHECK(rig.done_calls == 1);
  CHECK(rig.seqs == rig.Iota(2));
  CHECK(rig.corrupt.size() == 1);
  CHECK(rig.fetch->finished());
}

TEST_CASE("a fetch whose append has no source at all fails unavailable", "[hydfs][fetch]") {
  Rig rig;
  rig.Start({rig.Item(0, 0, 5, {})}, {});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->code() == StatusCode::kUnavailable);
}

TEST_CASE("appends held by different sources are read in successive runs", "[hydfs][fetch]") {
  Rig rig;
  // Only s2 holds B: the first run reads A from s1 and ends; the second reads B from s2.
  std::vector<FetchItem> items = {rig.Item(0, 0, 5, {rig.s1.node(), rig.s2.node()}),
                                  rig.Item(1, 0, 3, {rig.s2.node()})};
  rig.Start(items, {.window = 2});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.fetch->sources_used() == Ids({&rig.s1, &rig.s2}));
  REQUIRE(rig.s1.reads.size() == 1);
  CHECK(rig.s1.reads[0].items.size() == 1);
  CHECK(rig.s1.ends_from_reader.empty());  // s1 finished its run: nobody gave up on it
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 5);
}

TEST_CASE("a source declared failed is replaced at once, other nodes' failures are ignored",
          "[hydfs][fetch]") {
  Rig rig;
  rig.s1.silent_from_seq = 3;
  NodeId s1 = rig.s1.node().id, s2 = rig.s2.node().id;
  rig.on_chunk_hook = [&rig, s1, s2](uint64_t seq) {
    std::weak_ptr<Fetch> weak = rig.fetch;
    if (seq == 0) {
      rig.loop.Post([weak, s2] {
        if (auto f = weak.lock()) f->SourceFailed(s2);  // not the current source: no effect
      });
    }
    if (seq == 2) {
      rig.loop.Post([weak, s1] {
        if (auto f = weak.lock()) f->SourceFailed(s1);
      });
    }
    return Status::Ok();
  };
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .idle_timeout = std::chrono::seconds(5)});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  CHECK(rig.elapsed < std::chrono::seconds(2));  // well before the idle timeout
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.fetch->sources_used() == Ids({&rig.s1, &rig.s2}));
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 3);
}

TEST_CASE("an aborted fetch never calls on_done and tells its source to stop", "[hydfs][fetch]") {
  Rig rig;
  rig.s1.silent_from_seq = 2;
  rig.on_chunk_hook = [&rig](uint64_t seq) {
    if (seq == 1) {
      std::weak_ptr<Fetch> weak = rig.fetch;
      rig.loop.Post([weak] {
        if (auto f = weak.lock()) f->Abort(Status::Timeout("the user gave up"));
      });
    }
    return Status::Ok();
  };
  rig.Start(rig.WholeFile({rig.s1.node(), rig.s2.node()}),
            {.window = 4, .idle_timeout = std::chrono::milliseconds(300)});
  CHECK(rig.Eventually([&] { return !rig.s1.ends_from_reader.empty(); }));
  // Well past the idle timeout: no failover, no on_done.
  auto st = rig.Wait(std::chrono::milliseconds(800));
  CHECK_FALSE(st.has_value());
  rig.Stop();
  CHECK(rig.done_calls == 0);
  CHECK(rig.seqs == rig.Iota(2));
  CHECK(rig.fetch->finished());
  CHECK(rig.s2.reads.empty());
  REQUIRE(rig.s1.ends_from_reader.size() == 1);
  CHECK(rig.s1.ends_from_reader[0] == Status::Timeout("the user gave up"));
}

TEST_CASE("a sink that refuses a chunk ends the fetch with its status", "[hydfs][fetch]") {
  Rig rig;
  rig.on_chunk_hook = [](uint64_t seq) {
    return seq == 2 ? Status::IOError("disk full") : Status::Ok();
  };
  rig.Start(rig.WholeFile({rig.s1.node(), rig.s2.node()}), {.window = 1});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(*st == Status::IOError("disk full"));
  CHECK(rig.Eventually([&] { return !rig.s1.ends_from_reader.empty(); }));
  rig.Stop();
  CHECK(rig.done_calls == 1);
  CHECK(rig.seqs == rig.Iota(3));
  CHECK(rig.s2.reads.empty());
  REQUIRE(rig.s1.ends_from_reader.size() == 1);
  CHECK(rig.s1.ends_from_reader[0] == Status::IOError("disk full"));
}

TEST_CASE("with manual acks a fetch finishes only once the sink acknowledged the last chunk",
          "[hydfs][fetch]") {
  Rig rig;
  std::vector<FetchItem> items = {rig.Item(0, 0, 3, {rig.s1.node()})};
  rig.Start(items,
            {.window = 8, .idle_timeout = std::chrono::milliseconds(300), .manual_ack = true});
  REQUIRE(rig.Eventually([&] { return rig.seqs.size() == 3; }));
  // Past the idle timeout: a slow sink is not a silent source.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(rig.OnLoop([&] { return rig.done_calls; }) == 0);
  rig.OnLoop([&] {
    rig.fetch->AckThrough(1);
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(rig.OnLoop([&] { return rig.done_calls; }) == 0);
  rig.OnLoop([&] {
    rig.fetch->AckThrough(2);
    return 0;
  });
  auto st = rig.Wait(std::chrono::seconds(2));
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.done_calls == 1);
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.s2.reads.empty());
  CHECK(rig.corrupt.empty());
}

TEST_CASE("with manual acks the source sends no more than a window ahead of the sink",
          "[hydfs][fetch]") {
  Rig rig;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items,
            {.window = 2, .idle_timeout = std::chrono::milliseconds(300), .manual_ack = true});
  REQUIRE(rig.Eventually([&] { return rig.seqs.size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK(rig.OnLoop([&] { return rig.seqs.size(); }) == 2);  // stalled on the window
  // The sink catches up one chunk at a time.
  for (uint64_t acked = 0; acked < 8; ++acked) {
    REQUIRE(rig.Eventually([&] { return rig.seqs.size() > acked; }));
    rig.OnLoop([&] {
      rig.fetch->AckThrough(acked);
      return 0;
    });
  }
  auto st = rig.Wait(std::chrono::seconds(5));
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.s2.reads.empty());  // never failed over for the sink's slowness
}

TEST_CASE("with manual acks a failover resumes after the chunks the sink already has",
          "[hydfs][fetch]") {
  Rig rig;
  rig.s1.corrupt_seq = 3;
  rig.on_chunk_hook = [&rig](uint64_t seq) {
    std::weak_ptr<Fetch> weak = rig.fetch;
    rig.loop.AddTimer(std::chrono::milliseconds(5), [weak, seq] {
      if (auto f = weak.lock()) f->AckThrough(seq);
    });
    return Status::Ok();
  };
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .manual_ack = true});
  auto st = rig.Wait();
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.seqs == rig.Iota(8));
  CHECK(rig.bytes == rig.Expected(items));
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 3);
}

// Known bugs: these describe the contract and fail today; run them with [bug].

TEST_CASE("a sink that acknowledges late does not get a healthy source failed as idle",
          "[hydfs][fetch]") {
  // fetch.cc CheckIdle measures idleness from the last frame, also while the source was
  // legitimately blocked on the sink's acks; once the sink catches up (sink_acked_ == seq_), the
  // next tick fails the source unless its next chunk beat the tick.
  Rig rig;
  rig.s1.ack_delay = std::chrono::milliseconds(250);  // answers acks within the idle timeout
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items,
            {.window = 2, .idle_timeout = std::chrono::milliseconds(300), .manual_ack = true});
  REQUIRE(rig.Eventually([&] { return rig.seqs.size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the sink is slow
  for (uint64_t acked = 1; acked < 8; ++acked) {
    REQUIRE(rig.Eventually([&] { return rig.seqs.size() > acked; }));
    rig.OnLoop([&] {
      rig.fetch->AckThrough(acked);
      return 0;
    });
  }
  auto st = rig.Wait(std::chrono::seconds(5));
  REQUIRE(st.has_value());
  CHECK(st->ok());
  rig.Stop();
  CHECK(rig.bytes == rig.Expected(items));
  CHECK(rig.s2.reads.empty());  // fails: s1 was given up on as idle
}

TEST_CASE("a manual-ack sink may acknowledge each chunk from inside on_chunk", "[hydfs][fetch]") {
  // AckThrough(seq) during on_chunk clamps to seq_ (not yet advanced), so the chunk being
  // delivered is never acknowledged: the last chunk stays unacked and the fetch never finishes.
  Rig rig;
  rig.on_chunk_hook = [&rig](uint64_t seq) {
    rig.fetch->AckThrough(seq);
    return Status::Ok();
  };
  auto items = rig.WholeFile({rig.s1.node()});
  rig.Start(items, {.window = 4, .manual_ack = true});
  auto st = rig.Wait(std::chrono::seconds(2));
  REQUIRE(st.has_value());  // fails: on_done never comes
  CHECK(st->ok());
}

TEST_CASE("a source that ends its stretch early is not asked again forever", "[hydfs][fetch]") {
  // An End(ok) before the stretch is delivered makes NextRun ask the same source again (it is
  // not in failed_), which ends early again: the fetch spins without progress or deadline.
  Rig rig;
  rig.s1.end_ok_seq = 3;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 8, .idle_timeout = std::chrono::milliseconds(300)});
  auto st = rig.Wait(std::chrono::seconds(2));
  rig.OnLoop([&] {
    if (!rig.fetch->finished()) rig.fetch->Abort(Status::Timeout("test over"));
    return 0;
  });
  rig.Stop();
  INFO("reads served by s1: " << rig.s1.reads.size());
  CHECK(rig.s1.reads.size() < 10);
  REQUIRE(st.has_value());
  CHECK(st->ok());
  CHECK(rig.bytes == rig.Expected(items));
}

}  // namespace
}  // namespace rs::hydfs
