#include "daemon/hydfs/hydfs_service.h"

#include <unistd.h>

#include <filesystem>
#include <future>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/legacy.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/transport/security.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace fs = std::filesystem;
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

bool ParseU64(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::string ArgOf(const HydfsService::Args& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? "" : it->second;
}

}  // namespace

HydfsService::HydfsService(HydfsOptions options) : options_(std::move(options)), loop_("hydfs") {}

HydfsService::~HydfsService() { Stop(); }

Result<membership::Ports> HydfsService::Bind() {
  if (options_.replicas < 1) return Status::InvalidArgument("hydfs_replicas must be at least 1");
  if (options_.write_quorum < 1 || options_.write_quorum > options_.replicas) {
    return Status::InvalidArgument("hydfs_write_quorum must be between 1 and hydfs_replicas");
  }
  if (options_.chunk_size < 4096 || options_.chunk_size > (16u << 20)) {
    return Status::InvalidArgument("hydfs_chunk_size must be between 4096 and 16777216 bytes");
  }
  StoreOptions so;
  so.dir = options_.dir + "/store";
  so.wipe = true;
  so.quota_bytes = options_.quota_bytes;
  auto store = Store::Open(so);
  if (!store.ok()) return store.status();
  store_ = std::move(store.value());
  StoreOptions lo = so;
  lo.dir = options_.dir + "/legacy";
  lo.quota_bytes = 0;  // legacy blobs were counted when written; they only ever shrink
  auto legacy = Store::Open(lo);
  if (!legacy.ok()) return legacy.status();
  legacy_ = std::move(legacy.value());
  cache_ = std::make_unique<FileCache>(options_.dir + "/cache", options_.cache_bytes);
  RS_RETURN_IF_ERROR(cache_->Init());

  server_ = std::make_unique<transport::RpcServer>(&loop_, "hydfs");
  transport::SocketOptions rpc_opts;
  rpc_opts.max_message_bytes = 64 << 20;  // manifests of very large files
  auto rpc_port = server_->Listen(options_.host, options_.rpc_port, rpc_opts);
  if (!rpc_port.ok()) return rpc_port.status();
  serve_ = std::make_unique<transport::DataPort>(&loop_, "hydfs-serve");
  auto data_port = serve_->Listen(options_.host, options_.data_port);
  if (!data_port.ok()) return data_port.status();
  client_ = std::make_unique<transport::DataPort>(&loop_, "hydfs-client");
  auto client_port = client_->Listen(options_.host, 0);
  if (!client_port.ok()) return client_port.status();
  rpc_ = std::make_unique<transport::AsyncRpcClient>(&loop_);
  io_ = std::make_unique<WorkerPool>(2);
  syncer_ = std::make_unique<WorkerPool>(1);
  return membership::Ports{{"hydfs", *rpc_port}, {"hydfs_data", *data_port}};
}

void HydfsService::Start(membership::MembershipService* membership) {
  membership_ = membership;
  using wire::MsgType;
  auto handle = [this](MsgType type, void (HydfsService::*fn)(const wire::Envelope&,
                                                              const transport::Responder&)) {
    server_->Handle(type, [this, fn](const wire::Envelope& env, const transport::Responder& r) {
      (this->*fn)(env, r);
    });
  };
  handle(MsgType::kHydfsHead, &HydfsService::OnHead);
  handle(MsgType::kHydfsManifest, &HydfsService::OnManifest);
  handle(MsgType::kHydfsReserve, &HydfsService::OnReserve);
  handle(MsgType::kHydfsPut, &HydfsService::OnPut);
  handle(MsgType::kHydfsRead, &HydfsService::OnRead);
  handle(MsgType::kHydfsApplyOrder, &HydfsService::OnApplyOrder);
  handle(MsgType::kHydfsRemove, &HydfsService::OnRemove);
  handle(MsgType::kHydfsList, &HydfsService::OnList);
  serve_->SetFallback([this](transport::StreamMsg& msg) { OnServeFrame(msg); });
  ring_ = std::make_shared<Ring>();
  repair_budget_at_ = Clock::now();
  loop_.AddPeriodic(std::chrono::milliseconds(100), [this] { PollView(); });
  loop_.AddPeriodic(std::chrono::milliseconds(250), [this] { CheckServeIdle(); });
  loop_.AddPeriodic(std::chrono::milliseconds(options_.repair_interval_ms),
                    [this] { RepairScan(); });
  loop_.Post([this] { PollView(); });
  loop_.Start();
}

