// EventLoop: one thread that owns a set of ZeroMQ sockets, runs their read handlers and timers.
// Post() and Stop() may be called from any thread; every other method only from the loop thread
// (or before Run()). Handlers must not block: blocking work belongs on another thread, which
// reports back through Post(). An exception escaping a handler is logged and swallowed, so one
// bad message never kills the daemon.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "shared/clock.h"

namespace rs::transport {

class EventLoop {
 public:
  using Callback = std::function<void()>;
  using TimerId = uint64_t;

  explicit EventLoop(std::string name);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // `on_readable` runs whenever `socket` has input; it should drain a bounded batch.
  void AddSocket(zmq::socket_t* socket, Callback on_readable);
  void RemoveSocket(zmq::socket_t* socket);

  TimerId AddTimer(Clock::duration delay, Callback fn);      // one-shot
  TimerId AddPeriodic(Clock::duration period, Callback fn);  // first run after one period
  void CancelTimer(TimerId id);

  void Post(Callback fn);  // thread-safe; runs on the loop thread soon
  void Run();              // on the calling thread, until Stop()
  void Stop();             // thread-safe
  // Starts Run() on a new thread; Join() waits for it after Stop().
  void Start();
  void Join();
  bool InLoopThread() const { return std::this_thread::get_id() == loop_thread_.load(); }
  const std::string& name() const { return name_; }

 private:
  struct Timer {
    Callback fn;
    Clock::duration period{0};  // zero: one-shot
  };
  void RunTimers();
  void RunPosted();
  void Wake();

  std::string name_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::thread::id> loop_thread_{};
  std::thread thread_;

  std::vector<std::pair<zmq::socket_t*, std::shared_ptr<Callback>>> sockets_;
  std::multimap<TimePoint, TimerId> timer_queue_;
  std::map<TimerId, Timer> timers_;
  TimerId next_timer_id_ = 1;

  std::mutex post_mu_;
  std::vector<Callback> posted_;  // guarded by post_mu_
};

}  // namespace rs::transport
