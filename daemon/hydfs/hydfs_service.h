// HydfsService: the HyDFS node. Every raind is a storage node (it serves its Store to peers) and
// a client (it runs file operations for rainctl and for other layers of the daemon).
//
// Sockets, all owned by one EventLoop thread ("hydfs"):
//   - a ROUTER for control RPCs from peers (kHydfs* messages), advertised as port "hydfs";
//   - the serving DataPort (PULL, advertised as "hydfs_data"): chunks written to this replica,
//     acks of chunks it sends to readers;
//   - the client DataPort (PULL, not advertised): chunks and acks of operations this node runs
//     as a client, and of rainctl transfers;
//   - DEALERs (AsyncRpcClient) and PUSHes to peers.
// Blocking disk work (fsync, LMDB commits) runs on a small WorkerPool and reports back through
// EventLoop::Post. Placement comes from the membership view, polled every 100 ms and published
// as an immutable Ring.
//
// Protocols (README.md in this folder has the wire bodies and the data-loss promise):
//   write: reserve the name on a write quorum (create only) -> open a put stream on every
//          replica -> stream chunks to all of them with a window -> each replica fsyncs and
//          commits, then ends its lane -> ok once write_quorum replicas committed.
//   read:  fetch every replica's manifest -> merge them (merge.h) into the version to return ->
//          serve from the cache when it holds that version, else fetch chunks (fetch.h).
//   merge / repair: see reconcile.cc.
//
// Thread-safety: Command(), Metrics() and the in-process API may be called from any thread;
// their callbacks run on the hydfs loop thread and must not block. Bind/Start/Stop from the main
// thread.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "daemon/hydfs/cache.h"
#include "daemon/hydfs/fetch.h"
#include "daemon/hydfs/merge.h"
#include "daemon/hydfs/op_metrics.h"
#include "daemon/hydfs/repair_policy.h"
#include "daemon/hydfs/ring.h"
#include "daemon/hydfs/store.h"
#include "daemon/membership/membership_service.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/event_loop.h"
#include "shared/transport/rpc.h"
#include "shared/util/worker_pool.h"

namespace rs::hydfs {

struct HydfsOptions {
  std::string host = "127.0.0.1";
  uint16_t rpc_port = 0;   // 0: the OS picks
  uint16_t data_port = 0;  // 0: the OS picks
  std::string dir;         // <data_dir>/hydfs: store/, legacy/ and cache/ (all emptied at start)
  // Replicas per file. Every node of a cluster must use the same value.
  uint32_t replicas = 3;
  // Replicas that must commit (fsync) a create or append before it is acknowledged. With the
  // default 2 of 3 a write whose third replica died mid-transfer still completes; every write
  // is sent to all replicas and waits for each live one.
  uint32_t write_quorum = 2;
  // When replicas fsync a write's data. false (default): a replica acknowledges once the data is
  // written to its page cache and the manifest entry is committed durably in LMDB; the data is
  // fsynced right after, in the background (as HDFS acknowledges after hflush). A completed write
  // then survives the crash of any process, and of a machine once the background sync finished
  // (a blob left short by a power loss fails its CRC and is repaired from another replica).
  // true: the data is fsynced before the acknowledgement (slower on most disks).
  bool fsync_before_ack = false;
  uint32_t chunk_size = 1 << 20;  // bytes per chunk of new appends
  uint32_t window = 16;           // unacknowledged chunks per stream (memory: window*chunk_size)
  uint32_t transfer_timeout_ms = 5000;  // a peer silent this long in a transfer is given up on
  uint32_t rpc_timeout_ms = 2000;       // control RPCs (heads, manifests, opens)
  uint64_t cache_bytes = 256ull << 20;  // client cache capacity; 0 disables
  uint64_t quota_bytes = 0;             // blob bytes this node may store; 0 = the disk's size
  // Repair (re-replication, rebalancing, anti-entropy merges); policy in README.md.
  uint32_t repair_interval_ms = 2000;         // scan period
  uint32_t repair_settle_ms = 1000;           // after a ring change, wait this long before a scan
  uint32_t repair_parallel = 4;               // concurrent repairs started by this node
  uint64_t repair_rate_bytes = 256ull << 20;  // repair bytes/s fetched by this node; 0 = no cap
  uint32_t quiet_ms = 1000;  // a file written within this long is not auto-merged yet
  // Fault injection for tests, 0 (default) in production: a replica waits this long before it
  // commits a write, which widens the window in which a crash leaves a write committed on fewer
  // replicas than the quorum (tests/cluster hydfs-append-retry).
  uint32_t test_commit_delay_ms = 0;
};

struct HydfsStats {
  uint64_t chunk_bytes_in = 0;      // chunk payload received by this node as a client
  uint64_t chunk_bytes_out = 0;     // chunk payload served to readers
  uint64_t chunk_bytes_stored = 0;  // chunk payload written into this node's store
  uint64_t corruptions_detected = 0, chunks_repaired = 0;
  uint64_t repairs_started = 0, repairs_done = 0, extras_dropped = 0;
  uint64_t repair_scans = 0;        // scans that asked the replicas (one per period at most)
  uint64_t repair_bytes_moved = 0;  // bytes fetched by replicas in repairs this node ran
  uint64_t repairs_empty = 0;       // repairs that failed or changed nothing (then backed off)
  uint64_t legacy_quarantined = 0;  // copies moved to legacy on a rejoin under a new id
  uint64_t legacy_handed_over = 0;  // hand-overs of a legacy copy that changed a replica
  uint64_t legacy_dropped = 0;      // legacy copies dropped (safe, removed or superseded)
  uint64_t cache_hits = 0, cache_misses = 0;
};

// What GET /metrics exports of this node's HyDFS (README.md "Metrics"), read at one moment.
struct HydfsMetrics {
  HydfsStats stats;                    // counters since start (cache hits and misses included)
  std::array<OpCounts, kOpKinds> ops;  // by OpKind: operations this node ran as a client
  uint64_t files = 0;                  // live copies in this node's store
  uint64_t stored_bytes = 0;           // their sizes, summed
  uint64_t store_used_bytes = 0;       // blob bytes the store counts (writes in progress too)
  uint64_t legacy_files = 0;           // copies in the legacy store (legacy.h)
  uint64_t legacy_stored_bytes = 0;    // their sizes, summed
  uint64_t cache_used_bytes = 0;       // client cache
  uint64_t ring_nodes = 0;             // nodes on this node's ring
};

class HydfsService {
 public:
  using Args = std::map<std::string, std::string>;
  // Reply of a command: status plus a payload writer (called at most once, on the loop thread).
  using Reply = std::function<void(Status, wire::BodyWriter)>;