void HydfsService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  loop_.Stop();
  loop_.Join();
  // Sockets and ops are destroyed with the service; the pool drains its queue first.
  io_.reset();
  syncer_.reset();
}

std::string HydfsService::SelfId() const { return self_id_; }

std::optional<RingNode> HydfsService::SelfNode() const {
  for (const auto& n : ring_->nodes()) {
    if (n.id.str() == self_id_) return n;
  }
  return std::nullopt;
}

void HydfsService::Io(std::function<Status()> work, std::function<void(Status)> then) {
  io_->Submit([this, work = std::move(work), then = std::move(then)]() mutable {
    Status st = work();
    loop_.Post([st, then = std::move(then)] { then(st); });
  });
}

void HydfsService::SyncLater(uint64_t append_id) {
  syncer_->Submit([this, append_id] {
    Status st = store_->SyncBlob(append_id);
    // A blob removed meanwhile is fine; anything else is worth a warning.
    if (!st.ok() && st.code() != StatusCode::kNotFound &&
        st.message().find("No such file") == std::string::npos) {
      Log()->warn("event=blob_sync_failed append={} error=\"{}\"", Hex64(append_id), st.ToString());
    }
  });
}

FetchEnv HydfsService::MakeFetchEnv(Clock::duration idle) {
  FetchEnv env;
  env.loop = &loop_;
  env.port = client_.get();
  env.rpc = rpc_.get();
  env.window = options_.window;
  env.idle_timeout = idle;
  return env;
}

std::vector<RingNode> HydfsService::ReplicasOf(const std::string& name) const {
  return ring_->Successors(FileId(name), options_.replicas);
}

void HydfsService::PollView() {
  auto view = membership_->view();
  if (view == view_) return;
  view_ = view;
  std::string self = view->self.str();
  if (!self_id_.empty() && self != self_id_) QuarantineStore(self_id_, self);
  self_id_ = self;
  if (client_id_.empty()) client_id_ = self;
  auto ring = std::make_shared<Ring>(Ring::FromView(*view));
  if (ring->Fingerprint() == ring_->Fingerprint()) return;
  RingPtr old = ring_;
  ring_ = ring;
  ring_nodes_.store(ring_->size(), std::memory_order_relaxed);
  OnRingChanged(old);
}

// This process came back under a new member id (it was expelled and rejoined). The new member
// holds no replica of its own, but its old copies may hold the only copy of acknowledged appends
// (a wrong verdict can expel healthy nodes, even a majority): they become legacy copies, handed
// over to the current replicas by the repair scan and dropped once those hold every append.
// Runs on the loop thread on purpose: no head, manifest or read may see an old copy as the new
// member's replica in between. Renames and one LMDB commit per file, once per rejoin.
void HydfsService::QuarantineStore(const std::string& old_id, const std::string& new_id) {
  auto start = Clock::now();
  QuarantineResult r = QuarantineAll(*store_, *legacy_);
  last_write_.clear();
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.legacy_quarantined += r.files;
  }
  Log()->warn(
      "event=store_quarantined reason=new_member_id old={} new={} files={} bytes={} "
      "appends_missing={} ms={}",
      old_id, new_id, r.files, r.bytes, r.appends_lost, ToMillis(Clock::now() - start));
}

void HydfsService::OnRingChanged(const RingPtr& old_ring) {
  Log()->info("event=ring_changed nodes={} was={}", ring_->size(), old_ring->size());
  ring_changed_at_ = Clock::now();
  // Operations waiting on a node that left the ring give up on it now, not at their deadline.
  std::set<NodeId> gone;
  for (const auto& n : old_ring->nodes()) {
    if (!ring_->Find(n.id)) gone.insert(n.id);
  }
  if (!gone.empty()) {
    // Frames queued to a dead peer would wait in its PUSH pipe forever.
    for (const auto& n : old_ring->nodes()) {
      if (gone.count(n.id)) {
        serve_->Forget(n.data_endpoint());
        client_->Forget(n.data_endpoint());
      }
    }
    for (auto& [stream, op] : puts_) {
      for (size_t i = 0; i < op->lanes.size(); ++i) {
        if (gone.count(op->lanes[i].node.id) && !op->lanes[i].failed && !op->lanes[i].committed) {
          PutLaneFailed(*op, i,
                        Status::Unavailable(op->lanes[i].node.id.str() + " was declared failed"));
        }
      }
    }
    auto fail_fetch = [&](const std::shared_ptr<Fetch>& f) {
      if (f) {
        for (const auto& id : gone) f->SourceFailed(id);
      }
    };
    std::vector<GetPtr> gets;
    for (auto& [s, g] : gets_) gets.push_back(g);
    for (auto& g : gets) fail_fetch(g->fetch);
    std::vector<std::shared_ptr<Fetch>> fetches;
    for (auto& [s, f] : fetches_) fetches.push_back(f);
    for (auto& f : fetches) fail_fetch(f);
  }
  // One scan once the ring has been stable for the settle delay (a later change restarts it).
  loop_.AddTimer(
      std::chrono::milliseconds(options_.repair_settle_ms) + std::chrono::milliseconds(5),
      [this] { RequestScan(); });
}

