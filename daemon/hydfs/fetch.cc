#include "daemon/hydfs/fetch.h"

#include <algorithm>

#include "shared/logging.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

constexpr uint8_t kMaxLane = 126;  // 127 is the tool lane (rainctl)

}  // namespace

Fetch::Fetch(FetchEnv env, uint64_t stream, std::string name, uint64_t gen,
             std::vector<FetchItem> items)
    : env_(env), stream_(stream), name_(std::move(name)), gen_(gen), items_(std::move(items)) {
  // Empty ranges carry nothing: drop them so "complete" means "every chunk delivered".
  std::vector<FetchItem> kept;
  for (auto& it : items_) {
    if (it.to > it.from) kept.push_back(std::move(it));
  }
  items_ = std::move(kept);
  if (!items_.empty()) chunk_ = items_[0].from;
}

Fetch::~Fetch() {
  if (idle_timer_ != 0) env_.loop->CancelTimer(idle_timer_);
}

void Fetch::Start() {
  if (direct()) manual_ack = true;
  last_frame_ = Clock::now();
  std::weak_ptr<Fetch> weak = weak_from_this();
  idle_timer_ = env_.loop->AddPeriodic(std::chrono::milliseconds(200), [weak] {
    if (auto self = weak.lock()) self->CheckIdle();
  });
  if (Complete()) {
    Finish(Status::Ok());
    return;
  }
  NextRun();
}

void Fetch::NextRun() {
  if (finished_) return;
  if (Complete()) {
    // Everything arrived; with manual acks we wait for the sink before finishing.
    if (!manual_ack || sink_acked_ >= seq_) Finish(Status::Ok());
    return;
  }
  const FetchItem& first = items_[item_];
  const RingNode* pick = nullptr;
  for (const auto& s : first.sources) {
    if (!failed_.count(s.id)) {
      pick = &s;
      break;
    }
  }
  if (pick == nullptr) {
    Finish(Status::Unavailable("no replica could serve chunk " + std::to_string(chunk_) +
                               " of append " + Hex64(first.meta.id) + " of " + name_));
    return;
  }
  source_ = *pick;
  lane_ = static_cast<uint8_t>(lane_ % kMaxLane + 1);
  run_active_ = true;
  last_frame_ = Clock::now();
  acked_ = seq_;
  used_.push_back(source_.id.str());

  // The stretch this source can serve, starting at the current chunk.
  std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> ranges;
  for (size_t i = item_; i < items_.size(); ++i) {
    bool holds = false;
    for (const auto& s : items_[i].sources) holds |= s.id == source_.id;
    if (!holds) break;
    ranges.emplace_back(items_[i].meta.id, i == item_ ? chunk_ : items_[i].from, items_[i].to);
  }
  uint64_t first_seq = seq_;
  run_end_seq_ = seq_;
  for (const auto& [id, from, to] : ranges) run_end_seq_ += to - from;
  uint8_t lane = lane_;
  std::weak_ptr<Fetch> weak = weak_from_this();
  env_.rpc->Call(
      source_.rpc_endpoint(), wire::MsgType::kHydfsRead,
      [&](wire::Packer& pk) {
        pk.pack_map(direct() ? 10 : 8);
        pk.pack("name");
        pk.pack(name_);
        pk.pack("gen");
        pk.pack_uint64(gen_);
        pk.pack("stream");
        pk.pack_uint64(stream_);
        pk.pack("lane");
        pk.pack_uint8(lane);
        pk.pack("reader");
        pk.pack(direct() ? direct_reader : env_.port->endpoint());
        if (direct()) {
          pk.pack("control");  // end frames come here; the reader's acks are relayed from here
          pk.pack(env_.port->endpoint());
          pk.pack("reader_client");
          pk.pack(direct_reader_client);
        }
        pk.pack("first_seq");
        pk.pack_uint64(first_seq);
        pk.pack("window");
        pk.pack_uint32(env_.window);
        pk.pack("items");
        pk.pack_array(static_cast<uint32_t>(ranges.size()));
        for (const auto& [id, from, to] : ranges) {
          pk.pack_array(3);
          pk.pack_uint64(id);
          pk.pack_uint32(from);
          pk.pack_uint32(to);
        }
      },
      env_.idle_timeout,
      [weak, lane](Result<wire::Envelope> reply) {
        auto self = weak.lock();
        if (!self || self->finished_ || lane != self->lane_ || !self->run_active_) return;
        Status st = reply.status();
        if (st.ok()) st = wire::ReplyPayload(*reply).status();
        if (!st.ok()) self->FailSource("read refused: " + st.ToString());
      });
}

