// Writes (create and append) run by this node as the client. Two phases over every replica:
//   1. open a put stream on each replica (a create first reserves the name on a write quorum,
//      so of two concurrent creates exactly one wins), then stream the chunks to all of them
//      with a window; a replica that has written every chunk ends its lane: "ready".
//   2. when every lane is ready or failed: with at least write_quorum ready, send commit to the
//      ready ones (each fsyncs the blob and commits the manifest entry durably) and succeed once
//      write_quorum commits are acknowledged; otherwise send abort, and nothing changed.
// In-process writes (data in memory) are retried on a transient failure under the same append
// id (retry.h, LaunchMemoryPut); writes streamed from rainctl fail and rainctl reports it.
#include <random>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "daemon/hydfs/retry.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

// "1 of 3 replicas reachable, write quorum is 2": every write that misses its quorum names the
// quorum, over the replica set of the ring this node sees.
std::string QuorumText(size_t got, size_t replicas, size_t quorum, const std::string& what) {
  return std::to_string(got) + " of " + std::to_string(replicas) + " replicas " + what +
         ", write quorum is " + std::to_string(quorum);
}

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

uint64_t RandomGen() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t g = 0;
  while (g == 0) g = rng();
  return g;
}

const char* OpName(bool create) { return create ? "create" : "append"; }

// The ring can empty while a write is under way: this node was expelled and is rejoining under
// a new id (its view has no member until the join is answered). Every phase checks, because a
// fan-out over no replica would never call back, and the write would hang.
Status NoRing() {
  return Status::Unavailable(
      "no HyDFS node is on the ring (this node is not in a cluster, or is "
      "rejoining it)");
}

const WriteRetryPolicy kRetryPolicy;

}  // namespace

// Runs one attempt of an in-process write; on a transient failure schedules the next one under
// the same append id. Ordering rule: the append's place among this client's appends to the file
// is its seq, chosen by its first attempt; a retry keeps it and never takes a new one, and
// next_seq_ is not touched. An append started by this client while a retry is pending gets a
// higher seq and so lands after the retried one once merged, as with any two concurrent appends
// from one client. A caller that wants completion order to be file order waits for `done` before
// its next append (the stream engine and the log shipper do).
void HydfsService::LaunchMemoryPut(std::shared_ptr<MemoryPut> mp) {
  auto op = std::make_shared<PutOp>();
  op->create = mp->create;
  op->quiet = mp->quiet;
  op->name = mp->name;
  op->meta.size = mp->data.size();
  op->data = std::move(mp->data);
  op->stream = transport::NewStreamId();
  if (mp->attempts == 0) {
    mp->first_started = Clock::now();
    mp->wall_ms = WallMillis();
    // The caller's retry of an append that failed unsettled: the same bytes as the very next
    // append to the file get the same id, so they land once (StartPut forgets the entry).
    auto u = mp->create ? unsettled_.end() : unsettled_.find(mp->name);
    if (u != unsettled_.end() && u->second.size == op->data.size() &&
        u->second.hash == StableHash64(op->data)) {
      mp->id_fixed = mp->resumed = true;
      mp->file = FileMeta{mp->name, u->second.gen, 0, ""};
      mp->seq = u->second.seq;
      mp->wall_ms = u->second.wall_ms;
      Log()->info(
          "event=append_resumed file={} seq={} reason=\"the same bytes as an unsettled "
          "append\"",
          mp->name, mp->seq);
    }
  }
  ++mp->attempts;
  if (mp->id_fixed) {
    op->id_fixed = true;
    op->resumed = mp->resumed;
    op->file = mp->file;
    op->meta.seq = mp->seq;
  }
  op->meta.wall_ms = mp->wall_ms;
  PutOp* raw = op.get();
  op->on_done = [this, mp, raw](Status st, wire::BodyWriter) {
    if (raw->id_assigned) {
      mp->id_fixed = true;
      mp->resumed = raw->resumed;
      mp->file = raw->file;
      mp->seq = raw->meta.seq;
    }
    auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - mp->first_started);
    std::optional<std::chrono::milliseconds> wait;
    if (!st.ok()) wait = kRetryPolicy.Next(mp->attempts, elapsed, raw->transient);
    if (wait) {
      Log()->info("event=op_retry op={} file={} seq={} attempt={} in_ms={} error=\"{}\"",
                  OpName(mp->create), mp->name, mp->seq, mp->attempts + 1, wait->count(),
                  st.ToString());
      mp->data = std::move(raw->data);
      loop_.AddTimer(*wait, [this, mp] { LaunchMemoryPut(mp); });
      return;
    }
    if (!st.ok() && !mp->create && mp->id_fixed) {
      unsettled_[mp->name] =
          Unsettled{mp->file.gen, mp->seq, raw->meta.size, StableHash64(raw->data), mp->wall_ms};
    }
    auto done = std::move(mp->done);
    done(st);
  };
  StartPut(op);
}

