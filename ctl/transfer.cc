#include "ctl/transfer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "ctl/output.h"
#include "shared/clock.h"
#include "shared/ids.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/sockets.h"
#include "shared/util/write_behind.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

constexpr uint8_t kToolLane = 127;

// The local address that routes to `host` (a UDP connect sends nothing).
std::string LocalAddressFor(const std::string& host) {
  if (host.rfind("127.", 0) == 0 || host == "localhost") return "127.0.0.1";
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return "0.0.0.0";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(9);
  std::string result = "0.0.0.0";
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      char buf[INET_ADDRSTRLEN];
      if (::inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf))) result = buf;
    }
  }
  ::close(fd);
  return result;
}

// rainctl's end of the data plane: a PULL it binds and a PUSH to the node.
struct Pipe {
  zmq::socket_t pull, push;
  std::string endpoint;
  bool push_connected = false;

  Status Open(const std::string& node_endpoint) {
    std::string host = node_endpoint.substr(6, node_endpoint.rfind(':') - 6);  // tcp://H:P
    transport::SocketOptions opts;
    opts.recv_hwm = 256;
    opts.max_message_bytes = 80 << 20;
    auto pull_socket = transport::MakeSocket(zmq::socket_type::pull, opts);
    if (!pull_socket.ok()) return pull_socket.status();
    pull = std::move(pull_socket.value());
    std::string bind_host = LocalAddressFor(host);
    auto port = transport::Bind(pull, bind_host, 0);
    if (!port.ok()) return port.status();
    endpoint = "tcp://" + bind_host + ":" + std::to_string(*port);
    auto push_socket = transport::MakeSocket(zmq::socket_type::push, opts);
    if (!push_socket.ok()) return push_socket.status();
    push = std::move(push_socket.value());
    return Status::Ok();
  }
  Status ConnectPush(const std::string& node_data_endpoint) {
    if (push_connected) return Status::Ok();
    push_connected = true;
    return transport::Connect(push, node_data_endpoint);
  }
  // Waits up to `ms` for one frame.
  Result<std::optional<transport::StreamMsg>> Receive(int ms) {
    zmq::pollitem_t item{static_cast<void*>(pull), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    } catch (const zmq::error_t& e) {
      return Status::IOError(std::string("poll: ") + e.what());
    }
    if (!(item.revents & ZMQ_POLLIN)) return std::optional<transport::StreamMsg>();
    std::vector<zmq::message_t> parts;
    if (!transport::TryRecv(pull, &parts) || parts.size() != 1) {
      return std::optional<transport::StreamMsg>();
    }
    auto msg = transport::ParseStreamFrame(std::move(parts[0]));
    if (!msg.ok()) return msg.status();
    return std::optional<transport::StreamMsg>(std::move(msg.value()));
  }
  bool Send(zmq::message_t frame) {
    zmq::message_t f = std::move(frame);
    return transport::TrySend(push, &f, 1);
  }
};

class Progress {
 public:
  Progress(const TransferOptions& options, uint64_t total)
      : enabled_(options.progress && isatty(STDERR_FILENO) && total >= (4u << 20)),
        label_(options.label),
        total_(total),
        start_(Clock::now()),
        last_(start_) {}
  void Update(uint64_t done) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(200) && done < total_) return;
    last_ = now;
    double secs = std::max(1e-3, std::chrono::duration<double>(now - start_).count());
    std::fprintf(stderr, "\r%s: %3d%%  %s of %s  %.1f MiB/s ", label_.c_str(),
                 static_cast<int>(total_ ? done * 100 / total_ : 100), FormatBytes(done).c_str(),
                 FormatBytes(total_).c_str(), static_cast<double>(done) / secs / (1 << 20));
    drawn_ = true;
  }
  ~Progress() {
    if (drawn_) std::fprintf(stderr, "\n");
  }

 private:
  bool enabled_;
  std::string label_;
  uint64_t total_;
  TimePoint start_, last_;
  bool drawn_ = false;
};

TransferOutcome LocalError(const std::string& what) {
  TransferOutcome t;
  t.local_error = true;
  t.outcome.status = Status::IOError(what);
  return t;
}

TransferOutcome Unreachable(const Status& st) {
  TransferOutcome t;
  t.outcome.status = st;
  return t;
}

std::string Errno() { return std::strerror(errno); }

// The end of a transfer as an outcome: the node's result, remote.
TransferOutcome FromEnd(transport::StreamMsg& msg) {
  TransferOutcome t;
  t.outcome.remote = true;
  t.outcome.status = msg.status;
  if (msg.status.ok()) t.outcome.reply = Reply{msg.envelope, msg.payload};
  return t;
}

