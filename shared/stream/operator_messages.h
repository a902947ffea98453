// The message types of the operator protocol (operators/PROTOCOL.md "Messages"): each message is
// an array [type, payload...]. The one list, used by both ends: the worker's codec
// (daemon/stream/operator_codec.h) and the C++ operator SDK (operators/builtin/operator_sdk.h).
#pragma once

#include <cstdint>

namespace rs::operator_protocol {

enum MessageType : uint64_t {
  kHello = 0,     // worker -> operator: the context
  kReady = 1,     // operator -> worker: what it is
  kBatch = 2,     // worker -> operator: tuples (and their key groups)
  kResult = 3,    // operator -> worker: the outputs of one batch
  kSnapshot = 4,  // worker -> operator: send your state
  kState = 5,     // operator -> worker: the state
  kRestore = 6,   // worker -> operator: take this state
  kRegroup = 7,   // worker -> operator: set (or drop) the state of some key groups
};

}  // namespace rs::operator_protocol
