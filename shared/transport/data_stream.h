// The data plane: flow-controlled chunk streams over ZeroMQ PUSH/PULL.
//
// Each participant (raind's HyDFS service, a rainctl transfer) binds one PULL socket and sends to
// a peer through one PUSH socket per peer endpoint, so frames between two participants arrive in
// the order sent. Three frames, each one standard envelope (layouts in shared/wire/FORMAT.md):
//   kStreamChunk  [stream, seq, flags, crc32c, data]  sender -> receiver; seq counts from 0
//   kStreamAck    [stream, seq, lane]                 receiver -> sender: chunks <= seq consumed
//   kStreamEnd    [stream, lane, code, message, payload]  either way: the result, or an abort
// `stream` is a random 64-bit id naming one operation at both ends. `lane` tells apart several
// peers of one operation (the replicas of a write, successive sources of a read); a chunk carries
// its lane in flags bits 1..7 (bit 0: last chunk). Flow control: a sender keeps at most `window`
// unacknowledged chunks, so memory per stream is window * chunk size. Liveness is the caller's:
// every stream has an idle deadline, and a peer that membership declares failed ends it.
//
// Frames between two DataPorts of one EventLoop (a node writing its own replica, reading its own
// copy: HyDFS's client and serving ports) never touch a socket: Send() queues them for the
// receiving port, and the loop delivers them exactly as if read from its PULL socket, in order,
// with the same queue limit. They skip TCP and CurveZMQ, which protect nothing inside one
// process. Ports of different loops (several services in one test process) still use sockets.
//
// Thread-safety: a DataPort belongs to one EventLoop; call it on that loop's thread only, and
// destroy it only while that loop is not running. The frame builders and Parse() are pure and
// thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <zmq.hpp>

#include "shared/status.h"
#include "shared/transport/event_loop.h"
#include "shared/wire/envelope.h"

namespace rs::transport {

enum class StreamKind : uint8_t { kChunk, kAck, kEnd };

// One received data-plane frame. `data` and `payload` point into `frame`/`envelope`, which the
// message keeps alive.
struct StreamMsg {
  StreamKind kind = StreamKind::kChunk;
  uint64_t stream = 0;
  uint64_t seq = 0;
  uint8_t lane = 0;
  bool last = false;
  uint32_t crc = 0;
  std::string_view data;
  Status status;            // kEnd
  msgpack::object payload;  // kEnd (nil when absent)
  std::shared_ptr<zmq::message_t> frame;
  wire::Envelope envelope;

  bool crc_ok() const;  // CRC32C of data equals crc
};

// Frame builders. Chunk(): copies `data` once into the frame. ChunkFilled(): the caller writes
// `size` bytes in place (e.g. pread straight into the frame), then the CRC is computed; a fill
// error is returned as is.
zmq::message_t ChunkFrame(uint64_t stream, uint64_t seq, uint8_t lane, bool last,
                          std::string_view data);
Result<zmq::message_t> ChunkFrameFilled(uint64_t stream, uint64_t seq, uint8_t lane, bool last,
                                        size_t size, const std::function<Status(char*)>& fill);
zmq::message_t AckFrame(uint64_t stream, uint64_t seq, uint8_t lane);
zmq::message_t EndFrame(uint64_t stream, uint8_t lane, const Status& status,
                        const wire::BodyWriter& payload = {});
// Another handle on the same frame bytes (zmq_msg_copy: large frames share one buffer), for
// sending one chunk to several peers without copying it.
zmq::message_t ShareFrame(zmq::message_t& frame);

Result<StreamMsg> ParseStreamFrame(zmq::message_t frame);

uint64_t NewStreamId();  // random, never 0

class DataPort {
 public:
  using Handler = std::function<void(StreamMsg&)>;

  DataPort(EventLoop* loop, std::string name) : loop_(loop), name_(std::move(name)) {}
  ~DataPort();
  DataPort(const DataPort&) = delete;
  DataPort& operator=(const DataPort&) = delete;

  // Binds the PULL socket; `advertise_host` goes into endpoint().
  Result<uint16_t> Listen(const std::string& host, uint16_t port);
  const std::string& endpoint() const { return endpoint_; }  // tcp://host:port

  // Frames of `stream` go to `handler` until Unregister; frames of unknown streams are dropped
  // (a late frame of a finished operation is normal).
  void Register(uint64_t stream, Handler handler);
  void Unregister(uint64_t stream);
  // Frames of streams without a registered handler go here when set (a server demultiplexes
  // many short streams itself).
  void SetFallback(Handler handler) { fallback_ = std::make_shared<Handler>(std::move(handler)); }

  // Queues `frame` to `endpoint` ("tcp://host:port"); false when the peer's queue is full or the
  // endpoint is bad (the frame is dropped: flow control keeps queues short, so a full queue means
  // a peer that stopped reading).
  bool Send(const std::string& endpoint, zmq::message_t frame);
  // Closes the PUSH to a peer that is gone (pending frames are dropped).
  void Forget(const std::string& endpoint);
  // `endpoint` belongs to a client process (rainctl), not a node: Send makes its PUSH with
  // SocketOptions::to_client.
  void MarkClient(const std::string& endpoint);
  // Closes the PUSH to every client endpoint nothing was sent to (or marked) for `idle`: a
  // finished rainctl's port is gone, and its socket (which never redials) only holds memory and
  // a file descriptor. Frames still queued there are dropped, so `idle` must exceed the
  // transfers' own deadlines. Returns how many it closed.
  size_t CloseIdleClients(Clock::duration idle);
  size_t client_endpoints() const { return client_endpoints_.size(); }

  uint64_t malformed_frames() const { return malformed_; }
  uint64_t bytes_received() const { return bytes_received_; }
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t local_frames() const { return local_frames_; }  // delivered in-process (both ways)

  struct LocalInbox;  // frames from other ports of this process (data_stream.cc)

 private:
  void OnReadable();
  void Deliver(zmq::message_t frame);  // one frame, read or local, to its handler
  static void DrainLocal(const std::shared_ptr<LocalInbox>& inbox);

  EventLoop* loop_;
  std::string name_;
  std::string endpoint_;
  std::unique_ptr<zmq::socket_t> pull_;
  static constexpr size_t kMaxClientEndpoints = 4096;
  std::map<std::string, std::unique_ptr<zmq::socket_t>> pushes_;
  std::map<std::string, TimePoint> client_endpoints_;  // -> last marked or sent to
  std::unordered_map<uint64_t, std::shared_ptr<Handler>> handlers_;
  std::shared_ptr<Handler> fallback_;
  std::shared_ptr<LocalInbox> inbox_;  // registered under endpoint_ while listening
  uint64_t malformed_ = 0, bytes_received_ = 0, bytes_sent_ = 0, local_frames_ = 0;
};

}  // namespace rs::transport
