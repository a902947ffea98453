// Autoscaler: the leader's scaling decisions for one job, pure (README.md "Autoscaling"). The
// leader feeds it every task's once-a-second report and asks it, about once a second, which
// stages should change size; it carries the actions out and says when each is done. Time is an
// argument, so tests/unit/stream/autoscaler_test.cc drives it with a manual clock.
//
// Two policies:
//   - kThresholds (the CS 425 spec's; `autoscale_enabled` with LW and HW): a stage whose
//     average input rate per task is above HW gets one more task, one below LW loses one
//     (never fewer than 1). The rates are averaged over `window`.
//   - kTarget (`--autoscale target`, for when good thresholds are not known): each stage is
//     sized from its measured true processing rate, the tuples its operators answer per second
//     of busy time, as DS2 (OSDI '18) and Flink's autoscaler do. The demand on stage 1 is, for a
//     live job, what rainsource reads from its writer (SourceLoad: the offered rate, plus its
//     unsent backlog spread over `catch_up`, as Flink adds the Kafka lag), capped by INPUT_RATE;
//     for a job reading a file INPUT_RATE (or, without one, what stage 1 takes now: a file
//     waits). The demand on stage s+1 is stage s's demand times its measured selectivity
//     (out/in). What stage 1 takes is no measure of demand behind a bottleneck: it takes only
//     what the slowest stage lets through. Because the true rate
//     leaves out time a task spends blocked (back-pressure) or idle, a stage behind a
//     bottleneck is not mistaken for a busy one, and one step reaches the parallelism that
//     keeps up: ceil(demand / (true rate per task x target_utilization)). It scales down only
//     when even 10 % more demand would fit in fewer tasks, so a steady rate near a boundary
//     does not flip it back and forth.
// Either way one action at a time per stage, none until `cooldown` has passed since the last
// (or since the job started), and decisions use only samples taken since then, so a stage is
// judged by how it runs at its current size.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"

namespace rs::stream {

enum class ScalePolicy { kThresholds, kTarget };

const char* ScalePolicyName(ScalePolicy p);  // "thresholds", "target"

struct AutoscaleOptions {
  ScalePolicy policy = ScalePolicy::kThresholds;
  double low = 0, high = 0;  // kThresholds: tuples/s per task
  Clock::duration cooldown = std::chrono::seconds(5);
  Clock::duration window = std::chrono::seconds(3);  // rates averaged over this long
  uint32_t max_tasks = 1;                            // per stage (the job's key groups at most)
  double source_rate = 0;                            // the job's INPUT_RATE; 0: unthrottled
  double target_utilization = 0.8;                   // kTarget: the busy share a stage is sized for
  // kTarget: a live source's backlog adds backlog / catch_up to the demand (drained over this
  // long by the parallelism the rate alone needs plus the margin of target_utilization).
  Clock::duration catch_up = std::chrono::seconds(30);
};

// One task's report for the second before `now`.
struct TaskSample {
  double rate_in = 0, rate_out = 0;  // tuples/s
  double busy = 0;                   // the share of that second its operator was working (0..1)
  double rate_done = 0;              // tuples/s its operator answered (over busy: its true rate)
};

struct ScaleAction {
  uint32_t stage = 0;  // 1-based
  uint32_t from = 0, to = 0;
  std::string reason;  // the rates it saw, for the leader's log and the job's history
};

class Autoscaler {
 public:
  // `tasks[s - 1]`: the tasks of stage s now; the cooldown runs from `start`.
  Autoscaler(AutoscaleOptions o, std::vector<uint32_t> tasks, TimePoint start);

  // Task `task` of `stage` reported `s` (rates over the second before `now`). Reports of a task
  // the stage no longer has, or of a stage that is being rescaled, are ignored.
  void Sample(uint32_t stage, uint32_t task, const TaskSample& s, TimePoint now);

  // A live job's rainsource reported, for the second before `now`, `offered` records/s read
  // from its writer and `backlog` records read and not yet sent.
  void SourceLoad(double offered, double backlog, TimePoint now);

  // What should change now: at most one action per stage. A stage with an action under way gets
  // none until Done.
  std::vector<ScaleAction> Decide(TimePoint now);

  // The action on `stage` is over: it now has `tasks` tasks (the old count if it failed). Its
  // samples start afresh, and its cooldown runs from `now`.
  void Done(uint32_t stage, uint32_t tasks, TimePoint now);
  // The action Decide gave for `stage` was not carried out (another stage's went first): the
  // stage is judged again at the next Decide, its samples and cooldown as they were.
  void Defer(uint32_t stage);

  uint32_t tasks(uint32_t stage) const { return stages_[stage - 1].tasks; }
  const AutoscaleOptions& options() const { return o_; }

 private:
  struct Stage {
    uint32_t tasks = 1;
    bool busy_rescaling = false;
    TimePoint since;  // samples before this are stale
    std::map<uint32_t, std::deque<std::pair<TimePoint, TaskSample>>> samples;  // per task
  };
  // The stage's averages over the window: the sum over tasks of each one's mean, and how many
  // tasks have a sample. nullopt when some task has none yet.
  struct Totals {
    double rate_in = 0, rate_out = 0, busy = 0, done = 0;
  };
  std::optional<Totals> Average(const Stage& st, TimePoint now) const;
  std::optional<ScaleAction> Thresholds(uint32_t stage, const Stage& st, const Totals& t) const;
  // Tuples/s a stage must take: `up` sizes it up, `down` (at least as high) down.
  struct Demand {
    double up = 0, down = 0;
  };
  std::optional<ScaleAction> Target(uint32_t stage, const Stage& st, const Totals& t,
                                    Demand demand) const;
  // The demand on stage 1 from the live source's reports in the window; nullopt without any.
  std::optional<Demand> SourceDemand(TimePoint now) const;

  AutoscaleOptions o_;
  std::vector<Stage> stages_;
  struct Load {
    TimePoint at;
    double offered = 0, backlog = 0;
  };
  std::deque<Load> source_;
};

}  // namespace rs::stream
