#include "daemon/hydfs/ring.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "shared/util/hash.h"

namespace rs::hydfs {

uint64_t FileId(const std::string& name) { return StableHash64(name); }

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

Ring::Ring(std::vector<RingNode> nodes) : nodes_(std::move(nodes)) {
  std::sort(nodes_.begin(), nodes_.end(), [](const RingNode& a, const RingNode& b) {
    return a.ring_id != b.ring_id ? a.ring_id < b.ring_id : a.id < b.id;
  });
}

Ring Ring::FromView(const membership::View& view) {
  std::vector<RingNode> nodes;
  for (const auto& m : view.members) {
    using membership::MemberState;
    if (m.record.state != MemberState::kAlive && m.record.state != MemberState::kSuspect) continue;
    auto hydfs = m.record.ports.find("hydfs");
    auto data = m.record.ports.find("hydfs_data");
    if (hydfs == m.record.ports.end() || data == m.record.ports.end()) continue;
    RingNode node;
    node.id = m.record.id;
    node.ring_id = StableHash64(m.record.id.str());
    node.host = m.record.id.host();
    node.control_port = m.record.id.port();
    node.hydfs_port = hydfs->second;
    node.data_port = data->second;
    nodes.push_back(std::move(node));
  }
  return Ring(std::move(nodes));
}

std::vector<RingNode> Ring::Successors(uint64_t file_id, size_t n) const {
  std::vector<RingNode> out;
  if (nodes_.empty()) return out;
  auto first =
      std::lower_bound(nodes_.begin(), nodes_.end(), file_id,
                       [](const RingNode& node, uint64_t id) { return node.ring_id < id; });
  size_t start = static_cast<size_t>(first - nodes_.begin()) % nodes_.size();
  for (size_t i = 0; i < std::min(n, nodes_.size()); ++i) {
    out.push_back(nodes_[(start + i) % nodes_.size()]);
  }
  return out;
}

std::optional<RingNode> Ring::Find(const NodeId& id) const {
  for (const auto& node : nodes_) {
    if (node.id == id) return node;
  }
  return std::nullopt;
}

std::optional<RingNode> Ring::FindByAddress(const std::string& address) const {
  for (const auto& node : nodes_) {
    if (node.id.str() == address || node.rpc_endpoint() == address ||
        node.host + ":" + std::to_string(node.control_port) == address) {
      return node;
    }
  }
  return std::nullopt;
}

uint64_t Ring::Fingerprint() const {
  std::string all;
  for (const auto& node : nodes_) all += node.id.str() + ",";
  return StableHash64(all);
}

}  // namespace rs::hydfs
