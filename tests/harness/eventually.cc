#include "tests/harness/eventually.h"

#include <thread>

namespace rs::harness {

std::string WaitResult::ToString() const {
  return std::to_string(waited_ms) + " ms, " + std::to_string(attempts) + " polls, " +
         (ok ? "ok" : "NOT MET") + (last.empty() ? "" : "; last seen: " + last);
}

WaitResult Eventually(const Predicate& predicate, Clock::duration deadline, Clock::duration poll) {
  WaitResult r;
  TimePoint start = Clock::now();
  TimePoint until = start + deadline;
  while (true) {
    ++r.attempts;
    std::string why;
    bool ok = predicate(&why);
    r.last = std::move(why);
    r.waited_ms = ToMillis(Clock::now() - start);
    if (ok) {
      r.ok = true;
      return r;
    }
    if (Clock::now() >= until) return r;
    std::this_thread::sleep_for(poll);
  }
}

WaitResult Eventually(const std::function<bool()>& predicate, Clock::duration deadline,
                      Clock::duration poll) {
  return Eventually([&](std::string*) { return predicate(); }, deadline, poll);
}

WaitResult Consistently(const Predicate& predicate, Clock::duration duration,
                        Clock::duration poll) {
  WaitResult r;
  TimePoint start = Clock::now();
  TimePoint until = start + duration;
  while (true) {
    ++r.attempts;
    std::string why;
    bool ok = predicate(&why);
    r.last = std::move(why);
    r.waited_ms = ToMillis(Clock::now() - start);
    if (!ok) return r;
    if (Clock::now() >= until) {
      r.ok = true;
      return r;
    }
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace rs::harness
