// The two phases of a write on its replicas, one lane each (client_write.cc starts the write):
//   1. open a put stream on every replica, then stream the chunks to all of them with a window
//      (the data from memory, or forwarded from rainctl as it arrives); a replica that has
//      written every chunk ends its lane: "ready". A lane that fails, goes silent or whose
//      replica is declared failed is given up on.
//   2. when every lane is ready or failed: commit on the ready ones with at least write_quorum
//      of them, else abort; FinishPut reports the outcome. Loop thread only.
#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

// Heads again when the replicas moved between the head and the open: at most this many times
// per attempt (a ring that keeps moving then gets the write on whatever opens, as before).
constexpr int kMaxReheads = 3;

}  // namespace

void HydfsService::PutOpen(PutPtr op) {
  op->meta.id = AppendId(op->file.gen, op->meta.client, op->meta.seq);
  op->meta.crcs.assign(op->chunks, 0);  // filled in by the replicas as chunks arrive
  auto replicas = ReplicasOf(op->name);
  if (PutLostRing(*op, replicas)) return;
  // An append whose replicas changed since its head (a head waits up to the RPC deadline for a
  // dead replica, and the ring moves meanwhile): a new successor may hold no copy yet. It would
  // refuse the open, the append would land on the other two only, and two crashes could then
  // lose an acknowledged append although a third replica was alive. Head again on the current
  // replicas (which repairs a replica lacking the file first), keeping the append's id.
  std::vector<std::string> ids;
  for (const auto& r : replicas) ids.push_back(r.id.str());
  if (!op->create && ids != op->head_replicas && op->reheads < kMaxReheads) {
    ++op->reheads;
    op->id_fixed = true;  // PutHead chose gen and seq; the next head keeps them
    Log()->log(op->quiet ? spdlog::level::debug : spdlog::level::info,
               "event=put_rehead file={} seq={} reason=\"the replicas changed since the head\"",
               op->name, op->meta.seq);
    PutHead(op);
    return;
  }
  op->lanes.clear();
  for (const auto& node : replicas) {
    Lane lane;
    lane.node = node;
    lane.last = Clock::now();
    op->lanes.push_back(lane);
  }
  auto pending = std::make_shared<size_t>(op->lanes.size());
  for (size_t i = 0; i < op->lanes.size(); ++i) {
    rpc_->Call(
        op->lanes[i].node.rpc_endpoint(), wire::MsgType::kHydfsPut,
        [&](wire::Packer& pk) {
          pk.pack_map(8);
          pk.pack("quiet");
          pk.pack(op->quiet);
          pk.pack("phase");
          pk.pack("open");
          pk.pack("create");
          pk.pack(op->create);
          pk.pack("file");
          PackFile(pk, op->file);
          pk.pack("append");
          PackAppend(pk, op->meta);
          pk.pack("stream");
          pk.pack_uint64(op->stream);
          pk.pack("lane");
          pk.pack_uint8(static_cast<uint8_t>(i));
          pk.pack("sender");
          pk.pack(client_->endpoint());
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms),
        [this, op, pending, i](Result<wire::Envelope> reply) {
          if (op->finished) return;
          Lane& lane = op->lanes[i];
          Result<msgpack::object> payload =
              reply.ok() ? wire::ReplyPayload(*reply) : Result<msgpack::object>(reply.status());
          if (payload.ok()) {
            lane.open = true;
            lane.last = Clock::now();
            bool ready = false;
            if (const auto* r = wire::MapGet(*payload, "ready")) wire::ReadBool(*r, &ready);
            lane.ready = ready;
            // Ready at once: an empty write, or a retry this replica already committed (it
            // lists the append id). It needs no data.
            if (ready) lane.acked = op->chunks;
          } else {
            lane.failed = true;
            lane.status = payload.status();
            Log()->warn("event=replica_refused op={} file={} node={} error=\"{}\"",
                        OpName(op->create), op->name, lane.node.id.str(),
                        payload.status().ToString());
          }
          if (--*pending > 0) return;
          size_t need = std::min<size_t>(options_.write_quorum, op->lanes.size());
          if (op->Healthy() < need) {
            Status why =
                Status::Unavailable(QuorumText(op->Healthy(), op->lanes.size(), need, "reachable"));
            op->transient = op->FailuresTransient();
            for (const auto& l : op->lanes) {
              if (l.failed && !TransientWriteError(l.status.code())) {
                why = l.status;  // a definitive answer (exists, not found, disk full) beats "down"
                break;
              }
            }
            if (why.code() == StatusCode::kUnavailable) {
              for (const auto& l : op->lanes) {
                if (l.failed)
                  why = Status(why.code(),
                               why.message() + "; " + l.node.id.str() + ": " + l.status.message());
              }
            }
            FinishPut(*op, why);
            return;
          }
          op->opened = true;
          if (op->on_open) {
            uint32_t chunk = options_.chunk_size, window = options_.window;
            std::string endpoint = client_->endpoint();
            auto reply_open = std::move(op->on_open);
            op->on_open = nullptr;
            reply_open(Status::Ok(), [=](wire::Packer& pk) {
              pk.pack_map(3);
              pk.pack("endpoint");
              pk.pack(endpoint);
              pk.pack("chunk_size");
              pk.pack_uint32(chunk);
              pk.pack("window");
              pk.pack_uint32(window);
            });
          }
          PutPump(*op);
          PutMaybeDone(*op);
        });
  }
}

