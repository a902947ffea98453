// Waiting on facts, never on sleeps. Eventually() polls a predicate until it holds or a deadline
// passes; Consistently() checks that a condition keeps holding for a while (the only place a
// test may spend time on purpose, e.g. "no node is declared failed for 60 s").
// A predicate may take a std::string* and describe what it saw last; that text ends up in the
// failure message. Deadlines in tests are generous: they check correctness, benchmarks measure
// speed.
//   REQUIRE_EVENTUALLY(10s, [&](std::string* why) { ...; *why = list.ToString(); return ok; });
#pragma once

#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "shared/clock.h"

namespace rs::harness {

inline constexpr auto kDefaultPoll = milliseconds(200);

struct WaitResult {
  bool ok = false;
  int attempts = 0;
  int64_t waited_ms = 0;
  std::string last;  // the predicate's last description
  std::string ToString() const;
};

using Predicate = std::function<bool(std::string* why)>;

WaitResult Eventually(const Predicate& predicate, Clock::duration deadline,
                      Clock::duration poll = kDefaultPoll);
WaitResult Eventually(const std::function<bool()>& predicate, Clock::duration deadline,
                      Clock::duration poll = kDefaultPoll);
// ok when `predicate` held at every poll for `duration`; stops at the first violation.
WaitResult Consistently(const Predicate& predicate, Clock::duration duration,
                        Clock::duration poll = kDefaultPoll);

}  // namespace rs::harness

#define REQUIRE_EVENTUALLY(deadline, ...)                             \
  do {                                                                \
    auto rs_wait_ = ::rs::harness::Eventually(__VA_ARGS__, deadline); \
    INFO("waited " << rs_wait_.ToString());                           \
    REQUIRE(rs_wait_.ok);                                             \
  } while (0)

// REQUIRE_EVENTUALLY with a poll period of its own (for waits measured in tens of ms).
#define REQUIRE_EVENTUALLY_POLL(deadline, poll, ...)                        \
  do {                                                                      \
    auto rs_wait_ = ::rs::harness::Eventually(__VA_ARGS__, deadline, poll); \
    INFO("waited " << rs_wait_.ToString());                                 \
    REQUIRE(rs_wait_.ok);                                                   \
  } while (0)

#define REQUIRE_CONSISTENTLY(duration, ...)                             \
  do {                                                                  \
    auto rs_wait_ = ::rs::harness::Consistently(__VA_ARGS__, duration); \
    INFO("held for " << rs_wait_.ToString());                           \
    REQUIRE(rs_wait_.ok);                                               \
  } while (0)
