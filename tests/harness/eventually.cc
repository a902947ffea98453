#include "tests/harness/eventually.h"

#include <thread>

namespace rs::harness {

std::string WaitResult::ToString() const {
  return std::to_string(waited_ms) + " ms, " + std::to_string(attempts) + " polls, " +
         (ok ? "ok" : "NOT MET") + (last.empty() ? "" : "; last seen: " + last);
}

namespace {

// Polls `predicate` until it returns `stop_on` or `limit` passes. ok: the predicate held (true)
// at the end: reached when stop_on is true, never broken when stop_on is false.
WaitResult Poll(const Predicate& predicate, bool stop_on, Clock::duration limit,
                Clock::duration poll) {
  WaitResult r;
  TimePoint start = Clock::now();
  TimePoint until = start + limit;
  while (true) {
    ++r.attempts;
    std::string why;
    bool value = predicate(&why);
    r.last = std::move(why);
    r.waited_ms = ToMillis(Clock::now() - start);
    if (value == stop_on || Clock::now() >= until) {
      r.ok = value;
      return r;
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace

WaitResult Eventually(const Predicate& predicate, Clock::duration deadline, Clock::duration poll) {
  return Poll(predicate, /*stop_on=*/true, deadline, poll);
}

WaitResult Eventually(const std::function<bool()>& predicate, Clock::duration deadline,
                      Clock::duration poll) {
  return Eventually([&](std::string*) { return predicate(); }, deadline, poll);
}

WaitResult Consistently(const Predicate& predicate, Clock::duration duration,
                        Clock::duration poll) {
  return Poll(predicate, /*stop_on=*/false, duration, poll);
}

}  // namespace rs::harness
