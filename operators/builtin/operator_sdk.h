// The C++ operator SDK: speaks operators/PROTOCOL.md on stdin/stdout for one Operator.
//
//   hello [0, ctx]   -> Operator::Hello   -> ready  [1, info]
//   batch [2, tups]  -> Operator::Process per tuple -> result [3, outputs]
//   ([2, tups, groups] for keyed state: Emitter::group() is each tuple's key group)
//   snapshot [4]     -> Operator::Snapshot -> state [5, state]
//   ([4, "changes"] -> Operator::SnapshotChanges, to an operator whose ready offered them)
//   restore [6, st]  -> Operator::Restore (after hello, before any batch, at most once)
//
// Session is the pure protocol core: bytes in, encoded answers out through a Writer, no file
// descriptors, so tests drive it in memory. RunOperator is the IO shell around it: reads fd 0 in
// 64 KiB+ blocks straight into the unpacker, writes every answer to fd 1 at once (the worker
// pipelines batches, so nothing waits for more input while holding output), exits 0 at end of
// input and 2 with one line on stderr for undecodable input or a protocol violation.
// msgpack-cxx exceptions stop in this file. Single-threaded: one Session per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::op {

// The hello context (PROTOCOL.md "hello: the context"). Absent fields keep these defaults.
struct Context {
  uint64_t version = 1;
  std::string job;
  uint64_t stage = 0, stages = 1, task = 0, tasks = 1;
  std::vector<std::string> args;
  std::optional<std::string> csv_header;  // nullopt: nil or absent
};

// The ready answer.
struct ReadyInfo {
  bool stateful = false;
  // nullopt: input_partition "key"; else {"csv_column": N} (0-based).
  std::optional<uint64_t> csv_column;
  std::string name;
  // Keyed state (PROTOCOL.md "Keyed state"): the operator keeps its state per key group
  // (Emitter::group() in Process) and its snapshot is a map {group: that group's state}.
  bool keyed_state = false;
  // State changes (PROTOCOL.md "State changes"): each group's state is a map {entry: value},
  // and the operator can snapshot only the entries changed since its last snapshot
  // (Operator::SnapshotChanges). Only with keyed_state.
  bool state_changes = false;
  // Regroup (PROTOCOL.md "Regroup"): the operator takes [7, {group: state or nil}] between
  // batches, setting (or, nil, dropping) those groups' states (Operator::Regroup), so that a
  // rescale moves groups to and from it without a restart. Only with keyed_state.
  bool regroup = false;
};

// Collects the output tuples of one input tuple. Only valid inside Operator::Process.
class Emitter {
 public:
  void Emit(std::string_view key, std::string_view value);
  size_t count() const { return count_; }
  // The key group of the input tuple being processed (0 unless the batch carried groups).
  uint32_t group() const { return group_; }

 private:
  friend class Session;
  void Reset();

  msgpack::sbuffer buffer_;  // the packed [key, value] pairs
  size_t count_ = 0;
  uint32_t group_ = 0;
};

using StatePacker = msgpack::packer<msgpack::sbuffer>;

// What an operator implements. Called on the Session's thread, one call at a time.
class Operator {
 public:
  virtual ~Operator() = default;
  // Once, first. A non-ok Status (say, an unknown column name) ends the operator: its message
  // goes to stderr and the process exits 2.
  virtual Result<ReadyInfo> Hello(const Context& ctx) = 0;
  // One input tuple -> zero or more out.Emit(key, value) calls. Keys and values are raw bytes.
  virtual void Process(std::string_view key, std::string_view value, Emitter& out) = 0;
  // Packs exactly one MessagePack value: the state. Default nil.
  virtual void Snapshot(StatePacker& out) { out.pack_nil(); }
  // With ReadyInfo::state_changes: packs {group: {entry: value or nil}} holding every entry
  // changed (nil: removed) since the last Snapshot or SnapshotChanges. Default: an empty map.
  virtual void SnapshotChanges(StatePacker& out) { out.pack_map(0); }
  // Replaces the state with one an earlier Snapshot packed. Non-ok: exit 2.
  virtual Status Restore(const msgpack::object& state);
  // With ReadyInfo::regroup: `groups` is a map {group: state or nil}; each named group's state
  // becomes the given one (as a Snapshot packed it for that group), or goes (nil). Other
  // groups are untouched. Non-ok: exit 2.
  virtual Status Regroup(const msgpack::object& groups);
};

// Resource limits against hostile or broken input; a message beyond them is a protocol error.
// msgpack-cxx allocates 24 bytes per claimed array element (48 per map pair) when it reads a
// container header, before the elements arrive, so the container limits bound that up-front cost
// (one hostile header costs at most 24 MiB, `max_depth` of them at once) and the message limit
// bounds the rest. Batches from the worker are far below all of these.
struct SessionLimits {
  size_t max_message_bytes = 128u << 20;  // one message, counted while it is incomplete
  size_t max_array = 1u << 20;            // elements of one array (tuples in a batch)
  size_t max_map = 1u << 22;              // pairs of one map (a count state's distinct values)
  size_t max_str = 32u << 20;             // bytes of one string, binary or ext
  size_t max_depth = 16;                  // nesting; the protocol itself needs 3
};

class Session {
 public:
  // Receives every complete answer (one ready, result or state message) as it is produced. A
  // non-ok Status (stdout closed) ends the session with that status.
  using Writer = std::function<Status(std::string_view bytes)>;

  Session(Operator* op, Writer writer, SessionLimits limits = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Room for at least `min` more input bytes; fill some, then Commit how many were written.
  char* InputBuffer(size_t min, size_t* capacity);
  // Decodes and answers every complete message now buffered. Non-ok (Corruption for undecodable
  // bytes, FailedPrecondition for a protocol violation, the operator's own errors): the session
  // is over and the status is the one-line reason.
  Status Commit(size_t n);
  // InputBuffer + copy + Commit.
  Status Feed(std::string_view bytes);
  // End of input: Corruption when it stopped inside a message.
  Status Finish();

  uint64_t batches() const { return batches_; }
  uint64_t tuples() const { return tuples_; }

 private:
  Status Handle(const msgpack::object& msg);
  Status HandleHello(const msgpack::object& msg);
  Status HandleBatch(const msgpack::object& msg);
  Status HandleSnapshot(const msgpack::object& msg);
  Status HandleRestore(const msgpack::object& msg);
  Status HandleRegroup(const msgpack::object& msg);
  Status Flush();

  Operator* op_;
  Writer writer_;
  SessionLimits limits_;
  std::unique_ptr<msgpack::unpacker> unpacker_;
  msgpack::sbuffer out_;
  Emitter emitter_;
  Status failed_;
  bool hello_done_ = false;
  bool stateful_ = false;
  bool state_changes_ = false;
  bool regroup_ = false;
  bool restored_ = false;
  uint64_t batches_ = 0;
  uint64_t tuples_ = 0;
};

// The process shell: runs `op` over fds 0 and 1 and returns the exit code (0 at a clean end of
// input, 2 after printing "<program>: <reason>" on stderr, 1 when stdout is closed). SIGPIPE is
// ignored. Call from main: `return rs::op::RunOperator(op, "rainop-grep");`.
int RunOperator(Operator& op, std::string_view program);

// Reads a key or value: STR or BIN. False for any other type.
bool ReadBytes(const msgpack::object& o, std::string_view* out);

}  // namespace rs::op
