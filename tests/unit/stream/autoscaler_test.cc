// The leader's scaling decisions (daemon/stream/autoscaler.h), alone, on a manual clock. The
// target policy is also run against a fluid model of a job: each stage's tasks take at most
// their true rate each, back-pressure caps every stage at the slowest one, and each report is
// off by up to +-5 % (noise).
#include "daemon/stream/autoscaler.h"

#include <catch2/catch.hpp>
#include <random>

namespace rs::stream {
namespace {

using std::chrono::seconds;

TimePoint T0() { return TimePoint{} + std::chrono::hours(1); }

void Report(Autoscaler& a, uint32_t stage, uint32_t tasks, double rate_in, double rate_out,
            double busy, TimePoint now) {
  for (uint32_t i = 0; i < tasks; ++i) a.Sample(stage, i, {rate_in, rate_out, busy}, now);
}

TEST_CASE("thresholds: above HW adds a task, below LW removes one, after a cooldown",
          "[stream][autoscaler]") {
  AutoscaleOptions o;
  o.low = 300;
  o.high = 1000;
  o.max_tasks = 3;
  TimePoint now = T0();
  Autoscaler a(o, {2, 1}, now);
  // 1,500/s per task on stage 1: too busy, but not before the cooldown (5 s from the start).
  for (int i = 1; i <= 4; ++i) {
    now += seconds(1);
    Report(a, 1, 2, 1500, 1500, 0.5, now);
    Report(a, 2, 1, 500, 500, 0.1, now);
    CHECK(a.Decide(now).empty());
  }
  now += seconds(1);
  Report(a, 1, 2, 1500, 1500, 0.5, now);
  Report(a, 2, 1, 500, 500, 0.1, now);
  auto acts = a.Decide(now);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 1);
  CHECK(acts[0].from == 2);
  CHECK(acts[0].to == 3);
  CHECK(acts[0].reason.find("above HW 1000/s") != std::string::npos);
  CHECK(acts[0].reason.find("1500/s per task") != std::string::npos);
  // Under way: nothing more for stage 1 until Done.
  now += seconds(1);
  Report(a, 1, 2, 1500, 1500, 0.5, now);
  CHECK(a.Decide(now).empty());
  a.Done(1, 3, now);
  CHECK(a.tasks(1) == 3);
  // At 3 tasks, still above HW, and at the maximum: no more.
  for (int i = 1; i <= 10; ++i) {
    now += seconds(1);
    Report(a, 1, 3, 1200, 1200, 0.5, now);
    Report(a, 2, 1, 500, 500, 0.1, now);
    CHECK(a.Decide(now).empty());
  }
  // The rate falls below LW: down one, cooldown, down one more, never below 1.
  int downs = 0;
  for (int i = 1; i <= 40; ++i) {
    now += seconds(1);
    Report(a, 1, a.tasks(1), 100, 100, 0.05, now);
    Report(a, 2, 1, 100, 100, 0.05, now);
    for (const auto& act : a.Decide(now)) {
      CHECK(act.stage == 1);
      CHECK(act.to == act.from - 1);
      CHECK(act.reason.find("below LW 300/s") != std::string::npos);
      a.Done(act.stage, act.to, now);
      ++downs;
    }
  }
  CHECK(downs == 2);
  CHECK(a.tasks(1) == 1);
  CHECK(a.tasks(2) == 1);
}

TEST_CASE("a deferred action is judged again at once, with no cooldown", "[stream][autoscaler]") {
  AutoscaleOptions o;
  o.low = 10;
  o.high = 100;
  o.max_tasks = 4;
  TimePoint now = T0();
  Autoscaler a(o, {1, 1}, now);
  now += seconds(6);
  Report(a, 1, 1, 500, 500, 0.5, now);
  Report(a, 2, 1, 500, 500, 0.9, now);
  auto acts = a.Decide(now);
  REQUIRE(acts.size() == 2);  // both stages are above HW; the leader runs one at a time
  a.Defer(2);
  now += seconds(1);
  a.Done(1, 2, now);
  // The next second, stage 2's action comes again: its samples and cooldown were kept.
  now += seconds(1);
  Report(a, 2, 1, 500, 500, 0.9, now);
  acts = a.Decide(now);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].to == 2);
}

TEST_CASE("thresholds: a task that has not reported yet holds the decision back",
          "[stream][autoscaler]") {
  AutoscaleOptions o;
  o.high = 10;
  o.max_tasks = 8;
  o.cooldown = seconds(0);
  TimePoint now = T0();
  Autoscaler a(o, {2}, now);
  now += seconds(1);
  a.Sample(1, 0, {100, 100, 0.5}, now);
  CHECK(a.Decide(now).empty());
  a.Sample(1, 7, {100, 100, 0.5}, now);  // no such task: ignored
  CHECK(a.Decide(now).empty());
  a.Sample(1, 1, {100, 100, 0.5}, now);
  CHECK(a.Decide(now).size() == 1);
  // A failed action: the old count, and a fresh start.
  a.Done(1, 2, now);
  CHECK(a.Decide(now).empty());
}

