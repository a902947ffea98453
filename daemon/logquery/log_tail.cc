#include "daemon/logquery/log_tail.h"

#include <fcntl.h>
#include <regex.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace rs::logquery {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct Regex {
  regex_t re;
  bool ok = false;
  ~Regex() {
    if (ok) regfree(&re);
  }
};

}  // namespace

Result<TailSlice> TailLog(const std::string& path, std::optional<uint64_t> from,
                          const std::string& pattern, bool ignore_case, uint64_t max_bytes,
                          uint64_t initial_bytes) {
  Regex re;
  if (!pattern.empty()) {
    int rc = regcomp(&re.re, pattern.c_str(), REG_NOSUB | (ignore_case ? REG_ICASE : 0));
    if (rc != 0) {
      char why[128];
      regerror(rc, &re.re, why, sizeof(why));
      return Status::InvalidArgument("pattern '" + pattern + "': " + why);
    }
    re.ok = true;
  }
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) return Status::IOError("opening " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(f.fd, &st) != 0) return Status::IOError("stat " + path + ": " + std::strerror(errno));
  TailSlice out;
  out.size = static_cast<uint64_t>(st.st_size);
  uint64_t start = 0;
  bool find_line_start = false;
  if (!from) {
    start = out.size > initial_bytes ? out.size - initial_bytes : 0;
    find_line_start = start > 0;
  } else if (*from > out.size) {
    out.restarted = true;
  } else {
    start = *from;
  }
  uint64_t want = std::min<uint64_t>(out.size - start, max_bytes);
  std::string buf(want, '\0');
  uint64_t got = 0;
  while (got < want) {
    ssize_t r = ::pread(f.fd, buf.data() + got, want - got, static_cast<off_t>(start + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError("reading " + path + ": " + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<uint64_t>(r);
  }
  buf.resize(got);
  size_t pos = 0;
  if (find_line_start) {  // the first line may be cut: skip to the next
    size_t nl = buf.find('\n');
    pos = nl == std::string::npos ? buf.size() : nl + 1;
  }
  size_t end = pos;  // after the last whole line
  while (true) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string line = buf.substr(pos, nl - pos);
    if (!re.ok || regexec(&re.re, line.c_str(), 0, nullptr, 0) == 0) {
      out.lines.push_back(std::move(line));
    }
    pos = nl + 1;
    end = pos;
  }
  // A line longer than max_bytes would never complete: take it cut.
  if (end == 0 && buf.size() == max_bytes) end = buf.size();
  out.next = start + end;
  return out;
}

}  // namespace rs::logquery
