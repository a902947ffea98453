// gen_events: the input of `make bench-stream` (scripts/bench_stream.py). Writes N lines
// `ts,user,action,value` without a header, deterministic for a given seed:
//   ts      integer milliseconds, starting at 1767225600000 (2026-01-01 UTC), each line 1 or 2
//           ms after the previous one (strictly increasing)
//   user    u0 .. u<users-1>, uniform
//   action  click 25 %, view 45 %, scroll 22 %, purchase 8 %
//   value   an integer in 0..999
// 10 M lines (about 300 MB) take about a second: a splitmix64 generator and one 1 MiB buffer.
// Usage: gen_events [--lines N] [--users U] [--seed S] [--out FILE]   (default: stdout)
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

struct Options {
  uint64_t lines = 10'000'000;
  uint64_t users = 100'000;
  uint64_t seed = 1;
  std::string out;  // empty: stdout
};

constexpr char kUsage[] =
    "usage: gen_events [--lines N] [--users U] [--seed S] [--out FILE]\n"
    "Writes N (default 10000000) lines ts,user,action,value (no header) for the stream\n"
    "benchmark; the same seed (default 1) gives the same bytes. Default output: stdout.\n";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gen_events: %s\n", what.c_str());
  std::exit(2);
}

uint64_t ParseCount(const char* text, const char* flag) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    Die(std::string(flag) + " wants a non-negative integer, got '" + text + "'");
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      Die(std::string("unknown or incomplete option '") + argv[i] + "'\n" + kUsage);
    }
    const char* v = argv[++i];
    if (a == "--lines") {
      o.lines = ParseCount(v, "--lines");
    } else if (a == "--users") {
      o.users = ParseCount(v, "--users");
      if (o.users == 0) Die("--users must be at least 1");
    } else if (a == "--seed") {
      o.seed = ParseCount(v, "--seed");
    } else if (a == "--out") {
      o.out = v;
    } else {
      Die(std::string("unknown option '") + argv[i - 1] + "'\n" + kUsage);
    }
  }
  return o;
}

// splitmix64: tiny, fast, and the same on every platform (unlike std::uniform_int_distribution).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n): the high 64 bits of a 128-bit product (Lemire), bias < n / 2^64.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t state_;
};

char* PutUint(char* p, uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t w = ::write(fd, data, size);
    if (w < 0) {
      if (errno == EINTR) continue;
      Die(std::string("write: ") + std::strerror(errno));
    }
    data += w;
    size -= static_cast<size_t>(w);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  int fd = 1;
  if (!o.out.empty()) {
    fd = ::open(o.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) Die("cannot write " + o.out + ": " + std::strerror(errno));
  }
  // Actions by cumulative percent: click 25, view 45, scroll 22, purchase 8.
  struct Action {
    std::string_view name;
    uint64_t below;
  };
  constexpr Action kActions[] = {{"click", 25}, {"view", 70}, {"scroll", 92}, {"purchase", 100}};

  constexpr size_t kBuffer = 1 << 20;
  constexpr size_t kMaxLine = 20 + 2 + 20 + 1 + 8 + 1 + 3 + 1;
  std::string buffer(kBuffer + kMaxLine, '\0');
  char* const begin = buffer.data();
  char* p = begin;
  Rng rng(o.seed);
  uint64_t ts = 1'767'225'600'000ull;
  for (uint64_t i = 0; i < o.lines; ++i) {
    ts += 1 + rng.Below(2);
    uint64_t user = rng.Below(o.users);
    uint64_t pick = rng.Below(100);
    uint64_t value = rng.Below(1000);
    std::string_view action;
    for (const Action& a : kActions) {
      if (pick < a.below) {
        action = a.name;
        break;
      }
    }
    p = PutUint(p, ts);
    *p++ = ',';
    *p++ = 'u';
    p = PutUint(p, user);
    *p++ = ',';
    std::memcpy(p, action.data(), action.size());
    p += action.size();
    *p++ = ',';
    p = PutUint(p, value);
    *p++ = '\n';
    if (static_cast<size_t>(p - begin) >= kBuffer) {
      WriteAll(fd, begin, static_cast<size_t>(p - begin));
      p = begin;
    }
  }
  WriteAll(fd, begin, static_cast<size_t>(p - begin));
  if (fd != 1 && ::close(fd) != 0) Die(o.out + ": " + std::strerror(errno));
  return 0;
}
