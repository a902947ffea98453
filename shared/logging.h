// Logging setup: one spdlog sink per process (a size-rotated file, optionally stderr too), one
// named logger per module ("membership", "admin", ...). Messages carry key=value context, e.g.
//   2026-11-21T10:00:00.123 I membership event=fail member=127.0.0.1:7002#... inc=3
// InitLogging must run once, before other threads start; Logger() is thread-safe afterwards.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "shared/status.h"

namespace rs {

struct LogOptions {
  std::string file;            // empty: no file sink
  bool to_stderr = false;      // also log to stderr (warnings and above only when a file is set)
  std::string level = "info";  // trace|debug|info|warn|error
  size_t max_file_bytes = 64u << 20;  // rotate at this size
  size_t max_files = 4;               // raind.log.1 ... raind.log.4 are kept
};

Status InitLogging(const LogOptions& options);

// The named module logger, created on first use with the process-wide sinks.
std::shared_ptr<spdlog::logger> Logger(std::string_view module);

}  // namespace rs
