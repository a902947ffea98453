// HyDFS's part of GET /metrics (node_metrics.h).
#include "daemon/node_metrics.h"

namespace rs {

void AppendHydfsMetrics(http::MetricsText&, const hydfs::HydfsService&) {}

}  // namespace rs
