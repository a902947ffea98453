// The exactly-once channel protocol's pure parts (shared/stream/channel.h): each class alone,
// then a sender and a receiver run against a model through random loss, duplication and
// reordering on both directions, and crashes of either side at every step. The model: every
// origin's ids 1..N come out of the receiver's durable output exactly once, in order.
#include "shared/stream/channel.h"

#include <catch2/catch.hpp>
#include <random>

namespace rs::stream {
namespace {

using namespace std::chrono_literals;

KeptFrame Frame(uint64_t seq) { return KeptFrame{seq, "frame " + std::to_string(seq)}; }

SenderChannel::Options Opts(uint64_t window = 4) {
  SenderChannel::Options o;
  o.window = window;
  o.retain_windows = 2;
  o.resend_after = 1s;
  return o;
}

std::vector<std::string> FlushAll(SenderChannel& tx) {
  std::vector<std::string> sent;
  tx.Flush([&](const std::string& b) {
    sent.push_back(b);
    return true;
  });
  return sent;
}

TEST_CASE("a sender keeps frames until durable, within its window", "[stream][channel]") {
  TimePoint t0{};
  SenderChannel tx(Opts());
  for (int i = 0; i < 4; ++i) tx.Release(Frame(tx.TakeSeq()), t0);
  CHECK(!tx.HasRoom());  // 4 in flight: the window is full
  CHECK(FlushAll(tx).size() == 4);
  CHECK(FlushAll(tx).empty());  // each frame goes to the transport once

  CHECK(tx.OnAck(2, 0, t0) == SenderChannel::AckResult::kProgress);
  CHECK(tx.in_flight() == 2);
  CHECK(tx.kept().size() == 4);  // processed is not durable
  CHECK(tx.OnAck(2, 0, t0) == SenderChannel::AckResult::kNothing);
  CHECK(tx.OnAck(5, 5, t0) == SenderChannel::AckResult::kBogus);  // never released
  CHECK(tx.OnAck(3, 2, t0) == SenderChannel::AckResult::kProgress);
  REQUIRE(tx.kept().size() == 2);
  CHECK(tx.kept().front().seq == 3);
  CHECK(tx.OnAck(3, 9, t0) == SenderChannel::AckResult::kProgress);  // durable <= processed
  CHECK(tx.durable() == 3);
  CHECK(tx.OnAck(3, 9, t0) == SenderChannel::AckResult::kNothing);

  // Kept frames are bounded too: 2 windows of 4.
  tx.OnAck(4, 3, t0);
  for (int i = 0; i < 7; ++i) tx.Release(Frame(tx.TakeSeq()), t0);
  CHECK(tx.kept().size() == 8);
  CHECK(!tx.HasRoom());
  CHECK(tx.OnAck(11, 11, t0) == SenderChannel::AckResult::kProgress);
  CHECK(tx.Drained());
  CHECK(tx.HasRoom());
}

TEST_CASE("a sender resends what is not processed once nothing was heard", "[stream][channel]") {
  TimePoint t0{};
  SenderChannel tx(Opts());
  for (int i = 0; i < 3; ++i) tx.Release(Frame(tx.TakeSeq()), t0);
  std::vector<std::string> resent;
  auto into = [&](const std::string& b) {
    resent.push_back(b);
    return true;
  };
  CHECK(tx.Resend(t0 + 5s, into) == 0);  // nothing was sent yet: Flush sends, not Resend
  FlushAll(tx);
  CHECK(tx.NextResend() == t0 + 1s);
  CHECK(tx.Resend(t0 + 999ms, into) == 0);
  CHECK(tx.OnAck(1, 0, t0 + 500ms) == SenderChannel::AckResult::kProgress);
  CHECK(tx.Resend(t0 + 1200ms, into) == 0);  // heard at 500 ms
  CHECK(tx.Resend(t0 + 1500ms, into) == 2);  // 2 and 3
  CHECK(resent == std::vector<std::string>{"frame 2", "frame 3"});
  CHECK(tx.Resend(t0 + 2000ms, into) == 0);  // once per period
  CHECK(tx.OnAck(3, 0, t0 + 2100ms) == SenderChannel::AckResult::kProgress);
  // All processed, only durable is awaited: the last frame alone is a probe (its repeat makes
  // the receiver ack again, should its durable ack have been lost).
  resent.clear();
  CHECK(tx.Resend(t0 + 3100ms, into) == 1);
  CHECK(resent == std::vector<std::string>{"frame 3"});
  CHECK(!tx.Stalled(t0 + 30s, 30s));
  CHECK(tx.Stalled(t0 + 2100ms + 30s, 30s));  // ... and it never comes

  // A full transport takes what it can; the rest waits.
  SenderChannel tx2(Opts());
  tx2.Release(Frame(tx2.TakeSeq()), t0);
  tx2.Release(Frame(tx2.TakeSeq()), t0);
  int room = 1;
  CHECK(tx2.Flush([&](const std::string&) { return room-- > 0; }) == 1);
  CHECK(tx2.Unsent());
  CHECK(FlushAll(tx2) == std::vector<std::string>{"frame 2"});
}

TEST_CASE("a rewired sender sends everything above durable again", "[stream][channel]") {
  TimePoint t0{};
  SenderChannel tx(Opts());
  for (int i = 0; i < 4; ++i) tx.Release(Frame(tx.TakeSeq()), t0);
  FlushAll(tx);
  tx.OnAck(4, 2, t0);
  tx.Rewire(t0 + 1s);
  CHECK(tx.acked() == 2);  // the rebuilt receiver restored seq 2
  CHECK(FlushAll(tx) == std::vector<std::string>{"frame 3", "frame 4"});
}

TEST_CASE("held frames go out in order once released", "[stream][channel]") {
  TimePoint t0{};
  SenderChannel tx(Opts());
  tx.Hold(Frame(tx.TakeSeq()));
  tx.Hold(Frame(tx.TakeSeq()));
  CHECK(FlushAll(tx).empty());
  CHECK(tx.OnAck(1, 0, t0) == SenderChannel::AckResult::kBogus);  // not released
  CHECK(!tx.Drained());
  tx.ReleaseHeld(1, t0);
  CHECK(FlushAll(tx) == std::vector<std::string>{"frame 1"});
  tx.ReleaseHeld(5, t0);
  CHECK(FlushAll(tx) == std::vector<std::string>{"frame 2"});
  CHECK(tx.held().empty());
}

TEST_CASE("a receiver takes frames in order, one run at a time", "[stream][channel]") {
  using O = ReceiverChannel::Offer;
  ReceiverChannel rx;
  CHECK(rx.Take(1, 2, true) == O::kGap);
  CHECK(rx.Take(1, 1, true) == O::kNext);
  CHECK(rx.Take(1, 1, true) == O::kRepeat);
  CHECK(rx.Take(1, 2, true) == O::kNext);
  CHECK(!rx.AckDue());
  rx.Processed(1, 1, false);
  CHECK(rx.AckDue());
  auto ack = rx.TakeAck(false, TimePoint{});
  CHECK((ack.run == 1 && ack.seq == 1 && ack.durable == 0));
  CHECK(rx.ReAckOnRepeat());
  CHECK(rx.Durable(1, 1));
  CHECK(!rx.Durable(1, 1));
  CHECK(!rx.Durable(7, 9));  // another run's checkpoint
  rx.Processed(1, 2, true);
  CHECK(rx.ended());
  CHECK(rx.TakeAck(true, TimePoint{}).durable == 2);

  // A new run of the sender starts from 1; an older one is ignored.
  CHECK(rx.Take(3, 1, true) == O::kNext);
  CHECK(!rx.ended());
  CHECK(rx.processed() == 0);
  CHECK(rx.Take(2, 5, true) == O::kOldRun);

  // Without exactly-once a fresh receiver starts wherever the sender is.
  ReceiverChannel loose;
  CHECK(loose.Take(1, 40, false) == O::kNext);
  CHECK(loose.Take(1, 41, false) == O::kNext);

  ReceiverChannel restored;
  restored.Restore(4, 10, false);
  CHECK(restored.Take(4, 10, true) == O::kRepeat);
  CHECK(restored.Take(4, 11, true) == O::kNext);
  CHECK(!restored.AckDue());
}

TEST_CASE("acks are coalesced: one per delay or per so many frames, at once at the end",
          "[stream][channel]") {
  ReceiverChannel rx;
  TimePoint t0 = TimePoint{} + 10s;
  const auto delay = 5ms;
  CHECK_FALSE(rx.AckDueAt(t0, delay, 4));  // nothing processed
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    REQUIRE(rx.Take(1, seq, true) == ReceiverChannel::Offer::kNext);
    rx.Processed(1, seq, false);
  }
  CHECK(rx.AckDueAt(t0, delay, 4));  // the first ack goes at once
  CHECK(rx.TakeAck(false, t0).seq == 2);
  REQUIRE(rx.Take(1, 3, true) == ReceiverChannel::Offer::kNext);
  rx.Processed(1, 3, false);
  CHECK(rx.AckDue());
  CHECK_FALSE(rx.AckDueAt(t0 + 4ms, delay, 4));  // owed, not due yet
  CHECK(rx.AckDueAt(t0 + 5ms, delay, 4));        // the delay passed
  for (uint64_t seq = 4; seq <= 6; ++seq) {
    REQUIRE(rx.Take(1, seq, true) == ReceiverChannel::Offer::kNext);
    rx.Processed(1, seq, false);
  }
  CHECK(rx.AckDueAt(t0 + 1ms, delay, 4));  // 4 frames wait
  CHECK(rx.TakeAck(false, t0 + 1ms).seq == 6);
  REQUIRE(rx.Take(1, 7, true) == ReceiverChannel::Offer::kNext);
  rx.Processed(1, 7, true);
  CHECK(rx.AckDueAt(t0 + 2ms, delay, 4));  // the end frame: at once
}

TEST_CASE("dedup drops ids at or below each origin's mark", "[stream][channel]") {
  Dedup d;
  std::string a1 = SourceId(0, 1), a2 = SourceId(0, 2), b1 = SourceId(1, 1);
  std::vector<TupleRef> first = {{0, 0, a1, "", ""}, {1, 0, b1, "", ""}, {0, 0, a2, "", ""}};
  CHECK(d.Admit({1, 0}, &first) == 0);
  CHECK(first.size() == 3);
  std::vector<TupleRef> again = {{0, 0, a1, "", ""}, {0, 0, a2, "", ""}, {1, 0, b1, "", ""}};
  CHECK(d.Admit({1, 0}, &again) == 3);
  CHECK(again.empty());
  std::vector<TupleRef> other = {{0, 0, a1, "", ""}};  // another upstream task: its own streams
  CHECK(d.Admit({1, 1}, &other) == 0);
  d.Processed({1, 0}, first);
  REQUIRE(d.processed().size() == 2);
  CHECK(d.processed().at(StreamKey{0, 1, 0, 0}) == a2);
  CHECK(d.processed().at(StreamKey{0, 1, 0, 1}) == b1);

  Dedup restored;
  restored.Restore(StreamKey{0, 1, 0, 0}, a1);
  std::vector<TupleRef> replay = {{0, 0, a1, "", ""}, {0, 0, a2, "", ""}};
  CHECK(restored.Admit({1, 0}, &replay) == 1);
  REQUIRE(replay.size() == 1);
  CHECK(replay[0].id == a2);
}

TEST_CASE("dedup keeps its marks per key group", "[stream][channel]") {
  // One origin's ids, spread over two groups: each group's ids increase, the stream's too.
  std::string id1 = SourceId(0, 1), id2 = SourceId(0, 2), id3 = SourceId(0, 3),
              id4 = SourceId(0, 4);
  Dedup d;
  std::vector<TupleRef> in = {{0, 5, id1, "", ""}, {0, 9, id2, "", ""}, {0, 5, id3, "", ""},
                              {0, 9, id4, "", ""}};
  CHECK(d.Admit({1, 0}, &in) == 0);
  d.Processed({1, 0}, in);
  REQUIRE(d.processed().size() == 2);
  CHECK(d.processed().at(StreamKey{5, 1, 0, 0}) == id3);
  CHECK(d.processed().at(StreamKey{9, 1, 0, 0}) == id4);

  // Group 9 alone moves to another task (its marks with it): a replay of the whole stream
  // there drops group 9's tuples only up to group 9's mark, whatever group 5 reached.
  Dedup moved;
  moved.Restore(StreamKey{9, 1, 0, 0}, id2);
  std::vector<TupleRef> replay = {{0, 9, id2, "", ""}, {0, 9, id4, "", ""}};
  CHECK(moved.Admit({1, 0}, &replay) == 1);
  REQUIRE(replay.size() == 1);
  CHECK(replay[0].id == id4);
  // Within a group, a tuple at or below the mark is a duplicate even when other groups'
  // tuples come between.
  std::vector<TupleRef> mixed = {{0, 5, id3, "", ""}, {0, 9, id4, "", ""}, {0, 5, id1, "", ""}};
  CHECK(d.Admit({1, 0}, &mixed) == 3);
}

// ---- the model ----

constexpr uint32_t kOrigins = 3;

struct Faults {
  double loss = 0, dup = 0, sender_crash = 0, receiver_crash = 0;
};

// One sender task (its source: kOrigins streams of `lines` ids each) and one receiver task on a
// network that loses, duplicates and reorders; both checkpoint and crash.
class Model {
 public:
  Model(uint64_t seed, uint64_t lines) : rng_(seed), lines_(lines) {
    next_line_.assign(kOrigins, 1);
    out_.assign(kOrigins, {});
    sender_ckpt_.next_line = next_line_;
    receiver_ckpt_.out_sizes.assign(kOrigins, 0);
  }

