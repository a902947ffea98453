// Time helpers. Protocol cores take `TimePoint now` as an argument (a manual clock in unit tests);
// only the IO shells read the real clocks below.
#pragma once

#include <chrono>
#include <cstdint>

namespace rs {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;

// Milliseconds since the Unix epoch (wall clock), for ids and human-facing timestamps.
inline uint64_t WallMillis() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

inline int64_t ToMillis(Clock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace rs
