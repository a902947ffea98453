// The stream engine's data-plane frames (daemon/stream/README.md "Wire"): task data (type 50)
// and task acks (type 51), each one standard envelope. DataFrameBuilder writes tuples straight
// into the frame's bytes; ParseTaskFrame decodes without copying strings (the views point into
// the frame, which the parsed frame keeps alive). Hostile bytes give Corruption, never a throw.
// Pure and thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/status.h"

namespace rs::stream {

struct TupleRef {
  uint64_t origin = 0;
  // The tuple's key group in the receiving stage (key_groups.h); 0 into stage 1 and the sink,
  // whose inputs are not keyed.
  uint32_t group = 0;
  std::string_view id, key, value;
};

// The order log's runs (input_order.h), carried by data frames to the sink.
struct OrderRun {
  uint32_t upstream = 0;  // the upstream task's index (in the stage before)
  uint64_t origin = 0;    // the tuples' origin (channel.h StreamKey)
  std::string last_id;    // the run takes every tuple of (upstream, origin) up to this id
  bool operator==(const OrderRun&) const = default;
};

// Runs with indexes: runs[i] is run number first + i of the task's log (numbered from 0 for the
// whole job, across rebuilds).
struct OrderRuns {
  uint64_t first = 0;
  std::vector<OrderRun> runs;
  bool operator==(const OrderRuns&) const = default;
};

// What a data frame to the sink carries besides its tuples: runs (maybe none) and `durable`, the
// index below which every run is covered by the sender's durable checkpoint (the sink forgets
// those).
struct OrderNote {
  OrderRuns runs;
  uint64_t durable = 0;
};

struct DataHeader {
  std::string job;
  uint32_t from_stage = 0, from_task = 0;
  uint64_t incarnation = 0, seq = 0;
  std::string ack_to;
  uint64_t emit_us = 0;
  bool end = false;
  // Frames to the sink from a task that logs its input order (optional on the wire).
  std::optional<OrderNote> order;
  // The epoch of the group table the sender routes by (README.md "Autoscaling"): 0 until the
  // next stage was first rescaled (absent on the wire). A frame of epoch e is the sender's cut:
  // nothing after it carries a tuple of a group that moved away from the receiver at e.
  uint64_t epoch = 0;
};

struct AckFrame {
  std::string job;
  uint32_t stage = 0, task = 0;
  uint64_t incarnation = 0, seq = 0;
  // Frames <= durable are covered by the receiver's last durable checkpoint: the sender may
  // forget them (until then it keeps them to replay to a rebuilt receiver). Optional on the
  // wire (a 5-element ack has durable 0).
  uint64_t durable = 0;
};

// Builds one data frame: Begin, Add each tuple, Finish (returns the envelope bytes).
class DataFrameBuilder {
 public:
  void Begin(const DataHeader& header);
  void Add(uint64_t origin, uint32_t group, std::string_view id, std::string_view key,
           std::string_view value);
  size_t tuples() const { return count_; }
  void set_epoch(uint64_t epoch) { header_.epoch = epoch; }  // for the frames Finished next
  // An upper bound of the size of the frame Finish would return now (to cut batches by size).
  size_t bytes() const {
    return kHeaderBound + header_.job.size() + header_.ack_to.size() + tuples_.size();
  }
  // Completes the frame with the given seq, emit time and end flag (they may differ from
  // Begin's: a frame's seq is assigned when it is sent), and the order note if any.
  std::string Finish(uint64_t seq, uint64_t emit_us, bool end, const OrderNote* order = nullptr);

 private:
  // Envelope and header bytes besides the job and ack_to strings, at most.
  static constexpr size_t kHeaderBound = 64;
  std::string tuples_;  // packed tuples
  DataHeader header_;
  size_t count_ = 0;
};

std::string EncodeAck(const AckFrame& ack);

// A decoded frame of either type. Views in `tuples` point into `bytes`.
struct TaskFrame {
  uint16_t type = 0;  // 50 data, 51 ack
  DataHeader data;
  std::vector<TupleRef> tuples;
  AckFrame ack;
  std::shared_ptr<const std::string> bytes;
};

// Decodes a frame (copied once into a shared buffer when given a view).
Result<TaskFrame> ParseTaskFrame(std::string bytes);

// Big-endian id helpers: a source id (file index, line) and an output id (input id + index).
std::string SourceId(uint32_t file_index, uint64_t line);
void AppendIdIndex(std::string* id, uint32_t index);
// An id for people: "FILE:LINE" then "/INDEX" per stage ("0:4411/0/2"); hex when it is not
// shaped like an id.
std::string FormatId(std::string_view id);
// Orders ids of one (upstream, origin) stream: shorter ids sort first, then bytes.
int CompareIds(std::string_view a, std::string_view b);

}  // namespace rs::stream