void HydfsService::PutPump(PutOp& op) {
  if (op.finished || !op.tool.empty() || op.committing) return;
  while (op.sent < op.chunks && op.sent < op.MinAcked() + options_.window) {
    uint64_t begin = op.sent * options_.chunk_size;
    uint64_t len = std::min<uint64_t>(options_.chunk_size, op.meta.size - begin);
    zmq::message_t frame = transport::ChunkFrame(op.stream, op.sent, 0, op.sent + 1 == op.chunks,
                                                 std::string_view(op.data).substr(begin, len));
    for (auto& lane : op.lanes) {
      if (lane.open && !lane.failed && !lane.ready) {
        serve_->Send(lane.node.data_endpoint(), transport::ShareFrame(frame));
      }
    }
    ++op.sent;
  }
}

void HydfsService::OnPutFrame(PutOp& op, transport::StreamMsg& msg) {
  using transport::StreamKind;
  if (op.finished) return;
  if (msg.lane == kToolLane) {
    op.last_tool = Clock::now();
    if (msg.kind == StreamKind::kEnd) {
      FinishPut(op, Status::Unavailable("the client aborted: " + msg.status.ToString()));
      return;
    }
    if (msg.kind != StreamKind::kChunk || op.tool.empty() || !op.opened) return;
    if (msg.seq != op.sent || op.sent >= op.chunks) {
      FinishPut(op, Status::Corruption("chunk " + std::to_string(msg.seq) + " out of order"));
      return;
    }
    uint64_t expect =
        std::min<uint64_t>(options_.chunk_size, op.meta.size - op.sent * options_.chunk_size);
    if (!msg.crc_ok() || msg.data.size() != expect) {
      FinishPut(op, Status::Corruption("chunk " + std::to_string(msg.seq) +
                                       " failed its CRC or size check in transfer"));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.chunk_bytes_in += msg.data.size();
    }
    for (auto& lane : op.lanes) {
      if (lane.open && !lane.failed && !lane.ready) {
        serve_->Send(lane.node.data_endpoint(), transport::ShareFrame(*msg.frame));
      }
    }
    ++op.sent;
    return;
  }
  if (msg.lane >= op.lanes.size()) return;
  size_t i = msg.lane;
  Lane& lane = op.lanes[i];
  if (!lane.open || lane.failed) return;
  lane.last = Clock::now();
  if (msg.kind == StreamKind::kAck) {
    lane.acked = std::max(lane.acked, msg.seq + 1);
    uint64_t min = op.MinAcked();
    if (!op.tool.empty() && min > op.tool_acked) {
      op.tool_acked = min;
      client_->Send(op.tool, transport::AckFrame(op.stream, min - 1, kToolLane));
    }
    PutPump(op);
    return;
  }
  if (msg.kind == StreamKind::kEnd) {
    if (msg.status.ok()) {
      lane.ready = true;
      PutMaybeDone(op);
    } else {
      PutLaneFailed(op, i, msg.status);
    }
  }
}

