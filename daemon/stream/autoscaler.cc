#include "daemon/stream/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace rs::stream {

namespace {

// Below this much operator busy time per task (a share of a second) the true rate is noise.
constexpr double kMinBusy = 0.02;
// kTarget scales down only when this much more demand would still fit in fewer tasks.
constexpr double kDownMargin = 1.10;

// The reasons' text: every argument printed as a double (%.0f, %.2f).
template <typename... A>
std::string Fmt(const char* format, A... a) {
  char buf[320];
  std::snprintf(buf, sizeof(buf), format, static_cast<double>(a)...);
  return buf;
}

}  // namespace

const char* ScalePolicyName(ScalePolicy p) {
  return p == ScalePolicy::kTarget ? "target" : "thresholds";
}

Autoscaler::Autoscaler(AutoscaleOptions o, std::vector<uint32_t> tasks, TimePoint start) : o_(o) {
  if (o_.max_tasks < 1) o_.max_tasks = 1;
  for (uint32_t n : tasks) {
    Stage st;
    st.tasks = n;
    st.since = start;
    stages_.push_back(std::move(st));
  }
}

void Autoscaler::Sample(uint32_t stage, uint32_t task, const TaskSample& s, TimePoint now) {
  if (stage < 1 || stage > stages_.size()) return;
  Stage& st = stages_[stage - 1];
  if (st.busy_rescaling || task >= st.tasks || now < st.since) return;
  auto& q = st.samples[task];
  q.emplace_back(now, s);
  while (!q.empty() && q.front().first <= now - o_.window) q.pop_front();
}

std::optional<Autoscaler::Totals> Autoscaler::Average(const Stage& st, TimePoint now) const {
  Totals t;
  for (uint32_t i = 0; i < st.tasks; ++i) {
    auto it = st.samples.find(i);
    if (it == st.samples.end()) return std::nullopt;
    double in = 0, out = 0, busy = 0, done = 0;
    size_t n = 0;
    for (const auto& [at, s] : it->second) {
      if (at <= now - o_.window || at < st.since) continue;
      in += s.rate_in;
      out += s.rate_out;
      busy += std::clamp(s.busy, 0.0, 1.0);
      done += s.rate_done;
      ++n;
    }
    if (n == 0) return std::nullopt;
    t.rate_in += in / static_cast<double>(n);
    t.rate_out += out / static_cast<double>(n);
    t.busy += busy / static_cast<double>(n);
    t.done += done / static_cast<double>(n);
  }
  return t;
}

std::optional<ScaleAction> Autoscaler::Thresholds(uint32_t stage, const Stage& st,
                                                  const Totals& t) const {
  double per_task = t.rate_in / st.tasks;
  if (per_task > o_.high && st.tasks < o_.max_tasks) {
    return ScaleAction{stage, st.tasks, st.tasks + 1,
                       Fmt("average input %.0f/s per task over %.0f tasks is above HW %.0f/s",
                           per_task, st.tasks, o_.high)};
  }
  if (per_task < o_.low && st.tasks > 1) {
    return ScaleAction{stage, st.tasks, st.tasks - 1,
                       Fmt("average input %.0f/s per task over %.0f tasks is below LW %.0f/s",
                           per_task, st.tasks, o_.low)};
  }
  return std::nullopt;
}

std::optional<ScaleAction> Autoscaler::Target(uint32_t stage, const Stage& st, const Totals& t,
                                              Demand demand) const {
  auto clamp = [&](double n) {
    return static_cast<uint32_t>(std::clamp(n, 1.0, static_cast<double>(o_.max_tasks)));
  };
  uint32_t up = 1, down = 1;
  std::string basis;
  if (t.busy >= kMinBusy * st.tasks && t.done > 0) {
    double true_rate = t.done / t.busy;  // tuples per second of one busy task
    double per_task = true_rate * o_.target_utilization;
    up = clamp(std::ceil(demand.up / per_task));
    down = clamp(std::ceil(demand.down * kDownMargin / per_task));
    basis =
        Fmt("demand %.0f/s (%.0f/s in the window), true rate %.0f/s per task (busy %.2f of %.0f "
            "tasks, input %.0f/s): %.0f %% utilization",
            demand.up, demand.down, true_rate, t.busy, st.tasks, t.rate_in,
            100 * demand.up / (true_rate * st.tasks));
  } else {
    // Its operators are (nearly) idle: whatever the demand, one task has room for it.
    basis = Fmt("demand %.0f/s, operators busy %.2f of %.0f tasks (input %.0f/s)", demand.up,
                t.busy, st.tasks, t.rate_in);
  }
  if (up > st.tasks) return ScaleAction{stage, st.tasks, up, basis};
  if (down < st.tasks) return ScaleAction{stage, st.tasks, down, basis};
  return std::nullopt;
}

