#include "shared/ids.h"

#include <charconv>

namespace rs {
namespace {

bool ParseUint(std::string_view text, uint64_t max, uint64_t* out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > max) return false;
  *out = value;
  return true;
}

bool ValidHost(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Result<HostPort> HostPort::Parse(std::string_view text, bool allow_zero) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("expected HOST:PORT, got '" + std::string(text) + "'");
  }
  std::string_view host = text.substr(0, colon);
  uint64_t port = 0;
  if (!ValidHost(host)) {
    return Status::InvalidArgument("bad host in '" + std::string(text) + "'");
  }
  if (!ParseUint(text.substr(colon + 1), 65535, &port) || (port == 0 && !allow_zero)) {
    return Status::InvalidArgument("bad port in '" + std::string(text) + "' (1-65535)");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

NodeId::NodeId(std::string host, uint16_t port, uint64_t start_ms)
    : host_(std::move(host)), port_(port), start_ms_(start_ms) {
  std::string ms = std::to_string(start_ms);
  if (ms.size() < 13) ms.insert(0, 13 - ms.size(), '0');
  text_ = host_ + ":" + std::to_string(port_) + "#" + ms;
}

Result<NodeId> NodeId::Parse(std::string_view text) {
  size_t hash = text.rfind('#');
  if (hash == std::string_view::npos || text.size() - hash - 1 != 13) {
    return Status::InvalidArgument("bad node id '" + std::string(text) +
                                   "' (want HOST:PORT#<13-digit ms>)");
  }
  auto addr = HostPort::Parse(text.substr(0, hash));
  if (!addr.ok()) return Status::InvalidArgument("bad node id '" + std::string(text) + "'");
  uint64_t ms = 0;
  if (!ParseUint(text.substr(hash + 1), 9'999'999'999'999ULL, &ms)) {
    return Status::InvalidArgument("bad start time in node id '" + std::string(text) + "'");
  }
  return NodeId(addr->host, addr->port, ms);
}

}  // namespace rs
