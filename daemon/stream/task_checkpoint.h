// Where a task's checkpoint records go (README.md "HyDFS checkpoints"): generations of HyDFS
// files `rainstorm/<job>/task-S-T.ckpt.<gen>`, appended one record at a time, one write in
// flight. A generation grows to kRollBytes; a write that hangs for kStall (a replica that just
// failed) is abandoned for a new generation, whose replicas come from the current ring. Older
// generations are removed once a newer one holds a durable record, so recovery reads one bounded
// file and a job leaves no pile of generations behind, however often its writes stall. Runs on
// the task's thread; the writes complete on HyDFS's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/stream/async_call.h"
#include "shared/clock.h"
#include "shared/status.h"

namespace rs::stream {

class CheckpointFiles {
 public:
  using FileWrite = std::function<void(const std::string& name, std::string data,
                                   std::function<void(Status)> done)>;
  struct Io {
    FileWrite create, append;
    std::function<void(const std::string& name)> remove;  // best effort
    std::function<void(const std::string& line)> log;
  };
  static constexpr uint64_t kRollBytes = 8u << 20;
  static constexpr auto kStall = std::chrono::seconds(2);

  CheckpointFiles(std::string prefix, Io io) : prefix_(std::move(prefix)), io_(std::move(io)) {}

  enum class Poll {
    kIdle,     // no write under way
    kBusy,     // a write is under way
    kDurable,  // the last record written is durable now
    kStalled,  // the write hung: abandoned, the next record goes to a new generation at once
    kFailed,   // the write failed: nothing of it counts; the next record is appended after it
  };
  Poll Check(TimePoint now);
  // Appends `record` to the current generation (creating it). One at a time: after a Check that
  // did not say kBusy.
  void Write(std::string record, TimePoint now);
  // Recovery read generation `gen`: this run writes generation gen + 1 (a generation holds the
  // records of one run: output seqs start again in a new run, and a generation's first record
  // lists every pending frame), and `gen` is removed once that one holds a durable record.
  void ResumeAfter(uint64_t gen);
  // The next Write goes to a generation with no durable record of this run yet.
  bool fresh() const { return !created_ || roll_; }
  // The next Write starts a new generation: an output channel started again from seq 1 (a
  // downstream index a rescale took out and brought back), so the pending frames listed so far
  // in this generation name seqs the new channel will use again.
  void Roll() { roll_ = true; }

  const std::string& prefix() const { return prefix_; }
  uint64_t gen() const { return gen_; }
  std::string name() const { return prefix_ + std::to_string(gen_); }
  std::string name(uint64_t gen) const { return prefix_ + std::to_string(gen); }
  uint64_t bytes_written() const { return written_; }
  // The record the last kDurable answered for: its size, and its time from Write to durable
  // (as the task's loop saw it).
  uint64_t last_durable_bytes() const { return last_bytes_; }
  Clock::duration last_durable_took() const { return last_took_; }

 private:
  void NextGeneration();

  std::string prefix_;
  Io io_;
  uint64_t gen_ = 1, file_bytes_ = 0, written_ = 0;
  bool created_ = false;
  bool roll_ = false;
  std::vector<uint64_t> obsolete_;  // older generations, removed once a newer one is durable
  std::shared_ptr<AsyncCall> call_;
  uint64_t call_gen_ = 0, call_bytes_ = 0;
  TimePoint started_{};
  uint64_t last_bytes_ = 0;
  Clock::duration last_took_{0};
};

}  // namespace rs::stream
