// Fetch: reads a sequence of chunk ranges of one file from its replicas over the data plane,
// failing over between sources, and hands every chunk, CRC-checked and in order, to a sink.
//
// A fetch is a series of runs. A run asks one source (kHydfsRead) for the longest stretch of the
// remaining ranges that the source holds, numbering chunks from the fetch's next sequence number
// on a fresh lane; frames of older lanes are ignored. A run ends when the stretch is delivered;
// when the source answers with an error, sends a chunk whose CRC does not match the manifest
// (reported through on_corrupt), goes idle past the deadline, or is declared failed, the next run
// resumes at the same chunk from another source. With no source left the fetch fails.
//
// Acks: by default each chunk is acknowledged as soon as the sink took it. With manual_ack the
// sink acknowledges later through AckThrough() (end-to-end flow control to a downstream tool,
// or rate limiting).
//
// Direct reads (`direct_reader` set): the sources send the chunks straight to that endpoint (a
// rainctl), not through this node, and their end frames still come here. The reader's acks,
// relayed through AckThrough(), are then the fetch's progress: they advance it, go on to the
// source, and a run that hears none for the idle deadline fails over like a silent source. The
// reader checks each frame's CRC; each source checks its disk read against its manifest.
// A failover resumes at the reader's last ack, so the reader drops (and re-acks) repeats.
//
// Thread-safety: loop thread only. Owned through shared_ptr; callbacks never run after
// on_done.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/hydfs/ring.h"
#include "daemon/hydfs/types.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/event_loop.h"
#include "shared/transport/rpc.h"

namespace rs::hydfs {

struct FetchItem {
  AppendMeta meta;
  uint32_t from = 0, to = 0;      // chunk range [from, to)
  std::vector<RingNode> sources;  // replicas that hold the append, preferred first
};

struct FetchEnv {
  transport::EventLoop* loop = nullptr;
  transport::DataPort* port = nullptr;  // where chunks arrive (the caller registers the stream)
  transport::AsyncRpcClient* rpc = nullptr;
  uint32_t window = 8;
  Clock::duration idle_timeout = std::chrono::seconds(5);
};

class Fetch : public std::enable_shared_from_this<Fetch> {
 public:
  // Returns non-ok to abort the fetch with that status.
  using ChunkSink =
      std::function<Status(transport::StreamMsg& msg, const FetchItem& item, uint32_t chunk)>;
  using CorruptReport = std::function<void(const RingNode& source, const AppendMeta& append,
                                           uint32_t chunk, const std::string& what)>;

  Fetch(FetchEnv env, uint64_t stream, std::string name, uint64_t gen,
        std::vector<FetchItem> items);
  ~Fetch();

  ChunkSink on_chunk;
  std::function<void(Status)> on_done;
  CorruptReport on_corrupt;
  bool manual_ack = false;
  std::string direct_reader;          // chunks go there (set before Start; implies manual_ack)
  bool direct_reader_client = false;  // that endpoint is a client process (rainctl)

  void Start();
  // A frame of this fetch's stream (chunk or end); the owner routes them here.
  void OnFrame(transport::StreamMsg& msg);
  // manual_ack: the sink has consumed every chunk with seq <= `seq`.
  void AckThrough(uint64_t seq);
  // The fetch has chunks the sink has not acknowledged yet (a relay waiting on a slow sink).
  bool WaitingOnSink() const { return manual_ack && sink_acked_ < seq_; }
  // The node is gone: if it is the current source, resume elsewhere.
  void SourceFailed(const NodeId& node);
  // Stops without calling on_done again; tells the current source to stop sending.
  void Abort(const Status& why);

  uint64_t next_seq() const { return seq_; }
  uint64_t bytes() const { return bytes_; }
  const std::string& name() const { return name_; }
  bool finished() const { return finished_; }
  // Each source this fetch read from, in first-use order, without repeats.
  std::vector<std::string> sources_used() const;

 private:
  void NextRun();
  void FailSource(const std::string& why);
  void Finish(Status status);
  void CheckIdle();
  void SendAck(uint64_t seq);
  void Advance(uint32_t chunk_bytes);  // one chunk delivered: move to the next
  bool direct() const { return !direct_reader.empty(); }
  bool Complete() const { return item_ >= items_.size(); }

  FetchEnv env_;
  uint64_t stream_;
  std::string name_;
  uint64_t gen_;
  std::vector<FetchItem> items_;
  size_t item_ = 0;  // next chunk to receive: items_[item_], chunk chunk_
  uint32_t chunk_ = 0;
  uint64_t seq_ = 0;          // its sequence number
  uint64_t run_end_seq_ = 0;  // the current run's stretch ends before this seq
  uint64_t acked_ = 0;        // acks sent: every seq < acked_
  uint64_t sink_acked_ = 0;   // manual_ack: the sink consumed every seq < sink_acked_
  bool run_active_ = false;
  uint8_t lane_ = 0;
  RingNode source_;
  std::set<NodeId> failed_;  // sources given up on
  TimePoint last_frame_;
  transport::EventLoop::TimerId idle_timer_ = 0;
  uint64_t bytes_ = 0;
  bool finished_ = false;
  std::vector<std::string> used_;
};

}  // namespace rs::hydfs
