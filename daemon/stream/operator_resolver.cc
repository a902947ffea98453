#include "daemon/stream/operator_resolver.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace rs::stream {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::vector<std::string> SplitPath(const char* value) {
  std::vector<std::string> out;
  if (!value) return out;
  std::string s(value);
  size_t start = 0;
  while (start <= s.size()) {
    size_t colon = s.find(':', start);
    std::string part =
        s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!part.empty()) out.push_back(part);
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

// `path` with every symlink resolved; empty when it does not exist.
std::string Canonical(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(path, ec);
  return ec ? std::string() : p.string();
}

bool Under(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// The executable `path` (found for the operator `name`), canonical, when it lies under one of
// `operator_dirs`; InvalidArgument otherwise.
Result<std::string> Allowed(const std::string& name, const std::string& path,
                            const std::vector<std::string>& operator_dirs) {
  std::string real = Canonical(path);
  if (real.empty()) return Status::NotFound("operator '" + name + "': " + path + " vanished");
  std::vector<std::string> allowed = AllowedOperatorDirs(operator_dirs);
  for (const auto& dir : allowed) {
    if (Under(real, dir)) return real;
  }
  std::string shown = "'" + name + "'" + (real == name ? "" : " (" + real + ")");
  return Status::InvalidArgument(
      "operator " + shown + " is not under operator_dirs (" +
      (allowed.empty() ? std::string("none exists") : Join(allowed)) +
      "): only executables there, built-in names and hydfs:NAME may run; raind's "
      "config key operator_dirs lists the directories allowed");
}

}  // namespace

std::vector<std::string> BuiltinOperatorDirs() {
  std::vector<std::string> dirs = SplitPath(std::getenv("RAINSTORM_OPERATOR_PATH"));
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    std::filesystem::path build = std::filesystem::path(exe).parent_path().parent_path();
    dirs.push_back((build / "operators" / "builtin").string());
    dirs.push_back((build / "operators" / "python").string());
    dirs.push_back((build.parent_path() / "operators" / "python").string());
  }
#ifdef RS_SOURCE_ROOT
  dirs.push_back(std::string(RS_SOURCE_ROOT) + "/operators/python");
#endif
  return dirs;
}

std::vector<std::string> AllowedOperatorDirs(const std::vector<std::string>& operator_dirs) {
  std::vector<std::string> out;
  auto add = [&out](const std::string& dir) {
    std::string real = Canonical(dir);
    if (!real.empty() && std::find(out.begin(), out.end(), real) == out.end()) {
      out.push_back(real);
    }
  };
  for (const auto& entry : operator_dirs) {
    if (entry == kBuiltinOperatorDirs) {
      for (const auto& dir : BuiltinOperatorDirs()) add(dir);
    } else {
      add(entry);
    }
  }
  return out;
}

std::vector<std::string> BuiltinOperatorNames() {
  std::set<std::string> names;
  for (const auto& dir : BuiltinOperatorDirs()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string f = e.path().filename().string();
      if (!IsExecutableFile(e.path().string())) continue;
      if (f.rfind("rainop-", 0) == 0) names.insert(f.substr(7));
      if (f.size() > 3 && f.compare(f.size() - 3, 3, ".py") == 0 && f != "rainstorm_op.py" &&
          f != "test_operators.py") {
        names.insert(f.substr(0, f.size() - 3));
      }
    }
  }
  return {names.begin(), names.end()};
}

Result<std::string> ResolveOperator(const std::string& name,
                                    const std::vector<std::string>& operator_dirs) {
  if (name.empty()) return Status::InvalidArgument("empty operator name");
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return Allowed(name, name, operator_dirs);
    return Status::NotFound("operator '" + name + "' is not an executable file");
  }
  std::vector<std::string> dirs = BuiltinOperatorDirs();
  for (const auto& entry : operator_dirs) {
    if (entry != kBuiltinOperatorDirs) dirs.push_back(entry);
  }
  for (const auto& dir : dirs) {
    for (const std::string& cand : {dir + "/rainop-" + name, dir + "/" + name + ".py"}) {
      if (IsExecutableFile(cand)) return Allowed(name, cand, operator_dirs);
    }
  }
  for (const auto& dir : SplitPath(std::getenv("PATH"))) {
    for (const std::string& cand : {dir + "/rainop-" + name, dir + "/" + name}) {
      if (IsExecutableFile(cand)) return Allowed(name, cand, operator_dirs);
    }
  }
  std::string known;
  for (const auto& n : BuiltinOperatorNames()) known += (known.empty() ? "" : ", ") + n;
  return Status::NotFound("unknown operator '" + name + "': not a built-in (" + known +
                          "), not in operator_dirs or $PATH; give a path to an executable or "
                          "hydfs:NAME");
}

}  // namespace rs::stream