void HydfsService::PutLaneFailed(PutOp& op, size_t i, const Status& why) {
  Lane& lane = op.lanes[i];
  if (lane.failed || op.finished) return;
  lane.failed = true;
  lane.status = why;
  Log()->warn("event=replica_lost op={} file={} node={} error=\"{}\"", OpName(op.create), op.name,
              lane.node.id.str(), why.ToString());
  if (op.committing) {
    PutCommitSettled(op, i, why);  // its commit is not waited for any longer
    return;
  }
  // Opens still in flight: no lane counts as healthy yet, so the quorum is judged by PutOpen
  // once every open has been answered.
  if (!op.opened) return;
  if (lane.open) {
    serve_->Send(lane.node.data_endpoint(), transport::EndFrame(op.stream, static_cast<uint8_t>(i),
                                                                Status::Unavailable("aborted")));
  }
  size_t need = std::min<size_t>(options_.write_quorum, op.lanes.size());
  if (op.Healthy() < need && !op.committing) {
    Status st = why;
    op.transient = op.FailuresTransient();
    FinishPut(op, Status(st.code(), QuorumText(op.Healthy(), op.lanes.size(), need, "reachable") +
                                        ": the write lost too many replicas (" +
                                        lane.node.id.str() + ": " + st.message() + ")"));
    return;
  }
  // The slowest lane may have been this one: the window can move.
  uint64_t min = op.MinAcked();
  if (!op.tool.empty() && min > op.tool_acked) {
    op.tool_acked = min;
    client_->Send(op.tool, transport::AckFrame(op.stream, min - 1, kToolLane));
  }
  PutPump(op);
  PutMaybeDone(op);
}

void HydfsService::PutMaybeDone(PutOp& op) {
  if (op.finished || op.committing || !op.opened) return;
  size_t ready = 0;
  for (const auto& l : op.lanes) {
    if (!l.failed && !l.ready && l.open) return;  // still transferring
    if (l.ready && !l.failed) ++ready;
  }
  size_t need = std::min<size_t>(options_.write_quorum, op.lanes.size());
  std::string phase = ready >= need ? "commit" : "abort";
  op.committing = true;
  auto deadline = std::chrono::milliseconds(30000 + op.meta.size / (50 << 10));  // fsync time
  auto found = puts_.find(op.stream);
  if (found == puts_.end()) return;  // cannot happen while the op is unfinished
  PutPtr self = found->second;
  std::vector<size_t> targets;
  for (size_t i = 0; i < op.lanes.size(); ++i) {
    if (op.lanes[i].ready && !op.lanes[i].failed) targets.push_back(i);
  }
  // The abort and commit requests: {phase, stream}.
  auto phase_body = [stream = op.stream](const char* name) {
    return [stream, name](wire::Packer& pk) {
      pk.pack_map(2);
      pk.pack("phase");
      pk.pack(name);
      pk.pack("stream");
      pk.pack_uint64(stream);
    };
  };
  if (phase == "abort") {
    for (size_t i : targets) {
      rpc_->Call(op.lanes[i].node.rpc_endpoint(), wire::MsgType::kHydfsPut, phase_body("abort"),
                 std::chrono::milliseconds(options_.rpc_timeout_ms), [](Result<wire::Envelope>) {});
    }
    Status why = Status::Unavailable(QuorumText(ready, op.lanes.size(), need, "stored the data") +
                                     "; nothing was written");
    op.transient = op.FailuresTransient();
    for (const auto& l : op.lanes) {
      if (l.failed) {
        why =
            Status(l.status.code() == StatusCode::kOk ? StatusCode::kUnavailable : l.status.code(),
                   why.message() + " (" + l.node.id.str() + ": " + l.status.message() + ")");
        break;
      }
    }
    FinishPut(op, why);
    return;
  }
  op.commits_pending = targets.size();
  for (size_t i : targets) op.lanes[i].committing = true;
  for (size_t i : targets) {
    rpc_->Call(op.lanes[i].node.rpc_endpoint(), wire::MsgType::kHydfsPut, phase_body("commit"),
               deadline, [this, self, i](Result<wire::Envelope> reply) {
                 PutCommitSettled(
                     *self, i, reply.ok() ? wire::ReplyPayload(*reply).status() : reply.status());
               });
  }
}