void Fetch::OnFrame(transport::StreamMsg& msg) {
  if (finished_ || msg.lane != lane_ || !run_active_) return;  // a stale lane
  last_frame_ = Clock::now();
  if (msg.kind == transport::StreamKind::kEnd) {
    if (msg.status.ok()) {
      if (seq_ < run_end_seq_) {
        FailSource("the source ended its stretch at chunk " + std::to_string(seq_) + " of " +
                   std::to_string(run_end_seq_));
        return;
      }
      // The source finished its stretch: continue with the next one, or finish.
      run_active_ = false;
      NextRun();
      return;
    }
    if (msg.status.code() == StatusCode::kCorruption && on_corrupt && item_ < items_.size()) {
      on_corrupt(source_, items_[item_].meta, chunk_, msg.status.message());
    }
    FailSource(msg.status.ToString());
    return;
  }
  if (msg.kind != transport::StreamKind::kChunk || direct()) return;
  if (msg.seq != seq_ || Complete()) {
    FailSource("out-of-order chunk " + std::to_string(msg.seq) + ", expected " +
               std::to_string(seq_));
    return;
  }
  const FetchItem& item = items_[item_];
  uint32_t expected_crc = item.meta.crcs[chunk_];
  if (!msg.crc_ok() || msg.crc != expected_crc || msg.data.size() != item.meta.ChunkBytes(chunk_)) {
    std::string what = "chunk " + std::to_string(chunk_) + " of append " + Hex64(item.meta.id) +
                       " failed its CRC check in transfer";
    if (on_corrupt) on_corrupt(source_, item.meta, chunk_, what);
    FailSource(what);
    return;
  }
  // Advance first: the sink may call AckThrough() for this very chunk from inside on_chunk.
  uint32_t chunk = chunk_;
  Advance(static_cast<uint32_t>(msg.data.size()));
  Status st = on_chunk ? on_chunk(msg, item, chunk) : Status::Ok();
  if (finished_) return;  // the sink aborted or finished the fetch from its callback
  if (!st.ok()) {
    env_.port->Send(source_.data_endpoint(), transport::EndFrame(stream_, lane_, st));
    Finish(st);
    return;
  }
  if (!manual_ack) SendAck(seq_ - 1);
  if (Complete()) {
    if (!manual_ack)
      Finish(Status::Ok());
    else if (sink_acked_ >= seq_)
      Finish(Status::Ok());
  }
}

std::vector<std::string> Fetch::sources_used() const {
  std::vector<std::string> out;
  for (const auto& s : used_) {
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

void Fetch::Advance(uint32_t chunk_bytes) {
  bytes_ += chunk_bytes;
  ++seq_;
  if (++chunk_ >= items_[item_].to) {
    ++item_;
    if (item_ < items_.size()) chunk_ = items_[item_].from;
  }
}

void Fetch::SendAck(uint64_t seq) {
  if (seq + 1 <= acked_) return;
  acked_ = seq + 1;
  env_.port->Send(source_.data_endpoint(), transport::AckFrame(stream_, seq, lane_));
}

void Fetch::AckThrough(uint64_t seq) {
  if (finished_) return;
  if (direct()) {
    // The reader holds every chunk through `seq`: that is the progress. An ack past the stretch
    // any source was asked for is not believed.
    uint64_t upto = std::min(seq + 1, run_end_seq_);
    bool moved = false;
    while (seq_ < upto && !Complete()) {
      Advance(items_[item_].meta.ChunkBytes(chunk_));
      moved = true;
    }
    sink_acked_ = seq_;
    if (moved) {
      last_frame_ = Clock::now();
      if (run_active_) SendAck(seq_ - 1);
    }
    if (Complete()) Finish(Status::Ok());
    return;
  }
  sink_acked_ = std::max(sink_acked_, std::min(seq + 1, seq_));
  if (sink_acked_ > 0 && run_active_ && sink_acked_ > acked_) {
    SendAck(sink_acked_ - 1);
    // The source was waiting for this ack, not idle: its silence is measured from now.
    last_frame_ = Clock::now();
  }
  if (Complete() && sink_acked_ >= seq_) Finish(Status::Ok());
}

void Fetch::SourceFailed(const NodeId& node) {
  if (!finished_ && run_active_ && source_.id == node) FailSource("the node was declared failed");
}

void Fetch::FailSource(const std::string& why) {
  if (finished_) return;
  Log()->warn("event=read_source_failed file={} source={} at_seq={} reason=\"{}\"", name_,
              source_.id.str(), seq_, why);
  env_.port->Send(source_.data_endpoint(),
                  transport::EndFrame(stream_, lane_, Status::Unavailable("reader gave up")));
  failed_.insert(source_.id);
  run_active_ = false;
  // With manual acks the sink may still hold unacknowledged chunks: they were delivered, so the
  // next source starts after them.
  NextRun();
}

void Fetch::CheckIdle() {
  if (finished_ || !run_active_) return;
  if (Clock::now() - last_frame_ > env_.idle_timeout) {
    if (manual_ack && sink_acked_ < seq_) {
      // The sink is slow, not the source: the source waits for our acks.
      return;
    }
    FailSource(
        "no data for " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(env_.idle_timeout).count()) +
        " ms");
  }
}

void Fetch::Abort(const Status& why) {
  if (finished_) return;
  if (run_active_) {
    env_.port->Send(source_.data_endpoint(), transport::EndFrame(stream_, lane_, why));
  }
  run_active_ = false;
  finished_ = true;
  on_done = nullptr;
  on_chunk = nullptr;
  on_corrupt = nullptr;
  if (idle_timer_ != 0) env_.loop->CancelTimer(idle_timer_);
  idle_timer_ = 0;
}

void Fetch::Finish(Status status) {
  if (finished_ && !on_done) return;
  finished_ = true;
  run_active_ = false;
  if (idle_timer_ != 0) env_.loop->CancelTimer(idle_timer_);
  idle_timer_ = 0;
  auto done = std::move(on_done);
  on_done = nullptr;
  on_chunk = nullptr;
  on_corrupt = nullptr;
  if (done) done(status);
}

}  // namespace rs::hydfs
