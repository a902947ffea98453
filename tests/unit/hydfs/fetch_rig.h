// The rig of the Fetch tests (fetch_test.cc, fetch_direct_test.cc): a fake replica serving
// kHydfsRead over a real RpcServer and DataPort with faults on cue, and a loop running one Fetch
// with a reader port and a tool port (rainctl's end of a direct read).
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "daemon/hydfs/fetch.h"
#include "shared/util/crc32c.h"
#include "shared/util/hash.h"
#include "shared/wire/fields.h"

namespace rs::hydfs::fetch_testing {

using transport::StreamKind;
using transport::StreamMsg;

constexpr uint32_t kChunk = 1000;
constexpr uint64_t kGen = 5;
const char* const kName = "dir/f.txt";

// One append as a replica stores it: its metadata and its bytes.
struct Stored {
  AppendMeta meta;
  std::string data;
};

inline Stored MakeAppend(const std::string& client, uint64_t seq, size_t size, uint64_t seed) {
  Stored s;
  std::mt19937_64 rng(seed);
  s.data.resize(size);
  for (auto& c : s.data) c = static_cast<char>(rng());
  s.meta.id = AppendId(kGen, client, seq);
  s.meta.client = client;
  s.meta.seq = seq;
  s.meta.size = size;
  s.meta.chunk_size = kChunk;
  for (size_t off = 0; off < size; off += kChunk) {
    size_t n = std::min<size_t>(kChunk, size - off);
    s.meta.crcs.push_back(Crc32c(s.data.data() + off, n));
  }
  return s;
}

// The file every test reads: append A has 5 chunks (the last one 500 bytes), B has 3 (the last
// one 500 bytes). Fetch sequence numbers 0-4 are A's chunks, 5-7 B's.
inline std::vector<Stored> TestFile() {
  return {MakeAppend("10.0.0.1:7000#1700000000000", 0, 4500, 1),
          MakeAppend("10.0.0.2:7000#1700000000000", 0, 2500, 2)};
}

// What one kHydfsRead asked for.
struct ReadSeen {
  uint64_t stream = 0;
  uint8_t lane = 0;
  std::string reader;
  std::string control;  // a direct read's relay (else the reader)
  bool reader_client = false;
  uint64_t first_seq = 0;
  uint64_t window = 0;
  std::vector<std::tuple<uint64_t, uint32_t, uint32_t>> items;
};

// A replica that serves kHydfsRead the way HydfsService::OnRead/PumpOutbound does (chunks in
// order with the fetch's sequence numbers to the reader, at most `window` unacknowledged, acks
// never past what was sent, End(ok) after the last ack to the control endpoint), over a real
// RpcServer and DataPort, with faults at chosen sequence numbers.
class FakeReplica {
 public:
  // Faults, by the fetch's sequence number of the chunk; -1 = never.
  int64_t corrupt_seq = -1;      // wrong bytes in a self-consistent frame (bad vs the manifest)
  int64_t silent_from_seq = -1;  // stops sending: no chunk, no end
  int64_t end_corrupt_seq = -1;  // End(Corruption) instead of the chunk
  int64_t end_ok_seq = -1;       // End(ok) instead of the chunk: claims a short stretch is done
  bool refuse = false;           // answers the read with an error
  Clock::duration ack_delay{0};  // a slow disk: the next chunks go out this long after an ack

  // Observations (loop thread; read them after the loop stopped).
  std::vector<ReadSeen> reads;
  std::vector<uint64_t> sent;  // sequence numbers of the chunks sent
  std::vector<Status> ends_from_reader;

  FakeReplica(transport::EventLoop* loop, const std::string& name, const std::vector<Stored>* file)
      : loop_(loop), rpc_(loop, name), port_(loop, name + "-data"), file_(file) {
    auto rpc_port = rpc_.Listen("127.0.0.1", 0);
    REQUIRE(rpc_port.ok());
    auto data_port = port_.Listen("127.0.0.1", 0);
    REQUIRE(data_port.ok());
    node_.id = NodeId("127.0.0.1", *rpc_port, 1);
    node_.ring_id = StableHash64(node_.id.str());
    node_.host = "127.0.0.1";
    node_.control_port = *rpc_port;
    node_.hydfs_port = *rpc_port;
    node_.data_port = *data_port;
    rpc_.Handle(
        wire::MsgType::kHydfsRead,
        [this](const wire::Envelope& env, const transport::Responder& r) { OnRead(env, r); });
    port_.SetFallback([this](StreamMsg& m) { OnFrame(m); });
  }

  const RingNode& node() const { return node_; }

