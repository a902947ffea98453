// LogShipper: ships this node's log into HyDFS, one file per member id (logs/<node id>), by
// batched appends every `interval`, so the history of a node survives its death and
// `rainctl grep --hydfs` can search the logs of dead nodes. Whole lines only; rotations of the
// log (raind.log -> raind.1.log) are followed by inode. Shipping appends are logged at debug
// level only, so shipping does not feed itself. HyDFS retries a failed append itself; one that
// still fails is sent again at the next interval with exactly the same bytes (not a longer batch),
// so HyDFS resumes it under its append id (HydfsService::Append) and lines are shipped once,
// never twice; nothing is skipped.
// Thread-safety: Start() and Stop() from one thread; the shipper runs its own thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/hydfs/hydfs_service.h"
#include "daemon/membership/membership_service.h"
#include "shared/clock.h"

namespace rs::logquery {

struct LogShipperOptions {
  std::string log_path;       // the live log (raind.log)
  uint64_t start_offset = 0;  // ship from here (this process's lines)
  Clock::duration interval = std::chrono::seconds(2);
  size_t max_batch = 8 << 20;  // bytes per append
};

class LogShipper {
 public:
  LogShipper(LogShipperOptions options, hydfs::HydfsService* hydfs,
             membership::MembershipService* membership)
      : options_(std::move(options)), hydfs_(hydfs), membership_(membership) {}
  ~LogShipper() { Stop(); }

  void Start();
  // Ships once more (bounded by a few seconds), then stops the thread.
  void Stop();

 private:
  void Run();
  void ShipOnce();
  Status Call(bool create, const std::string& name, std::string data);

  LogShipperOptions options_;
  hydfs::HydfsService* hydfs_;
  membership::MembershipService* membership_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_

  // Shipper thread only.
  std::string file_;       // the HyDFS file of the current member id ("" before the first)
  ino_t inode_ = 0;        // the log file being read
  uint64_t offset_ = 0;    // bytes of it already shipped
  std::string unshipped_;  // a batch whose append failed: the next one, byte for byte
};

}  // namespace rs::logquery