  explicit HydfsService(HydfsOptions options);
  ~HydfsService();

  // Opens the store and the legacy store (both emptied: a new process is a new member and holds
  // no blocks) and binds the sockets. Returns the ports to advertise in the member record.
  // (A rejoin under a new id later moves the live copies to the legacy store; see legacy.h.)
  Result<membership::Ports> Bind();
  void Start(membership::MembershipService* membership);
  void Stop();

  // rainctl's hydfs commands, forwarded by the admin service (ctl/README.md lists them).
  void Command(const std::string& cmd, Args args, Reply done);

  // The figures of GET /metrics. Any thread, after Bind(): counters under stats_mu_ or atomic,
  // the stores' listings in their own LMDB read transactions (O(files) records read).
  HydfsMetrics Metrics() const;

  // In-process client API (for the log shipper and the stream engine).
  // `quiet`: logged at debug level at the client and the replicas (the log shipper's own appends
  // must not feed the log they ship).
  // Create and Append retry a transient failure themselves under the same append id (retry.h),
  // so `done` reports either success or a failure that survived the retries. After such a
  // failure the append may still be on some replica; an Append of the same name with the same
  // bytes as the very next append this node starts on that file reuses the failed append's id,
  // so a caller that retries a failed append gets it once, never twice (see README.md).
  void Create(const std::string& name, std::string data, std::function<void(Status)> done,
              bool quiet = false);
  void Append(const std::string& name, std::string data, std::function<void(Status)> done,
              bool quiet = false);
  void Get(const std::string& name, std::function<void(Result<std::string>)> done);
  // The first `max_bytes` bytes of the file (fewer when it is shorter), fetching only the chunks
  // that hold them (e.g. a CSV header). Not cached.
  void GetPrefix(const std::string& name, uint64_t max_bytes,
                 std::function<void(Result<std::string>)> done);
  // Fixes the file's content as of now: merges it first (every replica then holds one order,
  // and later appends land after it), then reports its generation, append count, size and
  // digest. GetSnapshot reads exactly those bytes later, from any node, whatever was appended
  // meanwhile; FailedPrecondition when the file was replaced or the order changed under it.
  void Snapshot(const std::string& name, std::function<void(Result<FileSnapshot>)> done);
  void GetSnapshot(const std::string& name, const FileSnapshot& snapshot,
                   std::function<void(Result<std::string>)> done);
  // Every file under `prefix` on any node, with its holders (what `rainctl lsall` prints);
  // the nodes that did not answer are listed, not an error.
  void ListAll(const std::string& prefix, std::function<void(Result<Listing>)> done);
  // Removes the file from its replicas; the number of replicas that removed it.
  void Remove(const std::string& name, std::function<void(Result<uint64_t>)> done);