 private:
  struct Range {
    const Stored* append;
    uint32_t from, to;
  };
  struct Out {
    uint64_t stream = 0;
    uint8_t lane = 0;
    std::string reader, control;
    std::vector<Range> ranges;
    size_t range = 0;
    uint32_t chunk = 0;
    uint64_t next_seq = 0, acked = 0, end_seq = 0, window = 1;
    bool silent = false;
  };
  using Key = std::pair<uint64_t, uint8_t>;

  void OnRead(const wire::Envelope& env, const transport::Responder& r) {
    wire::FieldReader fr(env.body, "read");
    ReadSeen seen;
    std::string name = fr.Str("name", 1024);
    uint64_t gen = fr.Uint("gen");
    seen.stream = fr.Uint("stream");
    seen.lane = static_cast<uint8_t>(fr.Uint("lane", 127));
    seen.reader = fr.Str("reader", 256);
    seen.control = fr.StrOr("control", seen.reader, 256);
    seen.reader_client = fr.BoolOr("reader_client", false);
    seen.first_seq = fr.Uint("first_seq");
    seen.window = fr.UintOr("window", 8, 1024);
    const msgpack::object* items = fr.Array("items");
    if (!fr.ok()) {
      FAIL_CHECK("bad read request: " << fr.status().ToString());
      r.Reply(fr.status());
      return;
    }
    Out out;
    for (uint32_t i = 0; i < items->via.array.size; ++i) {
      const msgpack::object& it = items->via.array.ptr[i];
      uint64_t id = 0, from = 0, to = 0;
      if (it.type != msgpack::type::ARRAY || it.via.array.size != 3 ||
          !wire::ReadUint(it.via.array.ptr[0], &id) ||
          !wire::ReadUint(it.via.array.ptr[1], &from) ||
          !wire::ReadUint(it.via.array.ptr[2], &to)) {
        FAIL_CHECK("bad read item");
        r.Reply(Status::Corruption("read: items must be [append id, from, to]"));
        return;
      }
      seen.items.emplace_back(id, static_cast<uint32_t>(from), static_cast<uint32_t>(to));
      const Stored* found = nullptr;
      for (const auto& s : *file_) {
        if (s.meta.id == id) found = &s;
      }
      if (found == nullptr || from > to || to > found->meta.chunk_count()) {
        r.Reply(Status::InvalidArgument("read: unknown append or range"));
        return;
      }
      out.ranges.push_back({found, static_cast<uint32_t>(from), static_cast<uint32_t>(to)});
      out.end_seq += to - from;
    }
    reads.push_back(seen);
    if (refuse) {
      r.Reply(Status::Unavailable("refused by the test"));
      return;
    }
    if (name != kName || gen != kGen) {
      r.Reply(Status::NotFound("no such file"));
      return;
    }
    out.stream = seen.stream;
    out.lane = seen.lane;
    out.reader = seen.reader;
    out.control = seen.control;
    out.next_seq = out.acked = seen.first_seq;
    out.end_seq += seen.first_seq;
    out.window = std::max<uint64_t>(1, seen.window);
    out.chunk = out.ranges.empty() ? 0 : out.ranges[0].from;
    r.Ok();
    Key key{out.stream, out.lane};
    outs_[key] = std::move(out);
    Pump(key);
  }

  void OnFrame(StreamMsg& m) {
    Key key{m.stream, m.lane};
    if (m.kind == StreamKind::kEnd) {
      ends_from_reader.push_back(m.status);
      outs_.erase(key);
      return;
    }
    if (m.kind != StreamKind::kAck) return;
    auto it = outs_.find(key);
    if (it == outs_.end()) return;
    it->second.acked = std::max(it->second.acked, std::min(m.seq + 1, it->second.next_seq));
    if (ack_delay == Clock::duration{0}) {
      Pump(key);
      return;
    }
    loop_->AddTimer(ack_delay, [this, key] {
      if (outs_.count(key)) Pump(key);
    });
  }

