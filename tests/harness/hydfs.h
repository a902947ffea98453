// HyDFS helpers for cluster tests: file transfers through the real rainctl (create, append, get,
// getfromreplica) into a scratch dir, typed queries (ls, liststore, hydfs-stats, the ring from
// list_mem_ids), the replica set of a file computed independently from the ring ids, test data,
// and searches in a node's log. Every query returns a Result, so an Eventually() predicate can
// treat "no answer yet" as "not yet". Thread-compatible: one test thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "shared/status.h"
#include "tests/harness/cluster.h"
#include "tests/harness/ctl.h"
#include "tests/harness/json.h"

namespace rs::harness {

inline constexpr size_t kHydfsReplicas = 3;        // the daemon's default hydfs_replicas
inline constexpr uint32_t kTestChunkSize = 65536;  // small chunks: small files have several
// A transfer of a few MB over loopback takes well under a second; this bounds a stuck one.
inline constexpr auto kTransferTimeout = std::chrono::seconds(30);

// raind arguments for a HyDFS cluster test (64 KiB chunks), plus `more`.
std::vector<std::string> HydfsArgs(std::vector<std::string> more = {});

// --- test data and local files ---

// `n` pseudo-random bytes from `seed` (a failure reproduces).
std::string RandomBytes(size_t n, uint64_t seed);
Status WriteLocal(const std::string& path, const std::string& data);
// The file's bytes; NotFound when it does not exist.
Result<std::string> ReadLocal(const std::string& path);
bool LocalExists(const std::string& path);

// --- the ring ---

struct RingEntry {
  std::string id;
  uint64_t ring_id = 0;
};
// The ring as `list_mem_ids --json` at `node` reports it (alive and suspect members), sorted by
// ring id.
Result<std::vector<RingEntry>> RingAt(const RaindProcess& node);
// The first `n` distinct members clockwise from `file_id`: ring_id >= file_id, wrapping.
std::vector<std::string> SuccessorsOf(const std::vector<RingEntry>& ring, uint64_t file_id,
                                      size_t n = kHydfsReplicas);
// 16 hex digits (as rainctl prints ids); Corruption otherwise.
Result<uint64_t> ParseHex64(const std::string& hex);
// Waits until every node in `nodes` has `n` members on its HyDFS ring (hydfs-stats ring_nodes)
// and lists `n` members in list_mem_ids.
bool RingsHave(const std::vector<RaindProcess*>& nodes, size_t n, std::string* why);

// --- rainctl file commands (all with --json) ---

// `create LOCAL NAME` / `append LOCAL NAME` through `via`: the node's reply.
Result<Json> HydfsCreate(const RaindProcess& via, const std::string& local,
                         const std::string& name);
Result<Json> HydfsAppend(const RaindProcess& via, const std::string& local,
                         const std::string& name);

struct GotFile {
  Json reply;        // bytes, version, cached, sources, corrupt
  std::string data;  // the content written to LOCAL
};
// `get NAME LOCAL` through `via`, then the bytes of LOCAL.
Result<GotFile> HydfsGet(const RaindProcess& via, const std::string& name,
                         const std::string& local);
// `getfromreplica REPLICA NAME LOCAL` (REPLICA: a member id or HOST:PORT), then LOCAL's bytes.
Result<GotFile> HydfsGetFromReplica(const std::string& replica, const std::string& name,
                                    const std::string& local);

// `ls NAME`: name, file_id, size, version, replicas[{node, ring_id, answered, has_copy, size,
// appends, version}].
Result<Json> HydfsLs(const RaindProcess& via, const std::string& name);
// The names `liststore` at `node` lists.
Result<std::set<std::string>> StoredNames(const RaindProcess& node);
Result<Json> HydfsStats(const RaindProcess& node);

// The node ids of an `ls NAME` reply's replicas, in its order.
std::vector<std::string> ReplicaIds(const Json& ls);

// --- cluster-wide checks ---

// `liststore` on every running node: each of `names` is stored exactly on its first 3 successors
// on the ring the first running node reports. A holder counts under the id it reports for itself
// now (list_self), so a node that rejoined under a new id counts under that one.
bool PlacementExact(Cluster& c, const std::vector<std::string>& names, std::string* why);
// The `name` of each of `files` (any type with a `name` member), in order.
template <typename File>
std::vector<std::string> NamesOf(const std::vector<File>& files) {
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  return names;
}
// hydfs-stats counters summed over the running nodes, one hydfs-stats per node; NotFound when a
// node's hydfs-stats lacks one of `keys`.
Result<std::map<std::string, uint64_t>> SumStats(Cluster& c, const std::vector<std::string>& keys);
Result<uint64_t> SumStat(Cluster& c, const std::string& key);

// --- cluster lookups and logs ---

// Starts the cluster and waits until every node has all of them on its HyDFS ring.
Status StartHydfs(Cluster& c);

// The running node whose current member id is `id`, or nullptr.
RaindProcess* NodeWithId(Cluster& c, const std::string& id);
// Lines of the node's log that contain every one of `needles`.
std::vector<std::string> LogLinesWith(const RaindProcess& node,
                                      const std::vector<std::string>& needles);

}  // namespace rs::harness
