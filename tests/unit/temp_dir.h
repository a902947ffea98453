// A fresh directory under /tmp for one test case, removed with everything in it when the case
// ends. Its path is canonical (no symlink on the way), and its mode is `mode` (0700 by default).
#pragma once

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace rs::test_util {

class TempDir {
 public:
  explicit TempDir(mode_t mode = 0700) {
    char tmpl[] = "/tmp/rs_unit_test.XXXXXX";
    char* dir = ::mkdtemp(tmpl);
    REQUIRE(dir != nullptr);
    REQUIRE(::chmod(dir, mode) == 0);
    path_ = std::filesystem::canonical(dir).string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace rs::test_util
