// Node: one raind process. Starts the services in dependency order (control port first, since
// it names the node; then membership), writes the ready file, joins or founds the cluster, and
// on SIGTERM/SIGINT leaves gracefully. Later layers (HyDFS, stream leader/worker) start here too.
// Thread-safety: the main thread owns the Node.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/admin/admin_service.h"
#include "daemon/http/http_server.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/logquery/log_shipper.h"
#include "daemon/logquery/logquery_service.h"
#include "daemon/membership/membership_service.h"
#include "daemon/stream/stream_service.h"
#include "shared/status.h"

namespace rs {

struct NodeOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // control port; 0: the OS picks
  std::string data_dir = "./raind-data";
  std::string introducer;  // HOST:PORT of any member; empty: found a new cluster
  std::string log_level = "info";
  bool log_stderr = false;
  // Transport security (shared/security/README.md): the node's keys are read from keys_dir
  // (empty: <data_dir>/keys). `insecure` runs in plain text without keys, with a warning.
  std::string keys_dir;
  bool insecure = false;
  membership::ServiceOptions membership;
  hydfs::HydfsOptions hydfs;  // dir and host are filled in from data_dir and host
  uint32_t log_ship_interval_ms = 2000;  // ship the log into HyDFS this often; 0: never
  // HTTP (metrics, the console's API and page; daemon/http): on `http_bind` (loopback by
  // default; another address only with keys, which tokens need), port `http_port` (0: the OS
  // picks; the ready file names it).
  http::HttpOptions http;
  // The stream engine: `leader` (HOST:PORT; empty: the introducer, or this node when it founds
  // the cluster) and the stream_* knobs (daemon/stream/README.md).
  stream::StreamOptions stream;
};

// Applies "key = value" lines (the config file format; '#' starts a comment) to `options`.
// Keys: host, port, swim_port, gossip_port, data_dir, introducer, leader, log_level, the hydfs_*,
// stream_* and operator_* keys
// (see daemon/raind.conf.example), and every membership key (rainctl config get lists them).
Status ApplyConfigText(const std::string& text, const std::string& source, NodeOptions* options);
Status ApplyConfigEntry(const std::string& key, const std::string& value, NodeOptions* options);

// Reads the node's keys and installs CurveZMQ for the whole process (before any socket is
// made): FailedPrecondition when a key file is missing or readable by others.
Status InstallNodeSecurity(const NodeOptions& options);

class Node {
 public:
  explicit Node(NodeOptions options);
  ~Node();

  // Binds everything, writes <data_dir>/ready, then joins (bounded by join_timeout_ms) or founds.
  Status Start();
  // Blocks until SIGTERM/SIGINT, then leaves the cluster gracefully. Returns the exit code.
  int RunUntilSignal();

 private:
  Status WriteReadyFile(const std::string& id, uint16_t port);
  void StartShipper();
  // GET /metrics: the node's metrics in the Prometheus text format (node_metrics.cc).
  std::string Metrics() const;
  // HTTP (node_http.cc): the routes, and who a request acts as.
  Status StartHttp();
  Result<security::Role> HttpCaller(const http::Request& r) const;
  http::Response RunApiCommand(const http::Request& r, bool post);
  std::string SelfAddress() const;  // HOST:PORT of the control port

  NodeOptions options_;
  std::string log_file_;
  uint64_t log_start_offset_ = 0;  // size of the log before this process wrote to it
  std::unique_ptr<admin::AdminService> admin_;
  std::unique_ptr<membership::MembershipService> membership_;
  std::unique_ptr<hydfs::HydfsService> hydfs_;
  std::unique_ptr<logquery::LogQueryService> logquery_;
  std::unique_ptr<logquery::LogShipper> shipper_;
  std::unique_ptr<stream::StreamService> stream_;
  std::unique_ptr<http::HttpServer> http_;
  uint16_t http_port_ = 0;
  uint64_t started_ms_ = 0;
};

}  // namespace rs