  void Pump(const Key& key) {
    Out& out = outs_.at(key);
    while (!out.silent && out.next_seq < out.end_seq && out.next_seq - out.acked < out.window) {
      while (out.range < out.ranges.size() && out.chunk >= out.ranges[out.range].to) {
        ++out.range;
        if (out.range < out.ranges.size()) out.chunk = out.ranges[out.range].from;
      }
      if (out.range >= out.ranges.size()) break;
      const Stored& s = *out.ranges[out.range].append;
      int64_t seq = static_cast<int64_t>(out.next_seq);
      if (seq == silent_from_seq) {
        out.silent = true;
        return;
      }
      if (seq == end_corrupt_seq) {
        port_.Send(out.control, transport::EndFrame(out.stream, out.lane,
                                                    Status::Corruption("chunk is bad on disk")));
        outs_.erase(key);
        return;
      }
      if (seq == end_ok_seq) {
        port_.Send(out.control, transport::EndFrame(out.stream, out.lane, Status::Ok()));
        outs_.erase(key);
        return;
      }
      std::string data = s.data.substr(uint64_t{out.chunk} * kChunk, s.meta.ChunkBytes(out.chunk));
      if (seq == corrupt_seq) data[0] = static_cast<char>(data[0] ^ 0x55);
      bool last = out.next_seq + 1 == out.end_seq;
      CHECK(port_.Send(out.reader,
                       transport::ChunkFrame(out.stream, out.next_seq, out.lane, last, data)));
      sent.push_back(out.next_seq);
      ++out.next_seq;
      ++out.chunk;
    }
    if (!out.silent && out.next_seq >= out.end_seq && out.acked >= out.end_seq) {
      port_.Send(out.control, transport::EndFrame(out.stream, out.lane, Status::Ok()));
      outs_.erase(key);
    }
  }

  transport::EventLoop* loop_;
  transport::RpcServer rpc_;
  transport::DataPort port_;
  const std::vector<Stored>* file_;
  RingNode node_;
  std::map<Key, Out> outs_;
};

struct CorruptSeen {
  NodeId source;
  uint64_t append = 0;
  uint32_t chunk = 0;
};

// One loop thread running a reader DataPort, an AsyncRpcClient and two fake replicas, and one
// Fetch under test. Observations are written on the loop thread; read them after Stop().
class Rig {
 public:
  struct Options {
    uint32_t window = 4;
    Clock::duration idle_timeout = std::chrono::seconds(5);
    bool manual_ack = false;
    bool direct = false;  // the chunks go to `tool`, which acks through AckThrough (a rainctl)
  };

  std::vector<Stored> file = TestFile();
  transport::EventLoop loop{"fetch-test"};
  transport::AsyncRpcClient rpc{&loop};
  transport::DataPort reader{&loop, "reader"};
  transport::DataPort tool{&loop, "tool"};
  FakeReplica s1{&loop, "s1", &file};
  FakeReplica s2{&loop, "s2", &file};
  std::shared_ptr<Fetch> fetch;

  // Observations.
  std::vector<uint64_t> seqs;                            // msg.seq of each delivered chunk
  std::vector<std::pair<uint64_t, uint32_t>> delivered;  // (append id, chunk)
  std::string bytes;
  std::vector<CorruptSeen> corrupt;
  int done_calls = 0;
  std::optional<Status> done;
  // Runs on the loop thread after each delivered chunk; its status is the sink's answer.
  std::function<Status(uint64_t seq)> on_chunk_hook;
  // Direct reads: what the tool saw. It keeps chunks in order, drops repeats and acks again.
  uint64_t tool_expected = 0;
  int tool_repeats = 0, tool_ends = 0;
  bool tool_holds_acks = false;  // set on the loop thread: the tool stops acknowledging

  Rig() {
    REQUIRE(reader.Listen("127.0.0.1", 0).ok());
    REQUIRE(tool.Listen("127.0.0.1", 0).ok());
    loop.Start();
  }
  ~Rig() { Stop(); }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    loop.Stop();
    loop.Join();
  }

  // An item of append `index` of the file, chunks [from, to), served by `sources` in order.
  FetchItem Item(size_t index, uint32_t from, uint32_t to, std::vector<RingNode> sources) const {
    FetchItem item;
    item.meta = file[index].meta;
    item.from = from;
    item.to = to;
    item.sources = std::move(sources);
    return item;
  }
  std::vector<FetchItem> WholeFile(std::vector<RingNode> sources) const {
    return {Item(0, 0, 5, sources), Item(1, 0, 3, sources)};
  }
  // The bytes `items` cover.
  std::string Expected(const std::vector<FetchItem>& items) const {
    std::string out;
    for (const auto& it : items) {
      for (const auto& s : file) {
        if (s.meta.id != it.meta.id) continue;
        uint64_t begin = uint64_t{it.from} * kChunk;
        uint64_t end = std::min<uint64_t>(s.data.size(), uint64_t{it.to} * kChunk);
        if (end > begin) out += s.data.substr(begin, end - begin);
      }
    }
    return out;
  }