std::vector<ScaleAction> Autoscaler::Decide(TimePoint now) {
  std::vector<ScaleAction> actions;
  std::optional<Demand> demand;  // kTarget: the demand on the stage at hand; nullopt unknown
  for (uint32_t s = 1; s <= stages_.size(); ++s) {
    const Stage& st = stages_[s - 1];
    std::optional<Totals> t;
    if (!st.busy_rescaling) t = Average(st, now);
    if (o_.policy == ScalePolicy::kTarget && s == 1) {
      if (std::optional<Demand> live = SourceDemand(now)) {
        demand = *live;
        if (o_.source_rate > 0) {  // rainsource sends no faster
          demand->up = std::min(demand->up, o_.source_rate);
          demand->down = std::min(demand->down, o_.source_rate);
        }
      } else if (o_.source_rate > 0) {
        demand = Demand{o_.source_rate, o_.source_rate};
      } else if (t) {
        demand = Demand{t->rate_in, t->rate_in};
      }
    }
    bool cool = now - st.since >= o_.cooldown;
    if (t && cool && !st.busy_rescaling) {
      std::optional<ScaleAction> a = o_.policy == ScalePolicy::kTarget
                                         ? (demand ? Target(s, st, *t, *demand) : std::nullopt)
                                         : Thresholds(s, st, *t);
      if (a) actions.push_back(std::move(*a));
    }
    if (o_.policy == ScalePolicy::kTarget && demand) {
      // The next stage's demand: this one's times its selectivity (unknown without samples).
      if (!t) {
        demand.reset();
      } else {
        double sel = t->rate_in > 0 ? t->rate_out / t->rate_in : 0;
        demand->up *= sel;
        demand->down *= sel;
      }
    }
  }
  for (const ScaleAction& a : actions) stages_[a.stage - 1].busy_rescaling = true;
  return actions;
}

void Autoscaler::SourceLoad(double offered, double backlog, TimePoint now) {
  source_.push_back({now, std::max(0.0, offered), std::max(0.0, backlog)});
  while (!source_.empty() && source_.front().at <= now - o_.window) source_.pop_front();
}

// Up: the latest report, so that a step is answered at once in one action (the mean over a
// window that straddles it would take it in two). Down: the highest report in the window, so
// that only a window all below fewer tasks' capacity takes one away.
std::optional<Autoscaler::Demand> Autoscaler::SourceDemand(TimePoint now) const {
  std::optional<Demand> d;
  double catch_up = std::max(1.0, std::chrono::duration<double>(o_.catch_up).count());
  for (const Load& l : source_) {
    if (l.at <= now - o_.window) continue;
    double x = l.offered + l.backlog / catch_up;
    if (!d) d = Demand{x, x};
    d->up = x;
    d->down = std::max(d->down, x);
  }
  return d;
}

void Autoscaler::Defer(uint32_t stage) {
  if (stage >= 1 && stage <= stages_.size()) stages_[stage - 1].busy_rescaling = false;
}

void Autoscaler::Done(uint32_t stage, uint32_t tasks, TimePoint now) {
  if (stage < 1 || stage > stages_.size()) return;
  Stage& st = stages_[stage - 1];
  st.tasks = std::max<uint32_t>(tasks, 1);
  st.busy_rescaling = false;
  st.since = now;
  st.samples.clear();
}

}  // namespace rs::stream
