// GET /metrics of a node, layer by layer (daemon/http/README.md lists every metric): each
// function appends its layer's families to the text Node::Metrics builds. Called on one of the
// HTTP server's threads: each reads its service's counters under the service's own locks.
#pragma once

#include "daemon/http/metrics_text.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/membership/membership_service.h"
#include "daemon/stream/stream_service.h"

namespace rs {

void AppendMembershipMetrics(http::MetricsText& m, const membership::MembershipService& ms);
// daemon/node_metrics_hydfs.cc
void AppendHydfsMetrics(http::MetricsText& m, const hydfs::HydfsService& h);
// daemon/node_metrics_stream.cc
void AppendStreamMetrics(http::MetricsText& m, const stream::StreamService& s);

}  // namespace rs
