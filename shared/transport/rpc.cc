#include "shared/transport/rpc.h"

#include <random>

#include "shared/logging.h"

namespace rs::transport {
namespace {

constexpr int kMaxBatch = 256;  // messages drained per wake-up, for fairness between sockets

uint64_t RandomStart() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 20) + 1;
}

}  // namespace

void Responder::Reply(const Status& status, const wire::BodyWriter& payload) const {
  if (server_ == nullptr || *done_) return;
  *done_ = true;
  server_->Send(routing_id_, wire::EncodeReply(request_id_, status, payload));
}

RpcServer::~RpcServer() {
  if (socket_) loop_->RemoveSocket(socket_.get());
}

Result<uint16_t> RpcServer::Listen(const std::string& host, uint16_t port,
                                   const SocketOptions& options) {
  auto socket = MakeSocket(zmq::socket_type::router, options);
  if (!socket.ok()) return socket.status();
  socket_ = std::make_unique<zmq::socket_t>(std::move(socket.value()));
  auto bound = Bind(*socket_, host, port);
  if (!bound.ok()) return bound.status();
  loop_->AddSocket(socket_.get(), [this] { OnReadable(); });
  return bound;
}

void RpcServer::Send(const std::string& routing_id, const std::string& payload) {
  zmq::message_t parts[2] = {zmq::message_t(routing_id.data(), routing_id.size()),
                             zmq::message_t(payload.data(), payload.size())};
  if (!TrySend(*socket_, parts, 2)) {
    Logger("rpc")->debug("server={} event=reply_dropped", name_);
  }
}

void RpcServer::OnReadable() {
  std::vector<zmq::message_t> parts;
  security::Role caller = security::Role::kNone;
  for (int i = 0; i < kMaxBatch && TryRecv(*socket_, &parts, &caller); ++i) {
    if (parts.size() != 2) {
      ++malformed_;
      Logger("rpc")->warn("server={} event=malformed_frame parts={}", name_, parts.size());
      if (parts.size() >= 1) {
        Send(parts[0].to_string(),
             wire::EncodeReply(0, Status::Corruption("expected one payload frame")));
      }
      continue;
    }
    std::string routing_id = parts[0].to_string();
    auto env = wire::Decode(parts[1].to_string_view());
    if (!env.ok()) {
      ++malformed_;
      Logger("rpc")->warn("server={} event=malformed_frame bytes={} error=\"{}\"", name_,
                          parts[1].size(), env.status().ToString());
      Send(routing_id, wire::EncodeReply(0, env.status()));
      continue;
    }
    Responder responder(this, routing_id, env->request_id, caller);
    auto it = handlers_.find(env->type);
    if (it == handlers_.end()) {
      ++malformed_;
      Logger("rpc")->warn("server={} event=unexpected_type type={}", name_, env->type);
      responder.Reply(Status::Unimplemented("message type " + std::to_string(env->type) + " (" +
                                            std::string(wire::MsgTypeName(env->type)) +
                                            ") is not served here"));
      continue;
    }
    if (caller < it->second.need) {
      ++denied_;
      Logger("rpc")->warn("server={} event=denied type={} caller_role={}", name_,
                          wire::MsgTypeName(env->type), security::RoleName(caller));
      responder.Reply(Status::PermissionDenied(
          std::string(wire::MsgTypeName(env->type)) + " needs a " +
          std::string(security::RoleName(it->second.need)) + " key; the caller's key is " +
          std::string(security::RoleName(caller))));
      continue;
    }
    it->second.handler(*env, responder);
  }
}

AsyncRpcClient::~AsyncRpcClient() { Close(); }

void AsyncRpcClient::Close() {
  for (auto& [id, pending] : pending_) loop_->CancelTimer(pending.timer);
  pending_.clear();
  for (auto& [endpoint, socket] : sockets_) loop_->RemoveSocket(socket.get());
  sockets_.clear();
}

zmq::socket_t* AsyncRpcClient::SocketFor(const std::string& endpoint, Status* error) {
  auto it = sockets_.find(endpoint);
  if (it != sockets_.end()) return it->second.get();
  auto socket = MakeSocket(zmq::socket_type::dealer);
  if (!socket.ok()) {
    *error = socket.status();
    return nullptr;
  }
  auto owned = std::make_unique<zmq::socket_t>(std::move(socket.value()));
  Status st = Connect(*owned, endpoint);
  if (!st.ok()) {
    *error = st;
    return nullptr;
  }
  zmq::socket_t* raw = owned.get();
  loop_->AddSocket(raw, [this, raw] { OnReadable(raw); });
  sockets_[endpoint] = std::move(owned);
  return raw;
}

