// LogQueryService: the node's side of distributed log queries. `rainctl grep` asks every node to
// run GNU grep itself over its own log files (so the semantics and speed are grep's, exactly)
// and streams the output back with flow control (command_stream.h); `rainctl logs --follow` asks
// for `tail -F` of the log, optionally through `grep --line-buffered`. It also ships the node's
// log into HyDFS (log_shipper.h) so the history of a dead node stays searchable.
//
// Commands (forwarded by the admin service; bodies in shared/wire/FORMAT.md):
//   log.grep   {pattern, flags: "ivncEFw" subset, max_count, files: GLOB, stream, endpoint}
//   log.follow {pattern (optional), flags, stream, endpoint}
// Reply: {"endpoint": where the reader sends acks, "files": [the files searched]}.
//   log.tail   {offset (empty: the last 16 KiB), pattern, flags ("i")}: one answer,
//              {next, size, restarted, lines} (log_tail.h; the web console's log view).
//
// Thread-safety: Command() may be called from any thread; each query runs on its own thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/logquery/command_stream.h"
#include "shared/status.h"
#include "shared/wire/envelope.h"

namespace rs::logquery {

struct LogQueryOptions {
  std::string host = "127.0.0.1";
  std::string log_dir;                 // where raind.log and its rotations live
  std::string log_name = "raind.log";  // the base name
  size_t max_queries = 32;             // concurrent queries per node
};

// The files a query searches in `dir`: `glob` (one shell pattern, no '/'), or by default the
// node's log and its rotations, oldest first (raind.N.log ... raind.1.log, raind.log). Names are
// relative to `dir`.
Result<std::vector<std::string>> QueryFiles(const std::string& dir, const std::string& log_name,
                                            const std::string& glob);

class LogQueryService {
 public:
  using Args = std::map<std::string, std::string>;
  using Reply = std::function<void(Status, wire::BodyWriter)>;

  explicit LogQueryService(LogQueryOptions options) : options_(std::move(options)) {}
  ~LogQueryService();

  void Command(const std::string& cmd, const Args& args, Reply done);

 private:
  Status StartQuery(std::vector<std::string> argv, bool count_mode, const Args& args,
                    std::vector<std::string> files, Reply done);

  LogQueryOptions options_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<CommandStream>> queries_;  // guarded by mu_
};

}  // namespace rs::logquery
