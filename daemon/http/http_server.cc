#include "daemon/http/http_server.h"

#include <httplib.h>

namespace rs::http {

HttpServer::HttpServer() : server_(std::make_unique<httplib::Server>()) {
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->set_payload_max_length(64 * 1024);  // requests are GETs
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Get(const std::string& path, std::function<Response()> handler) {
  server_->Get(path,
               [handler = std::move(handler)](const httplib::Request&, httplib::Response& res) {
                 Response r = handler();
                 res.status = r.status;
                 res.set_content(r.body, r.content_type.c_str());
               });
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
