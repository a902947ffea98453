#include "shared/transport/event_loop.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <future>

#include "shared/transport/sockets.h"

namespace rs::transport {

TEST_CASE("timers fire in order and a cancelled timer never fires", "[loop]") {
  EventLoop loop("test");
  std::vector<int> order;
  loop.AddTimer(milliseconds(30), [&] { order.push_back(3); });
  loop.AddTimer(milliseconds(10), [&] { order.push_back(1); });
  auto cancelled = loop.AddTimer(milliseconds(20), [&] { order.push_back(2); });
  loop.CancelTimer(cancelled);
  loop.AddTimer(milliseconds(50), [&] { loop.Stop(); });
  loop.Run();
  CHECK(order == std::vector<int>{1, 3});
}

TEST_CASE("a periodic timer repeats until cancelled from its own callback", "[loop]") {
  EventLoop loop("test");
  int runs = 0;
  EventLoop::TimerId id = 0;
  id = loop.AddPeriodic(milliseconds(2), [&] {
    if (++runs == 5) {
      loop.CancelTimer(id);
      loop.AddTimer(milliseconds(20), [&] { loop.Stop(); });
    }
  });
  loop.Run();
  CHECK(runs == 5);
}

TEST_CASE("work posted from another thread runs on the loop thread", "[loop]") {
  EventLoop loop("test");
  loop.Start();
  std::promise<bool> ran;
  std::thread poster([&] { loop.Post([&] { ran.set_value(loop.InLoopThread()); }); });
  auto future = ran.get_future();
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(future.get());
  poster.join();
  loop.Stop();
  loop.Join();
}

TEST_CASE("an exception in a handler is contained and the loop goes on", "[loop]") {
  EventLoop loop("test");
  bool later = false;
  loop.AddTimer(milliseconds(1), [] { throw std::runtime_error("boom"); });
  loop.AddTimer(milliseconds(5), [&] { later = true; });
  loop.AddTimer(milliseconds(10), [&] { loop.Stop(); });
  loop.Run();
  CHECK(later);
}

TEST_CASE("a readable socket runs its handler", "[loop]") {
  EventLoop loop("test");
  auto pull = MakeSocket(zmq::socket_type::pull);
  auto push = MakeSocket(zmq::socket_type::push);
  REQUIRE(pull.ok());
  REQUIRE(push.ok());
  auto port = Bind(*pull, "127.0.0.1", 0);
  REQUIRE(port.ok());
  REQUIRE(Connect(*push, "tcp://127.0.0.1:" + std::to_string(*port)).ok());
  std::string got;
  loop.AddSocket(&pull.value(), [&] {
    std::vector<zmq::message_t> parts;
    while (TryRecv(*pull, &parts)) got += parts[0].to_string();
    if (got == "hello") loop.Stop();
  });
  loop.AddTimer(std::chrono::seconds(5), [&] { loop.Stop(); });
  REQUIRE(TrySend(*push, std::string("hello")));
  loop.Run();
  CHECK(got == "hello");
}

}  // namespace rs::transport