  // One random step. Returns false on a protocol error (a bogus ack, an id out of order).
  bool Step(const Faults& f) {
    now_ += std::chrono::milliseconds(Pick(0, 40));
    switch (Pick(0, 9)) {
      case 0:
      case 1:
        Produce();
        break;
      case 2:
      case 3:
      case 4:
        if (!DeliverToReceiver(f)) return false;
        break;
      case 5:
        if (!DeliverToSender(f)) return false;
        break;
      case 6:
        if (!Process()) return false;
        break;
      case 7:
        ReceiverCheckpoint();
        break;
      case 8:
        sender_ckpt_ = SenderCkpt{next_line_, end_queued_, Kept()};
        break;
      default:
        break;
    }
    if (Chance(f.sender_crash)) CrashSender();
    if (Chance(f.receiver_crash)) CrashReceiver();
    // The receiver's checkpoint write completes after a while.
    if (writing_ && now_ >= writing_done_) {
      writing_ = false;
      receiver_ckpt_ = written_;
      if (rx_.Durable(written_.run, written_.processed)) SendAck(f);
    }
    tx_.Flush([&](const std::string& b) { return Send(b, f); });
    tx_.Resend(now_, [&](const std::string& b) { return Send(b, f); });
    return true;
  }

  bool Done() const { return rx_.ended() && tx_.Drained() && queue_.empty(); }

