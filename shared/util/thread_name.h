// SetThreadName: names the calling thread (at most 15 bytes shown) so that top -H, perf and
// /proc/PID/task/TID/comm tell raind's threads apart.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace rs {

inline void SetThreadName(std::string_view name) {
  std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
}

}  // namespace rs
