#include "shared/transport/data_stream.h"

#include <atomic>
#include <mutex>
#include <random>

#include "shared/logging.h"
#include "shared/transport/sockets.h"
#include "shared/util/crc32c.h"
#include "shared/wire/fields.h"

namespace rs::transport {
namespace {

constexpr int kMaxBatch = 64;  // frames drained per wake-up

void PackHeader(wire::Packer& pk, wire::MsgType type) {
  pk.pack_array(4);
  pk.pack_uint8(wire::kWireVersion);
  pk.pack_uint16(static_cast<uint16_t>(type));
  pk.pack_uint64(0);
}

zmq::message_t FromBuffer(const msgpack::sbuffer& buf) {
  return zmq::message_t(buf.data(), buf.size());
}

// Chunk frames are capped by the PULL socket's maximum message size.
constexpr size_t kMaxChunkFrame = 64u << 20;

// The PUSH/PULL queue limits; a local inbox holds at most as many frames as both together.
constexpr int kSendHwm = 256;
constexpr int kRecvHwm = 256;

}  // namespace

// The frames other ports of this process sent to one listening port, waiting for its loop.
struct DataPort::LocalInbox {
  std::mutex mu;
  std::deque<zmq::message_t> frames;  // guarded by mu
  bool drain_posted = false;          // guarded by mu
  std::atomic<bool> closed = false;   // set by ~DataPort
  EventLoop* loop = nullptr;
  DataPort* port = nullptr;  // valid until closed
};

namespace {

// The listening ports of this process, by advertised endpoint.
std::mutex local_mu;
std::map<std::string, std::weak_ptr<DataPort::LocalInbox>>& LocalPorts() {
  static auto* ports = new std::map<std::string, std::weak_ptr<DataPort::LocalInbox>>;
  return *ports;
}

std::shared_ptr<DataPort::LocalInbox> FindLocal(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(local_mu);
  auto& ports = LocalPorts();
  auto it = ports.find(endpoint);
  return it == ports.end() ? nullptr : it->second.lock();
}

}  // namespace

bool StreamMsg::crc_ok() const { return Crc32c(data.data(), data.size()) == crc; }

Result<zmq::message_t> ChunkFrameFilled(uint64_t stream, uint64_t seq, uint8_t lane, bool last,
                                        size_t size, const std::function<Status(char*)>& fill) {
  msgpack::sbuffer header;
  wire::Packer pk(header);
  PackHeader(pk, wire::MsgType::kStreamChunk);
  pk.pack_array(5);
  pk.pack_fix_uint64(stream);
  pk.pack_fix_uint64(seq);
  pk.pack_fix_uint8(static_cast<uint8_t>((last ? 1 : 0) | (lane << 1)));
  size_t crc_at = header.size() + 1;  // after the 0xce marker
  pk.pack_fix_uint32(0);
  pk.pack_bin(static_cast<uint32_t>(size));
  zmq::message_t frame(header.size() + size);
  char* bytes = static_cast<char*>(frame.data());
  std::memcpy(bytes, header.data(), header.size());
  char* data = bytes + header.size();
  if (size > 0) RS_RETURN_IF_ERROR(fill(data));
  uint32_t crc = Crc32c(data, size);
  for (int i = 0; i < 4; ++i) bytes[crc_at + i] = static_cast<char>(crc >> (24 - 8 * i));
  return frame;
}

zmq::message_t ChunkFrame(uint64_t stream, uint64_t seq, uint8_t lane, bool last,
                          std::string_view data) {
  auto frame = ChunkFrameFilled(stream, seq, lane, last, data.size(), [&](char* out) {
    std::memcpy(out, data.data(), data.size());
    return Status::Ok();
  });
  return std::move(frame.value());
}

zmq::message_t AckFrame(uint64_t stream, uint64_t seq, uint8_t lane) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  PackHeader(pk, wire::MsgType::kStreamAck);
  pk.pack_array(3);
  pk.pack_uint64(stream);
  pk.pack_uint64(seq);
  pk.pack_uint8(lane);
  return FromBuffer(buf);
}

zmq::message_t EndFrame(uint64_t stream, uint8_t lane, const Status& status,
                        const wire::BodyWriter& payload) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  PackHeader(pk, wire::MsgType::kStreamEnd);
  pk.pack_array(5);
  pk.pack_uint64(stream);
  pk.pack_uint8(lane);
  pk.pack_uint8(static_cast<uint8_t>(status.code()));
  pk.pack(status.message());
  if (payload) {
    payload(pk);
  } else {
    pk.pack_nil();
  }
  return FromBuffer(buf);
}

zmq::message_t ShareFrame(zmq::message_t& frame) {
  zmq::message_t copy;
  copy.copy(frame);
  return copy;
}