void HydfsService::StartPut(PutPtr op) {
  op->started = op->last_tool = Clock::now();
  Status st = ValidateName(op->name);
  if (st.ok() && puts_.count(op->stream)) st = Status::AlreadyExists("stream id in use");
  if (st.ok() && ring_->size() == 0) st = NoRing();
  if (st.ok() && !op->create && op->meta.size == 0) {
    st = Status::InvalidArgument("nothing to append: the data is empty");
  }
  op->meta.client = client_id_;
  op->meta.chunk_size = options_.chunk_size;
  if (op->meta.wall_ms == 0) op->meta.wall_ms = WallMillis();
  // Only the very next append to a file may resume an unsettled one (LaunchMemoryPut).
  if (!op->create) unsettled_.erase(op->name);
  op->chunks = (op->meta.size + options_.chunk_size - 1) / options_.chunk_size;
  Log()->log(op->quiet ? spdlog::level::debug : spdlog::level::info,
             "event=op_start op={} file={} bytes={} client={}", OpName(op->create), op->name,
             op->meta.size, self_id_);
  puts_[op->stream] = op;
  if (!st.ok()) {
    FinishPut(*op, st);
    return;
  }
  PutOp* raw = op.get();
  client_->Register(op->stream, [this, raw](transport::StreamMsg& msg) { OnPutFrame(*raw, msg); });
  op->timer = loop_.AddPeriodic(std::chrono::milliseconds(250), [this, raw] {
    auto now = Clock::now();
    auto timeout = std::chrono::milliseconds(options_.transfer_timeout_ms);
    if (raw->finished || !raw->opened || raw->committing) return;
    for (size_t i = 0; i < raw->lanes.size(); ++i) {
      Lane& l = raw->lanes[i];
      bool waiting =
          l.open && !l.failed && !l.ready && (raw->sent > l.acked || raw->sent == raw->chunks);
      if (waiting && now - l.last > timeout) {
        PutLaneFailed(*raw, i,
                      Status::Timeout(l.node.id.str() + " went silent during the transfer"));
        if (raw->finished) return;
      }
    }
    if (!raw->tool.empty() && raw->sent < raw->chunks && raw->tool_acked == raw->sent &&
        now - raw->last_tool > timeout) {
      FinishPut(*raw, Status::Timeout("the client stopped sending data"));
    }
  });
  if (op->create) {
    // A retried create keeps its generation: of its attempts at most one file ever exists.
    if (!op->id_fixed) op->file = FileMeta{op->name, RandomGen(), WallMillis(), self_id_};
    op->meta.seq = 0;
    op->id_assigned = true;
    PutReserve(op, 0);
  } else {
    PutHead(op);
  }
}

bool HydfsService::PutLostRing(PutOp& op, const std::vector<RingNode>& replicas) {
  if (!replicas.empty()) return false;
  op.transient = true;
  FinishPut(op, NoRing());
  return true;
}