// A commit is settled by its reply, its deadline, or the replica being declared failed
// (PutLaneFailed), whichever comes first; a later answer changes nothing. Without the third, a
// replica that crashed between "ready" and its commit reply held the write for the whole commit
// deadline (30 s), long after membership had declared it failed.
void HydfsService::PutCommitSettled(PutOp& op, size_t i, const Status& st) {
  Lane& lane = op.lanes[i];
  if (op.finished || !lane.committing) return;
  lane.committing = false;
  if (st.ok()) {
    lane.committed = true;
    ++op.commits_ok;
  } else {
    if (!TransientWriteError(st.code())) op.commit_definitive = true;
    if (op.commit_error.ok()) {
      op.commit_error = Status(st.code(), lane.node.id.str() + ": " + st.message());
    }
  }
  if (--op.commits_pending > 0) return;
  size_t need = std::min<size_t>(options_.write_quorum, op.lanes.size());
  if (op.commits_ok >= need) {
    FinishPut(op, Status::Ok());
  } else {
    // Some replicas may hold the append now: a retry under the same id completes it without
    // duplicating it.
    op.transient = !op.commit_definitive;
    FinishPut(op, Status(op.commit_error.code(),
                         QuorumText(op.commits_ok, op.lanes.size(), need, "committed the write") +
                             ": " + op.commit_error.message()));
  }
}

void HydfsService::FinishPut(PutOp& op, Status status) {
  if (op.finished) return;
  op.finished = true;
  if (op.timer != 0) loop_.CancelTimer(op.timer);
  client_->Unregister(op.stream);
  if (!op.committing || !status.ok()) {
    // Tell replicas still streaming to drop what they have.
    for (size_t i = 0; i < op.lanes.size(); ++i) {
      const Lane& l = op.lanes[i];
      if (l.open && !l.failed && !l.committed && !l.ready) {
        serve_->Send(l.node.data_endpoint(),
                     transport::EndFrame(op.stream, static_cast<uint8_t>(i), status));
      }
    }
  }
  std::vector<std::string> stored;
  for (const auto& l : op.lanes) {
    if (l.committed) stored.push_back(l.node.id.str());
  }
  uint64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - op.started).count();
  Log()->log(op.quiet && status.ok() ? spdlog::level::debug : spdlog::level::info,
             "event=op_done op={} file={} bytes={} replicas={} ms={} status=\"{}\"",
             OpName(op.create), op.name, op.meta.size, stored.size(), us / 1000, status.ToString());
  if (status.ok()) {
    cache_->Invalidate(op.name);
    last_write_[op.name] = Clock::now();
  }
  if (op.metric) RecordOp(*op.metric, op.requested, status, op.meta.size);
  std::string name = op.name;
  uint64_t size = op.meta.size, seq = op.meta.seq, gen = op.file.gen;
  size_t total = op.lanes.size();
  wire::BodyWriter result = [=](wire::Packer& pk) {
    pk.pack_map(7);
    pk.pack("file");
    pk.pack(name);
    pk.pack("bytes");
    pk.pack_uint64(size);
    pk.pack("stored_on");
    pk.pack(stored);
    pk.pack("replicas");
    pk.pack_uint64(total);
    pk.pack("seq");
    pk.pack_uint64(seq);
    pk.pack("gen");
    pk.pack(Hex64(gen));
    pk.pack("elapsed_us");
    pk.pack_uint64(us);
  };
  if (op.on_open) {
    auto reply = std::move(op.on_open);
    op.on_open = nullptr;
    reply(status, status.ok() ? result : wire::BodyWriter{});
  } else if (!op.tool.empty()) {
    client_->Send(op.tool, transport::EndFrame(op.stream, kToolLane, status,
                                               status.ok() ? result : wire::BodyWriter{}));
  }
  if (op.on_done) {
    auto done = std::move(op.on_done);
    op.on_done = nullptr;
    done(status, result);
  }
  uint64_t stream = op.stream;
  loop_.Post([this, stream] { puts_.erase(stream); });
}

}  // namespace rs::hydfs
