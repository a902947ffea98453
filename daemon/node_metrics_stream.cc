// The stream engine's part of GET /metrics (node_metrics.h).
#include "daemon/node_metrics.h"

namespace rs {

void AppendStreamMetrics(http::MetricsText&, const stream::StreamService&) {}

}  // namespace rs
