// Request/reply over ZeroMQ with deadlines.
//  - RpcServer: a ROUTER bound on an EventLoop; dispatches envelopes by type to handlers, which
//    answer through a Responder (now or later, always on the loop thread). Malformed frames get
//    a Corruption reply (or are dropped when no reply can be addressed); unknown types get
//    Unimplemented. Never throws, never crashes on input.
//  - AsyncRpcClient: DEALERs owned by an EventLoop; Call() invokes its callback exactly once, with
//    the reply or a Timeout status at the deadline.
//  - CallOnce(): a blocking call for tools (rainctl, tests), with a deadline.
// Frames: the client sends one payload frame; the ROUTER sees [routing id, payload].
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <zmq.hpp>

#include "shared/clock.h"
#include "shared/status.h"
#include "shared/transport/event_loop.h"
#include "shared/transport/sockets.h"
#include "shared/wire/envelope.h"

namespace rs::transport {

class RpcServer;

// Addresses one reply. Copyable; Reply() must run on the server's loop thread, at most once
// (later calls are ignored).
class Responder {
 public:
  Responder() = default;
  Responder(RpcServer* server, std::string routing_id, uint64_t request_id,
            security::Role caller = security::Role::kMember)
      : server_(server),
        routing_id_(std::move(routing_id)),
        request_id_(request_id),
        caller_(caller),
        done_(std::make_shared<bool>(false)) {}
  void Reply(const Status& status, const wire::BodyWriter& payload = {}) const;
  void Ok(const wire::BodyWriter& payload = {}) const { Reply(Status::Ok(), payload); }
  // The role of the caller's key (kMember when security is off).
  security::Role caller() const { return caller_; }

 private:
  RpcServer* server_ = nullptr;
  std::string routing_id_;
  uint64_t request_id_ = 0;
  security::Role caller_ = security::Role::kMember;
  std::shared_ptr<bool> done_;
};

class RpcServer {
 public:
  using Handler = std::function<void(const wire::Envelope&, const Responder&)>;

  RpcServer(EventLoop* loop, std::string name) : loop_(loop), name_(std::move(name)) {}
  ~RpcServer();

  // Binds and registers with the loop; call before the loop runs (or on it).
  Result<uint16_t> Listen(const std::string& host, uint16_t port,
                          const SocketOptions& options = {});
  // Serves `type` to callers whose role is at least `need` (others get PermissionDenied). Only
  // nodes send the typed protocol messages; a handler serving clients too checks finer itself.
  void Handle(wire::MsgType type, Handler handler, security::Role need = security::Role::kMember) {
    handlers_[static_cast<uint16_t>(type)] = Entry{std::move(handler), need};
  }

  uint64_t malformed_frames() const { return malformed_; }
  // Requests refused here for the caller's role (a handler's own finer refusals not included).
  uint64_t denied_requests() const { return denied_; }

 private:
  friend class Responder;
  void OnReadable();
  void Send(const std::string& routing_id, const std::string& payload);

  EventLoop* loop_;
  std::string name_;
  std::unique_ptr<zmq::socket_t> socket_;
  struct Entry {
    Handler handler;
    security::Role need;
  };
  std::unordered_map<uint16_t, Entry> handlers_;
  uint64_t malformed_ = 0, denied_ = 0;
};

class AsyncRpcClient {
 public:
  using Callback = std::function<void(Result<wire::Envelope>)>;

  explicit AsyncRpcClient(EventLoop* loop) : loop_(loop) {}
  ~AsyncRpcClient();

  // Loop thread only. `endpoint` is "tcp://host:port".
  void Call(const std::string& endpoint, wire::MsgType type, const wire::BodyWriter& body,
            Clock::duration deadline, Callback callback);
  // Drops every pending call's callback (they are not invoked) and closes sockets.
  void Close();

 private:
  struct Pending {
    Callback callback;
    EventLoop::TimerId timer = 0;
    std::string endpoint;
  };
  zmq::socket_t* SocketFor(const std::string& endpoint, Status* error);
  void OnReadable(zmq::socket_t* socket);
  void Finish(uint64_t request_id, Result<wire::Envelope> result);
  void DropIfIdle(const std::string& endpoint);

  EventLoop* loop_;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> sockets_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_id_ = 1;
};

// Sends one request and waits for its reply until `deadline`. Returns the reply envelope (whose
// status is then read with wire::ReplyPayload), Timeout, or Unavailable.
Result<wire::Envelope> CallOnce(const std::string& endpoint, wire::MsgType type,
                                const wire::BodyWriter& body, Clock::duration deadline);

}  // namespace rs::transport
