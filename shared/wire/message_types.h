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

  // HyDFS control (a node's hydfs ROUTER); bodies in daemon/hydfs/README.md.
  kHydfsHead = 30,        // {name} -> the replica's summary of its copy
  kHydfsManifest = 31,    // {name} -> the replica's manifest (append list in its order)
  kHydfsReserve = 32,     // {name, gen, client, release} -> claim a name for a create
  kHydfsPut = 33,         // open a write stream of one append onto a replica
  kHydfsRead = 34,        // open a read stream of chunks from a replica
  kHydfsApplyOrder = 35,  // fetch missing appends and adopt a canonical order
  kHydfsRemove = 36,      // {name, gen, tombstone} -> delete the local copy
  kHydfsList = 37,        // {prefix} -> summaries of the files this node stores

  // Data plane (PUSH -> PULL); see shared/transport/data_stream.h.
  kStreamChunk = 40,  // [stream, seq, flags, crc32c, data]
  kStreamAck = 41,    // [stream, seq, lane]
  kStreamEnd = 42,    // [stream, lane, code, message, payload]

  // Stream engine data plane (a task's PULL inbox); see daemon/stream/README.md.
  kTaskData = 50,  // [job, from_stage, from_task, incarnation, seq, ack_to, emit_us, end, tuples]
  kTaskAck = 51,   // [job, stage, task, incarnation, seq, durable]

  // Stream engine control between daemons (the control ROUTER, role member); bodies and
  // replies in daemon/stream/messages.h.
  kStreamStartTask = 60,  // {config} -> {endpoint, pid, stateful, input_partition, log}
  kStreamStopJob = 61,    // {job, remove} -> {reports}
  kStreamStopTask = 62,   // {job, stage, task} -> {report}
  kStreamRewire = 63,     // {job, stage, task, endpoint} -> {tasks}
  kStreamReport = 64,     // {reports} -> nothing
  kStreamRegroup = 65,    // {job, stage, epoch, owners, inboxes} -> {tasks}
};

// Lowercase name for logs; "unknown" for values not in the enum.
std::string_view MsgTypeName(uint16_t type);

}  // namespace rs::wire
