// Reads run by this node as the client: get (the merged view of every replica's copy, served
// from the cache when it holds that exact version), getfromreplica (one node's own copy, in its
// own order) and the in-process Get.
#include <fcntl.h>
#include <unistd.h>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {

namespace {
// After a read quorum answered, how long the other replicas may still answer.
constexpr auto kReadGrace = std::chrono::milliseconds(100);
}  // namespace
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

Status PwriteAll(int fd, const char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("cache write: ") + strerror(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status PreadAll(int fd, char* out, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::IOError("cache read: short read");
    out += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

}  // namespace

void HydfsService::CollectManifests(
    const std::string& name, const std::vector<RingNode>& nodes,
    std::function<void(std::vector<std::optional<Manifest>>, std::vector<bool>)> done,
    size_t read_quorum) {
  struct Acc {
    size_t pending = 0, heard = 0;
    bool finished = false;
    std::vector<std::optional<Manifest>> copies;
    std::vector<bool> answered;
  };
  auto acc = std::make_shared<Acc>();
  acc->pending = nodes.size();
  acc->copies.resize(nodes.size());
  acc->answered.resize(nodes.size(), false);
  if (nodes.empty()) {
    done({}, {});
    return;
  }
  auto finish = [acc, done] {
    if (acc->finished) return;
    acc->finished = true;
    done(acc->copies, acc->answered);
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    rpc_->Call(
        nodes[i].rpc_endpoint(), wire::MsgType::kHydfsManifest,
        [&](wire::Packer& pk) {
          pk.pack_map(1);
          pk.pack("name");
          pk.pack(name);
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms),
        [this, acc, i, finish, read_quorum](Result<wire::Envelope> reply) {
          if (acc->finished) return;
          if (reply.ok()) {
            auto payload = wire::ReplyPayload(*reply);
            if (payload.ok()) {
              auto m = ReadManifest(*payload);
              if (m.ok()) {
                acc->copies[i] = std::move(m.value());
                acc->answered[i] = true;
              }
            } else if (payload.status().code() == StatusCode::kNotFound) {
              acc->answered[i] = true;
            }
          }
          if (acc->answered[i] && ++acc->heard == read_quorum && acc->pending > 1) {
            loop_.AddTimer(kReadGrace, finish);
          }
          if (--acc->pending == 0) finish();
        });
  }
}

void HydfsService::StartGet(GetPtr op) {
  op->started = op->last_tool = Clock::now();
  Log()->info("event=op_start op={} file={} client={}",
              op->local_only  ? "getfromreplica"
              : op->plan_only ? "snapshot"
                              : "get",
              op->name, self_id_);
  Status st = ValidateName(op->name);
  if (st.ok() && gets_.count(op->stream)) st = Status::AlreadyExists("stream id in use");
  gets_[op->stream] = op;
  if (!st.ok()) {
    FinishGet(*op, st);
    return;
  }
  GetOp* raw = op.get();
  client_->Register(op->stream, [this, raw](transport::StreamMsg& msg) { OnGetFrame(*raw, msg); });
  op->timer = loop_.AddPeriodic(std::chrono::milliseconds(250), [this, raw] {
    if (raw->finished || raw->tool.empty() || raw->on_open) return;
    // A direct fetch judges the silence itself (fetch.h): it cannot tell a slow client from a
    // silent source, and fails over.
    bool waiting_on_tool = raw->cache_fd >= 0 ? raw->cache_acked < raw->cache_sent
                                              : (raw->fetch && raw->fetch->WaitingOnSink());
    if (waiting_on_tool &&
        Clock::now() - raw->last_tool > std::chrono::milliseconds(options_.transfer_timeout_ms)) {
      FinishGet(*raw, Status::Timeout("the client stopped reading"));
    }
  });

  if (op->local_only) {
    auto m = store_->GetManifest(op->name);
    if (!m.ok()) {
      FinishGet(*op, m.status().code() == StatusCode::kNotFound
                         ? Status::NotFound("this node holds no copy of " + op->name)
                         : m.status());
      return;
    }
    op->plan.file = m->file;
    op->plan.order = m->appends;
    op->plan.digest = OrderDigest(m->file.gen, m->appends);
    GetPlanned(op);
    return;
  }
  auto replicas = ReplicasOf(op->name);
  if (replicas.empty()) {
    FinishGet(*op, Status::Unavailable("no HyDFS node is on the ring"));
    return;
  }
  // Any replicas - write_quorum + 1 answers meet every acknowledged write (read-my-writes).
  size_t read_quorum = options_.replicas >= options_.write_quorum
                           ? options_.replicas - options_.write_quorum + 1
                           : 1;
  CollectManifests(
      op->name, replicas,
      [this, op, replicas](std::vector<std::optional<Manifest>> copies,
                           std::vector<bool> answered) {
        if (op->finished) return;
        size_t heard = 0;
        for (bool a : answered) heard += a ? 1 : 0;
        auto plan = PlanMerge(copies);
        if (!plan.ok()) {
          FinishGet(*op, heard == 0 ? Status::Unavailable("no replica of " + op->name + " answered")
                                    : Status::NotFound("no such file: " + op->name));
          return;
        }
        op->plan = std::move(plan.value());
        if (op->snapshot) {
          Status kept = RestrictToSnapshot(op->name, *op->snapshot, &op->plan);
          if (!kept.ok()) {
            FinishGet(*op, kept);
            return;
          }
        }
        // Sources of each append: its holders, this node first (no network hop).
        std::map<uint64_t, std::vector<RingNode>> holders;
        for (const auto& [id, idx] : op->plan.holders) {
          auto& list = holders[id];
          for (size_t i : idx) {
            if (replicas[i].id.str() == self_id_) {
              list.insert(list.begin(), replicas[i]);
            } else {
              list.push_back(replicas[i]);
            }
          }
        }
        op->size = 0;
        for (const auto& a : op->plan.order) op->size += a.size;
        op->cached = false;
        // Stash the sources in the plan's order for GetPlanned.
        op->plan.holders.clear();
        op->sources = std::move(holders);
        GetPlanned(op);
      },
      read_quorum);
}

void HydfsService::GetPlanned(GetPtr op) {
  op->size = 0;
  for (const auto& a : op->plan.order) op->size += a.size;
  if (op->plan_only) {
    FinishGet(*op, Status::Ok());
    return;
  }
  uint64_t version = op->plan.digest;
  if (op->on_open) {
    auto reply = std::move(op->on_open);
    op->on_open = nullptr;
    uint64_t size = op->size;
    size_t appends = op->plan.order.size();
    std::string endpoint = client_->endpoint();
    uint32_t window = options_.window;
    reply(Status::Ok(), [=](wire::Packer& pk) {
      pk.pack_map(5);
      pk.pack("size");
      pk.pack_uint64(size);
      pk.pack("version");
      pk.pack(Hex64(version));
      pk.pack("appends");
      pk.pack_uint64(appends);
      pk.pack("endpoint");
      pk.pack(endpoint);
      pk.pack("window");
      pk.pack_uint32(window);
    });
  }
  if (!op->local_only) {
    if (auto entry = cache_->Lookup(op->name, version)) {
      GetFromCache(op, *entry);
      return;
    }
  }
  std::vector<FetchItem> items;
  std::optional<RingNode> self = SelfNode();
  uint64_t wanted = op->max_bytes;  // prefix reads: bytes still to cover
  for (const auto& a : op->plan.order) {
    if (a.size == 0) continue;
    if (op->max_bytes > 0 && wanted == 0) break;
    FetchItem item{a, 0, a.chunk_count(), {}};
    if (op->max_bytes > 0) {
      uint64_t take = std::min<uint64_t>(wanted, a.size);
      item.to = static_cast<uint32_t>((take + a.chunk_size - 1) / a.chunk_size);
      wanted -= take;
    }
    if (op->local_only) {
      if (!self) {
        FinishGet(*op, Status::Unavailable("this node is not on the ring"));
        return;
      }
      item.sources.push_back(*self);
    } else {
      item.sources = op->sources[a.id];
    }
    items.push_back(std::move(item));
  }
  // A stream task's read of its input snapshot (once per task) does not fill the cache: it
  // would write the whole input to this node's disk beside the replicas' copies.
  if (!op->local_only && op->max_bytes == 0 && !op->snapshot && cache_->Fits(op->size) &&
      op->size > 0) {
    op->fill_path = cache_->FillPath(op->name);
    op->fill_fd = ::open(op->fill_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  }
  op->total_chunks = 0;
  for (const auto& item : items) op->total_chunks += item.to - item.from;
  if (op->tool.empty()) {
    // In-process: the bytes collect in op->data; one allocation instead of a doubling series.
    uint64_t cover = 0;
    for (const auto& item : items) {
      cover +=
          std::min<uint64_t>(item.meta.size, static_cast<uint64_t>(item.to) * item.meta.chunk_size);
    }
    op->data.reserve(cover);
  }
  auto fetch =
      std::make_shared<Fetch>(MakeFetchEnv(std::chrono::milliseconds(options_.transfer_timeout_ms)),
                              op->stream, op->name, op->plan.file.gen, std::move(items));
  fetch->manual_ack = !op->tool.empty();
  if (!op->tool.empty() && op->fill_fd < 0) {
    // Nothing to keep here: the replicas send straight to rainctl, and the chunks cross the
    // network (and CurveZMQ) once instead of twice.
    fetch->direct_reader = op->tool;
    fetch->direct_reader_client = op->tool_client;
  }
  GetOp* raw = op.get();
  fetch->on_chunk = [this, raw](transport::StreamMsg& msg, const FetchItem&, uint32_t) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.chunk_bytes_in += msg.data.size();
    }
    if (raw->fill_fd >= 0) {
      if (!PwriteAll(raw->fill_fd, msg.data.data(), msg.data.size(), raw->fill_offset).ok()) {
        ::close(raw->fill_fd);  // the cache is best effort
        raw->fill_fd = -1;
      }
    }
    raw->fill_offset += msg.data.size();
    if (!raw->tool.empty()) {
      if (!client_->Send(raw->tool, transport::ShareFrame(*msg.frame))) {
        return Status::Unavailable("the client's receive queue is full");
      }
      // The last chunk is on its way to the client: release the source now rather than after
      // the client's final ack (the end frame follows the data in order).
      if (msg.seq + 1 == raw->total_chunks) raw->fetch->AckThrough(msg.seq);
    } else {
      raw->data.append(msg.data);
    }
    return Status::Ok();
  };
  fetch->on_corrupt = [this, raw](const RingNode& source, const AppendMeta& a, uint32_t chunk,
                                  const std::string& what) {
    Log()->error(
        "event=corruption_reported op=get file={} append={} chunk={} replica={} "
        "what=\"{}\"",
        raw->name, Hex64(a.id), chunk, source.id.str(), what);
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.corruptions_detected;
    }
    raw->corrupt.push_back(source.id.str() + ": " + what);
  };
  fetch->on_done = [this, raw](Status st) { FinishGet(*raw, st); };
  op->fetch = fetch;
  fetch->Start();
}

