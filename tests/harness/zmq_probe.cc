// zmq_probe: what a host outside the cluster can do to a node's port. Connects one socket to
// ENDPOINT with a client key file (or --insecure: no key), sends N junk frames, and reports
// whether the CurveZMQ handshake succeeded. Run by the security tests inside a network
// namespace (`ip netns exec NS zmq_probe ...`).
//   zmq_probe --endpoint tcp://10.0.0.1:7001 --type dealer|push|sub --key k.key --frames 20
// (a SUB, for a node's gossip PUB, subscribes to everything and sends no junk)
// Prints one line: "handshake accepted", "handshake refused" or "handshake none" (no answer
// within --wait-ms). Exit 0 when it ran, 2 on bad flags.
//   zmq_probe --endpoint tcp://127.0.0.1:7001 --key k.key --stop-job JOB
// instead sends one typed stream message between daemons (StopJob, type 61) as this key and
// prints "reply ok" or "reply CODE: MESSAGE" (or "reply none" without an answer): a client key
// must get permission_denied, since only members may send those.
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "ctl/security.h"
#include "shared/transport/rpc.h"
#include "shared/transport/sockets.h"
#include "shared/wire/envelope.h"
#include "shared/wire/message_types.h"

int main(int argc, char** argv) {
  std::string endpoint, type = "dealer", key;
  bool insecure = false;
  std::string stop_job;
  int frames = 20, wait_ms = 3000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "zmq_probe: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint")
      endpoint = next();
    else if (a == "--type")
      type = next();
    else if (a == "--key")
      key = next();
    else if (a == "--insecure")
      insecure = true;
    else if (a == "--frames")
      frames = std::atoi(next().c_str());
    else if (a == "--wait-ms")
      wait_ms = std::atoi(next().c_str());
    else if (a == "--stop-job")
      stop_job = next();
    else {
      std::fprintf(stderr, "zmq_probe: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (endpoint.empty() || (type != "dealer" && type != "push" && type != "sub") ||
      (key.empty() && !insecure)) {
    std::fprintf(stderr,
                 "zmq_probe: needs --endpoint, --type dealer|push|sub, --key FILE or --insecure\n");
    return 2;
  }
  rs::Status st = rs::ctl::SetUpClientSecurity(key, insecure);
  if (!st.ok()) {
    std::fprintf(stderr, "zmq_probe: %s\n", st.ToString().c_str());
    return 2;
  }
  if (!stop_job.empty()) {
    auto env = rs::transport::CallOnce(
        endpoint, rs::wire::MsgType::kStreamStopJob,
        [&](rs::wire::Packer& pk) {
          pk.pack_map(2);
          pk.pack("job");
          pk.pack(stop_job);
          pk.pack("remove");
          pk.pack(true);
        },
        std::chrono::milliseconds(wait_ms));
    if (!env.ok()) {
      std::printf("reply none (%s)\n", env.status().ToString().c_str());
      return 0;
    }
    auto payload = rs::wire::ReplyPayload(*env);
    if (payload.ok()) {
      std::printf("reply ok\n");
    } else {
      std::printf("reply %s: %s\n", std::string(rs::StatusCodeName(payload.status().code())).c_str(),
                  payload.status().message().c_str());
    }
    return 0;
  }
  auto socket = rs::transport::MakeSocket(type == "dealer" ? zmq::socket_type::dealer
                                          : type == "sub"  ? zmq::socket_type::sub
                                                           : zmq::socket_type::push);
  if (!socket.ok()) return 2;
  zmq::socket_t& s = socket.value();
  if (type == "sub" && !rs::transport::Subscribe(s, "").ok()) return 2;  // sends nothing else
  if (zmq_socket_monitor(s.handle(), "inproc://probe-monitor",
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
    return 2;
  }
  auto monitor = rs::transport::MakeSocket(zmq::socket_type::pair);
  if (!monitor.ok() || !rs::transport::Connect(*monitor, "inproc://probe-monitor").ok() ||
      !rs::transport::Connect(s, endpoint).ok()) {
    return 2;
  }
  // Junk: not an envelope, so a node that decodes it counts a malformed frame.
  for (int i = 0; i < frames; ++i) {
    std::string junk = "rainstorm-probe-junk-" + std::to_string(i);
    rs::transport::TrySend(s, junk);
  }
  std::string verdict = "none";
  zmq::pollitem_t item{monitor->handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms)) > 0) {
    std::vector<zmq::message_t> parts;
    if (rs::transport::TryRecv(*monitor, &parts) && !parts.empty() && parts[0].size() >= 2) {
      uint16_t event;
      std::memcpy(&event, parts[0].data(), sizeof(event));
      verdict = event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? "accepted" : "refused";
    }
  }
  if (verdict == "accepted") std::this_thread::sleep_for(std::chrono::milliseconds(500));  // flush
  std::printf("handshake %s\n", verdict.c_str());
  return 0;
}
