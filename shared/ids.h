// Strong id types shared by every layer. A NodeId names one incarnation of a raind process:
// "<host>:<control port>#<start time, ms since the Unix epoch, 13 digits>". A node that restarts
// or rejoins gets a new start time and so is a new member. Ids are prefix-free, which lets the
// gossip channel use them as ZeroMQ subscription topics. Value types; thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace rs {

// A HOST:PORT pair, e.g. a node's control address. Parse() accepts "host:port" with port 1-65535
// (0 too when allow_zero is set, meaning "let the OS pick").
struct HostPort {
  std::string host;
  uint16_t port = 0;

  static Result<HostPort> Parse(std::string_view text, bool allow_zero = false);
  std::string ToString() const { return host + ":" + std::to_string(port); }
  std::string TcpEndpoint() const { return "tcp://" + ToString(); }
  auto operator<=>(const HostPort&) const = default;
};

class NodeId {
 public:
  NodeId() = default;
  NodeId(std::string host, uint16_t port, uint64_t start_ms);

  // Validates the full textual form; never throws.
  static Result<NodeId> Parse(std::string_view text);

  const std::string& str() const { return text_; }
  bool empty() const { return text_.empty(); }
  HostPort address() const { return {host_, port_}; }
  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  uint64_t start_ms() const { return start_ms_; }

  auto operator<=>(const NodeId& other) const { return text_ <=> other.text_; }
  bool operator==(const NodeId& other) const { return text_ == other.text_; }

 private:
  std::string text_;
  std::string host_;
  uint16_t port_ = 0;
  uint64_t start_ms_ = 0;
};

}  // namespace rs

template <>
struct std::hash<rs::NodeId> {
  size_t operator()(const rs::NodeId& id) const { return std::hash<std::string>()(id.str()); }
};
