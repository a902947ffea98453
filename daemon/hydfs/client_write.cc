// Writes (create and append) run by this node as the client. Two phases over every replica:
//   1. open a put stream on each replica (a create first reserves the name on a write quorum,
//      so of two concurrent creates exactly one wins), then stream the chunks to all of them
//      with a window; a replica that has written every chunk ends its lane: "ready".
//   2. when every lane is ready or failed: with at least write_quorum ready, send commit to the
//      ready ones (each fsyncs the blob and commits the manifest entry durably) and succeed once
//      write_quorum commits are acknowledged; otherwise send abort, and nothing changed.
// In-process writes (data in memory) are retried on a transient failure under the same append
// id (retry.h, LaunchMemoryPut); writes streamed from rainctl fail and rainctl reports it.
// This file starts a write and fixes its id (the reservation of a create, the head of an append);
// the two phases on the replicas' lanes are in client_write_lanes.cc.
#include <random>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "daemon/hydfs/retry.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

uint64_t RandomGen() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t g = 0;
  while (g == 0) g = rng();
  return g;
}

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
    RecordOp(mp->create ? OpKind::kCreate : OpKind::kAppend, mp->requested, st, raw->meta.size);
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
  op->head_replicas.clear();
  for (const auto& r : replicas) op->head_replicas.push_back(r.id.str());
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

}  // namespace rs::hydfs
