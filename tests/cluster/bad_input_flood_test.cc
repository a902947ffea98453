// Floods of junk on a member's swim port (bad-input-flood): a burst of junk datagrams from one
// connection is counted, malformed or (past its budget) dropped undecoded, and a paced flood
// from four connections for 4 s gets the node no verdict. The node must keep running, answering,
// its id and a correct list (tests/harness/bad_input.h). Other junk is in bad_input_test.cc.
#include <chrono>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "shared/wire/envelope.h"
#include "tests/harness/bad_input.h"
#include "tests/harness/checks.h"
#include "tests/harness/eventually.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;
using wire::MsgType;

TEST_CASE_METHOD(JunkTargetFixture,
                 "junk floods on the swim port are counted or dropped and get the node no verdict",
                 "[membership][bad-input-flood]") {
  SECTION("ZeroMQ frames of junk to the swim port are counted as malformed or flood-dropped") {
    uint64_t before =
        Counter(target, "malformed_datagrams") + Counter(target, "flood_dropped_datagrams");
    uint64_t flood_before = Counter(target, "flood_dropped_datagrams");
    zmq::socket_t dealer = Connected(zmq::socket_type::dealer, target.SwimPort());
    uint64_t sent = 0;
    for (const std::string& payload : junk) {
      REQUIRE(SendParts(dealer, {payload}));
      ++sent;
    }
    // Valid control-plane envelopes are junk here too.
    REQUIRE(SendParts(dealer, {wire::Encode(MsgType::kAdminCommand, 7,
                                            [](wire::Packer& pk) { PackAdmin(pk, "leave"); })}));
    REQUIRE(SendParts(dealer, {wire::Encode(MsgType::kJoinRequest, 7, [](wire::Packer& pk) {
                        PackRecord(pk, "127.0.0.1:9#0000000000009", 10, 11);
                      })}));
    sent += 2;
    for (int k = 2; k <= 5; ++k) {
      std::vector<std::string> parts;
      for (int p = 0; p < k; ++p) parts.push_back(RandomBytes(rng, rng() % 64));
      REQUIRE(SendParts(dealer, parts));
      ++sent;
    }
    for (int k = 0; k < 2000; ++k) {
      REQUIRE(SendParts(dealer, {Hex({0xc1}) + RandomBytes(rng, rng() % 256)}));
      ++sent;
    }
    zmq::socket_t big = Connected(zmq::socket_type::dealer, target.SwimPort());
    REQUIRE(SendParts(big, {std::string(2 << 20, 'x')}));  // above the 1 MB datagram limit
    REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
      uint64_t seen = Counter(target, "malformed_datagrams") +
                      Counter(target, "flood_dropped_datagrams") - before;
      *why = std::to_string(seen) + " of " + std::to_string(sent) + " counted";
      return seen == sent;
    });
    // The burst of 2000 from one connection went over its budget: most were never decoded.
    CHECK(Counter(target, "flood_dropped_datagrams") - flood_before > 1000);
    RequireServing("junk frames on the swim port");
  }

  SECTION("a sustained junk flood on the swim port does not get the node failed") {
    // Four connections send junk for 4 s (16 probe periods of every peer), paced at about 40 K
    // frames a second so the flooder does not starve the machine itself: the node must keep
    // answering probes in time. (A suspicion refuted in time is tolerated: on a 2-core machine
    // with CPU hogs beside it, the node's thread can be descheduled for a probe timeout.)
    std::vector<zmq::socket_t> flooders;
    for (int k = 0; k < 4; ++k) {
      flooders.push_back(Connected(zmq::socket_type::dealer, target.SwimPort()));
      flooders.back().set(zmq::sockopt::sndtimeo, 0);  // drop at the high-water mark
    }
    uint64_t flood_before = Counter(target, "flood_dropped_datagrams");
    auto end = std::chrono::steady_clock::now() + 4s;
    uint64_t sent = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (auto& f : flooders) {
        for (int k = 0; k < 100; ++k) {
          sent += SendParts(f, {junk[rng() % junk.size()]}) ? 1 : 0;
        }
      }
      std::this_thread::sleep_for(10ms);
    }
    INFO(sent << " junk frames sent");
    CHECK(sent > 10000);
    CHECK(Counter(target, "flood_dropped_datagrams") > flood_before);
    INFO(Join(EventsAbout(nodes, {target.Id()}, {"suspect"})));
    auto verdicts = EventsAbout(nodes, {target.Id()}, {"fail", "expelled"});
    INFO(Join(verdicts));
    CHECK(verdicts.empty());
    RequireServing("a sustained flood on the swim port");
  }

  CheckMembershipIntact();
}

}  // namespace
}  // namespace rs::harness