void HydfsService::GetFromCache(GetPtr op, const FileCache::Entry& entry) {
  op->cached = true;
  op->cache_fd = ::open(entry.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (op->cache_fd < 0) {
    FinishGet(*op, Status::IOError("cannot open the cached copy: " + std::string(strerror(errno))));
    return;
  }
  op->size = entry.size;
  op->cache_chunks = (entry.size + options_.chunk_size - 1) / options_.chunk_size;
  if (op->tool.empty()) {
    uint64_t n = op->max_bytes > 0 ? std::min<uint64_t>(op->max_bytes, entry.size) : entry.size;
    op->data.resize(n);
    Status st = PreadAll(op->cache_fd, op->data.data(), n, 0);
    FinishGet(*op, st);
    return;
  }
  PumpCacheRead(*op);
}

void HydfsService::PumpCacheRead(GetOp& op) {
  while (op.cache_sent < op.cache_chunks && op.cache_sent < op.cache_acked + options_.window) {
    uint64_t offset = op.cache_sent * options_.chunk_size;
    size_t len = static_cast<size_t>(std::min<uint64_t>(options_.chunk_size, op.size - offset));
    auto frame = transport::ChunkFrameFilled(
        op.stream, op.cache_sent, 0, op.cache_sent + 1 == op.cache_chunks, len,
        [&](char* buf) { return PreadAll(op.cache_fd, buf, len, offset); });
    if (!frame.ok()) {
      FinishGet(op, frame.status());
      return;
    }
    if (!client_->Send(op.tool, std::move(frame.value()))) {
      FinishGet(op, Status::Unavailable("the client's receive queue is full"));
      return;
    }
    ++op.cache_sent;
  }
  // Everything is queued to the client, in order, ahead of the final frame: done. (Its acks only
  // pace the window; waiting for the last one would add a round trip to every get.)
  if (op.cache_sent >= op.cache_chunks) FinishGet(op, Status::Ok());
}

void HydfsService::OnGetFrame(GetOp& op, transport::StreamMsg& msg) {
  using transport::StreamKind;
  if (op.finished) return;
  if (msg.lane == kToolLane) {
    op.last_tool = Clock::now();
    if (msg.kind == StreamKind::kEnd) {
      if (op.fetch) op.fetch->Abort(Status::Unavailable("the client aborted"));
      FinishGet(op, Status::Unavailable("the client aborted: " + msg.status.ToString()));
      return;
    }
    if (msg.kind != StreamKind::kAck) return;
    if (op.cache_fd >= 0) {
      op.cache_acked = std::max(op.cache_acked, msg.seq + 1);
      PumpCacheRead(op);
    } else if (op.fetch) {
      op.fetch->AckThrough(msg.seq);
    }
    return;
  }
  if (op.fetch) op.fetch->OnFrame(msg);
}

void HydfsService::FinishGet(GetOp& op, Status status) {
  if (op.finished) return;
  op.finished = true;
  if (op.timer != 0) loop_.CancelTimer(op.timer);
  client_->Unregister(op.stream);
  if (op.cache_fd >= 0) ::close(op.cache_fd);
  op.cache_fd = -1;
  if (!op.fill_path.empty()) {
    bool good = status.ok() && op.fill_fd >= 0 && op.fill_offset == op.size;
    if (op.fill_fd >= 0) ::close(op.fill_fd);
    op.fill_fd = -1;
    if (good) {
      cache_->Insert(op.name, op.plan.digest, op.fill_path, op.size);
    } else {
      cache_->Discard(op.fill_path);
    }
  }
  uint64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - op.started).count();
  std::vector<std::string> sources =
      op.fetch ? op.fetch->sources_used() : std::vector<std::string>{};
  Log()->info(
      "event=op_done op={} file={} bytes={} cached={} sources={} corrupt={} us={} "
      "status=\"{}\"",
      op.local_only  ? "getfromreplica"
      : op.plan_only ? "snapshot"
                     : "get",
      op.name, op.size, op.cached, sources.size(), op.corrupt.size(), us, status.ToString());
  if (op.metric) {
    // The payload its caller gets: the file streamed to rainctl, or the bytes handed over
    // in-process (a prefix read fetches whole chunks and hands over `max_bytes`).
    uint64_t bytes = op.size;
    if (op.tool.empty()) {
      bytes = op.data.size();
      if (op.max_bytes > 0) bytes = std::min<uint64_t>(bytes, op.max_bytes);
    }
    RecordOp(*op.metric, op.requested, status, bytes);
  }
  std::string name = op.name;
  uint64_t size = op.size, version = op.plan.digest;
  bool cached = op.cached;
  std::vector<std::string> corrupt = op.corrupt;
  wire::BodyWriter result = [=](wire::Packer& pk) {
    pk.pack_map(7);
    pk.pack("file");
    pk.pack(name);
    pk.pack("bytes");
    pk.pack_uint64(size);
    pk.pack("version");
    pk.pack(Hex64(version));
    pk.pack("cached");
    pk.pack(cached);
    pk.pack("elapsed_us");
    pk.pack_uint64(us);
    pk.pack("sources");
    pk.pack(sources);
    pk.pack("corrupt");
    pk.pack(corrupt);
  };
  if (op.on_open) {
    auto reply = std::move(op.on_open);
    op.on_open = nullptr;
    reply(status, {});
  } else if (!op.tool.empty()) {
    client_->Send(op.tool, transport::EndFrame(op.stream, kToolLane, status,
                                               status.ok() ? result : wire::BodyWriter{}));
  }
  if (op.on_done) {
    auto done = std::move(op.on_done);
    op.on_done = nullptr;
    done(status, result);
  }
  if (op.fetch && !op.fetch->finished()) op.fetch->Abort(status);
  uint64_t stream = op.stream;
  loop_.Post([this, stream] { gets_.erase(stream); });
}

