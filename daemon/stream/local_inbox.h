// LocalInbox: frames between two tasks of one raind, handed over in memory. A task registers its
// inbox under its endpoint ("tcp://host:port", where its PULL socket is bound); a task of the same
// process that sends a data frame or an ack there finds it and queues the bytes directly: no
// ZeroMQ IO thread, no TCP, no CurveZMQ (both ends are this process). Tasks of other processes
// find nothing and use the socket. The receiver polls fd() beside its socket and drains both.
//
// A queue holds at most `capacity` frames (like the socket's high-water mark): Push refuses
// more, and the sender's channel keeps the frame and sends it again, as for a full socket.
// Thread-safe: senders push from their own task threads.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace rs::stream {

class LocalInbox {
 public:
  // Registers an inbox under `endpoint` until Close() or destruction. Null when an eventfd
  // cannot be made (the task then receives through its socket only).
  static std::shared_ptr<LocalInbox> Register(const std::string& endpoint, size_t capacity);
  // The open inbox registered under `endpoint` in this process, or null.
  static std::shared_ptr<LocalInbox> Find(const std::string& endpoint);

  ~LocalInbox();
  LocalInbox(const LocalInbox&) = delete;
  LocalInbox& operator=(const LocalInbox&) = delete;

  // False when closed or full.
  bool Push(const std::string& frame);
  // Moves up to `max` frames into `out`, oldest first; the fd stays readable while more wait.
  size_t Take(std::deque<std::string>* out, size_t max);
  // Unregisters and refuses further frames (those queued are dropped).
  void Close();
  int fd() const { return fd_; }

 private:
  LocalInbox(std::string endpoint, size_t capacity, int fd)
      : endpoint_(std::move(endpoint)), capacity_(capacity), fd_(fd) {}
  void Signal();

  const std::string endpoint_;
  const size_t capacity_;
  const int fd_;  // eventfd, readable while frames wait
  std::mutex mu_;
  std::deque<std::string> frames_;
  bool closed_ = false;
};

}  // namespace rs::stream
