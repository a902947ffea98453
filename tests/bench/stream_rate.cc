// stream_rate: the raw rate of one ZeroMQ stream of large chunks on 127.0.0.1, the reference that
// scripts/bench_hydfs.py sets HyDFS throughput against. Two threads of one process, PUSH -> PULL
// over tcp, sockets made by the data plane's own factory (shared/transport/sockets.h):
//   acked  the data plane's protocol (shared/transport/data_stream.h): every chunk is built with
//          ChunkFrameFilled (one copy + CRC32C), at most --window chunks are unacknowledged, the
//          receiver parses each frame, checks its CRC and acks it over a second PUSH -> PULL.
//          This is the like-for-like ceiling of one HyDFS transfer without disks.
//   plain  bare messages of --chunk bytes, blocking sends, no framing, CRC or acks.
// Prints one JSON object per mode and run on stdout:
//   {"mode":"acked","bytes":N,"chunk":N,"window":N,"seconds":S,"mib_per_s":R}
// With --curve the stream is CurveZMQ-encrypted as between two nodes (keys made in a temp dir,
// the receiver's ZAP admitting the sender's member key): the ceiling of a secure transfer.
// Usage: stream_rate [--bytes N] [--chunk N] [--window N] [--runs N] [--mode acked|plain|both]
//                    [--curve on|off]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "shared/security/keys.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/security.h"
#include "shared/transport/sockets.h"
#include "shared/util/malloc_tuning.h"

namespace rs::bench {
namespace {

using transport::SocketOptions;
using transport::StreamKind;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  uint64_t bytes = 1ull << 30;
  uint64_t chunk = 1u << 20;
  uint64_t window = 16;
  int runs = 1;
  std::string mode = "both";
  bool curve = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "stream_rate: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(Result<T> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r.value());
}

// Socket options of a DataPort (data_stream.cc): queues of 256 frames, frames up to 64 MiB.
SocketOptions DataPortOptions() {
  SocketOptions o;
  o.send_hwm = 256;
  o.recv_hwm = 256;
  o.max_message_bytes = (64 << 20) + 4096;
  return o;
}

// A bound PULL and the endpoint to reach it.
std::pair<zmq::socket_t, std::string> BoundPull() {
  auto pull = Check(transport::MakeSocket(zmq::socket_type::pull, DataPortOptions()), "pull");
  uint16_t port = Check(transport::Bind(pull, "127.0.0.1", 0), "bind");
  return {std::move(pull), "tcp://127.0.0.1:" + std::to_string(port)};
}

zmq::socket_t ConnectedPush(const std::string& endpoint) {
  auto push = Check(transport::MakeSocket(zmq::socket_type::push, DataPortOptions()), "push");
  Status st = transport::Connect(push, endpoint);
  if (!st.ok()) Die("connect: " + st.ToString());
  return push;
}

// Blocks up to `ms` for one single-part message on `socket`.
bool RecvOne(zmq::socket_t& socket, zmq::message_t* out, int ms) {
  zmq::pollitem_t item{static_cast<void*>(socket), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, std::chrono::milliseconds(ms));
    if (!(item.revents & ZMQ_POLLIN)) return false;
    return static_cast<bool>(socket.recv(*out, zmq::recv_flags::dontwait));
  } catch (const zmq::error_t& e) {
    Die(std::string("recv: ") + e.what());
  }
}

// The data plane's protocol: windowed chunks with CRCs, acked by the receiver.
double RunAcked(const Options& o, const std::string& source) {
  auto data = BoundPull();
  auto ack = BoundPull();
  zmq::socket_t data_pull = std::move(data.first), ack_pull = std::move(ack.first);
  std::string data_endpoint = data.second, ack_endpoint = ack.second;
  uint64_t chunks = (o.bytes + o.chunk - 1) / o.chunk;
  uint64_t stream = transport::NewStreamId();

  std::thread receiver([&] {
    zmq::socket_t ack_push = ConnectedPush(ack_endpoint);
    uint64_t expected = 0;
    while (expected < chunks) {
      zmq::message_t frame;
      if (!RecvOne(data_pull, &frame, 10000)) Die("receiver: no chunk for 10 s");
      auto msg = transport::ParseStreamFrame(std::move(frame));
      if (!msg.ok()) Die("receiver: " + msg.status().ToString());
      if (msg->kind != StreamKind::kChunk || msg->stream != stream || msg->seq != expected) {
        Die("receiver: unexpected frame");
      }
      if (!msg->crc_ok()) Die("receiver: bad CRC");
      zmq::message_t ack = transport::AckFrame(stream, msg->seq, 0);
      if (!transport::TrySend(ack_push, &ack, 1)) Die("receiver: ack queue full");
      ++expected;
    }
  });

  zmq::socket_t data_push = ConnectedPush(data_endpoint);
  auto start = SteadyClock::now();
  uint64_t sent = 0, acked = 0;
  while (acked < chunks) {
    while (sent < chunks && sent < acked + o.window) {
      uint64_t offset = sent * o.chunk;
      size_t len = static_cast<size_t>(std::min<uint64_t>(o.chunk, o.bytes - offset));
      auto frame =
          transport::ChunkFrameFilled(stream, sent, 0, sent + 1 == chunks, len, [&](char* out) {
            std::memcpy(out, source.data(), len);
            return Status::Ok();
          });
      if (!frame.ok()) Die("frame: " + frame.status().ToString());
      if (!transport::TrySend(data_push, &frame.value(), 1)) break;  // queue full
      ++sent;
    }
    zmq::message_t frame;
    if (!RecvOne(ack_pull, &frame, 10000)) Die("sender: no ack for 10 s");
    auto msg = transport::ParseStreamFrame(std::move(frame));
    if (!msg.ok() || msg->kind != StreamKind::kAck) Die("sender: unexpected frame");
    acked = std::max(acked, msg->seq + 1);
  }
  double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  receiver.join();
  return seconds;
}

