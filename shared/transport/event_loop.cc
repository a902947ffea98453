#include "shared/transport/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "shared/logging.h"
#include "shared/util/thread_name.h"
#include "shared/status.h"

namespace rs::transport {
namespace {

template <typename Fn>
void Guarded(const std::string& loop, const char* what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    Logger("loop")->error("loop={} event=handler_exception where={} what=\"{}\"", loop, what,
                          e.what());
  } catch (...) {
    Logger("loop")->error("loop={} event=handler_exception where={} what=unknown", loop, what);
  }
}

}  // namespace

EventLoop::EventLoop(std::string name) : name_(std::move(name)) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  RS_CHECK(wake_fd_ >= 0);
}

EventLoop::~EventLoop() {
  Stop();
  Join();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void EventLoop::AddSocket(zmq::socket_t* socket, Callback on_readable) {
  sockets_.emplace_back(socket, std::make_shared<Callback>(std::move(on_readable)));
}

void EventLoop::RemoveSocket(zmq::socket_t* socket) {
  sockets_.erase(std::remove_if(sockets_.begin(), sockets_.end(),
                                [&](const auto& entry) { return entry.first == socket; }),
                 sockets_.end());
}

EventLoop::TimerId EventLoop::AddTimer(Clock::duration delay, Callback fn) {
  TimerId id = next_timer_id_++;
  timers_[id] = Timer{std::move(fn), Clock::duration{0}};
  timer_queue_.emplace(Clock::now() + delay, id);
  return id;
}

EventLoop::TimerId EventLoop::AddPeriodic(Clock::duration period, Callback fn) {
  RS_CHECK(period > Clock::duration{0});
  TimerId id = next_timer_id_++;
  timers_[id] = Timer{std::move(fn), period};
  timer_queue_.emplace(Clock::now() + period, id);
  return id;
}

void EventLoop::CancelTimer(TimerId id) { timers_.erase(id); }

void EventLoop::Post(Callback fn) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // EAGAIN means a wake-up is already pending
}

void EventLoop::Stop() {
  stop_.store(true);
  Wake();
}

void EventLoop::Start() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Join() {
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

void EventLoop::RunPosted() {
  std::vector<Callback> batch;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) Guarded(name_, "posted", fn);
}

void EventLoop::RunTimers() {
  TimePoint now = Clock::now();
  while (!timer_queue_.empty() && timer_queue_.begin()->first <= now) {
    auto [due, id] = *timer_queue_.begin();
    timer_queue_.erase(timer_queue_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    Callback fn = it->second.fn;        // copy: the callback may cancel its own timer
    if (it->second.period > Clock::duration{0}) {
      // Skip missed periods instead of firing a burst after a stall.
      TimePoint next = due + it->second.period;
      if (next <= now) next = now + it->second.period;
      timer_queue_.emplace(next, id);
    } else {
      timers_.erase(it);
    }
    Guarded(name_, "timer", fn);
  }
}

void EventLoop::Run() {
  SetThreadName(name_);
  loop_thread_.store(std::this_thread::get_id());
  std::vector<zmq::pollitem_t> items;
  std::vector<std::shared_ptr<Callback>> handlers;
  std::vector<zmq::socket_t*> polled;
  while (!stop_.load()) {
    items.clear();
    handlers.clear();
    polled.clear();
    items.push_back(zmq::pollitem_t{nullptr, wake_fd_, ZMQ_POLLIN, 0});
    for (auto& [socket, handler] : sockets_) {
      items.push_back(zmq::pollitem_t{socket->handle(), 0, ZMQ_POLLIN, 0});
      handlers.push_back(handler);
      polled.push_back(socket);
    }
    long timeout_ms = 1000;
    if (!timer_queue_.empty()) {
      auto wait = timer_queue_.begin()->first - Clock::now();
      timeout_ms =
          std::clamp<long>(std::chrono::ceil<std::chrono::milliseconds>(wait).count(), 0, 1000);
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      if (e.num() != EINTR)
        Logger("loop")->error("loop={} event=poll_error what=\"{}\"", name_, e.what());
      continue;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t count;
      while (read(wake_fd_, &count, sizeof(count)) > 0) {
      }
    }
    RunPosted();
    for (size_t i = 1; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      // A previous handler may have removed (and destroyed) this socket.
      bool still_registered = std::any_of(sockets_.begin(), sockets_.end(),
                                          [&](const auto& e) { return e.first == polled[i - 1]; });
      if (still_registered) Guarded(name_, "socket", *handlers[i - 1]);
    }
    RunTimers();
  }
  RunPosted();
}

}  // namespace rs::transport