void HydfsService::PutReserve(PutPtr op, int attempt) {
  auto replicas = ReplicasOf(op->name);
  if (PutLostRing(*op, replicas)) return;
  size_t need = std::min<size_t>(options_.write_quorum, replicas.size());
  struct Acc {
    size_t pending = 0, ok = 0, exists = 0, conflict = 0, failed = 0;
    Status first_error;
  };
  auto acc = std::make_shared<Acc>();
  acc->pending = replicas.size();
  for (const auto& node : replicas) {
    rpc_->Call(
        node.rpc_endpoint(), wire::MsgType::kHydfsReserve,
        [&](wire::Packer& pk) {
          pk.pack_map(3);
          pk.pack("name");
          pk.pack(op->name);
          pk.pack("gen");
          pk.pack_uint64(op->file.gen);
          pk.pack("client");
          pk.pack(self_id_);
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms),
        [this, op, acc, need, attempt, replicas](Result<wire::Envelope> reply) {
          Status st = reply.ok() ? wire::ReplyPayload(*reply).status() : reply.status();
          if (st.ok()) {
            ++acc->ok;
          } else if (st.code() == StatusCode::kAlreadyExists) {
            ++acc->exists;
          } else if (st.code() == StatusCode::kFailedPrecondition) {
            ++acc->conflict;
          } else {
            ++acc->failed;
            if (acc->first_error.ok()) acc->first_error = st;
          }
          if (--acc->pending > 0 || op->finished) return;
          if (acc->ok >= need && acc->exists == 0) {
            PutOpen(op);
            return;
          }
          ReleaseReservation(*op);
          if (acc->exists > 0) {
            FinishPut(*op, Status::AlreadyExists(op->name + " already exists"));
          } else if (acc->conflict > 0 && attempt < 4) {
            // Nobody holds a quorum yet (or a concurrent create is winning): back off, retry.
            static thread_local std::mt19937 rng{std::random_device{}()};
            auto delay = std::chrono::milliseconds(100 + rng() % 200);
            loop_.AddTimer(delay, [this, op, attempt] {
              if (!op->finished) PutReserve(op, attempt + 1);
            });
          } else if (acc->conflict > 0) {
            FinishPut(*op, Status::AlreadyExists(op->name + " is being created by another client"));
          } else {
            op->transient = true;
            FinishPut(*op,
                      Status::Unavailable(QuorumText(acc->ok, replicas.size(), need, "reachable") +
                                          ": " + acc->first_error.ToString()));
          }
        });
  }
}

void HydfsService::ReleaseReservation(const PutOp& op) {
  for (const auto& node : ReplicasOf(op.name)) {
    rpc_->Call(
        node.rpc_endpoint(), wire::MsgType::kHydfsReserve,
        [&](wire::Packer& pk) {
          pk.pack_map(3);
          pk.pack("name");
          pk.pack(op.name);
          pk.pack("gen");
          pk.pack_uint64(op.file.gen);
          pk.pack("release");
          pk.pack(true);
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms), [](Result<wire::Envelope>) {});
  }
}