// --- commands ---

void HydfsService::Command(const std::string& cmd, Args args, Reply done) {
  TimePoint requested = Clock::now();
  loop_.Post([this, cmd, args = std::move(args), requested, done = std::move(done)] {
    CtlCommand(cmd, args, requested, done);
  });
}

void HydfsService::CtlCommand(const std::string& cmd, const Args& args, TimePoint requested,
                              Reply done) {
  // `done` of a command that is one operation (op_metrics.h), recorded when it is answered.
  auto timed = [this, requested](OpKind kind, Reply reply) -> Reply {
    return [this, kind, requested, reply = std::move(reply)](Status st, wire::BodyWriter body) {
      RecordOp(kind, requested, st, 0);
      reply(st, std::move(body));
    };
  };
  if (ArgOf(args, transport::kCallerArg) == transport::kCallerClient) {
    std::string endpoint = ArgOf(args, "endpoint");
    if (endpoint.rfind("tcp://", 0) == 0) client_->MarkClient(endpoint);
  }
  if (cmd == "hydfs.create" || cmd == "hydfs.append") {
    auto op = std::make_shared<PutOp>();
    op->create = cmd == "hydfs.create";
    op->metric = op->create ? OpKind::kCreate : OpKind::kAppend;
    op->requested = requested;
    op->name = ArgOf(args, "name");
    uint64_t stream = 0;
    if (!ParseU64(ArgOf(args, "size"), &op->meta.size) ||
        !ParseU64(ArgOf(args, "stream"), &stream) || stream == 0 ||
        ArgOf(args, "endpoint").rfind("tcp://", 0) != 0) {
      timed(*op->metric, done)(
          Status::InvalidArgument("create/append needs name, size, stream and endpoint"), {});
      return;
    }
    op->stream = stream;
    op->tool = ArgOf(args, "endpoint");
    op->on_open = done;
    StartPut(op);
    return;
  }
  if (cmd == "hydfs.get") {
    auto op = std::make_shared<GetOp>();
    op->name = ArgOf(args, "name");
    op->local_only = ArgOf(args, "local") == "1";
    op->metric = op->local_only ? OpKind::kGetFromReplica : OpKind::kGet;
    op->requested = requested;
    uint64_t stream = 0;
    if (!ParseU64(ArgOf(args, "stream"), &stream) || stream == 0 ||
        ArgOf(args, "endpoint").rfind("tcp://", 0) != 0) {
      timed(*op->metric, done)(Status::InvalidArgument("get needs name, stream and endpoint"), {});
      return;
    }
    op->stream = stream;
    op->tool = ArgOf(args, "endpoint");
    op->tool_client = ArgOf(args, transport::kCallerArg) == transport::kCallerClient;
    op->on_open = done;
    StartGet(op);
    return;
  }
  if (cmd == "hydfs.merge") {
    done = timed(OpKind::kMerge, std::move(done));
    std::string name = ArgOf(args, "name");
    Status st = ValidateName(name);
    if (!st.ok()) {
      done(st, {});
      return;
    }
    Log()->info("event=op_start op=merge file={} client={}", name, self_id_);
    auto start = Clock::now();
    Reconcile(name, /*background=*/false, /*include_self_copy=*/false,
              [this, name, done, start](Status st, uint64_t moved, uint32_t changed) {
                uint64_t ms = ToMillis(Clock::now() - start);
                Log()->info(
                    "event=op_done op=merge file={} status=\"{}\" moved_bytes={} "
                    "replicas_changed={} ms={}",
                    name, st.ToString(), moved, changed, ms);
                done(st, [=, this](wire::Packer& pk) {
                  pk.pack_map(4);
                  pk.pack("file");
                  pk.pack(name);
                  pk.pack("moved_bytes");
                  pk.pack_uint64(moved);
                  pk.pack("replicas_changed");
                  pk.pack_uint32(changed);
                  pk.pack("elapsed_ms");
                  pk.pack_uint64(ms);
                });
              });
    return;
  }
  if (cmd == "hydfs.ls") {
    CmdLs(args, timed(OpKind::kLs, std::move(done)));
    return;
  }
  if (cmd == "hydfs.lsall") {
    CmdLsAll(ArgOf(args, "prefix"), requested, done);
    return;
  }
  if (cmd == "hydfs.rm") {
    CmdRm(ArgOf(args, "name"), requested, done);
    return;
  }
  if (cmd == "hydfs.liststore") {
    auto files = store_->List(ArgOf(args, "prefix"));
    uint64_t ring_id = StableHash64(self_id_);
    uint64_t used = store_->used_bytes();
    done(Status::Ok(), [=, this](wire::Packer& pk) {
      pk.pack_map(4);
      pk.pack("node");
      pk.pack(self_id_);
      pk.pack("ring_id");
      pk.pack(Hex64(ring_id));
      pk.pack("used_bytes");
      pk.pack_uint64(used);
      pk.pack("files");
      pk.pack_array(static_cast<uint32_t>(files.size()));
      for (const auto& f : files) {
        pk.pack_map(6);
        pk.pack("name");
        pk.pack(f.name);
        pk.pack("file_id");
        pk.pack(Hex64(FileId(f.name)));
        pk.pack("size");
        pk.pack_uint64(f.size);
        pk.pack("appends");
        pk.pack_uint64(f.appends);
        pk.pack("merged");
        pk.pack_uint64(f.merged);
        pk.pack("version");
        pk.pack(Hex64(f.digest));
      }
    });
    return;
  }
  if (cmd == "hydfs.stats") {
    HydfsStats s;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      s = stats_;
    }
    s.cache_hits = cache_->hits();
    s.cache_misses = cache_->misses();
    uint64_t cache_used = cache_->used_bytes(), cache_cap = cache_->capacity_bytes();
    uint64_t used = store_->used_bytes();
    size_t files = store_->List().size();
    uint64_t legacy_used = legacy_->used_bytes();
    size_t legacy_files = legacy_->List().size();
    size_t backing_off = backoff_.waiting();
    done(Status::Ok(), [=, this](wire::Packer& pk) {
      pk.pack_map(26);
      pk.pack("repair_scans");
      pk.pack_uint64(s.repair_scans);
      pk.pack("repair_bytes_moved");
      pk.pack_uint64(s.repair_bytes_moved);
      pk.pack("repairs_empty");
      pk.pack_uint64(s.repairs_empty);
      pk.pack("repair_backoff_files");
      pk.pack_uint64(backing_off);
      pk.pack("legacy_quarantined");
      pk.pack_uint64(s.legacy_quarantined);
      pk.pack("legacy_handed_over");
      pk.pack_uint64(s.legacy_handed_over);
      pk.pack("legacy_dropped");
      pk.pack_uint64(s.legacy_dropped);
      pk.pack("legacy_files");
      pk.pack_uint64(legacy_files);
      pk.pack("legacy_used_bytes");
      pk.pack_uint64(legacy_used);
      pk.pack("self");
      pk.pack(self_id_);
      pk.pack("chunk_bytes_in");
      pk.pack_uint64(s.chunk_bytes_in);
      pk.pack("chunk_bytes_out");
      pk.pack_uint64(s.chunk_bytes_out);
      pk.pack("chunk_bytes_stored");
      pk.pack_uint64(s.chunk_bytes_stored);
      pk.pack("corruptions_detected");
      pk.pack_uint64(s.corruptions_detected);
      pk.pack("chunks_repaired");
      pk.pack_uint64(s.chunks_repaired);
      pk.pack("repairs_started");
      pk.pack_uint64(s.repairs_started);
      pk.pack("repairs_done");
      pk.pack_uint64(s.repairs_done);
      pk.pack("extras_dropped");
      pk.pack_uint64(s.extras_dropped);
      pk.pack("cache_hits");
      pk.pack_uint64(s.cache_hits);
      pk.pack("cache_misses");
      pk.pack_uint64(s.cache_misses);
      pk.pack("cache_used_bytes");
      pk.pack_uint64(cache_used);
      pk.pack("cache_capacity_bytes");
      pk.pack_uint64(cache_cap);
      pk.pack("store_used_bytes");
      pk.pack_uint64(used);
      pk.pack("store_files");
      pk.pack_uint64(files);
      pk.pack("ring_nodes");
      pk.pack_uint64(ring_->size());
      pk.pack("replicas");
      pk.pack_uint32(options_.replicas);
    });
    return;
  }
  done(Status::InvalidArgument("unknown hydfs command '" + cmd + "'"), {});
}