TEST_CASE("thresholds: samples older than the window or the last action do not count",
          "[stream][autoscaler]") {
  AutoscaleOptions o;
  o.low = 50;
  o.high = 1000;
  o.max_tasks = 4;
  o.cooldown = seconds(1);
  o.window = seconds(3);
  TimePoint now = T0();
  Autoscaler a(o, {1}, now);
  // A burst long ago, then a quiet rate: the burst has left the window.
  now += seconds(1);
  a.Sample(1, 0, {5000, 5000, 1}, now);
  now += seconds(3);
  a.Sample(1, 0, {600, 600, 0.1}, now);
  CHECK(a.Decide(now).empty());
}

// A job as a fluid: stage s's tasks each take at most rate[s] tuples/s; the source offers
// `source` tuples/s; back-pressure holds every stage to what the slowest lets through.
struct Fluid {
  double source = 0;
  std::vector<double> rate;         // true rate per task
  std::vector<double> selectivity;  // out / in
  std::vector<uint32_t> tasks;
  bool live = false;   // a live source reports what it is offered and its backlog
  double backlog = 0;  // records offered and not yet taken (live)
  std::mt19937 rng{7};

  // Reports every task's sample for the second ending `now`; returns the throughput.
  double Step(Autoscaler& a, TimePoint now) {
    double x = source + backlog;  // in stage-1 units: what waits is taken as fast as it can be
    double sel = 1;
    for (size_t s = 0; s < rate.size(); ++s) {
      x = std::min(x, tasks[s] * rate[s] / sel);
      sel *= selectivity[s];
    }
    std::uniform_real_distribution<double> noise(0.95, 1.05);
    double in = x;
    for (size_t s = 0; s < rate.size(); ++s) {
      double out = in * selectivity[s];
      for (uint32_t i = 0; i < tasks[s]; ++i) {
        double n = noise(rng);
        double per = in / tasks[s];
        a.Sample(static_cast<uint32_t>(s + 1), i,
                 {per * n, out / tasks[s] * n, per / rate[s] * noise(rng), per * n}, now);
      }
      in = out;
    }
    if (live) {
      backlog = std::max(0.0, backlog + source - x);
      a.SourceLoad(source, backlog, now);
    }
    return x;
  }
};

// Runs `secs` seconds, carrying every action out at once; returns the actions.
std::vector<ScaleAction> Run(Autoscaler& a, Fluid& f, TimePoint& now, int secs) {
  std::vector<ScaleAction> all;
  for (int i = 0; i < secs; ++i) {
    now += seconds(1);
    f.Step(a, now);
    for (auto& act : a.Decide(now)) {
      f.tasks[act.stage - 1] = act.to;
      a.Done(act.stage, act.to, now);
      all.push_back(act);
    }
  }
  return all;
}

TEST_CASE("target: one step to a parallelism that keeps up, then no action at a steady rate",
          "[stream][autoscaler]") {
  // filter (fast, keeps a quarter) -> a slow middle stage (200 tuples/s per task) -> count.
  Fluid f;
  f.source = 1200;
  f.rate = {50000, 200, 20000};
  f.selectivity = {0.25, 1, 1};
  f.tasks = {1, 1, 1};
  AutoscaleOptions o;
  o.policy = ScalePolicy::kTarget;
  o.max_tasks = 16;
  o.source_rate = f.source;
  TimePoint now = T0();
  Autoscaler a(o, f.tasks, now);
  auto acts = Run(a, f, now, 10);
  // Demand on stage 2 is 300/s; at 80 % of 200/s a task: ceil(300 / 160) = 2.
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].from == 1);
  CHECK(acts[0].to == 2);
  CHECK(acts[0].reason.find("demand 300/s") != std::string::npos);
  // Two minutes at that rate: nothing.
  CHECK(Run(a, f, now, 120).empty());
  // The rate triples: one action, straight to ceil(900 / 160) = 6, while stage 2 is
  // back-pressuring (it takes only 400/s when the step comes).
  f.source = 3600;
  o.source_rate = f.source;  // a new INPUT_RATE: a new autoscaler, from the tasks there are
  a = Autoscaler(o, f.tasks, now);
  acts = Run(a, f, now, 10);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].to == 6);
  CHECK(Run(a, f, now, 120).empty());
  // Back down: one action. Down sizes for 10 % more than the demand, ceil(330 / 160) = 3, so
  // that a small rise does not bring it straight back up.
  f.source = 1200;
  o.source_rate = f.source;  // a new INPUT_RATE: a new autoscaler, from the tasks there are
  a = Autoscaler(o, f.tasks, now);
  acts = Run(a, f, now, 10);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].to == 3);
  CHECK(Run(a, f, now, 120).empty());
}

