// Transport security of one process: CurveZMQ on every socket, and the ZAP handler that decides
// who may connect. Set up once at start (InstallSecurity), before any socket is made; read by
// shared/transport/sockets.cc, which applies it to every socket.
//
// Roles of a socket's end (CurveZMQ's server and client are independent of bind and connect):
//   - in a client process (rainctl, rainsource) every socket is a CURVE client: it proves its
//     client key and trusts only peers holding the cluster key;
//   - in a node, a socket that binds (ROUTER, PULL, PUB) is a CURVE server: the ZAP handler
//     admits only keys on the keyring (the gossip PUB: member keys only), and each message a
//     ROUTER or PULL receives is checked again (SenderRole), so a key revoked while connected
//     is dropped at once. A node's connecting socket (DEALER, PUSH, SUB) is a CURVE client with
//     its member key: what it receives comes from a holder of the cluster key. The exception is
//     a socket that sends to a client process (options.to_client): a server that dials once.
//     Never a connecting server that redials: libzmq 4.3.4 aborts the process when such a
//     socket is closed or disconnected while a second handshake of its session is under way
//     (zap_client.cpp:78; tests/cluster/curve_roles_test.cc).
// A stranger is thus refused during the handshake, before any frame of it is decoded.
// Without InstallSecurity (unit tests, tools) and with `insecure`, sockets are plain and every
// sender counts as a member. Thread-safety: InstallSecurity once from main before other threads;
// everything else is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <zmq.hpp>

#include "shared/security/keys.h"
#include "shared/status.h"

namespace rs::transport {

using security::KeyPair;
using security::Keyring;
using security::Role;

struct SecuritySettings {
  bool insecure = false;
  bool node = false;  // a node (serves, runs ZAP) or a client process
  KeyPair self;       // member key (node) or client key
  std::string cluster_public;
  std::string cluster_secret;  // nodes only
  std::string keyring_path;    // nodes: reloaded when the file changes
};

// Installs the settings (InstallSecurity); for a node, loads the keyring and starts the ZAP handler
// thread.
Status InstallSecurity(SecuritySettings settings);
bool SecurityEnabled();  // installed and not insecure

// Applies CURVE options to a new socket of `type` (a no-op when not enabled).
void ApplyCurve(zmq::socket_t& socket, zmq::socket_type type, bool to_client);
// The role of the sender of `msg`, received on `socket`: on a CURVE server socket, the current
// keyring's role of the key proven at the handshake (kNone once revoked); on a client socket
// the peer holds the cluster key (kMember); kMember when security is off.
Role SenderRole(zmq::socket_t& socket, const zmq::message_t& msg);

// The node's current keyring (empty when not a node). MergeKeyring takes the newer entries of
// `update` (a change made here, or one that arrived from the cluster), saves the result to the
// keyring file and puts it in force; true when anything changed. The keyring file is also
// watched: what an operator writes there is merged within a second.
std::shared_ptr<const Keyring> CurrentKeyring();
// A node's cluster secret key (Z85; HTTP tokens are checked with it); empty when security is
// off or in a client process.
std::string ClusterSecret();
Result<bool> MergeKeyring(const Keyring& update);

struct SecurityCounters {
  uint64_t refused_handshakes = 0;  // ZAP said no
  uint64_t dropped_messages = 0;    // from a key revoked after its handshake
};
SecurityCounters security_counters();

// The console-command argument by which a node's admin service tells its own services that a
// command came from a client process ("client"), so replies to an endpoint it gave go through a
// socket with to_client set. Set by the admin service, overwriting any value a caller sent.
inline constexpr const char* kCallerArg = "_caller";
inline constexpr const char* kCallerClient = "client";

}  // namespace rs::transport
