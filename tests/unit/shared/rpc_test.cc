#include "shared/transport/rpc.h"

#include <catch2/catch.hpp>

#include "shared/wire/fields.h"

namespace rs::transport {
namespace {

// A server on its own loop thread that echoes {"n": n+1} and never answers type kGossip.
struct EchoServer {
  EventLoop loop{"server"};
  RpcServer server{&loop, "echo"};
  uint16_t port = 0;

  EchoServer() {
    auto bound = server.Listen("127.0.0.1", 0);
    REQUIRE(bound.ok());
    port = *bound;
    server.Handle(wire::MsgType::kAdminCommand, [](const wire::Envelope& env, const Responder& r) {
      wire::FieldReader f(env.body);
      uint64_t n = f.Uint("n");
      if (!f.ok()) {
        r.Reply(Status::InvalidArgument(f.status().message()));
        return;
      }
      r.Ok([n](wire::Packer& pk) {
        pk.pack_map(1);
        pk.pack("n");
        pk.pack(n + 1);
      });
      r.Ok();  // a second reply is ignored
    });
    server.Handle(wire::MsgType::kGossip, [](const wire::Envelope&, const Responder&) {});
    loop.Start();
  }
  ~EchoServer() {
    loop.Stop();
    loop.Join();
  }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(port); }
};

wire::BodyWriter N(uint64_t n) {
  return [n](wire::Packer& pk) {
    pk.pack_map(1);
    pk.pack("n");
    pk.pack(n);
  };
}

}  // namespace

TEST_CASE("a request gets its reply", "[rpc]") {
  EchoServer server;
  auto env = CallOnce(server.endpoint(), wire::MsgType::kAdminCommand, N(41), milliseconds(3000));
  REQUIRE(env.ok());
  auto payload = wire::ReplyPayload(*env);
  REQUIRE(payload.ok());
  wire::FieldReader r(*payload);
  CHECK(r.Uint("n") == 42);
}

TEST_CASE("a handler's error reaches the caller as a status", "[rpc]") {
  EchoServer server;
  auto env = CallOnce(server.endpoint(), wire::MsgType::kAdminCommand, {}, milliseconds(3000));
  REQUIRE(env.ok());
  auto payload = wire::ReplyPayload(*env);
  REQUIRE_FALSE(payload.ok());
  CHECK(payload.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("an unserved message type gets unimplemented", "[rpc]") {
  EchoServer server;
  auto env = CallOnce(server.endpoint(), wire::MsgType::kPing, N(1), milliseconds(3000));
  REQUIRE(env.ok());
  CHECK(wire::ReplyPayload(*env).status().code() == StatusCode::kUnimplemented);
}

TEST_CASE("a call to a silent or absent peer times out at its deadline", "[rpc]") {
  EchoServer server;
  auto start = Clock::now();
  auto silent = CallOnce(server.endpoint(), wire::MsgType::kGossip, N(1), milliseconds(100));
  CHECK(silent.status().code() == StatusCode::kTimeout);
  auto absent =
      CallOnce("tcp://127.0.0.1:1", wire::MsgType::kAdminCommand, N(1), milliseconds(100));
  CHECK(absent.status().code() == StatusCode::kTimeout);
  CHECK(Clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("malformed frames get an error reply and the server keeps serving", "[rpc]") {
  EchoServer server;
  auto dealer = MakeSocket(zmq::socket_type::dealer);
  REQUIRE(dealer.ok());
  REQUIRE(Connect(*dealer, server.endpoint()).ok());
  REQUIRE(TrySend(*dealer, std::string("\xc1 junk", 6)));
  zmq::pollitem_t item{dealer->handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(3000));
  std::vector<zmq::message_t> parts;
  REQUIRE(TryRecv(*dealer, &parts));
  auto env = wire::Decode(parts.back().to_string_view());
  REQUIRE(env.ok());
  CHECK(wire::ReplyPayload(*env).status().code() == StatusCode::kCorruption);
  auto again = CallOnce(server.endpoint(), wire::MsgType::kAdminCommand, N(1), milliseconds(3000));
  REQUIRE(again.ok());
  CHECK(wire::ReplyPayload(*again).ok());
}

TEST_CASE("the async client invokes each callback exactly once, reply or timeout", "[rpc]") {
  EchoServer server;
  EventLoop loop("client");
  AsyncRpcClient client(&loop);
  int replies = 0, timeouts = 0;
  loop.Post([&] {
    for (int i = 0; i < 10; ++i) {
      client.Call(server.endpoint(), wire::MsgType::kAdminCommand, N(i), milliseconds(3000),
                  [&](Result<wire::Envelope> r) { replies += r.ok() ? 1 : 0; });
    }
    client.Call(server.endpoint(), wire::MsgType::kGossip, N(0), milliseconds(50),
                [&](Result<wire::Envelope> r) {
                  timeouts += r.status().code() == StatusCode::kTimeout ? 1 : 0;
                });
  });
  loop.AddPeriodic(milliseconds(5), [&] {
    if (replies == 10 && timeouts == 1) loop.AddTimer(milliseconds(100), [&] { loop.Stop(); });
  });
  loop.AddTimer(std::chrono::seconds(10), [&] { loop.Stop(); });
  loop.Run();
  CHECK(replies == 10);
  CHECK(timeouts == 1);
}

}  // namespace rs::transport