Result<StreamMsg> ParseStreamFrame(zmq::message_t frame) {
  StreamMsg msg;
  msg.frame = std::make_shared<zmq::message_t>(std::move(frame));
  wire::DecodeLimits limits;
  limits.max_bytes = kMaxChunkFrame + 4096;
  limits.max_bin = kMaxChunkFrame;
  limits.max_array = 1u << 16;  // end payloads may carry lists (sources, corruption reports)
  limits.max_map = 1024;
  limits.reference_bins = true;
  auto env = wire::Decode(
      std::string_view(static_cast<const char*>(msg.frame->data()), msg.frame->size()), limits);
  if (!env.ok()) return env.status();
  msg.envelope = std::move(env.value());
  const msgpack::object& body = msg.envelope.body;
  if (body.type != msgpack::type::ARRAY)
    return Status::Corruption("stream frame body is not an array");
  const msgpack::object* f = body.via.array.ptr;
  uint32_t n = body.via.array.size;
  uint64_t v = 0;
  switch (static_cast<wire::MsgType>(msg.envelope.type)) {
    case wire::MsgType::kStreamChunk: {
      msg.kind = StreamKind::kChunk;
      uint64_t flags = 0, crc = 0;
      if (n != 5 || !wire::ReadUint(f[0], &msg.stream) || !wire::ReadUint(f[1], &msg.seq) ||
          !wire::ReadUint(f[2], &flags) || flags > 255 || !wire::ReadUint(f[3], &crc) ||
          crc > UINT32_MAX || f[4].type != msgpack::type::BIN) {
        return Status::Corruption("malformed stream chunk");
      }
      msg.last = (flags & 1) != 0;
      msg.lane = static_cast<uint8_t>(flags >> 1);
      msg.crc = static_cast<uint32_t>(crc);
      msg.data = std::string_view(f[4].via.bin.ptr, f[4].via.bin.size);
      return msg;
    }
    case wire::MsgType::kStreamAck:
      msg.kind = StreamKind::kAck;
      if (n != 3 || !wire::ReadUint(f[0], &msg.stream) || !wire::ReadUint(f[1], &msg.seq) ||
          !wire::ReadUint(f[2], &v) || v > 127) {
        return Status::Corruption("malformed stream ack");
      }
      msg.lane = static_cast<uint8_t>(v);
      return msg;
    case wire::MsgType::kStreamEnd: {
      msg.kind = StreamKind::kEnd;
      uint64_t code = 0;
      std::string text;
      if (n != 5 || !wire::ReadUint(f[0], &msg.stream) || !wire::ReadUint(f[1], &v) || v > 127 ||
          !wire::ReadUint(f[2], &code) || !wire::ReadString(f[3], &text)) {
        return Status::Corruption("malformed stream end");
      }
      msg.lane = static_cast<uint8_t>(v);
      StatusCode sc = StatusCodeFromWire(static_cast<int64_t>(code));
      if (code != 0 && sc == StatusCode::kOk) sc = StatusCode::kInternal;
      msg.status = code == 0 ? Status::Ok() : Status(sc, text);
      msg.payload = f[4];
      return msg;
    }
    default:
      return Status::Corruption("not a stream frame: type " + std::to_string(msg.envelope.type));
  }
}

uint64_t NewStreamId() {
  static thread_local std::mt19937_64 rng{std::random_device{}() ^
                                          (static_cast<uint64_t>(std::random_device{}()) << 32)};
  uint64_t id = 0;
  while (id == 0) id = rng();
  return id;
}

DataPort::~DataPort() {
  if (inbox_) {
    {
      std::lock_guard<std::mutex> lock(local_mu);
      auto& ports = LocalPorts();
      auto it = ports.find(endpoint_);
      if (it != ports.end() && it->second.lock() == inbox_) ports.erase(it);
    }
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->closed = true;
    inbox_->frames.clear();
  }
  if (pull_) loop_->RemoveSocket(pull_.get());
}

Result<uint16_t> DataPort::Listen(const std::string& host, uint16_t port) {
  SocketOptions options;
  options.recv_hwm = kRecvHwm;
  options.max_message_bytes = static_cast<int64_t>(kMaxChunkFrame + 4096);
  auto socket = MakeSocket(zmq::socket_type::pull, options);
  if (!socket.ok()) return socket.status();
  pull_ = std::make_unique<zmq::socket_t>(std::move(socket.value()));
  auto bound = Bind(*pull_, host, port);
  if (!bound.ok()) return bound.status();
  endpoint_ = "tcp://" + host + ":" + std::to_string(*bound);
  loop_->AddSocket(pull_.get(), [this] { OnReadable(); });
  inbox_ = std::make_shared<LocalInbox>();
  inbox_->loop = loop_;
  inbox_->port = this;
  std::lock_guard<std::mutex> lock(local_mu);
  LocalPorts()[endpoint_] = inbox_;
  return bound;
}