void HydfsService::PutHead(PutPtr op) {
  auto replicas = ReplicasOf(op->name);
  if (PutLostRing(*op, replicas)) return;
  struct Acc {
    size_t pending = 0, answered = 0;
    std::vector<std::optional<FileSummary>> found;
    std::vector<bool> heard;
  };
  auto acc = std::make_shared<Acc>();
  acc->pending = replicas.size();
  acc->found.resize(replicas.size());
  acc->heard.resize(replicas.size(), false);
  for (size_t i = 0; i < replicas.size(); ++i) {
    rpc_->Call(
        replicas[i].rpc_endpoint(), wire::MsgType::kHydfsHead,
        [&](wire::Packer& pk) {
          pk.pack_map(1);
          pk.pack("items");
          pk.pack_array(1);
          pk.pack_array(2);
          pk.pack(op->name);
          pk.pack_uint64(0);
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms),
        [this, op, acc, i](Result<wire::Envelope> reply) {
          if (reply.ok()) {
            auto payload = wire::ReplyPayload(*reply);
            if (payload.ok() && payload->type == msgpack::type::ARRAY &&
                payload->via.array.size == 1) {
              ++acc->answered;
              acc->heard[i] = true;
              const msgpack::object* s = wire::MapGet(payload->via.array.ptr[0], "summary");
              if (s && s->type != msgpack::type::NIL) {
                auto summary = ReadSummary(*s);
                if (summary.ok()) acc->found[i] = *summary;
              }
            }
          }
          if (--acc->pending > 0 || op->finished) return;
          // The generation: the primary's, else the one most replicas hold.
          std::map<uint64_t, size_t> votes;
          std::optional<uint64_t> gen;
          for (const auto& f : acc->found) {
            if (f) ++votes[f->gen];
          }
          if (acc->found[0]) {
            gen = acc->found[0]->gen;
          } else {
            size_t best = 0;
            for (const auto& [g, n] : votes) {
              if (n > best) {
                best = n;
                gen = g;
              }
            }
          }
          if (!gen) {
            op->transient = acc->answered == 0;
            FinishPut(*op, acc->answered == 0
                               ? Status::Unavailable("no replica of " + op->name + " answered")
                               : Status::NotFound("no such file: " + op->name));
            return;
          }
          if (op->id_fixed && op->resumed && op->file.gen != *gen) {
            op->id_fixed = op->resumed = false;  // the unsettled append's file is gone
          }
          if (op->id_fixed && op->file.gen != *gen) {
            FinishPut(*op, Status::NotFound(op->name + " was removed or replaced (generation " +
                                            Hex64(op->file.gen) + " is gone)"));
            return;
          }
          if (!op->id_fixed) {
            op->file = FileMeta{op->name, *gen, 0, ""};
            uint64_t& next = next_seq_[*gen];
            op->meta.seq = ++next;  // 0 is the create
          }
          op->id_assigned = true;
          // A replica that answered without a copy is new to the file (the ring moved and the
          // repair scan has not reached it yet): repair now, or the append could miss its
          // quorum although the file is readable.
          bool lacking = false;
          for (size_t k = 0; k < acc->found.size(); ++k) {
            lacking |= acc->heard[k] && (!acc->found[k] || acc->found[k]->gen != *gen);
          }
          if (!lacking) {
            PutOpen(op);
            return;
          }
          Log()->info("event=repair_before_write file={} reason=\"a replica has no copy yet\"",
                      op->name);
          Reconcile(op->name, /*background=*/false, /*include_self_copy=*/false,
                    [this, op](Status st, uint64_t moved, uint32_t) {
                      if (op->finished) return;
                      Log()->info(
                          "event=repair_before_write_done file={} moved_bytes={} "
                          "status=\"{}\"",
                          op->name, moved, st.ToString());
                      PutOpen(op);
                    });
        });
  }
}

void HydfsService::PutOpen(PutPtr op) {
  op->meta.id = AppendId(op->file.gen, op->meta.client, op->meta.seq);
  op->meta.crcs.assign(op->chunks, 0);  // filled in by the replicas as chunks arrive
  auto replicas = ReplicasOf(op->name);
  if (PutLostRing(*op, replicas)) return;
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
  if (phase == "abort") {
    for (size_t i : targets) {
      rpc_->Call(
          op.lanes[i].node.rpc_endpoint(), wire::MsgType::kHydfsPut,
          [&](wire::Packer& pk) {
            pk.pack_map(2);
            pk.pack("phase");
            pk.pack("abort");
            pk.pack("stream");
            pk.pack_uint64(op.stream);
          },
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
    rpc_->Call(
        op.lanes[i].node.rpc_endpoint(), wire::MsgType::kHydfsPut,
        [&](wire::Packer& pk) {
          pk.pack_map(2);
          pk.pack("phase");
          pk.pack("commit");
          pk.pack("stream");
          pk.pack_uint64(op.stream);
        },
        deadline,
        [this, self, i](Result<wire::Envelope> reply) {
          PutCommitSettled(*self, i,
                           reply.ok() ? wire::ReplyPayload(*reply).status() : reply.status());
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
