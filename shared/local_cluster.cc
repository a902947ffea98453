#include "shared/local_cluster.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace rs {

std::string DefaultClusterDir() {
  const char* env = std::getenv("RAIN_CLUSTER_DIR");
  if (env != nullptr && *env != '\0') return env;
  return "/tmp/rainstorm-" + std::to_string(getuid());
}

Result<std::map<std::string, std::string>> ReadReadyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no ready file at " + path);
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (!out.count("port")) return Status::Corruption("ready file " + path + " has no port");
  return out;
}

}  // namespace rs
