// hydfs_get_latency: latency of HyDFS gets of one small file, cold and warm, measured in one
// process (a rainctl process costs milliseconds to start). Driven by scripts/bench_hydfs.py.
//   cold  each get reads a file the reader node has never read: --cold fresh files are created
//         through --writer (another node), then each is got once through --node.
//   warm  one file, created through --writer and got once through --node to fill its cache,
//         then got --warm times more: every get is served from the reader node's cache.
// Each get is rs::ctl::Download (ctl/transfer.h, rainctl's own client) to stdout, which is sent
// to /dev/null. Client time: the Download call (control request, data-plane sockets, chunks).
// Node time: the reply's elapsed_us. Prints one JSON object on stdout; progress on stderr.
// Usage: hydfs_get_latency --node HOST:PORT --writer HOST:PORT --tmp DIR [--size BYTES]
//                          [--cold N] [--warm N] [--prefix NAME]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "ctl/output.h"
#include "ctl/security.h"
#include "ctl/transfer.h"
#include "shared/util/malloc_tuning.h"

namespace rs::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::string node, writer, tmp;
  std::string prefix = "bench/latency";
  uint64_t size = 1u << 20;
  int cold = 20;
  int warm = 200;
  bool insecure = false;  // --insecure: a plain-text cluster
  std::string key;        // --key FILE: the client key (else $RAIN_KEY, rainctl's defaults)
};

struct Sample {
  double client_us = 0;
  double node_us = 0;
  bool cached = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "hydfs_get_latency: %s\n", what.c_str());
  std::exit(1);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--insecure") {
      o.insecure = true;
      continue;
    }
    if (a == "--key" && i + 1 < argc) {
      o.key = argv[++i];
      continue;
    }
    if (i + 1 >= argc) Die("missing value after " + a);
    std::string v = argv[++i];
    if (a == "--node") {
      o.node = v;
    } else if (a == "--writer") {
      o.writer = v;
    } else if (a == "--tmp") {
      o.tmp = v;
    } else if (a == "--prefix") {
      o.prefix = v;
    } else if (a == "--size") {
      o.size = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--cold") {
      o.cold = std::atoi(v.c_str());
    } else if (a == "--warm") {
      o.warm = std::atoi(v.c_str());
    } else {
      Die("unknown flag " + a);
    }
  }
  if (o.node.empty() || o.writer.empty() || o.tmp.empty()) {
    Die("usage: --node HOST:PORT --writer HOST:PORT --tmp DIR [--size B] [--cold N] [--warm N] "
        "[--key FILE | --insecure]");
  }
  if (o.size == 0 || o.cold < 1 || o.warm < 1) Die("--size, --cold and --warm must be positive");
  return o;
}

std::string WriteSource(const Options& o) {
  std::string path = o.tmp + "/latency-source";
  std::string data(o.size, '\0');
  std::mt19937_64 rng(7);
  for (auto& c : data) c = static_cast<char>(rng());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(data.data(), 1, data.size(), f) != data.size() ||
      std::fclose(f) != 0) {
    Die("cannot write " + path);
  }
  return path;
}

void Create(const Options& o, const std::string& name, const std::string& source) {
  ctl::Context ctx;
  ctx.node = o.writer;
  ctx.timeout_ms = 10000;
  auto t = ctl::Upload(ctx, "hydfs.create", name, source, {});
  if (!t.outcome.ok()) Die("create " + name + ": " + t.outcome.status.ToString());
}

Sample Get(const Options& o, const std::string& name) {
  ctl::Context ctx;
  ctx.node = o.node;
  ctx.timeout_ms = 10000;
  auto start = SteadyClock::now();
  auto t = ctl::Download(ctx, name, "-", false, {});
  Sample s;
  s.client_us = std::chrono::duration<double, std::micro>(SteadyClock::now() - start).count();
  if (!t.outcome.ok()) Die("get " + name + ": " + t.outcome.status.ToString());
  s.node_us = static_cast<double>(ctl::Uint(t.outcome.reply.payload, "elapsed_us"));
  s.cached = ctl::Bool(t.outcome.reply.payload, "cached");
  return s;
}

double Percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(xs.size() - 1) + 0.5);
  return xs[std::min(i, xs.size() - 1)];
}

// {"n":..,"cached":..,"client_us":{"min","p50","p90","max"},"node_us":{...}}
void PrintSet(FILE* out, const char* key, const std::vector<Sample>& samples) {
  std::vector<double> client, node;
  int cached = 0;
  for (const auto& s : samples) {
    client.push_back(s.client_us);
    node.push_back(s.node_us);
    cached += s.cached ? 1 : 0;
  }
  auto stats = [&](const std::vector<double>& xs) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "{\"min\":%.0f,\"p50\":%.0f,\"p90\":%.0f,\"max\":%.0f}",
                  Percentile(xs, 0), Percentile(xs, 0.5), Percentile(xs, 0.9), Percentile(xs, 1));
    return std::string(buf);
  };
  std::fprintf(out, "\"%s\":{\"n\":%zu,\"cached\":%d,\"client_us\":%s,\"node_us\":%s}", key,
               samples.size(), cached, stats(client).c_str(), stats(node).c_str());
}

}  // namespace
}  // namespace rs::bench

int main(int argc, char** argv) {
  rs::TuneMallocForStreams();  // as rainctl
  using namespace rs::bench;
  Options o = ParseArgs(argc, argv);
  // The cluster's client key: --key, else $RAIN_KEY, else rainctl's defaults.
  if (rs::Status st = rs::ctl::SetUpClientSecurity(o.key, o.insecure); !st.ok())
    Die(st.ToString().c_str());
  // Download writes the file to stdout: keep the real stdout for the result, send the data to
  // /dev/null.
  int result_fd = ::dup(STDOUT_FILENO);
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (result_fd < 0 || null_fd < 0 || ::dup2(null_fd, STDOUT_FILENO) < 0) Die("cannot redirect");
  ::close(null_fd);
  FILE* out = ::fdopen(result_fd, "w");
  if (out == nullptr) Die("fdopen");

  std::string source = WriteSource(o);
  std::string run = std::to_string(::getpid());
  std::vector<Sample> cold, warm;
  std::fprintf(stderr, "hydfs_get_latency: %d cold gets (a fresh file each)\n", o.cold);
  for (int i = 0; i < o.cold; ++i) {
    std::string name = o.prefix + "-" + run + "-cold-" + std::to_string(i);
    Create(o, name, source);
    cold.push_back(Get(o, name));
  }
  std::string name = o.prefix + "-" + run + "-warm";
  Create(o, name, source);
  Get(o, name);  // fills the reader node's cache
  std::fprintf(stderr, "hydfs_get_latency: %d warm gets\n", o.warm);
  for (int i = 0; i < o.warm; ++i) warm.push_back(Get(o, name));

  std::fprintf(out, "{\"size\":%llu,", static_cast<unsigned long long>(o.size));
  PrintSet(out, "cold", cold);
  std::fprintf(out, ",");
  PrintSet(out, "warm", warm);
  std::fprintf(out, "}\n");
  std::fclose(out);
  ::unlink(source.c_str());
  return 0;
}
