// Message loss: with 10% of received membership datagrams dropped at every node for a minute,
// suspicion lets every node refute in time, so nobody is declared failed. Each protocol is its
// own meson test (one minute each).
#include <chrono>
#include <string>
#include <vector>

#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

constexpr auto kLossyPeriod = 60s;
constexpr auto kPollEvery = 2s;  // list_mem on every node this often while holding
constexpr int kNodes = 5;

void SurvivesLoss(const std::string& protocol) {
  Cluster c(kNodes);
  REQUIRE_OK(c.Start());
  auto nodes = c.Running();
  auto ids = IdsOf(nodes);
  if (protocol != "ping") REQUIRE_EXIT(Ctl(c.node(0), {"switch", protocol, "suspect"}), 0);
  REQUIRE_EVENTUALLY(
      10s, [&](std::string* why) { return AllReportProtocol(nodes, protocol, true, why); });

  for (RaindProcess* n : nodes) {
    REQUIRE_EXIT(Ctl(*n, {"drop", "10"}), 0);
    auto rate = ConfigGet(n->ControlAddress(), "drop_rate");
    REQUIRE_OK(rate.status());
    REQUIRE(*rate == "10");
  }

  // Hold: every node keeps listing every node alive or (briefly) suspect.
  auto held = Consistently(
      [&](std::string* why) {
        return AllSee(nodes, ids, {"alive", "suspect"}, why);
      },
      kLossyPeriod, kPollEvery);
  INFO("held for " << held.ToString());
  CHECK(held.ok);

  // Nothing was ever declared failed, by anyone, and nobody was expelled; the loss was real.
  auto failures = EventsAbout(nodes, ids, {"fail", "expelled"});
  INFO(Join(failures));
  CHECK(failures.empty());
  uint64_t dropped_total = 0, refutations = 0;
  for (RaindProcess* n : nodes) {
    auto stats = Stats(n->ControlAddress());
    REQUIRE_OK(stats.status());
    CHECK((*stats)["dropped_injected"].Uint() > 0);
    dropped_total += (*stats)["dropped_injected"].Uint();
    refutations += (*stats)["refutations"].Uint();
    CHECK(SelfId(*n) == n->Id());
  }
  auto suspicions = EventsAbout(nodes, ids, {"suspect"});
  // For the record: how hard the detector was pushed.
  WARN(protocol << ": " << dropped_total << " datagrams dropped, " << suspicions.size()
                << " suspicions, " << refutations << " refutations, no failure");

  for (RaindProcess* n : nodes) REQUIRE_EXIT(Ctl(*n, {"drop", "0"}), 0);
}

TEST_CASE("10% message loss for a minute declares nobody failed (ping, suspicion)",
          "[membership][drop-ping]") {
  SurvivesLoss("ping");
}

TEST_CASE("10% message loss for a minute declares nobody failed (gossip, suspicion)",
          "[membership][drop-gossip]") {
  SurvivesLoss("gossip");
}

}  // namespace
}  // namespace rs::harness
