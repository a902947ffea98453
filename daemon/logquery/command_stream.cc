#include "daemon/logquery/command_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <zmq.hpp>

#include "shared/logging.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/sockets.h"
#include "shared/wire/fields.h"

namespace rs::logquery {
namespace {

constexpr size_t kStderrCap = 4096;
constexpr size_t kReadBytes = 64 << 10;

// Sum of the trailing numbers of "file:N" lines (grep -c output).
uint64_t SumCounts(std::string_view text) {
  uint64_t sum = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    size_t colon = line.rfind(':');
    uint64_t n = 0;
    for (char c : line.substr(colon == std::string_view::npos ? 0 : colon + 1)) {
      if (c < '0' || c > '9') {
        n = 0;
        break;
      }
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    sum += n;
    start = end + 1;
  }
  return sum;
}

}  // namespace

struct CommandStream::Sockets {
  zmq::socket_t pull, push;
};

Result<std::shared_ptr<CommandStream>> CommandStream::Start(std::vector<std::string> argv,
                                                            ChildOptions child,
                                                            CommandStreamOptions options,
                                                            Done on_done) {
  std::shared_ptr<CommandStream> s(new CommandStream());
  s->argv_ = std::move(argv);
  s->child_options_ = std::move(child);
  s->options_ = std::move(options);
  s->on_done_ = std::move(on_done);
  s->sockets_ = std::make_unique<Sockets>();
  transport::SocketOptions so;
  so.recv_hwm = 1024;
  so.send_hwm = 64;
  auto pull = transport::MakeSocket(zmq::socket_type::pull, so);
  if (!pull.ok()) return pull.status();
  s->sockets_->pull = std::move(pull.value());
  auto port = transport::Bind(s->sockets_->pull, s->options_.bind_host, 0);
  if (!port.ok()) return port.status();
  s->endpoint_ = "tcp://" + s->options_.bind_host + ":" + std::to_string(*port);
  so.linger_ms = 2000;  // the end frame is the last thing sent: let it leave before close
  so.to_client = s->options_.peer_is_client;
  auto push = transport::MakeSocket(zmq::socket_type::push, so);
  if (!push.ok()) return push.status();
  s->sockets_->push = std::move(push.value());
  RS_RETURN_IF_ERROR(transport::Connect(s->sockets_->push, s->options_.peer));
  // The thread borrows the stream: its owner's destructor cancels and joins it.
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  return s;
}

CommandStream::~CommandStream() {
  cancel_ = true;  // the thread sees it within one poll (20 ms) and kills the child
  if (thread_.joinable()) thread_.join();
}

void CommandStream::Run() {
  auto log = Logger("logquery");
  const uint64_t stream = options_.stream;
  uint64_t seq = 0, acked = 0, selected = 0, bytes = 0;
  std::string pending;  // output not yet sent (a partial line at most, unless waiting to flush)
  std::string err;
  auto last_sent = Clock::now();
  auto last_ack = Clock::now();
  auto pending_since = Clock::now();
  bool out_eof = false, err_eof = false;
  Status result;

  auto send = [&](zmq::message_t frame) {
    zmq::message_t f = std::move(frame);
    return transport::TrySend(sockets_->push, &f, 1);
  };
  auto send_chunk = [&](std::string_view data) {
    if (!send(transport::ChunkFrame(stream, seq, 0, false, data))) return false;
    ++seq;
    last_sent = Clock::now();
    bytes += data.size();
    if (options_.count_mode) {
      selected += SumCounts(data);
    } else {
      selected += static_cast<uint64_t>(std::count(data.begin(), data.end(), '\n'));
    }
    return true;
  };

  Child child;
  Status started = child.Start(argv_, child_options_);
  if (!started.ok()) {
    send(transport::EndFrame(stream, 0, started));
    finished_ = true;
    if (on_done_) on_done_(started);
    return;
  }
  ::fcntl(child.stdout_fd(), F_SETFL, O_NONBLOCK);
  ::fcntl(child.stderr_fd(), F_SETFL, O_NONBLOCK);
  std::vector<char> buf(kReadBytes);
  bool peer_gone = false;

  while (!cancel_) {
    bool window_open = seq - acked < options_.window;
    zmq::pollitem_t items[3] = {
        {static_cast<void*>(sockets_->pull), 0, ZMQ_POLLIN, 0},
        {nullptr, out_eof || !window_open ? -1 : child.stdout_fd(), ZMQ_POLLIN, 0},
        {nullptr, err_eof ? -1 : child.stderr_fd(), ZMQ_POLLIN, 0},
    };
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(20));
    } catch (const zmq::error_t&) {
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> parts;
      while (transport::TryRecv(sockets_->pull, &parts)) {
        if (parts.size() != 1) continue;
        auto msg = transport::ParseStreamFrame(std::move(parts[0]));
        if (!msg.ok() || msg->stream != stream) continue;
        if (msg->kind == transport::StreamKind::kAck) {
          acked = std::max(acked, msg->seq + 1);
          last_ack = Clock::now();
        } else if (msg->kind == transport::StreamKind::kEnd) {
          cancel_ = true;  // the reader stopped (Ctrl-C, or it has seen enough)
        }
      }
    }
    if (items[2].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
      ssize_t n = ::read(child.stderr_fd(), buf.data(), buf.size());
      if (n > 0) {
        err.append(buf.data(), std::min<size_t>(static_cast<size_t>(n),
                                                kStderrCap - std::min(kStderrCap, err.size())));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        err_eof = true;
      }
    }
    if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
      for (int reads = 0; reads < 16; ++reads) {
        ssize_t n = ::read(child.stdout_fd(), buf.data(), buf.size());
        if (n > 0) {
          if (pending.empty()) pending_since = Clock::now();
          pending.append(buf.data(), static_cast<size_t>(n));
          if (pending.size() >= options_.frame_bytes) break;
        } else {
          if (n == 0 || (errno != EAGAIN && errno != EINTR)) out_eof = true;
          break;
        }
      }
    }
    // Send whole lines: full frames at once, a partial frame once it waited flush_delay.
    while (seq - acked < options_.window && !pending.empty()) {
      bool full = pending.size() >= options_.frame_bytes;
      if (!full && !out_eof && Clock::now() - pending_since < options_.flush_delay) break;
      size_t limit = std::min(pending.size(), options_.frame_bytes);
      size_t cut = pending.rfind('\n', limit - 1);
      if (cut == std::string::npos) {
        if (!out_eof && pending.size() < (16u << 20)) break;  // wait for the line's end
        cut = limit - 1;  // an enormous line, or the last one without a newline
      }
      if (!send_chunk(std::string_view(pending).substr(0, cut + 1))) break;
      pending.erase(0, cut + 1);
      pending_since = Clock::now();
    }
    auto now = Clock::now();
    if (seq > acked && now - last_ack > options_.peer_timeout) {
      peer_gone = true;
      break;
    }
    if (seq == acked && now - last_sent > options_.keepalive) {
      send_chunk({});  // keepalive: the reader sees the node alive while grep runs
      last_ack = now;
    }
    if (out_eof && pending.empty()) break;
  }

  if (cancel_ || peer_gone) {
    child.Kill();
    child.Wait();
    result = cancel_ ? Status::Unavailable("cancelled by the reader")
                     : Status::Timeout("the reader stopped acknowledging");
    log->info("event=stream_stopped stream={} reason=\"{}\" bytes={}", stream, result.message(),
              bytes);
  } else {
    ChildExit exit = child.Wait();
    // Drain what is left on stderr (the child has exited: reads cannot block for long).
    for (;;) {
      ssize_t n = ::read(child.stderr_fd(), buf.data(), buf.size());
      if (n <= 0) break;
      err.append(buf.data(), std::min<size_t>(static_cast<size_t>(n),
                                              kStderrCap - std::min(kStderrCap, err.size())));
    }
    send(transport::EndFrame(stream, 0, Status::Ok(), [&](wire::Packer& pk) {
      pk.pack_map(5);
      pk.pack("exit");
      pk.pack_int32(exit.code);
      pk.pack("signaled");
      pk.pack(exit.signaled);
      pk.pack("selected");
      pk.pack_uint64(selected);
      pk.pack("bytes");
      pk.pack_uint64(bytes);
      pk.pack("stderr");
      pk.pack(err);
    }));
  }
  finished_ = true;
  if (on_done_) on_done_(result);
}

}  // namespace rs::logquery
