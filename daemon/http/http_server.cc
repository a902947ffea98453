#include "daemon/http/http_server.h"

#include <httplib.h>

namespace rs::http {

HttpServer::HttpServer() : server_(std::make_unique<httplib::Server>()) {
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_payload_max_length(64 * 1024);  // requests are small: GETs and forms
}

HttpServer::~HttpServer() { Stop(); }

namespace {

httplib::Server::Handler Wrap(HttpServer::Handler handler) {
  return [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    Request r;
    r.method = req.method;
    r.path = req.path;
    for (const auto& [k, v] : req.params) r.params.emplace(k, v);  // the first of a repeated one
    for (const auto& m : req.matches) r.matches.push_back(m.str());
    r.authorization = req.get_header_value("Authorization");
    r.remote_addr = req.remote_addr;
    Response out = handler(r);
    res.status = out.status;
    if (!out.cache_control.empty()) res.set_header("Cache-Control", out.cache_control);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(out.body, out.content_type.c_str());
  };
}

}  // namespace

void HttpServer::Get(const std::string& pattern, Handler handler) {
  server_->Get(pattern, Wrap(std::move(handler)));
}

void HttpServer::Post(const std::string& pattern, Handler handler) {
  server_->Post(pattern, Wrap(std::move(handler)));
}

Result<uint16_t> HttpServer::Start(const HttpOptions& o) {
  int port = o.port == 0 ? server_->bind_to_any_port(o.bind.c_str())
                         : (server_->bind_to_port(o.bind.c_str(), o.port) ? o.port : -1);
  if (port <= 0) {
    return Status::IOError("http: cannot bind " + o.bind + ":" + std::to_string(o.port));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return static_cast<uint16_t>(port);
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace rs::http
