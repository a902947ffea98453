// The input order's log, the sink's keeper and a rebuilt task's replay
// (shared/stream/input_order.h, daemon/stream/order_replay.h). The model: a task takes tuples of
// several (upstream, origin) streams, each in id order, in some interleaving and logs it; a
// rebuild sees the same streams again from a checkpoint on, cut into other frames and arriving in
// another interleaving, and the replay must hand the operator exactly the logged sequence.
#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "daemon/stream/order_replay.h"
#include "shared/stream/input_order.h"

namespace rs::stream {
namespace {

// A tuple of the model: its stream and its place in it.
struct T {
  uint32_t upstream = 0;
  uint64_t origin = 0;
  uint64_t n = 0;
  bool operator==(const T&) const = default;
};

struct Ids {
  std::map<std::tuple<uint32_t, uint64_t, uint64_t>, std::string> ids;
  std::string_view Of(const T& t) {
    auto& s = ids[{t.upstream, t.origin, t.n}];
    if (s.empty()) s = SourceId(static_cast<uint32_t>(t.origin), t.n);
    return s;
  }
};

// Frames of one upstream: its tuples in order, cut at random, each frame's tuples a random
// interleaving of its origins' next ones (the order within an origin kept).
std::vector<std::vector<T>> CutFrames(std::mt19937& rng, uint32_t upstream, uint64_t origins,
                                      uint64_t from, uint64_t per_origin) {
  std::vector<uint64_t> next(origins, from);
  std::vector<T> all;
  while (true) {
    std::vector<uint64_t> open;
    for (uint64_t o = 0; o < origins; ++o) {
      if (next[o] < per_origin) open.push_back(o);
    }
    if (open.empty()) break;
    uint64_t o = open[rng() % open.size()];
    uint64_t stretch = 1 + rng() % 4;
    for (uint64_t i = 0; i < stretch && next[o] < per_origin; ++i) {
      all.push_back(T{upstream, o, next[o]++});
    }
  }
  std::vector<std::vector<T>> frames;
  for (size_t i = 0; i < all.size();) {
    size_t n = 1 + rng() % 7;
    frames.emplace_back(all.begin() + static_cast<std::ptrdiff_t>(i),
                        all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), i + n)));
    i += n;
  }
  return frames;
}

InFrame Make(Ids& ids, uint32_t upstream, uint64_t seq, const std::vector<T>& tuples) {
  InFrame f;
  f.from = {1, upstream};
  f.incarnation = 1;
  f.seq = seq;
  for (const auto& t : tuples) {
    TupleRef r;
    r.origin = t.origin;
    r.id = ids.Of(t);
    f.tuples.push_back(r);
  }
  return f;
}

T Back(const TupleRef& r, uint32_t upstream) {
  uint64_t n = 0;
  for (size_t i = 4; i < 12; ++i) n = (n << 8) | static_cast<uint8_t>(r.id[i]);
  return T{upstream, r.origin, n};
}

// Frames of every upstream arriving in a random interleaving (each upstream's in its order).
std::vector<std::pair<uint32_t, std::vector<T>>> Arrivals(
    std::mt19937& rng, const std::vector<std::vector<std::vector<T>>>& per_upstream) {
  std::vector<size_t> pos(per_upstream.size(), 0);
  std::vector<std::pair<uint32_t, std::vector<T>>> out;
  while (true) {
    std::vector<uint32_t> open;
    for (uint32_t k = 0; k < per_upstream.size(); ++k) {
      if (pos[k] < per_upstream[k].size()) open.push_back(k);
    }
    if (open.empty()) break;
    uint32_t k = open[rng() % open.size()];
    out.emplace_back(k, per_upstream[k][pos[k]++]);
  }
  return out;
}

TEST_CASE("OrderLog records runs of one (upstream, origin) and never extends a sent one",
          "[input-order]") {
  Ids ids;
  OrderLog log;
  log.Restore(5);
  InFrame a = Make(ids, 0, 1, {{0, 0, 1}, {0, 0, 2}, {0, 1, 1}});
  log.Record(0, a.tuples);
  InFrame b = Make(ids, 0, 2, {{0, 1, 2}});
  log.Record(0, b.tuples);
  CHECK(log.next() == 7);
  OrderRuns r = log.TakeUnsent();
  CHECK(r.first == 5);
  REQUIRE(r.runs.size() == 2);
  CHECK(r.runs[0] == OrderRun{0, 0, std::string(ids.Of({0, 0, 2}))});
  CHECK(r.runs[1] == OrderRun{0, 1, std::string(ids.Of({0, 1, 2}))});
  InFrame c = Make(ids, 0, 3, {{0, 1, 3}});
  log.Record(0, c.tuples);
  InFrame d = Make(ids, 1, 1, {{1, 1, 1}});
  log.Record(1, d.tuples);
  r = log.TakeUnsent();
  CHECK(r.first == 7);
  REQUIRE(r.runs.size() == 2);  // (0, 1) again: the run before it was sent
  CHECK(r.runs[1].upstream == 1);
  CHECK_FALSE(log.HasUnsent());
  CHECK(log.next() == 9);
  // A checkpoint seals the last run: what comes after it is a run of its own.
  InFrame e = Make(ids, 1, 2, {{1, 1, 2}});
  log.Record(1, e.tuples);
  CHECK(log.Seal() == 10);
  InFrame g = Make(ids, 1, 3, {{1, 1, 3}});
  log.Record(1, g.tuples);
  r = log.TakeUnsent();
  REQUIRE(r.runs.size() == 2);
  CHECK(r.runs[0].last_id == ids.Of({1, 1, 2}));
  CHECK(r.runs[1].last_id == ids.Of({1, 1, 3}));
}