 private:
  void PutFromMemory(bool create, const std::string& name, std::string data,
                     std::function<void(Status)> done, bool quiet);
  // `requested`: when the caller asked (the start of the operation's duration).
  void ListAllOnLoop(const std::string& prefix, TimePoint requested,
                     std::function<void(Result<Listing>)> done);
  void RemoveOnLoop(const std::string& name, TimePoint requested,
                    std::function<void(Result<uint64_t>)> done);
  // Get, GetPrefix and GetSnapshot: one read of `kind`, posted to the loop.
  void ReadInProcess(OpKind kind, const std::string& name, uint64_t max_bytes,
                     std::optional<FileSnapshot> snapshot,
                     std::function<void(Result<std::string>)> done);
  // One finished client operation (op_metrics.h); called before its caller is told.
  void RecordOp(OpKind kind, TimePoint requested, const Status& status, uint64_t bytes);
  struct MemoryPut;
  void LaunchMemoryPut(std::shared_ptr<MemoryPut> mp);
  struct Lane;
  struct PutOp;
  struct GetOp;
  struct Inbound;
  struct Outbound;
  struct MergeOp;
  using PutPtr = std::shared_ptr<PutOp>;
  using GetPtr = std::shared_ptr<GetOp>;

  // --- lifecycle and placement (hydfs_service.cc) ---
  void PollView();
  void OnRingChanged(const RingPtr& old_ring);
  std::vector<RingNode> ReplicasOf(const std::string& name) const;
  FetchEnv MakeFetchEnv(Clock::duration idle);
  void Io(std::function<Status()> work, std::function<void(Status)> then);
  // Background fsync (a no-op when already synced) and drop-behind of a committed blob.
  void SyncLater(uint64_t append_id);
  void CtlCommand(const std::string& cmd, const Args& args, TimePoint requested, Reply done);
  void CmdLs(const Args& args, Reply done);
  void CmdLsAll(const std::string& prefix, TimePoint requested, Reply done);
  void CmdRm(const std::string& name, TimePoint requested, Reply done);

  // --- the replica side (replica.cc) ---
  void OnHead(const wire::Envelope& env, const transport::Responder& r);
  void OnManifest(const wire::Envelope& env, const transport::Responder& r);
  void OnReserve(const wire::Envelope& env, const transport::Responder& r);
  void OnPut(const wire::Envelope& env, const transport::Responder& r);
  void OnRead(const wire::Envelope& env, const transport::Responder& r);
  void OnApplyOrder(const wire::Envelope& env, const transport::Responder& r);
  void OnRemove(const wire::Envelope& env, const transport::Responder& r);
  void OnList(const wire::Envelope& env, const transport::Responder& r);
  void OnServeFrame(transport::StreamMsg& msg);
  void InboundChunk(Inbound& in, transport::StreamMsg& msg);
  void FinishInbound(uint64_t stream, Status status);
  void PumpOutbound(Outbound& out);
  void EndOutbound(uint64_t stream, uint8_t lane, const Status& status);
  void CheckServeIdle();
  void RepairChunk(const Manifest& m, const AppendMeta& a, uint32_t chunk);
  std::string SelfId() const;
  std::optional<RingNode> SelfNode() const;  // this node on the current ring, if it is on it

  // --- writes: start, a create's reservation, an append's head (client_write.cc) ---
  void StartPut(PutPtr op);
  // Finishes `op` (transient) when the ring has no replica for it; true if it did.
  bool PutLostRing(PutOp& op, const std::vector<RingNode>& replicas);
  void PutReserve(PutPtr op, int attempt);
  void ReleaseReservation(const PutOp& op);
  void PutHead(PutPtr op);
  // --- writes: open, stream, commit or abort on the replicas' lanes (client_write_lanes.cc) ---
  void PutOpen(PutPtr op);
  void PutPump(PutOp& op);
  void OnPutFrame(PutOp& op, transport::StreamMsg& msg);
  void PutLaneFailed(PutOp& op, size_t lane, const Status& why);
  void PutMaybeDone(PutOp& op);
  void PutCommitSettled(PutOp& op, size_t lane, const Status& st);
  void FinishPut(PutOp& op, Status status);

  // --- reads (client_read.cc) ---
  void StartGet(GetPtr op);
  void GetPlanned(GetPtr op);
  void GetFromCache(GetPtr op, const FileCache::Entry& entry);
  void PumpCacheRead(GetOp& op);
  void OnGetFrame(GetOp& op, transport::StreamMsg& msg);
  void FinishGet(GetOp& op, Status status);
  // Collects the manifests of `name` from `nodes` (nullopt: no copy or no answer). With
  // `read_quorum` > 0, answers once that many replicas answered and the others stayed silent
  // for kReadGrace more (a read needs only a quorum that meets every write quorum; waiting for a
  // dead replica's RPC deadline would stall reads right after a failure).
  void CollectManifests(
      const std::string& name, const std::vector<RingNode>& nodes,
      std::function<void(std::vector<std::optional<Manifest>>, std::vector<bool> answered)> done,
      size_t read_quorum = 0);

