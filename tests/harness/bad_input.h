// Hostile input for the bad-input cluster tests: junk payloads that no raind socket may accept
// (random bytes, truncated envelopes, wrong types, huge length headers), builders for more, ZeroMQ
// sockets of the test process connected to a raind port, and the fixture of the membership junk
// tests. The junk is pseudo-random from a caller's generator (seeded with kJunkSeed), so a failure
// reproduces. Thread-compatible: one test thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <random>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "shared/clock.h"
#include "shared/wire/envelope.h"
#include "tests/harness/cluster.h"

namespace rs::harness {

inline constexpr uint64_t kJunkSeed = 20261121;

// --- junk ---

// `n` bytes from `rng`.
std::string RandomBytes(std::mt19937_64& rng, size_t n);
// The bytes given as numbers: Hex({0x94, 0x01}).
std::string Hex(std::initializer_list<int> bytes);
// An envelope with an arbitrary (possibly wrong) header; a nil body when `body` is empty.
std::string RawEnvelope(int64_t version, int64_t type, const wire::BodyWriter& body);
// An admin command body {cmd, args: {}}.
void PackAdmin(wire::Packer& pk, const std::string& cmd);
// A member record as FORMAT.md lays it out: [id, state, incarnation, {port name: port}].
void PackRecord(wire::Packer& pk, const std::string& id, uint16_t swim, uint16_t gossip);
// Single-frame payloads that no socket may accept: none decodes to a valid message for any of
// raind's sockets (datagram, admin command or join request).
std::vector<std::string> JunkPayloads(std::mt19937_64& rng);

// --- raw ZeroMQ sockets ---

// A ZeroMQ socket of the test process connected to one of raind's ports on 127.0.0.1 (high-water
// marks of 100000, a 5 s send timeout).
zmq::socket_t Connected(zmq::socket_type type, uint16_t port);
// Blocking (bounded) multipart send; false when it could not be queued.
bool SendParts(zmq::socket_t& socket, const std::vector<std::string>& parts);
// Receives one whole message within `deadline`.
std::optional<std::vector<std::string>> Receive(zmq::socket_t& socket, Clock::duration deadline);

// A counter of the node's `rainctl stats` (Catch2-requires an answer).
uint64_t Counter(const RaindProcess& n, const char* key);

// --- the membership junk tests' fixture (TEST_CASE_METHOD) ---

// 3 nodes; node 1 is the `target` that takes the junk. Catch2 runs a test body once per SECTION,
// so every section gets a fresh cluster and the same junk (the generator starts each section in
// the same state). A test body ends with CheckMembershipIntact().
class JunkTargetFixture {
 public:
  JunkTargetFixture();  // starts the cluster (Catch2-requires it)

 protected:
  // Requires the target to run, answer list_self and keep its id; `phase` says after what.
  void RequireServing(const std::string& phase);
  // Whatever was thrown at it, the node still runs, answers, keeps its id, and every node still
  // lists exactly the real members alive (besides a fake member, failed), with nobody ever failed.
  void CheckMembershipIntact();

  Cluster c;
  RaindProcess& target;
  std::vector<RaindProcess*> nodes;
  std::vector<std::string> ids;  // of `nodes`
  std::mt19937_64 rng{kJunkSeed};
  std::vector<std::string> junk;  // JunkPayloads(rng)
};

}  // namespace rs::harness