  void Start(std::vector<FetchItem> items, Options options) {
    FetchEnv env;
    env.loop = &loop;
    env.port = &reader;
    env.rpc = &rpc;
    env.window = options.window;
    env.idle_timeout = options.idle_timeout;
    stream_ = transport::NewStreamId();
    fetch = std::make_shared<Fetch>(env, stream_, kName, kGen, std::move(items));
    fetch->manual_ack = options.manual_ack;
    if (options.direct) {
      fetch->direct_reader = tool.endpoint();
      fetch->direct_reader_client = true;
    }
    fetch->on_chunk = [this](StreamMsg& msg, const FetchItem& item, uint32_t chunk) {
      CHECK(msg.crc_ok());
      seqs.push_back(msg.seq);
      delivered.emplace_back(item.meta.id, chunk);
      bytes.append(msg.data);
      return on_chunk_hook ? on_chunk_hook(msg.seq) : Status::Ok();
    };
    fetch->on_done = [this](Status st) {
      ++done_calls;
      done = st;
      if (done_calls == 1) done_promise_.set_value(st);
    };
    fetch->on_corrupt = [this](const RingNode& source, const AppendMeta& append, uint32_t chunk,
                               const std::string&) {
      corrupt.push_back({source.id, append.id, chunk});
    };
    std::weak_ptr<Fetch> weak = fetch;
    start_time_ = Clock::now();
    loop.Post([this, weak] {
      reader.Register(stream_, [weak](StreamMsg& m) {
        if (auto f = weak.lock()) f->OnFrame(m);
      });
      tool.Register(stream_, [this, weak](StreamMsg& m) { ToolFrame(weak, m); });
      if (auto f = weak.lock()) f->Start();
    });
  }

  // rainctl's side of a direct read (ctl/transfer.cc); its acks reach the fetch through the node
  // (here: at once, on the same loop).
  void ToolFrame(const std::weak_ptr<Fetch>& weak, StreamMsg& m) {
    auto f = weak.lock();
    if (m.kind == StreamKind::kEnd) ++tool_ends;
    if (m.kind != StreamKind::kChunk || !f) return;
    if (m.seq != tool_expected) {
      if (m.seq < tool_expected) {
        ++tool_repeats;
        if (!tool_holds_acks) f->AckThrough(tool_expected - 1);
      }
      return;
    }
    CHECK(m.crc_ok());
    seqs.push_back(m.seq);
    bytes.append(m.data);
    ++tool_expected;
    if (!tool_holds_acks) f->AckThrough(m.seq);
  }

  // Waits for on_done; nullopt when it did not come within `limit`.
  std::optional<Status> Wait(Clock::duration limit = std::chrono::seconds(10)) {
    auto future = done_promise_.get_future();
    if (future.wait_for(limit) != std::future_status::ready) return std::nullopt;
    elapsed = Clock::now() - start_time_;
    return future.get();
  }
  Clock::duration elapsed{};

  // Runs `fn` on the loop thread and returns its result.
  template <typename F>
  auto OnLoop(F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> p;
    auto future = p.get_future();
    loop.Post([&] { p.set_value(fn()); });
    REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
    return future.get();
  }

  // Polls `pred` on the loop thread until it holds or `limit` passes.
  bool Eventually(const std::function<bool()>& pred,
                  Clock::duration limit = std::chrono::seconds(5)) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (OnLoop(pred)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return OnLoop(pred);
  }

  // Waits for the fetch to end, stops the loop, and checks that it ended well with every chunk
  // of `items` delivered once, in order (through on_chunk, or to the tool of a direct read).
  void RequireDeliveredInOrder(const std::vector<FetchItem>& items) {
    auto st = Wait();
    REQUIRE(st.has_value());
    CHECK(st->ok());
    Stop();
    uint64_t chunks = 0;
    for (const auto& it : items) chunks += it.to - it.from;
    CHECK(seqs == Iota(chunks));
    CHECK(bytes == Expected(items));
  }

  std::vector<uint64_t> Iota(uint64_t n) const {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  // The (append id, chunk) of each sequence number of the whole file.
  std::vector<std::pair<uint64_t, uint32_t>> WholeFileChunks() const {
    std::vector<std::pair<uint64_t, uint32_t>> out;
    for (uint32_t c = 0; c < 5; ++c) out.emplace_back(file[0].meta.id, c);
    for (uint32_t c = 0; c < 3; ++c) out.emplace_back(file[1].meta.id, c);
    return out;
  }

 private:
  bool stopped_ = false;
  uint64_t stream_ = 0;
  TimePoint start_time_;
  std::promise<Status> done_promise_;
};

inline std::vector<std::string> Ids(std::initializer_list<const FakeReplica*> fakes) {
  std::vector<std::string> out;
  for (const auto* f : fakes) out.push_back(f->node().id.str());
  return out;
}

}  // namespace rs::hydfs::fetch_testing
