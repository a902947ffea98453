// How rainctl shows a job: the reply readers shared by the job commands, the tables of
// `job list|status|tasks` and `list_tasks`, and the live progress line of an attached job.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <string>

#include "shared/clock.h"

namespace rs::ctl {

// A number field that may be an integer or a float (rates); 0 when absent.
double Number(const msgpack::object& map, const char* key);
// A field shown as text: strings as they are, numbers and booleans printed, an array of
// strings joined by spaces (an operator's argv).
std::string Text(const msgpack::object& map, const char* key);
// A count that may be sent as a number or as an array (of stages, of tasks).
uint64_t Count(const msgpack::object& map, const char* key);
std::string Rate(double per_second);  // "12.5", "3400"
std::string Seconds(uint64_t ms);     // "1.234 s", "12.3 s"
// job.status's per-stage entries: `stages_detail` (the list entry's `stages` is the count), or
// `stages` when that is the array.
const msgpack::object* StageDetails(const msgpack::object& status);

void PrintTasks(const msgpack::object& reply);   // job tasks, list_tasks
void PrintJobs(const msgpack::object& reply);    // job list
void PrintStatus(const msgpack::object& reply);  // job status

// The live progress line on stderr (a terminal): drawn over itself with \r, cleared before
// anything else is written.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void Draw(const msgpack::object& status, TimePoint started);
  void Clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

}  // namespace rs::ctl