void HydfsService::CmdLs(const Args& args, Reply done) {
  std::string name = ArgOf(args, "name");
  Status st = ValidateName(name);
  if (!st.ok()) {
    done(st, {});
    return;
  }
  auto replicas = ReplicasOf(name);
  if (replicas.empty()) {
    done(Status::Unavailable("no HyDFS node is on the ring"), {});
    return;
  }
  CollectManifests(
      name, replicas,
      [this, name, replicas, done](std::vector<std::optional<Manifest>> copies,
                                   std::vector<bool> answered) {
        bool any = false;
        for (const auto& c : copies) any |= c.has_value();
        if (!any) {
          done(Status::NotFound("no such file: " + name), {});
          return;
        }
        auto plan = PlanMerge(copies);
        done(Status::Ok(), [=](wire::Packer& pk) {
          pk.pack_map(5);
          pk.pack("name");
          pk.pack(name);
          pk.pack("file_id");
          pk.pack(Hex64(FileId(name)));
          pk.pack("size");
          pk.pack_uint64(plan.ok() ? Manifest{plan->file, plan->order, 0}.size() : 0);
          pk.pack("version");
          pk.pack(plan.ok() ? Hex64(plan->digest) : "");
          pk.pack("replicas");
          pk.pack_array(static_cast<uint32_t>(replicas.size()));
          for (size_t i = 0; i < replicas.size(); ++i) {
            pk.pack_map(7);
            pk.pack("node");
            pk.pack(replicas[i].id.str());
            pk.pack("ring_id");
            pk.pack(Hex64(replicas[i].ring_id));
            pk.pack("answered");
            pk.pack(static_cast<bool>(answered[i]));
            pk.pack("has_copy");
            pk.pack(copies[i].has_value());
            pk.pack("size");
            pk.pack_uint64(copies[i] ? copies[i]->size() : 0);
            pk.pack("appends");
            pk.pack_uint64(copies[i] ? copies[i]->appends.size() : 0);
            pk.pack("version");
            pk.pack(copies[i] ? Hex64(OrderDigest(copies[i]->file.gen, copies[i]->appends)) : "");
          }
        });
      });
}

