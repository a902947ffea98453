// The operator protocol's messages (operators/PROTOCOL.md): the one codec of what the worker
// writes to an operator's stdin and reads from its stdout. Pure and thread-safe; the process
// around it is OperatorProcess (operator_process.h).
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/status.h"
#include "shared/stream/operator_messages.h"

namespace rs::stream {

using OperatorMessage = operator_protocol::MessageType;

using Tuple = std::pair<std::string, std::string>;  // [key, value], raw bytes
using Tuples = std::vector<Tuple>;
using TupleView = std::pair<std::string_view, std::string_view>;  // points into the caller's bytes

// The outputs of one batch as views into the decoded message, which `handle` keeps alive:
// the outputs of input tuple i are tuples[offsets[i] .. offsets[i + 1]).
struct ResultViews {
  msgpack::object_handle handle;
  std::vector<uint32_t> offsets;
  std::vector<TupleView> tuples;
};

// The hello context (PROTOCOL.md "hello: the context"); version is always 1.
struct OperatorContext {
  std::string job;
  uint64_t stage = 0, stages = 1, task = 0, tasks = 1;
  std::vector<std::string> args;          // the operator's command-line arguments
  std::optional<std::string> csv_header;  // nullopt: sent as nil
  uint64_t key_groups = 0;                // the job's key groups (0: not a keyed stage)
};

// The operator's ready answer; absent fields keep these defaults.
struct ReadyInfo {
  bool stateful = false;
  std::optional<uint64_t> csv_column;  // nullopt: input_partition "key"
  std::string name;
  // Its state is kept per key group: batches carry each tuple's group, and a snapshot is a map
  // {group: state} (PROTOCOL.md "Keyed state"). Only with stateful.
  bool keyed_state = false;
  // It answers [4, "changes"] with only the entries changed since its last snapshot
  // (PROTOCOL.md "State changes"). Only with keyed_state.
  bool state_changes = false;
  // It takes [7, {group: state or nil}] between batches: groups moving to or away from its task
  // when the stage is rescaled (PROTOCOL.md "Regroup"). Only with keyed_state.
  bool regroup = false;
};

// Why `msg` is not [expected, payload]; empty when it is. `name` names the expected message.
std::string CheckShape(const msgpack::object& msg, OperatorMessage expected, const char* name);
// The ready answer (checked: types of known fields, keyed_state only with stateful).
Result<ReadyInfo> ParseReady(const msgpack::object& msg);
// Checks a result message for a batch of `tuples` tuples and collects views of its outputs
// into `r` (which must hold the message's handle).
Status ParseResultViews(const msgpack::object& msg, size_t tuples, ResultViews* r);
std::string PackHello(const OperatorContext& ctx);
// [4], or [4, "changes"] for only what changed since the last snapshot.
std::string PackSnapshotRequest(bool changes = false);
std::string PackRestore(std::string_view state);   // [6, state]: `state` is one packed value
std::string PackRegroup(std::string_view groups);  // [7, groups]: one packed map
// [2, tuples] or, with `groups` (one key group per tuple), [2, tuples, groups].
std::string PackBatch(const TupleView* tuples, size_t n, const uint32_t* groups);

}  // namespace rs::stream
