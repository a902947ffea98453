#include "shared/logging.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>
#include <vector>

namespace rs {
namespace {

std::mutex g_mu;
std::vector<spdlog::sink_ptr> g_sinks;
spdlog::level::level_enum g_level = spdlog::level::info;
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %L %n %v";

}  // namespace

Status InitLogging(const LogOptions& options) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sinks.clear();
  g_level = spdlog::level::from_str(options.level);
  if (g_level == spdlog::level::off && options.level != "off") {
    return Status::InvalidArgument("unknown log level '" + options.level + "'");
  }
  try {
    if (!options.file.empty()) {
      g_sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file, options.max_file_bytes, options.max_files));
    }
    if (options.to_stderr) {
      auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
      if (!options.file.empty()) sink->set_level(spdlog::level::warn);
      g_sinks.push_back(sink);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError(std::string("cannot open log: ") + e.what());
  }
  for (auto& sink : g_sinks) sink->set_pattern(kPattern);
  spdlog::drop_all();
  spdlog::flush_every(std::chrono::seconds(1));
  return Status::Ok();
}

std::shared_ptr<spdlog::logger> Logger(std::string_view module) {
  std::string name(module);
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, g_sinks.begin(), g_sinks.end());
  logger->set_level(g_level);
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace rs