void AsyncRpcClient::Call(const std::string& endpoint, wire::MsgType type,
                          const wire::BodyWriter& body, Clock::duration deadline,
                          Callback callback) {
  if (next_id_ == 1) next_id_ = RandomStart();
  uint64_t id = next_id_++;
  Status error;
  zmq::socket_t* socket = SocketFor(endpoint, &error);
  if (socket == nullptr) {
    loop_->Post([callback, error] { callback(error); });
    return;
  }
  if (!TrySend(*socket, wire::Encode(type, id, body))) {
    loop_->Post([callback, endpoint] {
      callback(Status::Unavailable("send queue to " + endpoint + " is full"));
    });
    return;
  }
  Pending pending;
  pending.callback = std::move(callback);
  pending.endpoint = endpoint;
  pending.timer = loop_->AddTimer(deadline, [this, id, endpoint, deadline] {
    Finish(id, Status::Timeout("no reply from " + endpoint + " within " +
                               std::to_string(ToMillis(deadline)) + " ms"));
    DropIfIdle(endpoint);
  });
  pending_[id] = std::move(pending);
}

void AsyncRpcClient::OnReadable(zmq::socket_t* socket) {
  std::vector<zmq::message_t> parts;
  for (int i = 0; i < kMaxBatch && TryRecv(*socket, &parts); ++i) {
    if (parts.size() != 1) continue;
    auto env = wire::Decode(parts[0].to_string_view());
    if (!env.ok()) {
      Logger("rpc")->warn("event=malformed_reply error=\"{}\"", env.status().ToString());
      continue;
    }
    Finish(env->request_id, std::move(env));
  }
}

// A call to `endpoint` timed out. If nothing else waits on its socket, close it: the next call
// dials afresh instead of queueing behind a connection that may be dead (a partition drops
// packets without a reset) or still waiting out a dial made while the network was cut.
void AsyncRpcClient::DropIfIdle(const std::string& endpoint) {
  for (const auto& [id, p] : pending_) {
    if (p.endpoint == endpoint) return;
  }
  auto it = sockets_.find(endpoint);
  if (it == sockets_.end()) return;
  loop_->RemoveSocket(it->second.get());
  sockets_.erase(it);
}

void AsyncRpcClient::Finish(uint64_t request_id, Result<wire::Envelope> result) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;  // late reply after a timeout, or a stray id
  Pending pending = std::move(it->second);
  pending_.erase(it);
  loop_->CancelTimer(pending.timer);
  pending.callback(std::move(result));
}

Result<wire::Envelope> CallOnce(const std::string& endpoint, wire::MsgType type,
                                const wire::BodyWriter& body, Clock::duration deadline) {
  auto made = MakeSocket(zmq::socket_type::dealer);
  if (!made.ok()) return made.status();
  zmq::socket_t socket = std::move(made.value());
  RS_RETURN_IF_ERROR(Connect(socket, endpoint));
  uint64_t id = RandomStart();
  std::string request = wire::Encode(type, id, body);
  TimePoint until = Clock::now() + deadline;
  try {
    zmq::message_t msg(request.data(), request.size());
    if (!socket.send(msg, zmq::send_flags::dontwait)) {
      return Status::Unavailable("cannot queue a request to " + endpoint);
    }
    while (true) {
      auto left = until - Clock::now();
      if (left <= Clock::duration{0}) break;
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::ceil<std::chrono::milliseconds>(left));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> parts;
      if (!TryRecv(socket, &parts) || parts.size() != 1) continue;
      auto env = wire::Decode(parts[0].to_string_view());
      if (!env.ok())
        return Status::Corruption("bad reply from " + endpoint + ": " + env.status().message());
      if (env->request_id == id || env->request_id == 0) return env;
    }
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("zmq: ") + e.what());
  }
  return Status::Timeout("no reply from " + endpoint.substr(endpoint.find("//") + 2) + " within " +
                         std::to_string(ToMillis(deadline)) + " ms");
}

}  // namespace rs::transport