  // --- merge and repair (reconcile.cc) ---
  // Makes every reachable replica of `name` hold the merged order; `extra` (a copy held by this
  // node outside the replica set) joins the merge as a source. done(status, bytes moved,
  // replicas changed).
  // `legacy_source` (a legacy copy of this node) also joins as a source; the replicas fetch
  // its appends from this node, which serves them from the legacy store.
  void Reconcile(const std::string& name, bool background, bool include_self_copy,
                 std::function<void(Status, uint64_t, uint32_t)> done, int attempt = 0,
                 std::shared_ptr<const Manifest> legacy_source = nullptr);
  void RepairScan();
  void RequestScan();  // a scan soon: now, or right after the one in progress
  struct ScanEntry;
  void ScanDecide(std::vector<ScanEntry>& entries);
  void StartRepair(const ScanEntry& e, const ScanDecision& d);
  void DropLocalCopy(const FileSummary& s, bool tombstone, const std::string& why);
  void DropLegacyCopy(const FileSummary& s, const std::string& why);
  // On a rejoin under a new member id: every live copy becomes a legacy copy (legacy.h).
  void QuarantineStore(const std::string& old_id, const std::string& new_id);
  Clock::duration RepairDelay(uint64_t bytes);

  HydfsOptions options_;
  transport::EventLoop loop_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Store> legacy_;  // copies held under an earlier member id (legacy.h)
  std::unique_ptr<FileCache> cache_;
  std::unique_ptr<transport::RpcServer> server_;
  std::unique_ptr<transport::DataPort> serve_;   // advertised data port
  std::unique_ptr<transport::DataPort> client_;  // this node's client-side data port
  std::unique_ptr<transport::AsyncRpcClient> rpc_;
  std::unique_ptr<WorkerPool> io_;
  std::unique_ptr<WorkerPool> syncer_;  // background fsyncs of blobs (never delays commits)
  membership::MembershipService* membership_ = nullptr;

  // Loop thread only.
  membership::ViewPtr view_;
  RingPtr ring_;
  std::string self_id_;  // this node's current member id
  // The client name this process writes under: its first member id, kept across rejoins under
  // new ids, so one process's appends stay one client's, in one order (next_seq_ continues).
  std::string client_id_;
  std::unordered_map<uint64_t, PutPtr> puts_;                       // by stream
  std::unordered_map<uint64_t, GetPtr> gets_;                       // by stream
  std::unordered_map<uint64_t, std::unique_ptr<Inbound>> inbound_;  // replica writes, by stream
  std::map<std::pair<uint64_t, uint8_t>, std::unique_ptr<Outbound>> outbound_;  // replica reads
  std::unordered_map<uint64_t, std::shared_ptr<Fetch>> fetches_;        // repair fetches, by stream
  std::map<std::string, std::pair<uint64_t, TimePoint>> reservations_;  // name -> (gen, expiry)
  std::map<uint64_t, uint64_t> next_seq_;  // gen -> this client's next append seq
  // An in-process append that failed after its id was chosen, so it may sit on some replica:
  // name -> its id and a fingerprint of its data. Only the next append to the name may reuse it.
  struct Unsettled {
    uint64_t gen = 0, seq = 0, size = 0, hash = 0, wall_ms = 0;
  };
  std::map<std::string, Unsettled> unsettled_;
  std::map<std::string, TimePoint> last_write_;  // name -> when this replica last took a write
  std::set<std::string> applying_;               // names with an ApplyOrder in progress
  std::set<std::string> repairing_;              // names this node is reconciling
  // Per file, after a repair that failed or changed nothing: 2 s doubling up to 60 s.
  RepairBackoff backoff_{std::chrono::seconds(2), std::chrono::seconds(60)};
  TimePoint ring_changed_at_;
  bool scan_pending_ = false;  // another scan is wanted once the current one has decided
  bool scanning_ = false;
  double repair_budget_ = 0;  // bytes the repair rate limit still allows now
  TimePoint repair_budget_at_;
  bool stopped_ = false;

  mutable std::mutex stats_mu_;
  HydfsStats stats_;                     // guarded by stats_mu_
  OpMetrics ops_;                        // any thread
  std::atomic<uint64_t> ring_nodes_{0};  // ring_->size(), for other threads
};

}  // namespace rs::hydfs
