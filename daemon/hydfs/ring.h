// Ring: HyDFS placement, computed locally from a membership view (no global file table).
// Nodes sit on a 64-bit ring at ring_id = StableHash64(node id) (the id `list_mem_ids` prints);
// a file sits at FileId(name). The file's replicas are the first `replicas` distinct nodes at or
// after the file's position, clockwise. Members that are alive or suspected and advertise a
// "hydfs" port are on the ring; failed and departed members are not.
// Immutable after construction; thread-safe to share (published as shared_ptr<const Ring>).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/membership/types.h"
#include "shared/ids.h"

namespace rs::hydfs {

uint64_t FileId(const std::string& name);  // the file's ring position
std::string Hex64(uint64_t v);             // 16 lowercase hex digits

struct RingNode {
  NodeId id;
  uint64_t ring_id = 0;
  std::string host;
  uint16_t control_port = 0;
  uint16_t hydfs_port = 0;  // control RPCs (ROUTER)
  uint16_t data_port = 0;   // data plane (PULL)

  std::string rpc_endpoint() const { return "tcp://" + host + ":" + std::to_string(hydfs_port); }
  std::string data_endpoint() const { return "tcp://" + host + ":" + std::to_string(data_port); }
};

class Ring {
 public:
  Ring() = default;
  static Ring FromView(const membership::View& view);
  // For tests: nodes given directly.
  explicit Ring(std::vector<RingNode> nodes);

  // The first min(n, size()) nodes clockwise from `file_id`.
  std::vector<RingNode> Successors(uint64_t file_id, size_t n) const;
  std::optional<RingNode> Find(const NodeId& id) const;
  // Matches a node by id, "host:port" of its control port, or "tcp://" endpoint of its hydfs port.
  std::optional<RingNode> FindByAddress(const std::string& address) const;
  const std::vector<RingNode>& nodes() const { return nodes_; }  // sorted by ring_id
  size_t size() const { return nodes_.size(); }
  // A fingerprint of the member set: equal rings place every file identically.
  uint64_t Fingerprint() const;

 private:
  std::vector<RingNode> nodes_;
};

using RingPtr = std::shared_ptr<const Ring>;

}  // namespace rs::hydfs