// ---- in-process reads (the log shipper, the stream engine) ----

void HydfsService::Get(const std::string& name, std::function<void(Result<std::string>)> done) {
  ReadInProcess(OpKind::kGet, name, 0, std::nullopt, std::move(done));
}

void HydfsService::GetPrefix(const std::string& name, uint64_t max_bytes,
                             std::function<void(Result<std::string>)> done) {
  ReadInProcess(OpKind::kGetPrefix, name, max_bytes, std::nullopt, std::move(done));
}

void HydfsService::GetSnapshot(const std::string& name, const FileSnapshot& snapshot,
                               std::function<void(Result<std::string>)> done) {
  ReadInProcess(OpKind::kGetSnapshot, name, 0, snapshot, std::move(done));
}

void HydfsService::ReadInProcess(OpKind kind, const std::string& name, uint64_t max_bytes,
                                 std::optional<FileSnapshot> snapshot,
                                 std::function<void(Result<std::string>)> done) {
  TimePoint requested = Clock::now();
  loop_.Post([this, kind, requested, name, max_bytes, snapshot, done = std::move(done)] {
    auto op = std::make_shared<GetOp>();
    op->metric = kind;
    op->requested = requested;
    op->name = name;
    op->max_bytes = max_bytes;
    op->snapshot = snapshot;
    op->stream = transport::NewStreamId();
    GetOp* raw = op.get();
    op->on_done = [raw, done](Status st, wire::BodyWriter) {
      if (!st.ok()) {
        done(st);
        return;
      }
      if (raw->max_bytes > 0 && raw->data.size() > raw->max_bytes) {
        raw->data.resize(raw->max_bytes);
      }
      done(std::move(raw->data));
    };
    StartGet(op);
  });
}

