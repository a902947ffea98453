// File transfers between rainctl and a node over the data plane (shared/transport/
// data_stream.h): rainctl binds a PULL socket on the interface that reaches the node, sends the
// command with its endpoint and a fresh stream id, then streams chunks (upload) or receives them
// (download) with the node's window, CRC-checking every chunk. Blocking; one transfer per thread.
#pragma once

#include <string>

#include "ctl/client.h"

namespace rs::ctl {

// Exit code for a local file that cannot be read or written (documented in ctl/README.md).
inline constexpr int kExitLocalFile = 4;

struct TransferOptions {
  bool progress = false;  // draw a progress line on stderr (only when it is a terminal)
  std::string label;      // shown in the progress line
};

// Sends LOCAL ("-" = stdin, spooled to a temporary file first) as `cmd` ("hydfs.create" or
// "hydfs.append") of HyDFS file `name`. The Outcome's reply holds the node's result. A local
// read error sets usage = false, remote = false and status IOError with local = true.
struct TransferOutcome {
  Outcome outcome;
  bool local_error = false;  // the local file could not be read or written
};
TransferOutcome Upload(const Context& ctx, const std::string& cmd, const std::string& name,
                       const std::string& local, const TransferOptions& options);
// Receives HyDFS file `name` into LOCAL ("-" = stdout). With `replica_only`, the node's own copy
// (getfromreplica). LOCAL is written to a temporary file beside it and renamed at the end, so a
// failed get never leaves a partial file.
TransferOutcome Download(const Context& ctx, const std::string& name, const std::string& local,
                         bool replica_only, const TransferOptions& options);

}  // namespace rs::ctl