TEST_CASE("target: without an INPUT_RATE the demand is what stage 1 takes",
          "[stream][autoscaler]") {
  Fluid f;
  f.source = 1000;  // a live source, offering 1,000/s: not known to the autoscaler
  f.rate = {100000, 150};
  f.selectivity = {1, 1};
  f.tasks = {1, 4};
  AutoscaleOptions o;
  o.policy = ScalePolicy::kTarget;
  o.max_tasks = 16;
  TimePoint now = T0();
  Autoscaler a(o, f.tasks, now);
  // Stage 2 holds the job at 600/s (4 x 150); stage 1 takes 600/s: demand 600 -> ceil(600/120) = 5.
  auto acts = Run(a, f, now, 10);
  REQUIRE(!acts.empty());
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].to == 5);
}

TEST_CASE("target: an idle stage shrinks to one task, never below, never above the maximum",
          "[stream][autoscaler]") {
  Fluid f;
  f.source = 10;
  f.rate = {100000, 100000};
  f.selectivity = {1, 1};
  f.tasks = {4, 4};
  AutoscaleOptions o;
  o.policy = ScalePolicy::kTarget;
  o.max_tasks = 4;
  o.source_rate = 10;
  TimePoint now = T0();
  Autoscaler a(o, f.tasks, now);
  auto acts = Run(a, f, now, 30);
  CHECK(f.tasks == std::vector<uint32_t>{1, 1});
  CHECK(acts.size() == 2);
  // A demand far above what 4 tasks could take: 4, not more.
  f.rate = {100, 100};
  f.source = 100000;
  o.source_rate = f.source;  // a new INPUT_RATE: a new autoscaler, from the tasks there are
  a = Autoscaler(o, f.tasks, now);
  Run(a, f, now, 30);
  CHECK(f.tasks == std::vector<uint32_t>{4, 4});
}

TEST_CASE("target: a live source's offered rate is the demand, not what stage 1 takes",
          "[stream][autoscaler]") {
  // As above, but rainsource reports the 1,000/s it is offered: one step to ceil(1000 / 120)
  // = 9 (the backlog of 5 s at 400/s adds 2000 / 30 s = 67/s: 9 still), then nothing while
  // the backlog drains and after.
  Fluid f;
  f.source = 1000;
  f.rate = {100000, 150};
  f.selectivity = {1, 1};
  f.tasks = {1, 4};
  f.live = true;
  AutoscaleOptions o;
  o.policy = ScalePolicy::kTarget;
  o.max_tasks = 16;
  TimePoint now = T0();
  Autoscaler a(o, f.tasks, now);
  auto acts = Run(a, f, now, 10);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].to == 9);
  CHECK(Run(a, f, now, 120).empty());
  CHECK(f.backlog == 0);
  // The offer drops to 300/s: one action down, to ceil(330 / 120) = 3.
  f.source = 300;
  acts = Run(a, f, now, 20);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].to == 3);
  // A backlog adds to the demand: 300/s offered and 10,800 waiting after a second at 450/s
  // is 300 + 10800 / 30 = 660/s: ceil(660 / 120) = 6.
  f.backlog = 10950;
  acts = Run(a, f, now, 1);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].to == 6);
}

TEST_CASE("target: the true rate is what the operator answered per busy second",
          "[stream][autoscaler]") {
  // A task that took 900 tuples in (some still wait in its operator's queue) but answered 500
  // in 0.5 s of busy time runs at 1,000/s, not 1,800/s: a demand of 1,500/s needs
  // ceil(1500 / 800) = 2 tasks.
  AutoscaleOptions o;
  o.policy = ScalePolicy::kTarget;
  o.max_tasks = 8;
  o.source_rate = 1500;
  TimePoint now = T0();
  Autoscaler a(o, {1, 1}, now);
  for (int i = 0; i < 8; ++i) {
    now += seconds(1);
    a.Sample(1, 0, {1500, 1500, 0.01, 1500}, now);
    a.Sample(2, 0, {900, 900, 0.5, 500}, now);
  }
  auto acts = a.Decide(now);
  REQUIRE(acts.size() == 1);
  CHECK(acts[0].stage == 2);
  CHECK(acts[0].to == 2);
}

}  // namespace
}  // namespace rs::stream