// A temporary copy of stdin (unlinked: it disappears with the descriptor).
Result<int> SpoolStdin() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir ? tmpdir : "/tmp") + "/rainctl-stdin-XXXXXX";
  int fd = ::mkstemp(path.data());
  if (fd < 0) return Status::IOError("cannot spool stdin: " + Errno());
  ::unlink(path.c_str());
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Status::IOError("cannot read stdin: " + Errno());
    }
    if (n == 0) break;
    const char* p = buf.data();
    while (n > 0) {
      ssize_t w = ::write(fd, p, static_cast<size_t>(n));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        ::close(fd);
        return Status::IOError("cannot spool stdin: " + Errno());
      }
      p += w;
      n -= w;
    }
  }
  return fd;
}

Status PreadAll(int fd, char* out, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError("cannot read the local file: " + Errno());
    if (r == 0) return Status::IOError("the local file shrank while it was being sent");
    out += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

Status WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::IOError("cannot write the local file: " + Errno());
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd > 2) ::close(fd);
  }
};

}  // namespace

TransferOutcome Upload(const Context& ctx, const std::string& cmd, const std::string& name,
                       const std::string& local, const TransferOptions& options) {
  Fd file;
  if (local == "-") {
    auto fd = SpoolStdin();
    if (!fd.ok()) return LocalError(fd.status().message());
    file.fd = *fd;
  } else {
    file.fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
    if (file.fd < 0) return LocalError("cannot open " + local + ": " + Errno());
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) return LocalError("cannot stat " + local + ": " + Errno());
  if (!S_ISREG(st.st_mode)) return LocalError(local + " is not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);

  auto node = ResolveEndpoint(ctx);
  if (!node.ok()) {
    TransferOutcome t;
    t.outcome.status = node.status();
    t.outcome.usage = node.status().code() == StatusCode::kInvalidArgument;
    return t;
  }
  Pipe pipe;
  Status opened = pipe.Open(*node);
  if (!opened.ok()) return Unreachable(opened);
  uint64_t stream = transport::NewStreamId();
  Outcome open = Command(ctx, cmd,
                         {{"name", name},
                          {"size", std::to_string(size)},
                          {"endpoint", pipe.endpoint},
                          {"stream", std::to_string(stream)}});
  if (!open.ok()) return TransferOutcome{open, false};
  std::string data_endpoint = Str(open.reply.payload, "endpoint");
  uint64_t chunk_size = Uint(open.reply.payload, "chunk_size");
  uint64_t window = std::max<uint64_t>(1, Uint(open.reply.payload, "window"));
  if (data_endpoint.rfind("tcp://", 0) != 0 || chunk_size == 0) {
    return Unreachable(Status::Corruption("the node's answer lacks a data endpoint"));
  }
  Status connected = pipe.ConnectPush(data_endpoint);
  if (!connected.ok()) return Unreachable(connected);

  uint64_t chunks = (size + chunk_size - 1) / chunk_size;
  uint64_t sent = 0, acked = 0;
  Progress progress(options, size);
  auto last_heard = Clock::now();
  auto idle = std::chrono::milliseconds(std::max(ctx.timeout_ms, 5000));
  // Once every chunk is acknowledged the replicas fsync and commit: allow for the disk.
  auto commit_idle = idle + std::chrono::milliseconds(30000 + size / (50 << 10));
  for (;;) {
    while (sent < chunks && sent < acked + window) {
      uint64_t offset = sent * chunk_size;
      size_t len = static_cast<size_t>(std::min<uint64_t>(chunk_size, size - offset));
      auto frame = transport::ChunkFrameFilled(
          stream, sent, kToolLane, sent + 1 == chunks, len,
          [&](char* buf) { return PreadAll(file.fd, buf, len, offset); });
      if (!frame.ok()) {
        pipe.Send(transport::EndFrame(stream, kToolLane, frame.status()));
        return LocalError(frame.status().message());
      }
      if (!pipe.Send(std::move(frame.value()))) break;  // queue full: wait for acks
      ++sent;
    }
    auto msg = pipe.Receive(100);
    if (!msg.ok()) return Unreachable(msg.status());
    if (!msg->has_value()) {
      auto limit = acked >= chunks ? commit_idle : idle;
      if (Clock::now() - last_heard > limit) {
        pipe.Send(transport::EndFrame(stream, kToolLane, Status::Timeout("rainctl gave up")));
        return Unreachable(Status::Timeout("no progress from the node for " +
                                           std::to_string(ToMillis(limit)) + " ms"));
      }
      continue;
    }
    transport::StreamMsg& m = **msg;
    if (m.stream != stream) continue;
    last_heard = Clock::now();
    if (m.kind == transport::StreamKind::kAck) {
      acked = std::max(acked, m.seq + 1);
      progress.Update(std::min(size, acked * chunk_size));
    } else if (m.kind == transport::StreamKind::kEnd) {
      progress.Update(size);
      return FromEnd(m);
    }
  }
}

TransferOutcome Download(const Context& ctx, const std::string& name, const std::string& local,
                         bool replica_only, const TransferOptions& options) {
  Fd out;
  std::string tmp;
  if (local == "-") {
    out.fd = STDOUT_FILENO;
  } else {
    struct stat st {};
    if (::stat(local.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return LocalError(local + " is a directory");
    }
    tmp = local + ".rainctl-part-" + std::to_string(getpid());
    out.fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (out.fd < 0) return LocalError("cannot write " + local + ": " + Errno());
  }
  auto cleanup = [&] {
    if (!tmp.empty()) ::unlink(tmp.c_str());
  };
  auto node = ResolveEndpoint(ctx);
  if (!node.ok()) {
    cleanup();
    TransferOutcome t;
    t.outcome.status = node.status();
    t.outcome.usage = node.status().code() == StatusCode::kInvalidArgument;
    return t;
  }
  Pipe pipe;
  Status opened = pipe.Open(*node);
  if (!opened.ok()) {
    cleanup();
    return Unreachable(opened);
  }
  uint64_t stream = transport::NewStreamId();
  Outcome open = Command(ctx, "hydfs.get",
                         {{"name", name},
                          {"endpoint", pipe.endpoint},
                          {"stream", std::to_string(stream)},
                          {"local", replica_only ? "1" : "0"}});
  if (!open.ok()) {
    cleanup();
    return TransferOutcome{open, false};
  }
  uint64_t size = Uint(open.reply.payload, "size");
  std::string data_endpoint = Str(open.reply.payload, "endpoint");
  Status connected = pipe.ConnectPush(data_endpoint);
  if (!connected.ok()) {
    cleanup();
    return Unreachable(connected);
  }
  Progress progress(options, size);
  WriteBehind behind;  // a 1 GB get must not grow the page cache by 1 GB
  uint64_t expected = 0, received = 0;
  auto last_heard = Clock::now();
  auto idle = std::chrono::milliseconds(std::max(ctx.timeout_ms, 10000));
  for (;;) {
    auto msg = pipe.Receive(100);
    if (!msg.ok()) {
      cleanup();
      return Unreachable(msg.status());
    }
    if (!msg->has_value()) {
      if (Clock::now() - last_heard > idle) {
        pipe.Send(transport::EndFrame(stream, kToolLane, Status::Timeout("rainctl gave up")));
        cleanup();
        return Unreachable(
            Status::Timeout("no data from the node for " + std::to_string(ToMillis(idle)) + " ms"));
      }
      continue;
    }
    transport::StreamMsg& m = **msg;
    if (m.stream != stream) continue;
    last_heard = Clock::now();
    if (m.kind == transport::StreamKind::kChunk) {
      // The chunks come straight from a replica, or through the node; after a failover the next
      // replica may resend chunks already here: drop them, and ack again so that it goes on.
      if (m.seq != expected) {
        if (m.seq < expected) pipe.Send(transport::AckFrame(stream, expected - 1, kToolLane));
        continue;
      }
      if (!m.crc_ok()) {
        pipe.Send(transport::EndFrame(stream, kToolLane, Status::Corruption("bad CRC")));
        cleanup();
        return Unreachable(
            Status::Corruption("chunk " + std::to_string(m.seq) + " arrived with a bad CRC"));
      }
      Status w = WriteAll(out.fd, m.data.data(), m.data.size());
      if (!w.ok()) {
        pipe.Send(transport::EndFrame(stream, kToolLane, w));
        cleanup();
        return LocalError(w.message());
      }
      received += m.data.size();
      if (!tmp.empty()) behind.Advance(out.fd, received);
      ++expected;
      pipe.Send(transport::AckFrame(stream, m.seq, kToolLane));
      progress.Update(received);
      continue;
    }
    if (m.kind != transport::StreamKind::kEnd || m.lane != kToolLane) continue;  // the node's
    TransferOutcome t = FromEnd(m);
    if (t.outcome.ok() && received != size) {
      t.outcome.status = Status::Corruption("received " + std::to_string(received) +
                                            " bytes, expected " + std::to_string(size));
    }
    if (!t.outcome.ok()) {
      cleanup();
      return t;
    }
    if (!tmp.empty()) {
      if (::rename(tmp.c_str(), local.c_str()) != 0) {
        cleanup();
        return LocalError("cannot write " + local + ": " + Errno());
      }
    }
    return t;
  }
}

}  // namespace rs::ctl
