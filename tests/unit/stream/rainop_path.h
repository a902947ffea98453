// Where the tests find the built-in operator executables (rainop-NAME): $RAINOP_DIR, else
// operators/builtin of the build tree this test binary runs from.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace rs::stream {

inline std::string RainopPath(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path dir;
  if (const char* env = std::getenv("RAINOP_DIR")) {
    dir = env;
  } else {
    dir = fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
          "operators" / "builtin";
  }
  fs::path p = dir / ("rainop-" + name);
  INFO("looking for " << p.string());
  REQUIRE(fs::exists(p));
  return p.string();
}

}  // namespace rs::stream