void HydfsService::Snapshot(const std::string& name,
                            std::function<void(Result<FileSnapshot>)> done) {
  TimePoint requested = Clock::now();
  done = [this, requested, done = std::move(done)](Result<FileSnapshot> r) {
    RecordOp(OpKind::kSnapshot, requested, r.status(), 0);
    done(std::move(r));
  };
  loop_.Post([this, name, done = std::move(done)] {
    Reconcile(name, /*background=*/false, /*include_self_copy=*/false,
              [this, name, done](Status merged, uint64_t, uint32_t) {
                // Without the merge (a replica down) the order read below still holds unless
                // the primary lacks an append another replica has; GetSnapshot then says so.
                if (!merged.ok() && merged.code() != StatusCode::kNotFound) {
                  Log()->warn("event=snapshot_unmerged file={} error=\"{}\"", name,
                              merged.ToString());
                }
                auto op = std::make_shared<GetOp>();
                op->name = name;
                op->plan_only = true;
                op->stream = transport::NewStreamId();
                GetOp* raw = op.get();
                op->on_done = [raw, done](Status st, wire::BodyWriter) {
                  if (!st.ok()) {
                    done(st);
                    return;
                  }
                  done(FileSnapshot{raw->plan.file.gen, raw->plan.order.size(), raw->size,
                                    raw->plan.digest});
                };
                StartGet(op);
              });
  });
}

}  // namespace rs::hydfs
