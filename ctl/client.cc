#include "ctl/client.h"

#include <cstdio>
#include <cstdlib>

#include "ctl/json.h"
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
    std::printf("{\"error\":{\"code\":%s,\"message\":%s}}\n",
                JsonString(std::string(StatusCodeName(status.code()))).c_str(),
                JsonString(status.message()).c_str());
  }
  return exit_code;
}

}  // namespace rs::ctl
