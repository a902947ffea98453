// The one place RainStorm creates ZeroMQ sockets. Every socket gets its options here (linger,
// high-water marks, maximum message size) and its CurveZMQ keys (shared/transport/security.h). Also
// the cppzmq exception adapter: nothing below throws. The context is thread-safe; each socket
// belongs to one thread (normally an EventLoop's).
#pragma once

#include <cstdint>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "shared/security/keys.h"
#include "shared/status.h"

namespace rs::transport {

// The process-wide ZeroMQ context.
zmq::context_t& Context();

struct SocketOptions {
  int send_hwm = 1000;  // messages queued per peer before sends drop or block
  int recv_hwm = 1000;
  int64_t max_message_bytes = 16 << 20;  // larger inbound frames close the connection
  bool immediate = false;  // queue only to completed connections (datagram-like sends)
  int linger_ms = 0;       // pending messages are dropped at close
  std::string routing_id;  // DEALER identity, optional
  // The socket sends to a client process (rainctl, rainsource) that gave its endpoint: in a node
  // it is then a CURVE server, which the client authenticates by the cluster key. Such a socket
  // dials once and never again: a connecting CURVE server whose connection is re-established
  // (a second handshake, hence a second ZAP request, in one libzmq session) aborts the process
  // in libzmq 4.3.4 when the socket is closed or disconnected during that handshake
  // (zap_client.cpp:78; shared/security/README.md). So once its connection is lost, sends to
  // it fail (or queue up to send_hwm when the one dial failed), and the owner closes it and
  // makes a new one.
  bool to_client = false;
  // Dead-connection detection (ZMTP heartbeats): a connection that hears nothing from its peer,
  // not even a heartbeat, for heartbeat_timeout_ms is closed, and a connecting socket dials
  // again every reconnect_ms, each dial giving up after connect_timeout_ms. Without this, a TCP
  // connection cut by a partition (packets dropped, no reset) resumes only when TCP's
  // retransmission backoff next fires, up to minutes after the heal, and a dial started during
  // the partition waits out its SYN retries. 0 turns heartbeats off. After a heal a dropped
  // connection is back within connect_timeout_ms + reconnect_ms; the dial timeout must exceed
  // the network's round trip (a LAN's is far below a millisecond, any terrestrial link's below
  // 300 ms).
  int heartbeat_ivl_ms = 1000;
  int heartbeat_timeout_ms = 5000;
  int connect_timeout_ms = 500;
  int reconnect_ms = 100;
};

Result<zmq::socket_t> MakeSocket(zmq::socket_type type, const SocketOptions& options = {});

// Binds to tcp://host:port (port 0: the OS picks) and returns the port actually bound.
Result<uint16_t> Bind(zmq::socket_t& socket, const std::string& host, uint16_t port);
Status Connect(zmq::socket_t& socket, const std::string& endpoint);
Status Disconnect(zmq::socket_t& socket, const std::string& endpoint);
Status Subscribe(zmq::socket_t& socket, const std::string& topic);

// Non-blocking multipart send; false when it would block or fails (the message is dropped).
bool TrySend(zmq::socket_t& socket, zmq::message_t* parts, size_t count);
bool TrySend(zmq::socket_t& socket, const std::string& payload);
// Non-blocking receive of one whole multipart message; false when nothing is waiting. A message
// whose sender's key was revoked after its handshake is dropped (and counted). `sender`, when
// given, gets the sender's role (security::Role::kMember when security is off).
bool TryRecv(zmq::socket_t& socket, std::vector<zmq::message_t>* parts,
             security::Role* sender = nullptr);

}  // namespace rs::transport
