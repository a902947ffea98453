#include "ctl/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "ctl/output.h"
#include "shared/ids.h"
#include "shared/local_cluster.h"
#include "shared/transport/rpc.h"

namespace rs::ctl {

Result<std::string> ResolveEndpoint(const Context& ctx) {
  std::string node = ctx.node;
  if (node.empty()) {
    const char* env = std::getenv("RAIN_NODE");
    if (env != nullptr) node = env;
  }
  if (node.empty()) {
    std::string dir = DefaultClusterDir();
    auto ready = ReadReadyFile(dir + "/node1/ready");
    if (!ready.ok()) {
      return Status::Unavailable(
          "no node given (--node HOST:PORT or RAIN_NODE) and no local "
          "cluster at " +
          dir + " (scripts/cluster.sh up)");
    }
    std::string host = ready->count("host") ? ready->at("host") : "127.0.0.1";
    node = host + ":" + ready->at("port");
  }
  auto hp = HostPort::Parse(node);
  if (!hp.ok()) return Status::InvalidArgument("--node: " + hp.status().message());
  return hp->TcpEndpoint();
}

Outcome Command(const Context& ctx, const std::string& cmd,
                const std::map<std::string, std::string>& args, int timeout_ms) {
  Outcome out;
  if (!ctx.security.ok()) {
    out.status = ctx.security;
    out.usage = true;
    return out;
  }
  auto endpoint = ResolveEndpoint(ctx);
  if (!endpoint.ok()) {
    out.status = endpoint.status();
    out.usage = endpoint.status().code() == StatusCode::kInvalidArgument;
    return out;
  }
  auto env = transport::CallOnce(
      *endpoint, wire::MsgType::kAdminCommand,
      [&](wire::Packer& pk) {
        pk.pack_map(2);
        pk.pack("cmd");
        pk.pack(cmd);
        pk.pack("args");
        pk.pack_map(static_cast<uint32_t>(args.size()));
        for (const auto& [k, v] : args) {
          pk.pack(k);
          pk.pack(v);
        }
      },
      std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : ctx.timeout_ms));
  if (!env.ok()) {
    out.status = env.status();
    return out;
  }
  auto payload = wire::ReplyPayload(*env);
  if (!payload.ok()) {
    out.status = payload.status();
    out.remote = payload.status().code() != StatusCode::kCorruption;
    return out;
  }
  out.reply = Reply{std::move(env.value()), *payload};
  return out;
}

int Fail(const Context& ctx, const Outcome& outcome) {
  int code = outcome.usage ? kExitUsage : outcome.remote ? kExitRemoteError : kExitUnreachable;
  return Fail(ctx, outcome.status, code);
}

int Fail(const Context& ctx, const Status& status, int exit_code) {
  std::fprintf(stderr, "rainctl: %s\n", status.ToString().c_str());
  if (ctx.json) {
    PrintJsonLine({{"error", wire::Json::object({{"code", StatusCodeName(status.code())},
                                                 {"message", status.message()}})}});
  }
  return exit_code;
}

// The address the job's workers can reach this machine at: the source address of the route
// towards the node (loopback for a local cluster). Empty when it cannot be found.
std::string LocalAddressToward(const std::string& host) {
  if (host == "localhost" || host.rfind("127.", 0) == 0) return "127.0.0.1";
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || res == nullptr) return "";
  std::string out;
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    char buf[INET_ADDRSTRLEN];
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
        ::inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf)) != nullptr) {
      out = buf;
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(res);
  return out;
}

}  // namespace rs::ctl
