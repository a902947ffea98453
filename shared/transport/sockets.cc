#include "shared/transport/sockets.h"

#include <sys/resource.h>

#include <algorithm>

#include "shared/transport/security.h"

namespace rs::transport {

zmq::context_t& Context() {
  static zmq::context_t* context = [] {
    auto* c = new zmq::context_t(2);  // never destroyed: sockets may outlive main
    // ZeroMQ allows 1023 sockets by default; a node hosting wide stream jobs needs more (each
    // task has a socket per peer task). The file-descriptor limit is the real bound.
    struct rlimit nofile;
    int max_sockets = 8192;
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
      max_sockets = static_cast<int>(std::clamp<rlim_t>(nofile.rlim_cur / 2, 1023, 65535));
    }
    try {
      c->set(zmq::ctxopt::max_sockets, max_sockets);
    } catch (const zmq::error_t&) {
    }
    return c;
  }();
  return *context;
}

Result<zmq::socket_t> MakeSocket(zmq::socket_type type, const SocketOptions& options) {
  try {
    zmq::socket_t socket(Context(), type);
    socket.set(zmq::sockopt::linger, options.linger_ms);
    socket.set(zmq::sockopt::sndhwm, options.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options.recv_hwm);
    socket.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
    if (options.immediate) socket.set(zmq::sockopt::immediate, 1);
    if (!options.routing_id.empty()) socket.set(zmq::sockopt::routing_id, options.routing_id);
    if (options.heartbeat_ivl_ms > 0) {
      socket.set(zmq::sockopt::heartbeat_ivl, options.heartbeat_ivl_ms);
      socket.set(zmq::sockopt::heartbeat_timeout, options.heartbeat_timeout_ms);
      socket.set(zmq::sockopt::heartbeat_ttl, options.heartbeat_timeout_ms);
    }
    socket.set(zmq::sockopt::connect_timeout, options.connect_timeout_ms);
    // A socket to a client never dials again (-1): see SocketOptions::to_client.
    socket.set(zmq::sockopt::reconnect_ivl, options.to_client ? -1 : options.reconnect_ms);
    if (type == zmq::socket_type::router) socket.set(zmq::sockopt::router_mandatory, 0);
    ApplyCurve(socket, type, options.to_client);
    return socket;
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("zmq socket: ") + e.what());
  }
}

Result<uint16_t> Bind(zmq::socket_t& socket, const std::string& host, uint16_t port) {
  std::string endpoint = "tcp://" + host + ":" + (port == 0 ? "*" : std::to_string(port));
  try {
    socket.bind(endpoint);
    std::string last = socket.get(zmq::sockopt::last_endpoint);
    size_t colon = last.rfind(':');
    if (colon == std::string::npos) return Status::Internal("no port in " + last);
    return static_cast<uint16_t>(std::stoi(last.substr(colon + 1)));
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot bind " + endpoint + ": " + e.what());
  } catch (const std::exception& e) {
    return Status::Internal("cannot read bound endpoint: " + std::string(e.what()));
  }
}

Status Connect(zmq::socket_t& socket, const std::string& endpoint) {
  try {
    socket.connect(endpoint);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot connect " + endpoint + ": " + e.what());
  }
}

Status Disconnect(zmq::socket_t& socket, const std::string& endpoint) {
  try {
    socket.disconnect(endpoint);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot disconnect " + endpoint + ": " + e.what());
  }
}

Status Subscribe(zmq::socket_t& socket, const std::string& topic) {
  try {
    socket.set(zmq::sockopt::subscribe, topic);
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("cannot subscribe: ") + e.what());
  }
}

bool TrySend(zmq::socket_t& socket, zmq::message_t* parts, size_t count) {
  try {
    for (size_t i = 0; i < count; ++i) {
      auto flags = zmq::send_flags::dontwait;
      if (i + 1 < count) flags = flags | zmq::send_flags::sndmore;
      if (!socket.send(parts[i], flags)) return false;
    }
    return true;
  } catch (const zmq::error_t&) {
    return false;
  }
}

bool TrySend(zmq::socket_t& socket, const std::string& payload) {
  zmq::message_t msg(payload.data(), payload.size());
  return TrySend(socket, &msg, 1);
}

bool TryRecv(zmq::socket_t& socket, std::vector<zmq::message_t>* parts, security::Role* sender) {
  constexpr int kMaxDropped = 64;  // then report nothing waiting; the caller polls again
  for (int dropped = 0; dropped < kMaxDropped; ++dropped) {
    parts->clear();
    try {
      do {
        zmq::message_t msg;
        if (!socket.recv(msg, zmq::recv_flags::dontwait)) return !parts->empty();
        parts->push_back(std::move(msg));
      } while (parts->back().more());
    } catch (const zmq::error_t&) {
      return false;
    }
    // The last frame came from the peer (a ROUTER's first, the routing id, carries no metadata).
    security::Role role = SenderRole(socket, parts->back());
    if (role == security::Role::kNone) continue;
    if (sender != nullptr) *sender = role;
    return true;
  }
  parts->clear();
  return false;
}

}  // namespace rs::transport