TEST_CASE("OrderKeeper keeps runs by index, replaces repeats, trims, and reports a hole",
          "[input-order]") {
  OrderKeeper k;
  OrderRun x{0, 0, "x"}, y{1, 0, "y"}, z{0, 1, "z"};
  CHECK(k.Add(OrderRuns{0, {x, y}}));
  CHECK(k.Add(OrderRuns{1, {y, z}}));  // a rebuilt run sends run 1 again
  CHECK(k.All() == OrderRuns{0, {x, y, z}});
  k.Trim(2);
  CHECK(k.All() == OrderRuns{2, {z}});
  CHECK(k.Add(OrderRuns{1, {y, x}}));  // below the trim: ignored; run 2 replaced
  CHECK(k.All() == OrderRuns{2, {x}});
  k.Trim(10);
  CHECK(k.size() == 0);
  CHECK(k.All().first == 10);
  CHECK_FALSE(k.Add(OrderRuns{12, {y}}));
  CHECK(k.All() == OrderRuns{12, {y}});
}

TEST_CASE("order runs encode and decode; bad bytes give Corruption", "[input-order]") {
  OrderRuns r{7, {{0, 3, std::string("\x00\x01", 2)}, {2, 0, "id"}}};
  auto back = DecodeOrderRuns(EncodeOrderRuns(r));
  REQUIRE(back.ok());
  CHECK(*back == r);
  CHECK(DecodeOrderRuns("").status().code() == StatusCode::kCorruption);
  CHECK(DecodeOrderRuns("\x92\x01\x91\x93\x01\x02\x03").status().code() ==
        StatusCode::kCorruption);  // an id that is not bytes
  std::string s = EncodeOrderRuns(r);
  CHECK_FALSE(DecodeOrderRuns(s.substr(0, s.size() - 1)).ok());
}