  // Every origin's ids, exactly once and in order, in the durable output.
  bool Exact(std::string* why) const {
    for (uint32_t o = 0; o < kOrigins; ++o) {
      if (out_[o].size() != lines_) {
        *why = "origin " + std::to_string(o) + " has " + std::to_string(out_[o].size()) + " of " +
               std::to_string(lines_);
        return false;
      }
      for (uint64_t i = 0; i < lines_; ++i) {
        if (out_[o][i] != i + 1) {
          *why = "origin " + std::to_string(o) + " position " + std::to_string(i) + " holds " +
                 std::to_string(out_[o][i]);
          return false;
        }
      }
    }
    return true;
  }

  uint64_t crashes() const { return crashes_; }

 private:
  struct SenderCkpt {
    std::vector<uint64_t> next_line;
    bool end_queued = false;
    std::vector<KeptFrame> frames;  // released and not durable, then held
  };
  struct ReceiverCkpt {
    uint64_t run = 0, processed = 0;
    bool ended = false;
    std::map<StreamKey, std::string> marks;
    std::vector<size_t> out_sizes;
  };
  struct Taken {
    uint64_t run, seq;
    bool end;
    std::shared_ptr<const std::string> hold;
    std::vector<TupleRef> tuples;
  };

  uint64_t Pick(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }
  bool Chance(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  SenderChannel::Options TxOptions() const {
    SenderChannel::Options o;
    o.window = 4;
    o.retain_windows = 4;
    o.resend_after = 300ms;
    return o;
  }

  std::string Encode(uint64_t seq, bool end, const std::vector<std::pair<uint32_t, uint64_t>>& ids) {
    DataFrameBuilder b;
    DataHeader h;
    h.job = "j";
    h.from_stage = 1;
    h.incarnation = run_;
    b.Begin(h);
    for (const auto& [origin, line] : ids) {
      // Three key groups, by line: each group's ids are a subsequence of the origin's.
      b.Add(origin, static_cast<uint32_t>(line % 3), SourceId(origin, line), "k",
            std::to_string(line));
    }
    return b.Finish(seq, 0, end);
  }

  std::vector<KeptFrame> Kept() const {
    std::vector<KeptFrame> all(tx_.kept().begin(), tx_.kept().end());
    all.insert(all.end(), tx_.held().begin(), tx_.held().end());
    return all;
  }

  void Produce() {
    if (end_queued_ || !tx_.HasRoom()) return;
    std::vector<std::pair<uint32_t, uint64_t>> ids;
    size_t n = Pick(0, 5);
    for (size_t i = 0; i < n; ++i) {
      uint32_t o = static_cast<uint32_t>(Pick(0, kOrigins - 1));
      if (next_line_[o] <= lines_) ids.emplace_back(o, next_line_[o]++);
    }
    bool end = true;
    for (uint64_t l : next_line_) end &= l > lines_;
    uint64_t seq = tx_.TakeSeq();
    tx_.Release(KeptFrame{seq, Encode(seq, end, ids)}, now_);
    end_queued_ = end;
  }

  bool Send(const std::string& bytes, const Faults& f) {
    if (Chance(f.loss)) return true;  // lost on the way
    to_receiver_.push_back(bytes);
    if (Chance(f.dup)) to_receiver_.push_back(bytes);
    return true;
  }

  void SendAck(const Faults& f) {
    auto a = rx_.TakeAck(false, TimePoint{});
    if (Chance(f.loss)) return;
    to_sender_.push_back(a);
    if (Chance(f.dup)) to_sender_.push_back(a);
  }

  // A random frame in flight (reordering), parsed and offered to the receiver.
  bool DeliverToReceiver(const Faults& f) {
    if (to_receiver_.empty()) return true;
    size_t i = Pick(0, to_receiver_.size() - 1);
    std::string bytes = std::move(to_receiver_[i]);
    to_receiver_.erase(to_receiver_.begin() + static_cast<long>(i));
    auto parsed = ParseTaskFrame(std::move(bytes));
    if (!parsed.ok()) return false;
    const DataHeader& h = parsed->data;
    switch (rx_.Take(h.incarnation, h.seq, true)) {
      case ReceiverChannel::Offer::kNext: {
        std::vector<TupleRef> tuples = std::move(parsed->tuples);
        dedup_.Admit({1, 0}, &tuples);
        queue_.push_back(Taken{h.incarnation, h.seq, h.end, parsed->bytes, std::move(tuples)});
        break;
      }
      case ReceiverChannel::Offer::kRepeat:
        if (rx_.ReAckOnRepeat()) SendAck(f);
        break;
      default:
        break;
    }
    return true;
  }

  bool DeliverToSender(const Faults& f) {
    if (to_sender_.empty()) return true;
    size_t i = Pick(0, to_sender_.size() - 1);
    ReceiverChannel::Ack a = to_sender_[i];
    to_sender_.erase(to_sender_.begin() + static_cast<long>(i));
    if (a.run != run_) return true;  // for an earlier run of the sender
    (void)f;
    return tx_.OnAck(a.seq, a.durable, now_) != SenderChannel::AckResult::kBogus;
  }

  bool Process() {
    if (queue_.empty()) return true;
    Taken t = std::move(queue_.front());
    queue_.pop_front();
    for (const TupleRef& r : t.tuples) {
      uint64_t line = std::stoull(std::string(r.value));
      auto& o = out_[r.origin];
      if (!o.empty() && o.back() >= line) return false;  // a duplicate or out of order
      o.push_back(line);
    }
    dedup_.Processed({1, 0}, t.tuples);
    rx_.Processed(t.run, t.seq, t.end);
    Faults none;
    if (rx_.AckDue()) SendAck(none);
    return true;
  }

  void ReceiverCheckpoint() {
    if (writing_) return;
    written_.run = rx_.run();
    written_.processed = rx_.processed();
    written_.ended = rx_.ended();
    written_.marks = dedup_.processed();
    written_.out_sizes.clear();
    for (const auto& o : out_) written_.out_sizes.push_back(o.size());
    writing_ = true;
    writing_done_ = now_ + std::chrono::milliseconds(Pick(0, 400));
  }

  // The sender restarts from its last checkpoint as a new run: what it kept goes out again
  // under new seqs, and its source resumes where the checkpoint says.
  void CrashSender() {
    ++crashes_;
    ++run_;
    to_sender_.clear();  // acks to the dead run's inbox
    tx_ = SenderChannel(TxOptions());
    next_line_ = sender_ckpt_.next_line;
    end_queued_ = sender_ckpt_.end_queued;
    for (const KeptFrame& k : sender_ckpt_.frames) {
      auto parsed = ParseTaskFrame(k.bytes);
      REQUIRE(parsed.ok());
      std::vector<std::pair<uint32_t, uint64_t>> ids;
      for (const auto& r : parsed->tuples) {
        ids.emplace_back(static_cast<uint32_t>(r.origin), std::stoull(std::string(r.value)));
      }
      uint64_t seq = tx_.TakeSeq();
      tx_.Release(KeptFrame{seq, Encode(seq, parsed->data.end, ids)}, now_);
    }
  }

  // The receiver restarts from its last durable checkpoint elsewhere; the sender is rewired.
  void CrashReceiver() {
    ++crashes_;
    to_receiver_.clear();  // to the dead inbox
    to_sender_.clear();
    queue_.clear();
    writing_ = false;
    rx_ = ReceiverChannel();
    dedup_ = Dedup();
    const ReceiverCkpt& c = receiver_ckpt_;
    if (c.run > 0) rx_.Restore(c.run, c.processed, c.ended);
    for (const auto& [k, id] : c.marks) dedup_.Restore(k, id);
    for (uint32_t o = 0; o < kOrigins; ++o) out_[o].resize(c.out_sizes[o]);
    tx_.Rewire(now_);
  }

  std::mt19937_64 rng_;
  uint64_t lines_;
  TimePoint now_{};
  uint64_t crashes_ = 0;

  // Sender.
  uint64_t run_ = 1;
  SenderChannel tx_{TxOptions()};
  std::vector<uint64_t> next_line_;
  bool end_queued_ = false;
  SenderCkpt sender_ckpt_;

  // Network.
  std::vector<std::string> to_receiver_;
  std::vector<ReceiverChannel::Ack> to_sender_;

  // Receiver.
  ReceiverChannel rx_;
  Dedup dedup_;
  std::deque<Taken> queue_;
  std::vector<std::vector<uint64_t>> out_;  // per origin: the lines processed, in order
  ReceiverCkpt receiver_ckpt_, written_;
  bool writing_ = false;
  TimePoint writing_done_{};
};

TEST_CASE("loss, duplicates, reordering and crashes: every id exactly once, in order",
          "[stream][channel]") {
  const Faults faulty{0.2, 0.2, 0.002, 0.002};
  uint64_t crashes = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Model m(seed, 60);
    INFO("seed " << seed);
    for (int i = 0; i < 3000; ++i) REQUIRE(m.Step(faulty));
    // Then the faults stop: the protocol must finish on its own.
    int steps = 0;
    while (!m.Done() && steps < 100000) {
      REQUIRE(m.Step(Faults{}));
      ++steps;
    }
    REQUIRE(m.Done());
    std::string why;
    bool exact = m.Exact(&why);
    INFO(why);
    REQUIRE(exact);
    crashes += m.crashes();
  }
  CHECK(crashes > 100);  // the runs did crash, many times
}

}  // namespace
}  // namespace rs::stream
