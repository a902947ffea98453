// Every message type on every RainStorm socket. Append-only: a number, once shipped, keeps its
// meaning forever (see shared/wire/FORMAT.md, which documents each body).
#pragma once

#include <cstdint>
#include <string_view>

namespace rs::wire {

enum class MsgType : uint16_t {
  // Generic.
  kReply = 1,  // body: [code, message, payload]

  // Control plane: rainctl or a peer -> a node's control ROUTER.
  kAdminCommand = 10,  // body: {"cmd": str, "args": map}
  kJoinRequest = 11,   // body: MemberRecord of the joiner

  // Membership datagrams (swim ROUTER and gossip SUB).
  kPing = 20,
  kAck = 21,
  kPingReq = 22,
  kGossip = 23,
  kSync = 24,       // push-pull state exchange: carries every record the sender lists
  kSyncReply = 25,  // the answer to kSync: every record the receiver lists
};

// Lowercase name for logs; "unknown" for values not in the enum.
std::string_view MsgTypeName(uint16_t type);

}  // namespace rs::wire
