// The node's HTTP endpoint (issue 16: metrics and the web console), on cpp-httplib from Debian:
// GET routes answered by handlers, on one address and port, served by httplib's own threads.
// Bound to loopback by default (raind's `http_bind`); port 0 lets the OS pick (raind writes it
// to its ready file as `http_port`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shared/status.h"

namespace httplib {
class Server;
}

namespace rs::http {

struct HttpOptions {
  std::string bind = "127.0.0.1";
  uint16_t port = 0;  // 0: the OS picks
};

struct Request {
  std::string method, path;                   // the path without its query
  std::map<std::string, std::string> params;  // query parameters, and a form body's
  std::vector<std::string> matches;  // the route pattern's groups (matches[1] is the first)
  std::string authorization;         // the Authorization header, as sent
  std::string remote_addr;           // the peer's address
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string cache_control = "no-store";
};

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  using Handler = std::function<Response(const Request&)>;
  // Answers GET (or POST) requests whose path matches the regular expression `pattern` with
  // `handler`, called on one of the server's threads. Before Start.
  void Get(const std::string& pattern, Handler handler);
  void Post(const std::string& pattern, Handler handler);
  // Binds and starts serving; the port bound.
  Result<uint16_t> Start(const HttpOptions& o);
  void Stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace rs::http