void DataPort::Register(uint64_t stream, Handler handler) {
  handlers_[stream] = std::make_shared<Handler>(std::move(handler));
}

void DataPort::Unregister(uint64_t stream) { handlers_.erase(stream); }

bool DataPort::Send(const std::string& endpoint, zmq::message_t frame) {
  size_t size = frame.size();
  if (auto local = FindLocal(endpoint); local != nullptr && local->loop == loop_) {
    {
      std::lock_guard<std::mutex> lock(local->mu);
      if (local->closed || local->frames.size() >= size_t{kSendHwm + kRecvHwm}) return false;
      local->frames.push_back(std::move(frame));
      if (!local->drain_posted) {
        local->drain_posted = true;
        local->loop->Post([local] { DrainLocal(local); });
      }
    }
    bytes_sent_ += size;
    ++local_frames_;
    return true;
  }
  auto it = pushes_.find(endpoint);
  if (it == pushes_.end()) {
    SocketOptions options;
    options.send_hwm = kSendHwm;
    options.immediate = false;
    options.to_client = client_endpoints_.count(endpoint) > 0;
    auto socket = MakeSocket(zmq::socket_type::push, options);
    if (!socket.ok()) return false;
    auto push = std::make_unique<zmq::socket_t>(std::move(socket.value()));
    if (!Connect(*push, endpoint).ok()) return false;
    it = pushes_.emplace(endpoint, std::move(push)).first;
  }
  auto client = client_endpoints_.find(endpoint);
  if (!TrySend(*it->second, &frame, 1)) {
    // A client's socket never redials (SocketOptions::to_client): a refused frame means its one
    // connection is gone or its reader stopped; either way the stream fails by its deadline, and
    // the next send to this endpoint dials afresh.
    if (client != client_endpoints_.end()) pushes_.erase(it);
    return false;
  }
  bytes_sent_ += size;
  if (client != client_endpoints_.end()) client->second = Clock::now();
  return true;
}

void DataPort::Forget(const std::string& endpoint) {
  pushes_.erase(endpoint);
  client_endpoints_.erase(endpoint);
}

void DataPort::MarkClient(const std::string& endpoint) {
  auto [it, added] = client_endpoints_.emplace(endpoint, Clock::now());
  if (!added) {
    it->second = Clock::now();
    return;
  }
  if (client_endpoints_.size() > kMaxClientEndpoints) {  // too many at once: the least recent
    auto oldest = client_endpoints_.begin();
    for (auto c = client_endpoints_.begin(); c != client_endpoints_.end(); ++c) {
      if (c->second < oldest->second) oldest = c;
    }
    pushes_.erase(oldest->first);
    client_endpoints_.erase(oldest);
  }
  pushes_.erase(endpoint);  // one made for a node there would fail the handshake
}

size_t DataPort::CloseIdleClients(Clock::duration idle) {
  auto now = Clock::now();
  size_t closed = 0;
  for (auto it = client_endpoints_.begin(); it != client_endpoints_.end();) {
    if (now - it->second < idle) {
      ++it;
      continue;
    }
    closed += pushes_.erase(it->first);
    it = client_endpoints_.erase(it);
  }
  return closed;
}

void DataPort::OnReadable() {
  std::vector<zmq::message_t> parts;
  for (int i = 0; i < kMaxBatch && TryRecv(*pull_, &parts); ++i) {
    if (parts.size() != 1) {
      ++malformed_;
      continue;
    }
    Deliver(std::move(parts[0]));
  }
}

// On the receiving port's loop: every frame queued so far, in order. A frame queued meanwhile
// (a handler answering itself) posts the next drain.
void DataPort::DrainLocal(const std::shared_ptr<LocalInbox>& inbox) {
  std::deque<zmq::message_t> frames;
  {
    std::lock_guard<std::mutex> lock(inbox->mu);
    inbox->drain_posted = false;
    if (inbox->closed) return;
    frames.swap(inbox->frames);
  }
  for (auto& frame : frames) {
    if (inbox->closed) return;  // a handler destroyed the port
    ++inbox->port->local_frames_;
    inbox->port->Deliver(std::move(frame));
  }
}

void DataPort::Deliver(zmq::message_t frame) {
  bytes_received_ += frame.size();
  auto msg = ParseStreamFrame(std::move(frame));
  if (!msg.ok()) {
    ++malformed_;
    Logger("data")->warn("port={} event=malformed_frame error=\"{}\"", name_,
                         msg.status().message());
    return;
  }
  auto it = handlers_.find(msg->stream);
  std::shared_ptr<Handler> handler;  // survives an Unregister inside the call
  if (it != handlers_.end()) {
    handler = it->second;
  } else if (fallback_) {
    handler = fallback_;
  } else {
    return;  // a finished operation's late frame
  }
  (*handler)(msg.value());
}

}  // namespace rs::transport