// Bare messages with blocking sends: the socket's own rate.
double RunPlain(const Options& o, const std::string& source) {
  auto data = BoundPull();
  zmq::socket_t data_pull = std::move(data.first);
  std::string data_endpoint = data.second;
  uint64_t chunks = (o.bytes + o.chunk - 1) / o.chunk;
  SteadyClock::time_point done;
  std::thread receiver([&] {
    for (uint64_t i = 0; i < chunks; ++i) {
      zmq::message_t msg;
      if (!RecvOne(data_pull, &msg, 10000)) Die("receiver: no message for 10 s");
    }
    done = SteadyClock::now();
  });
  zmq::socket_t push = ConnectedPush(data_endpoint);
  auto start = SteadyClock::now();
  try {
    for (uint64_t i = 0; i < chunks; ++i) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(o.chunk, o.bytes - i * o.chunk));
      zmq::message_t msg(source.data(), len);
      push.send(msg, zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    Die(std::string("send: ") + e.what());
  }
  receiver.join();
  return std::chrono::duration<double>(done - start).count();
}

uint64_t ParseNumber(const char* flag, const char* value) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(value, &end, 10);
  if (end == value || *end != '\0' || v == 0) Die(std::string("bad value for ") + flag);
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) Die("missing value after " + a);
    const char* v = argv[++i];
    if (a == "--bytes") {
      o.bytes = ParseNumber("--bytes", v);
    } else if (a == "--chunk") {
      o.chunk = ParseNumber("--chunk", v);
    } else if (a == "--window") {
      o.window = ParseNumber("--window", v);
    } else if (a == "--runs") {
      o.runs = static_cast<int>(ParseNumber("--runs", v));
    } else if (a == "--curve") {
      if (std::string(v) != "on" && std::string(v) != "off") Die("--curve on|off");
      o.curve = std::string(v) == "on";
    } else if (a == "--mode") {
      o.mode = v;
      if (o.mode != "acked" && o.mode != "plain" && o.mode != "both") Die("bad --mode");
    } else {
      Die("unknown flag " + a +
          " (--bytes N --chunk N --window N --runs N --mode acked|plain|both --curve on|off)");
    }
  }
  if (o.chunk > (64u << 20)) Die("--chunk above 64 MiB");
  return o;
}

// This process becomes a node of a throwaway cluster: its PULLs are CURVE servers with ZAP,
// its PUSHes CURVE clients with the member key (shared/transport/security.h).
void InstallCurve() {
  char tmpl[] = "/tmp/stream_rate_keys.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  std::string dir = std::string(tmpl) + "/keys";
  Status st = security::MakeClusterKeys(dir, 1);
  auto cluster = security::ReadKeyFile(dir + "/cluster.key");
  auto member = security::ReadKeyFile(dir + "/node.key");
  if (!st.ok() || !cluster.ok() || !member.ok()) Die("cannot make keys in " + dir);
  transport::SecuritySettings s;
  s.node = true;
  s.self = member->keys;
  s.cluster_public = cluster->keys.public_key;
  s.cluster_secret = cluster->keys.secret_key;
  s.keyring_path = dir + "/keyring";
  st = transport::InstallSecurity(std::move(s));
  if (!st.ok()) Die(st.ToString());
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);  // the keyring is loaded; the ZAP thread only rereads it
}

void Print(const char* mode, const Options& o, double seconds) {
  std::printf(
      "{\"mode\":\"%s\",\"bytes\":%llu,\"chunk\":%llu,\"window\":%llu,\"seconds\":%.6f,"
      "\"mib_per_s\":%.1f,\"curve\":%s}\n",
      mode, static_cast<unsigned long long>(o.bytes), static_cast<unsigned long long>(o.chunk),
      static_cast<unsigned long long>(std::string(mode) == "acked" ? o.window : 0), seconds,
      static_cast<double>(o.bytes) / (1 << 20) / seconds, o.curve ? "true" : "false");
  std::fflush(stdout);
}

}  // namespace
}  // namespace rs::bench

int main(int argc, char** argv) {
  rs::TuneMallocForStreams();  // as raind and rainctl: the reference is the same transport
  using namespace rs::bench;
  Options o = ParseArgs(argc, argv);
  if (o.curve) InstallCurve();
  std::string source(o.chunk, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= source.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&source[i], &v, 8);
  }
  for (int run = 0; run < o.runs; ++run) {
    if (o.mode != "plain") Print("acked", o, RunAcked(o, source));
    if (o.mode != "acked") Print("plain", o, RunPlain(o, source));
  }
  return 0;
}