// --- in-process API ---

void HydfsService::Create(const std::string& name, std::string data,
                          std::function<void(Status)> done, bool quiet) {
  PutFromMemory(/*create=*/true, name, std::move(data), std::move(done), quiet);
}

void HydfsService::Append(const std::string& name, std::string data,
                          std::function<void(Status)> done, bool quiet) {
  PutFromMemory(/*create=*/false, name, std::move(data), std::move(done), quiet);
}

void HydfsService::PutFromMemory(bool create, const std::string& name, std::string data,
                                 std::function<void(Status)> done, bool quiet) {
  auto mp = std::make_shared<MemoryPut>();
  mp->requested = Clock::now();
  mp->create = create;
  mp->quiet = quiet;
  mp->name = name;
  mp->data = std::move(data);
  mp->done = std::move(done);
  loop_.Post([this, mp] { LaunchMemoryPut(mp); });
}

// --- metrics ---

void HydfsService::RecordOp(OpKind kind, TimePoint requested, const Status& status,
                            uint64_t bytes) {
  ops_.Record(kind, status.ok(), bytes,
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - requested));
}

HydfsMetrics HydfsService::Metrics() const {
  HydfsMetrics m;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    m.stats = stats_;
  }
  for (OpKind k : kAllOpKinds) m.ops[static_cast<size_t>(k)] = ops_.Take(k);
  m.ring_nodes = ring_nodes_.load(std::memory_order_relaxed);
  if (cache_) {
    m.stats.cache_hits = cache_->hits();
    m.stats.cache_misses = cache_->misses();
    m.cache_used_bytes = cache_->used_bytes();
  }
  // The stores are thread-safe (store.h); these pointers are constant after Bind().
  if (store_) {
    for (const auto& f : store_->List()) {
      ++m.files;
      m.stored_bytes += f.size;
    }
    m.store_used_bytes = store_->used_bytes();
  }
  if (legacy_) {
    for (const auto& f : legacy_->List()) {
      ++m.legacy_files;
      m.legacy_stored_bytes += f.size;
    }
  }
  return m;
}

}  // namespace rs::hydfs
