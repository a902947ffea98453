// A disk that really fills up (ENOSPC from the kernel, not the quota knob): 3 nodes whose data
// dirs share one small tmpfs. A write that does not fit fails with a clear "no space" error and
// changes nothing (no file, no bytes held); writes that fit still work afterwards. Mounting needs
// root with CAP_SYS_ADMIN; where that is missing the scenario says so and checks nothing.
#include <sys/mount.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTmpfsSize = "size=24m";

// Detaches the tmpfs when the test ends, even while raind still holds files on it (the cluster
// fixture, destroyed afterwards, kills the processes and removes the directory).
struct TmpfsGuard {
  std::string dir;
  bool mounted = false;
  ~TmpfsGuard() {
    if (mounted) umount2(dir.c_str(), MNT_DETACH);
  }
};

std::string WriteRandomFile(const std::string& path, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(rng() & 0xFF);
  std::ofstream(path, std::ios::binary) << data;
  return data;
}

bool SaysNoSpace(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text.find("no space") != std::string::npos;
}

uint64_t StoreUsed(RaindProcess& node) {
  auto stats = CtlJson(node.ControlAddress(), {"hydfs-stats"});
  return stats.ok() ? (*stats)["store_used_bytes"].Uint() : UINT64_MAX;
}

TEST_CASE("a write that does not fit on a full disk fails with a clear error and changes nothing",
          "[hydfs-disk-full]") {
  Cluster c(3, {"--set", "log_ship_interval_ms=0"});  // the test counts every stored byte
  TmpfsGuard guard{c.dir()};
  if (mount("tmpfs", c.dir().c_str(), "tmpfs", 0, kTmpfsSize) != 0) {
    WARN("cannot mount a tmpfs (" << std::strerror(errno)
                                  << "): the real-ENOSPC scenario needs root with "
                                     "CAP_SYS_ADMIN; the quota scenario covers the logic");
    return;
  }
  guard.mounted = true;
  REQUIRE(c.Start().ok());
  std::string node = c.node(0).ControlAddress();
  std::string local_dir = "/tmp";  // the inputs live off the small disk

  // 30 MB cannot fit three times (or even once) on 24 MB: every replica refuses it.
  std::string big = local_dir + "/rs-disk-full-big-" + std::to_string(getpid());
  WriteRandomFile(big, 30u << 20, 1);
  CommandResult r = RunCtl({"--node", node, "create", big, "big"});
  std::remove(big.c_str());
  INFO(r.Describe());
  REQUIRE(r.code() == 1);
  REQUIRE(SaysNoSpace(r.err));
  REQUIRE(RunCtl({"--node", node, "ls", "big"}).code() == 1);
  for (size_t i = 0; i < c.size(); ++i) REQUIRE(StoreUsed(c.node(i)) == 0);

  // Fill the disk with files that fit until one does not: the failing one leaves no trace.
  std::string part = local_dir + "/rs-disk-full-part-" + std::to_string(getpid());
  std::string content = WriteRandomFile(part, 5u << 20, 2);
  int created = 0;
  for (int i = 0; i < 8; ++i) {
    std::vector<uint64_t> before;
    for (size_t k = 0; k < c.size(); ++k) before.push_back(StoreUsed(c.node(k)));
    std::string name = "part" + std::to_string(i);
    CommandResult w = RunCtl({"--node", node, "create", part, name});
    if (w.code() == 0) {
      ++created;
      continue;
    }
    INFO(w.Describe());
    REQUIRE(w.code() == 1);
    REQUIRE(SaysNoSpace(w.err));
    REQUIRE(RunCtl({"--node", node, "ls", name}).code() == 1);
    for (size_t k = 0; k < c.size(); ++k) REQUIRE(StoreUsed(c.node(k)) == before[k]);
    break;
  }
  std::remove(part.c_str());
  REQUIRE(created >= 1);
  REQUIRE(created < 8);  // the disk did fill up
  // What was written before the disk filled is intact.
  CommandResult get = RunCtl({"--node", node, "cat", "part0"}, 30s);
  REQUIRE(get.code() == 0);
  REQUIRE(get.out == content);
}

}  // namespace
}  // namespace rs::harness
