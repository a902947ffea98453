// OperatorProcess: the worker-side driver of one operator process (operators/PROTOCOL.md). It
// starts the executable, says hello, pipelines batches into its stdin, reads the results back in
// order, takes and restores snapshots of a stateful operator, and copies every stderr line into
// the task's log. Blocking calls with deadlines, no event loop, no threads of its own.
// Thread-compatible: owned and called by one worker thread. The caller must ignore SIGPIPE (raind
// does, in main), or a write to an operator that just died kills the daemon.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/stream/operator_codec.h"
#include "shared/clock.h"
#include "shared/status.h"
#include "shared/util/child.h"

namespace rs::stream {

struct OperatorProcessOptions {
  // The operator's stderr lines are appended here, each prefixed with a UTC timestamp
  // ("2024-05-01T12:00:00.123Z "). Empty: they are only kept for the failure reports' tail.
  std::string log_path;
  // From start until the ready answer. Covers an interpreter's start-up (python3: ~50 ms).
  std::chrono::milliseconds hello_timeout{5000};
  // From the moment a batch (or snapshot request) is handed to SendBatch until its answer has
  // arrived; also bounds writing one batch into a stdin the operator does not read. Shorter
  // detects a hung operator sooner; too short fails a slow but healthy one (e.g. a large batch
  // to an expensive operator).
  std::chrono::milliseconds batch_timeout{10000};
  // Finish: from closing stdin until the process has exited.
  std::chrono::milliseconds finish_timeout{5000};
  // Batches sent and not yet returned by NextResult. SendBatch refuses more. Higher overlaps
  // more operator work with the worker's IO; each costs a batch of memory here and in the pipes.
  size_t max_in_flight = 8;
  // Bounds against a broken operator: one output message (bytes while incomplete) and the
  // stderr lines' length (longer lines are cut into pieces of this size).
  size_t max_message_bytes = 256u << 20;
  size_t max_stderr_line = 16u << 10;
  std::vector<std::string> env;  // "K=V" added to the inherited environment
  std::string cwd;               // empty: inherit
  // The sandbox (operator_sandbox.h fills these in): `env` as the whole environment, another
  // user, resource limits. Defaults: raind's own environment, user and limits.
  bool clear_env = false;
  std::optional<Credentials> credentials;
  ResourceLimits limits;
};

// Failure model. Every failure kills the process group at once and makes the object failed: the
// failing call and every later call return the same Status, whose message names the operator
// (argv[0] and pid), what it was doing, and ends with its last stderr lines ("; stderr: ...").
//   - it cannot be started (fork, the sandbox's user switch or working directory, exec): Start
//     returns IOError naming the step, e.g. "cannot execute X: Permission denied";
//   - the operator exits (or closes stdout) while an answer is owed, or exits non-zero at
//     Finish: Unavailable, "exited with exit code 3" / "killed by signal 9";
//   - no answer within the deadline (hello_timeout, batch_timeout, finish_timeout): Timeout;
//   - bytes on stdout that do not decode, or messages that break the protocol (not an array,
//     unexpected type, a result whose outputs count differs from the batch's tuple count, a
//     key that is not a string, output nobody asked for): Corruption;
//   - a misuse by the caller (too many batches in flight, snapshot of a stateless operator,
//     restore after a batch): FailedPrecondition, and the process is left as it was.
// The destructor kills the process group if it still runs. stderr is drained whenever this
// object waits, so a chatty operator never blocks on a full pipe; stdin writes drain stdout at
// the same time, so a large pipelined batch never deadlocks against the operator's output.
class OperatorProcess {
 public:
  // Spawns argv (argv[0] looked up in PATH), sends hello, waits for ready.
  static Result<std::unique_ptr<OperatorProcess>> Start(const std::vector<std::string>& argv,
                                                        const OperatorContext& ctx,
                                                        const OperatorProcessOptions& options);
  ~OperatorProcess();
  OperatorProcess(const OperatorProcess&) = delete;
  OperatorProcess& operator=(const OperatorProcess&) = delete;

  const ReadyInfo& ready() const { return ready_; }
  pid_t pid() const { return child_.pid(); }
  size_t in_flight() const { return in_flight_.size(); }
  // Ok until the first failure, then that failure.
  const Status& status() const { return failed_; }
  // The failure was a message over max_message_bytes: the same input repeats it.
  bool over_limit() const { return over_limit_; }

