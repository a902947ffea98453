// The node's HTTP routes (daemon/http/README.md): GET /metrics, the JSON API the web console
// polls (the console commands of rainctl, run by AdminService with the caller's role, their
// payloads as `rainctl --json` prints them), and the console's static files, built into raind.
#include <chrono>
#include <future>
#include <memory>
#include <set>

#include "daemon/admin/access.h"
#include "daemon/http/http_access.h"
#include "daemon/node.h"
#include "daemon/stream/messages.h"
#include "shared/clock.h"
#include "shared/transport/security.h"
#include "shared/wire/json.h"

namespace rs {
namespace console_files {
std::string_view EmbeddedFile(std::string_view name);  // generated (scripts/embed_files.py)
}  // namespace console_files

namespace {

using security::Role;

// A console command answers within this, or the request gets 504 (job.* may be forwarded to the
// leader, which may call a worker).
constexpr auto kCommandDeadline = std::chrono::seconds(10);

// The console commands the API runs: each answers with one payload (commands whose data comes
// on a stream of its own, like get, grep or output, are not here). Reads by GET; the rest,
// which need the admin role, by POST.
const std::set<std::string, std::less<>>& ApiCommands() {
  static const std::set<std::string, std::less<>> kCommands = {
      "status",           "list_self",   "list_mem",        "list_mem_ids", "display_suspects",
      "display_protocol", "status_sus",  "config_get",      "events",       "stats",
      "hydfs.ls",         "hydfs.lsall", "hydfs.liststore", "hydfs.stats",  "job.list",
      "job.status",       "job.tasks",   "job.cancel",      "job.rescale",  "job.kill_task",
      "log.tail",
  };
  return kCommands;
}

int HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

http::Response JsonResponse(int status, const wire::Json& body) {
  http::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = wire::DumpJson(body) + "\n";
  return r;
}

// The error document rainctl --json prints, with the HTTP status its code maps to.
http::Response ErrorResponse(const Status& s, int status = 0) {
  wire::Json e = {
      {"error", {{"code", std::string(StatusCodeName(s.code()))}, {"message", s.message()}}}};
  return JsonResponse(status != 0 ? status : HttpStatusOf(s), e);
}

// The console's token form (token.html) as the 401 answer to a page asked for without a valid
// token: a browser's first visit off loopback gets a form, not JSON. `why` goes in escaped.
http::Response TokenForm(const Status& why) {
  std::string page(console_files::EmbeddedFile("token.html"));
  std::string reason;
  for (char ch : why.message()) {
    switch (ch) {
      case '&': reason += "&amp;"; break;
      case '<': reason += "&lt;"; break;
      case '>': reason += "&gt;"; break;
      case '"': reason += "&quot;"; break;
      default: reason += ch;
    }
  }
  size_t at = page.find("{{reason}}");
  if (at != std::string::npos) page.replace(at, std::string_view("{{reason}}").size(), reason);
  http::Response out;
  out.status = 401;
  out.content_type = "text/html; charset=utf-8";
  out.body = std::move(page);
  return out;
}

const char* ContentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

}  // namespace

Result<security::Role> Node::HttpCaller(const http::Request& r) const {
  auto it = r.params.find("token");
  std::string token = http::RequestToken(r.authorization, it == r.params.end() ? "" : it->second);
  return http::CallerRole(
      r.remote_addr, token, [](std::string_view t) -> Result<security::HttpTokenClaims> {
        if (!transport::SecurityEnabled()) {
          return Status::PermissionDenied("this cluster runs without keys: it takes no tokens");
        }
        auto keyring = transport::CurrentKeyring();
        return security::CheckHttpToken(t, transport::ClusterSecret(), *keyring,
                                        static_cast<uint64_t>(WallMillis() / 1000));
      });
}

http::Response Node::RunApiCommand(const http::Request& r, bool post) {
  auto role = HttpCaller(r);
  if (!role.ok()) return ErrorResponse(role.status(), 401);
  const std::string cmd = r.matches.size() > 1 ? r.matches[1] : "";
  if (!ApiCommands().count(cmd)) {
    return ErrorResponse(Status::NotFound("no API command '" + cmd + "'"));
  }
  bool read = admin::RoleNeeded(cmd) <= Role::kRead;
  if (read == post) {
    return ErrorResponse(Status::InvalidArgument(cmd + (read ? " is read by GET" : " needs POST")),
                         405);
  }
  std::map<std::string, std::string> args;
  for (const auto& [k, v] : r.params) {
    if (k != "token" && k != "node") args[k] = v;
  }
  // `node=HOST:PORT`: a read command answered by another node (the console's log view of any
  // node). Its role is checked here; the node is asked with this node's member key.
  auto node = r.params.find("node");
  if (node != r.params.end() && node->second != SelfAddress()) {
    if (!read) return ErrorResponse(Status::InvalidArgument("only reads go to another node"));
    if (admin::RoleNeeded(cmd) > *role) {
      return ErrorResponse(Status::PermissionDenied(cmd + " needs a higher role"));
    }
    // Only a member: the node dials nothing a caller names (with its member key) but its peers.
    bool member = false;
    for (const auto& m : membership_->view()->members) {
      member =
          member || m.record.id.host() + ":" + std::to_string(m.record.id.port()) == node->second;
    }
    if (!member) {
      return ErrorResponse(Status::NotFound(node->second + " is no member of this cluster"));
    }
    auto env = stream::ForwardAdminCommand(node->second, cmd, args, std::chrono::seconds(5));
    if (!env.ok()) {
      return ErrorResponse(Status::Unavailable(node->second + ": " + env.status().message()));
    }
    auto payload = wire::ReplyPayload(*env);
    if (!payload.ok()) return ErrorResponse(payload.status());
    return JsonResponse(200, wire::ToJson(*payload));
  }
  struct Answer {
    std::promise<std::pair<Status, std::string>> promise;
    std::once_flag once;
  };
  auto answer = std::make_shared<Answer>();
  auto future = answer->promise.get_future();
  admin_->Run(cmd, std::move(args), *role,
              admin::CommandReply([answer](const Status& st, const wire::BodyWriter& body) {
                std::string bytes;
                if (body) {
                  msgpack::sbuffer buf;
                  wire::Packer pk(buf);
                  body(pk);
                  bytes.assign(buf.data(), buf.size());
                }
                std::call_once(answer->once, [&] { answer->promise.set_value({st, bytes}); });
              }));
  if (future.wait_for(kCommandDeadline) != std::future_status::ready) {
    return ErrorResponse(Status::Timeout(cmd + " did not answer within 10 s"));
  }
  auto [st, bytes] = future.get();
  if (!st.ok()) return ErrorResponse(st);
  if (bytes.empty()) return JsonResponse(200, wire::Json{{"ok", true}});
  try {
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
    return JsonResponse(200, wire::ToJson(oh.get()));
  } catch (const std::exception& e) {
    return ErrorResponse(Status::Internal(cmd + "'s answer did not decode: " + e.what()));
  }
}

std::string Node::SelfAddress() const {
  auto view = membership_->view();
  return view->self.host() + ":" + std::to_string(view->self.port());
}

Status Node::StartHttp() {
  http_ = std::make_unique<http::HttpServer>();
  http_->Get("/metrics", [this](const http::Request& r) {
    auto role = HttpCaller(r);
    if (!role.ok()) return ErrorResponse(role.status(), 401);
    http::Response out;
    out.content_type = "text/plain; version=0.0.4; charset=utf-8";
    out.body = Metrics();
    return out;
  });
  http_->Get(R"(/api/v1/cmd/([a-z_.]+))",
             [this](const http::Request& r) { return RunApiCommand(r, false); });
  http_->Post(R"(/api/v1/cmd/([a-z_.]+))",
              [this](const http::Request& r) { return RunApiCommand(r, true); });
  // The console: static, but off loopback only with a token like everything else. The page
  // itself, asked for without one, answers with the token form (still a 401).
  http_->Get(R"(/|/([a-z_]+\.(html|js|css|png)))", [this](const http::Request& r) {
    std::string name = r.matches.size() > 1 && !r.matches[1].empty() ? r.matches[1] : "index.html";
    auto role = HttpCaller(r);
    if (!role.ok()) {
      return name == "index.html" ? TokenForm(role.status()) : ErrorResponse(role.status(), 401);
    }
    if (name == "token.html") name = "";  // the form is only that answer
    std::string_view file = console_files::EmbeddedFile(name);
    http::Response out;
    if (file.empty()) {
      out.status = 404;
      out.body = "no such file\n";
      return out;
    }
    out.content_type = ContentTypeOf(name);
    out.body = std::string(file);
    return out;
  });
  auto port = http_->Start(options_.http);
  if (!port.ok()) return port.status();
  http_port_ = *port;
  return Status::Ok();
}

}  // namespace rs
