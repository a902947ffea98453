// CommandStream: runs one child process and streams its standard output, as whole lines, to a
// peer over the data plane (shared/transport/data_stream.h), with flow control: at most `window`
// unacknowledged frames, and the child's output pipe is not read while the window is full, so a
// query that matches millions of lines is paced by the reader and never held in memory here.
//
//   frames to the peer: chunks of complete lines (lane 0, seq from 0; an empty chunk is a
//   keepalive sent after `keepalive` of silence), then one end frame whose payload is
//   {"exit": code, "signaled": bool, "selected": lines (or the sum of -c counts), "bytes",
//    "stderr": the child's stderr, capped}
//   frames from the peer, to endpoint(): acks [stream, seq, lane], or an end frame = cancel.
//
// The peer is given up (the child killed, no end frame) when it acknowledges nothing for
// `peer_timeout` while frames are outstanding. One thread per stream owns its sockets and the
// child; destroying the stream cancels it and joins that thread (within a poll interval and
// the child's kill). Start() and Cancel() may be called from any thread; `on_done` runs on the
// stream's thread once, at the end, and must not destroy the stream.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shared/clock.h"
#include "shared/status.h"
#include "shared/util/child.h"

namespace rs::logquery {

struct CommandStreamOptions {
  std::string bind_host = "127.0.0.1";  // where the ack PULL binds
  std::string peer;                     // the reader's data endpoint, tcp://host:port
  bool peer_is_client = false;          // the reader is rainctl (SocketOptions::to_client)
  uint64_t stream = 0;
  uint32_t window = 8;
  size_t frame_bytes = 256 << 10;
  bool count_mode = false;  // output lines are "file:N" (grep -c): selected = sum of N
  Clock::duration keepalive = std::chrono::milliseconds(500);
  Clock::duration peer_timeout = std::chrono::seconds(15);
  Clock::duration flush_delay = std::chrono::milliseconds(20);  // partial frames wait this long
};

class CommandStream {
 public:
  using Done = std::function<void(const Status&)>;
  // Binds the ack socket and starts the thread, which spawns `argv`. The endpoint to give the
  // peer is endpoint().
  static Result<std::shared_ptr<CommandStream>> Start(std::vector<std::string> argv,
                                                      ChildOptions child,
                                                      CommandStreamOptions options, Done on_done);
  ~CommandStream();

  const std::string& endpoint() const { return endpoint_; }
  void Cancel() { cancel_ = true; }
  bool finished() const { return finished_; }

 private:
  CommandStream() = default;
  void Run();

  std::vector<std::string> argv_;
  ChildOptions child_options_;
  CommandStreamOptions options_;
  Done on_done_;
  std::string endpoint_;
  struct Sockets;
  std::unique_ptr<Sockets> sockets_;
  std::thread thread_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> finished_{false};
};

}  // namespace rs::logquery