  // Sends one batch of one or more tuples. Returns once it is written to the pipe (not processed);
  // FailedPrecondition when max_in_flight batches already wait for NextResult, or empty.
  Status SendBatch(const Tuples& tuples);
  Status SendBatchViews(const std::vector<TupleView>& tuples);  // the same, without copying
  // n tuples from `tuples`, with their key groups (one per tuple; nullptr: none), which go to
  // the operator when its ready said keyed_state.
  Status SendBatchViews(const TupleView* tuples, size_t n, const uint32_t* groups);
  // Reads whatever the operator has written, without waiting. True when NextResult will not
  // block: the oldest batch's answer has arrived, or it failed (exit, garbage, past its
  // deadline). False with nothing in flight.
  bool ResultReady();
  // What an event loop waits on (readable) besides its own sockets; then call ResultReady.
  int stdout_fd() const { return child_.stdout_fd(); }
  int stderr_fd() const { return child_.stderr_fd(); }
  // The outputs of the oldest batch in flight, outputs[i] being those of its tuple i. Blocks up to
  // that batch's deadline. FailedPrecondition when no batch is in flight.
  Result<std::vector<Tuples>> NextResult();
  Result<ResultViews> NextResultViews();  // the same, without copying strings
  // The state of a stateful operator as the raw MessagePack bytes of one value, reflecting every
  // batch sent so far. Needs no batch in flight (FailedPrecondition otherwise). `changes`: only
  // the entries changed since its last snapshot, from an operator whose ready offered them.
  Result<std::string> Snapshot(bool changes = false);
  // Hands a state an earlier Snapshot of this task returned to a stateful operator: after Start,
  // before any batch, at most once. The operator gives no answer; a bad state fails it (seen at
  // the next call). InvalidArgument when `state` is not exactly one MessagePack value.
  Status Restore(std::string_view state);
  // Sets the state of some key groups of an operator whose ready said `regroup`: `groups` is the
  // packed map {group: state or nil} (nil: the group leaves this task, its state goes), between
  // batches (none in flight). No answer; a bad map fails the operator (seen at the next call).
  // FailedPrecondition without `regroup` or with a batch in flight; InvalidArgument when `groups`
  // is not exactly one MessagePack map.
  Status Regroup(std::string_view groups);
  // Between batches (none in flight): reads what the operator wrote without waiting, and fails
  // it when it exited (its output closed), so an idle operator that died is noticed now, not at
  // the next batch. Ok with a batch in flight, and once finished. Returns the failure.
  Status CheckIdle();
  // Ends the operator: closes stdin, expects no more output, waits for exit 0 within
  // finish_timeout. Needs no batch in flight.
  Status Finish();

 private:
  OperatorProcess(std::string name, OperatorProcessOptions options);

  Status Launch(const std::vector<std::string>& argv, const OperatorContext& ctx);
  Status SendPacked(std::string bytes, size_t tuples);
  // failed_, or FailedPrecondition after Finish.
  Status Usable() const;
  // Writes all of `bytes` to stdin by `deadline`, reading stdout and stderr meanwhile.
  Status Write(std::string bytes, TimePoint deadline, std::string_view what);
  // Waits for the next complete stdout message into `oh`.
  Status Receive(msgpack::object_handle* oh, TimePoint deadline, std::string_view what,
                 std::chrono::milliseconds timeout);
  // One poll round over stdin (when bytes are pending), stdout and stderr; at most until deadline.
  // Non-ok (and failed) on undecodable output.
  Status Pump(TimePoint deadline);
  Status ReadStdout();
  // One read of stderr into lines; false at EAGAIN or end of file.
  bool ReadStderr();
  void FlushStderrPartial();
  void AddStderrLine(std::string_view line, std::string* log);
  void WriteLog(std::string_view bytes);
  // Reaps the process by `deadline`, draining stderr meanwhile; nullopt if it still runs.
  std::optional<ChildExit> WaitExit(TimePoint deadline);
  // After stdin or stdout closed while something was owed: waits for the exit and reports it.
  Status Gone(TimePoint deadline, std::string_view what);
  // Kills the process, records `s` plus the stderr tail as the sticky failure, returns it.
  Status Fail(Status s);
  std::string Describe(std::string_view what) const;  // "operator 'x' (pid 12) <what>"

  std::string name_;
  OperatorProcessOptions options_;
  Child child_;
  int log_fd_ = -1;
  ReadyInfo ready_;
  Status failed_;
  bool over_limit_ = false;
  bool stdout_eof_ = false, stderr_eof_ = false;
  bool stdin_broken_ = false;  // a write failed (EPIPE)
  bool batch_sent_ = false, restored_ = false, finished_ = false;
  uint64_t batches_ = 0;  // batches sent, numbering them from 1 in messages

  std::unique_ptr<msgpack::unpacker> unpacker_;
  std::deque<msgpack::object_handle> messages_;  // decoded, not yet consumed
  std::string out_;                              // bytes still to write to stdin
  size_t out_off_ = 0;

  struct InFlight {
    size_t tuples;
    TimePoint deadline;
    uint64_t seq;
  };
  std::deque<InFlight> in_flight_;

  std::string stderr_partial_;  // an incomplete last line
  std::deque<std::string> stderr_tail_;
};

}  // namespace rs::stream