TEST_CASE("a replay hands on the logged order whatever the framing and arrival order",
          "[input-order]") {
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    Ids ids;
    const uint32_t upstreams = 1 + rng() % 3;
    const uint64_t origins = 1 + rng() % 3, per_origin = 5 + rng() % 40;
    // The failed run: frames arrive, the operator takes them in arrival order, runs are sent
    // at random moments; a checkpoint at a random frame.
    std::vector<std::vector<std::vector<T>>> frames(upstreams);
    for (uint32_t k = 0; k < upstreams; ++k) frames[k] = CutFrames(rng, k, origins, 0, per_origin);
    auto arrivals = Arrivals(rng, frames);
    size_t checkpoint = rng() % (arrivals.size() + 1);
    OrderLog log;
    OrderKeeper sink;
    std::vector<T> taken;
    uint64_t ckpt_index = 0;
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> mark;  // per stream: first n after it
    for (size_t i = 0; i < arrivals.size(); ++i) {
      if (i == checkpoint) {
        ckpt_index = log.Seal();
        for (const auto& t : taken) mark[{t.upstream, t.origin}] = t.n + 1;
        taken.clear();
      }
      InFrame f = Make(ids, arrivals[i].first, i + 1, arrivals[i].second);
      log.Record(arrivals[i].first, f.tuples);
      for (const auto& t : arrivals[i].second) taken.push_back(t);
      if (rng() % 3 == 0) sink.Add(log.TakeUnsent());
    }
    sink.Add(log.TakeUnsent());
    if (checkpoint == arrivals.size()) {
      ckpt_index = log.Seal();
      taken.clear();
    }
    if (rng() % 2 == 0) sink.Trim(ckpt_index);
    OrderRuns kept = sink.All();
    REQUIRE(kept.first <= ckpt_index);
    std::vector<OrderRun> runs(kept.runs.begin() +
                                   static_cast<std::ptrdiff_t>(ckpt_index - kept.first),
                               kept.runs.end());

    // The rebuild: every stream again from its mark, cut and interleaved anew.
    std::vector<std::vector<std::vector<T>>> again(upstreams);
    for (uint32_t k = 0; k < upstreams; ++k) {
      std::vector<T> rest;
      for (const auto& fr : CutFrames(rng, k, origins, 0, per_origin)) {
        for (const auto& t : fr) {
          auto m = mark.find({t.upstream, t.origin});
          if (m == mark.end() || t.n >= m->second) rest.push_back(t);
        }
      }
      // Re-cut `rest` (already in a new interleaving) into new frames.
      for (size_t i = 0; i < rest.size();) {
        size_t n = 1 + rng() % 5;
        again[k].emplace_back(rest.begin() + static_cast<std::ptrdiff_t>(i),
                              rest.begin() + static_cast<std::ptrdiff_t>(std::min(rest.size(), i + n)));
        i += n;
      }
    }
    auto arrivals2 = Arrivals(rng, again);
    OrderLog relog;
    relog.Restore(ckpt_index);
    OrderReplay replay(runs, upstreams);
    std::deque<InFrame> queue;
    std::vector<T> replayed;
    std::map<std::pair<uint32_t, uint64_t>, int> wholes;
    size_t offered = 0;
    // The operator takes the queue's front: its replayed tuples are noted, and a piece is done.
    auto take_one = [&] {
      InFrame& q = queue.front();
      if (q.logged) {
        for (const auto& r : q.tuples) replayed.push_back(Back(r, q.from.second));
      }
      if (q.piece) {
        if (auto w = replay.Done(q)) ++wholes[{w->from.second, w->seq}];
      }
      queue.pop_front();
    };
    for (size_t i = 0; i < arrivals2.size(); ++i) {
      InFrame f = Make(ids, arrivals2[i].first, i + 1, arrivals2[i].second);
      if (replay.replaying()) {
        replay.Offer(std::move(f));
        ++offered;
        replay.Take(&queue, &relog);
      } else {
        queue.push_back(std::move(f));
      }
      // The operator takes part of what is queued now and then.
      while (!queue.empty() && rng() % 4 != 0) take_one();
    }
    while (!queue.empty()) take_one();
    INFO("seed " << seed);
    CHECK_FALSE(replay.replaying());
    CHECK(replay.finished());
    CHECK(replay.mismatched() == 0);
    CHECK(relog.next() == ckpt_index + runs.size());
    // What the failed run took after its checkpoint, in the same order.
    CHECK(replayed == taken);
    // Every frame offered with tuples was reported whole exactly once.
    for (const auto& [key, n] : wholes) CHECK(n == 1);
    size_t offered_with_tuples = 0;
    for (size_t i = 0; i < std::min(offered, arrivals2.size()); ++i) {
      offered_with_tuples += arrivals2[i].second.empty() ? 0 : 1;
    }
    CHECK(wholes.size() == offered_with_tuples);
  }
}

TEST_CASE("a replay whose runs never come ends once every channel has", "[input-order]") {
  Ids ids;
  // Runs of (0, 0) up to 3, then (1, 0) up to 2; upstream 1 regenerates only up to 1.
  OrderReplay replay({{0, 0, std::string(ids.Of({0, 0, 3}))}, {1, 0, std::string(ids.Of({1, 0, 2}))}},
                     2);
  OrderLog log;
  std::deque<InFrame> out;
  replay.Offer(Make(ids, 0, 1, {{0, 0, 1}, {0, 0, 2}, {0, 0, 3}}));
  InFrame last = Make(ids, 1, 1, {{1, 0, 1}});
  replay.Take(&out, &log);
  CHECK(out.size() == 1);
  replay.Offer(last);
  replay.Take(&out, &log);
  CHECK(replay.replaying());  // upstream 1 may still bring 1/0/2
  InFrame end0 = Make(ids, 0, 2, {});
  end0.end = true;
  InFrame end1 = Make(ids, 1, 2, {});
  end1.end = true;
  replay.Offer(end0);
  replay.Take(&out, &log);
  CHECK(replay.replaying());
  replay.Offer(end1);
  replay.Take(&out, &log);
  CHECK_FALSE(replay.replaying());
  CHECK(replay.mismatched() == 1);
  CHECK(log.next() == 2);
  // The piece of 1/0/1 went on (logged), and both end frames.
  REQUIRE(out.size() == 4);
  CHECK(out[1].logged);
  CHECK(out[2].end);
  CHECK(out[3].end);
}

}  // namespace
}  // namespace rs::stream

namespace Catch {
template <>
struct StringMaker<rs::stream::T> {
  static std::string convert(const rs::stream::T& t) {
    return std::to_string(t.upstream) + "/" + std::to_string(t.origin) + "/" + std::to_string(t.n);
  }
};
}  // namespace Catch
