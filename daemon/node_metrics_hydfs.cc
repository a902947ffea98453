// HyDFS's part of GET /metrics (node_metrics.h); daemon/hydfs/README.md "Metrics" lists them.
#include <array>
#include <string>
#include <tuple>

#include "daemon/node_metrics.h"

namespace rs {
namespace {

using hydfs::OpKind;

void Counter(http::MetricsText& m, const char* name, const char* help, uint64_t value) {
  m.Family(name, "counter", help);
  m.Sample(name, static_cast<double>(value));
}

void Gauge(http::MetricsText& m, const char* name, const char* help, uint64_t value) {
  m.Family(name, "gauge", help);
  m.Sample(name, static_cast<double>(value));
}

}  // namespace

void AppendHydfsMetrics(http::MetricsText& m, const hydfs::HydfsService& h) {
  hydfs::HydfsMetrics x = h.Metrics();
  auto op = [&](OpKind k) -> const hydfs::OpCounts& { return x.ops[static_cast<size_t>(k)]; };

  m.Family("rainstorm_hydfs_operations_total", "counter",
           "File operations this node ran as a client, by kind and outcome.");
  for (OpKind k : hydfs::kAllOpKinds) {
    std::string kind(hydfs::OpKindName(k));
    m.Sample("rainstorm_hydfs_operations_total", {{"kind", kind}, {"result", "ok"}},
             static_cast<double>(op(k).ok));
    m.Sample("rainstorm_hydfs_operations_total", {{"kind", kind}, {"result", "error"}},
             static_cast<double>(op(k).error));
  }
  m.Family("rainstorm_hydfs_operation_bytes_total", "counter",
           "Payload bytes of the client operations that succeeded: written by creates and "
           "appends, read by gets.");
  for (OpKind k : hydfs::kAllOpKinds) {
    if (!hydfs::CarriesPayload(k)) continue;
    m.Sample("rainstorm_hydfs_operation_bytes_total", {{"kind", std::string(hydfs::OpKindName(k))}},
             static_cast<double>(op(k).bytes));
  }
  m.Family("rainstorm_hydfs_operation_duration_seconds", "histogram",
           "Time from a client operation's request to its outcome.");
  for (OpKind k : hydfs::kAllOpKinds) {
    m.Histogram("rainstorm_hydfs_operation_duration_seconds",
                {{"kind", std::string(hydfs::OpKindName(k))}}, op(k).duration);
  }

  const hydfs::HydfsStats& s = x.stats;
  const std::array<std::tuple<const char*, const char*, uint64_t>, 16> counters = {{
      {"rainstorm_hydfs_client_received_bytes_total",
       "Chunk payload this node received as a client: data of rainctl's writes and of reads.",
       s.chunk_bytes_in},
      {"rainstorm_hydfs_served_bytes_total",
       "Chunk payload this node's replica sent to readers (gets and repair fetches).",
       s.chunk_bytes_out},
      {"rainstorm_hydfs_written_bytes_total",
       "Chunk payload written into this node's store by writes and repairs.", s.chunk_bytes_stored},
      {"rainstorm_hydfs_corruptions_detected_total",
       "Bad chunks found on this node's disk or in reads it ran.", s.corruptions_detected},
      {"rainstorm_hydfs_chunks_repaired_total",
       "Bad chunks of its own copies this node rewrote from another replica.", s.chunks_repaired},
      {"rainstorm_hydfs_repair_scans_total", "Repair scans that asked the replicas.",
       s.repair_scans},
      {"rainstorm_hydfs_repairs_started_total", "Repairs (background merges) this node started.",
       s.repairs_started},
      {"rainstorm_hydfs_repairs_done_total", "Repairs this node ran that succeeded.",
       s.repairs_done},
      {"rainstorm_hydfs_repairs_empty_total",
       "Repairs this node ran that failed or changed nothing.", s.repairs_empty},
      {"rainstorm_hydfs_repair_moved_bytes_total",
       "Bytes the replicas fetched in repairs this node ran.", s.repair_bytes_moved},
      {"rainstorm_hydfs_copies_dropped_total",
       "Copies the repair scan dropped from this node's store (rebalanced or removed).",
       s.extras_dropped},
      {"rainstorm_hydfs_legacy_quarantined_total",
       "Copies moved to the legacy store on a rejoin under a new member id.", s.legacy_quarantined},
      {"rainstorm_hydfs_legacy_handovers_total",
       "Hand-overs of a legacy copy that changed a replica.", s.legacy_handed_over},
      {"rainstorm_hydfs_legacy_dropped_total",
       "Legacy copies dropped (held safely elsewhere, removed or superseded).", s.legacy_dropped},
      {"rainstorm_hydfs_cache_hits_total", "Gets served from this node's client cache.",
       s.cache_hits},
      {"rainstorm_hydfs_cache_misses_total",
       "Gets whose version this node's client cache did not hold.", s.cache_misses},
  }};
  for (const auto& [name, help, value] : counters) Counter(m, name, help, value);

  Gauge(m, "rainstorm_hydfs_files", "Live file copies in this node's store.", x.files);
  Gauge(m, "rainstorm_hydfs_stored_bytes", "Size of the live file copies in this node's store.",
        x.stored_bytes);
  Gauge(m, "rainstorm_hydfs_store_used_bytes",
        "Blob bytes this node's store holds, writes in progress included (what the quota counts).",
        x.store_used_bytes);
  Gauge(m, "rainstorm_hydfs_legacy_files",
        "Copies held in the legacy store after a rejoin under a new member id.", x.legacy_files);
  Gauge(m, "rainstorm_hydfs_legacy_stored_bytes", "Size of the copies in the legacy store.",
        x.legacy_stored_bytes);
  Gauge(m, "rainstorm_hydfs_cache_used_bytes", "Bytes in this node's client cache.",
        x.cache_used_bytes);
  Gauge(m, "rainstorm_hydfs_ring_nodes", "Nodes on this node's HyDFS ring.", x.ring_nodes);
}

}  // namespace rs
