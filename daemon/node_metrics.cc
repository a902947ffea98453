// GET /metrics of a node (daemon/http/README.md): what its services count, in the Prometheus
// text format: the node's start, then each layer (node_metrics.h).
#include "daemon/node_metrics.h"

#include <array>

#include "daemon/http/metrics_text.h"
#include "daemon/node.h"
#include "shared/clock.h"

namespace rs {

std::string Node::Metrics() const {
  http::MetricsText m;
  m.Family("rainstorm_node_start_time_seconds", "gauge",
           "When this raind started, in seconds since the Unix epoch.");
  m.Sample("rainstorm_node_start_time_seconds", static_cast<double>(started_ms_) / 1000);

  AppendMembershipMetrics(m, *membership_);
  if (hydfs_) AppendHydfsMetrics(m, *hydfs_);
  if (stream_) AppendStreamMetrics(m, *stream_);
  return m.text();
}

void AppendMembershipMetrics(http::MetricsText& m, const membership::MembershipService& ms) {
  auto view = ms.view();
  std::array<uint64_t, 4> by_state{};
  for (const auto& mv : view->members) {
    auto i = static_cast<size_t>(mv.record.state);
    if (i < by_state.size()) ++by_state[i];
  }
  m.Family("rainstorm_membership_members", "gauge",
           "Members in this node's view of the cluster, by state (itself included).");
  for (auto st : {membership::MemberState::kAlive, membership::MemberState::kSuspect,
                  membership::MemberState::kFailed, membership::MemberState::kLeft}) {
    m.Sample("rainstorm_membership_members", {{"state", membership::StateName(st)}},
             static_cast<double>(by_state[static_cast<size_t>(st)]));
  }
  auto s = ms.swim_stats();
  auto t = ms.traffic();
  const std::array<std::tuple<const char*, const char*, uint64_t>, 12> counters = {{
      {"rainstorm_membership_suspicions_total", "Members that turned suspect in this node's view.",
       s.suspicions},
      {"rainstorm_membership_suspicions_raised_total", "Suspicions this node's own probes raised.",
       s.suspicions_raised},
      {"rainstorm_membership_probes_total", "Direct probes this node sent.", s.probes},
      {"rainstorm_membership_indirect_probes_total", "Indirect probes this node asked for.",
       s.indirect_probes},
      {"rainstorm_membership_probe_failures_total", "Probes that got no ack in time.",
       s.probe_failures},
      {"rainstorm_membership_refutations_total", "Suspicions of itself this node refuted.",
       s.refutations},
      {"rainstorm_membership_canvasses_total", "Verdict canvasses this node made.", s.canvasses},
      {"rainstorm_membership_verdicts_withheld_total",
       "Verdicts held back without a majority's answer.", s.verdicts_withheld},
      {"rainstorm_membership_sent_bytes_total", "Membership bytes sent.", t.bytes_sent},
      {"rainstorm_membership_received_bytes_total", "Membership bytes received.", t.bytes_received},
      {"rainstorm_membership_sent_messages_total", "Membership messages sent.", t.messages_sent},
      {"rainstorm_membership_received_messages_total", "Membership messages received.",
       t.messages_received},
  }};
  for (const auto& [name, help, value] : counters) {
    m.Family(name, "counter", help);
    m.Sample(name, static_cast<double>(value));
  }
}

}  // namespace rs
