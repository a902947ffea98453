// `make bench-partition`: randomized partitions on 5 hosts in network namespaces, with the same
// harness and checker as the partition tests (tests/harness/partition.h). Each trial starts a
// fresh cluster, runs one append client per host, cuts a random minority of hosts off (a split:
// they still reach each other) for a random 2-60 s, heals, and measures: acknowledged writes,
// lost writes (must be 0), duplicated writes, members falsely expelled, seconds from the heal to
// one membership and to full replication (every file on 3 replicas holding every acknowledged
// record). Prints the machine's load average and disk write rate beside the run. Needs root,
// iproute2 and nftables.
//   partition_bench [--trials 20] [--seed S] [--min-cut 2] [--max-cut 60]
#define CATCH_CONFIG_RUNNER  // the harness links Catch2's listener; this holds its definitions
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/partition.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

constexpr size_t kHosts = 5;
constexpr auto kBeforeFault = 3s;
constexpr double kConvergeTarget = 5.0;
constexpr double kReplicateTarget = 10.0;

struct Flags {
  int trials = 20;
  uint64_t seed = 0;
  bool seeded = false;
  int min_cut_s = 2;
  int max_cut_s = 60;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if ((a == "--trials" || a == "--seed" || a == "--min-cut" || a == "--max-cut") &&
        (v = value()) == nullptr) {
      std::cerr << "partition_bench: " << a << " needs a value\n";
      return false;
    }
    if (a == "--trials") {
      f->trials = std::atoi(v);
    } else if (a == "--seed") {
      f->seed = std::strtoull(v, nullptr, 10);
      f->seeded = true;
    } else if (a == "--min-cut") {
      f->min_cut_s = std::atoi(v);
    } else if (a == "--max-cut") {
      f->max_cut_s = std::atoi(v);
    } else {
      std::cerr << "usage: partition_bench [--trials N] [--seed S] [--min-cut S] [--max-cut S]\n";
      return false;
    }
  }
  if (f->trials < 1 || f->min_cut_s < 1 || f->max_cut_s < f->min_cut_s) {
    std::cerr << "partition_bench: need trials >= 1 and 1 <= min-cut <= max-cut\n";
    return false;
  }
  return true;
}

std::string LoadAverage() {
  std::string s = ReadFile("/proc/loadavg");
  size_t cut = 0;
  for (int spaces = 0; cut < s.size() && spaces < 3; ++cut) spaces += s[cut] == ' ';
  return s.substr(0, cut > 0 ? cut - 1 : 0);
}

// MB/s of writing 64 MiB to `dir` and fsyncing it (what a replica's fsync competes with).
double DiskWriteRate(const std::string& dir) {
  std::string path = dir + "/rs-bench-disk-" + std::to_string(getpid());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  std::vector<char> block(1 << 20, 'x');
  auto start = std::chrono::steady_clock::now();
  bool ok = true;
  for (int i = 0; i < 64 && ok; ++i) {
    ok = write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size());
  }
  ok = ok && fsync(fd) == 0;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  close(fd);
  unlink(path.c_str());
  return ok && s > 0 ? 64.0 / s : -1;
}

void PrintMachine(const char* when) {
  std::printf("machine %s: load average %s, disk write %.0f MB/s (64 MiB + fsync in /tmp)\n", when,
              LoadAverage().c_str(), DiskWriteRate("/tmp"));
  std::fflush(stdout);
}

std::string Seconds(double s) {
  if (s < 0) return "   -  ";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%6.1f", s);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Run(const Flags& flags) {
  Status supported = Network::Supported();
  if (!supported.ok()) {
    std::cerr << "partition_bench: needs network namespaces: " << supported.ToString() << "\n";
    return 2;
  }
  uint64_t seed = flags.seeded ? flags.seed : std::random_device{}();
  std::mt19937_64 rng(seed);
  std::printf(
      "partition bench: %d trials on %zu hosts, cut %d-%d s, seed %llu "
      "(rerun: --seed %llu)\n",
      flags.trials, kHosts, flags.min_cut_s, flags.max_cut_s, static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(seed));
  PrintMachine("before");
  std::printf("%-5s %-12s %5s %6s %5s %5s %8s %9s %9s %s\n", "trial", "cut hosts", "secs", "acked",
              "lost", "dups", "expelled", "converge", "replicate", "violations");

  size_t acked = 0, lost = 0, dups = 0, expelled = 0, clean_trials = 0, zero_lost = 0;
  int converge_ok = 0, replicate_ok = 0;
  std::vector<double> converge, replicate;
  for (int t = 1; t <= flags.trials; ++t) {
    // A minority (1 or 2 of 5), any host (the introducer too), for a random duration.
    std::vector<size_t> hosts = {0, 1, 2, 3, 4};
    std::shuffle(hosts.begin(), hosts.end(), rng);
    size_t k = 1 + rng() % ((kHosts - 1) / 2);
    std::set<size_t> cut(hosts.begin(), hosts.begin() + k), rest(hosts.begin() + k, hosts.end());
    int secs = flags.min_cut_s + static_cast<int>(rng() % (flags.max_cut_s - flags.min_cut_s + 1));
    std::string cut_text;
    for (size_t h : cut) cut_text += (cut_text.empty() ? "" : ",") + std::to_string(h);

    PartitionOptions options;
    options.hosts = kHosts;
    // Six times the targets: enough to measure a slow heal, short enough for 20 trials.
    options.converge_deadline = 30s;
    options.replicate_deadline = 60s;
    auto h = PartitionHarness::Create(options);
    if (!h.ok()) {
      std::printf("%-5d cannot start the cluster: %s\n", t, h.status().ToString().c_str());
      continue;
    }
    (*h)->StartAppends();
    HoldFor(kBeforeFault);
    Status st = (*h)->net().Split({cut, rest});
    HoldFor(std::chrono::seconds(secs));
    Status healed_st = (*h)->net().Heal();
    TimePoint healed = Clock::now();
    if (!st.ok() || !healed_st.ok()) {
      std::printf("%-5d fault failed: %s %s\n", t, st.ToString().c_str(),
                  healed_st.ToString().c_str());
      continue;
    }
    PartitionReport r = (*h)->AfterHeal(
        cut, healed, "hosts {" + cut_text + "} cut off for " + std::to_string(secs) + " s");
    std::printf("%-5d %-12s %5d %6zu %5zu %5zu %8zu %9s %9s %zu\n", t,
                ("{" + cut_text + "}").c_str(), secs, r.acked, r.lost, r.duplicated,
                r.false_expelled, Seconds(r.converge_s).c_str(), Seconds(r.replicate_s).c_str(),
                r.violations.size());
    for (size_t i = 0; i < r.violations.size() && i < 6; ++i) {
      std::printf("      ! %s\n", r.violations[i].substr(0, 300).c_str());
    }
    bool slow = r.converge_s < 0 || r.converge_s > kConvergeTarget || r.replicate_s < 0 ||
                r.replicate_s > kReplicateTarget;
    // The whole report beside the nodes' logs; the dir is kept for a trial that misses a target
    // or breaks a promise (and for every trial with RS_CLUSTER_KEEP_DIR=always).
    std::string report = (*h)->cluster().dir() + "/report.txt";
    if (FILE* out = std::fopen(report.c_str(), "w"); out != nullptr) {
      std::fputs(r.ToString().c_str(), out);
      std::fclose(out);
    }
    if (!r.ok() || slow) {
      (*h)->cluster().KeepDir();
      std::printf("      full report and logs: %s\n", report.c_str());
    }
    std::fflush(stdout);
    acked += r.acked;
    lost += r.lost;
    dups += r.duplicated;
    expelled += r.false_expelled;
    clean_trials += r.ok();
    zero_lost += r.lost == 0;
    if (r.converge_s >= 0) {
      converge.push_back(r.converge_s);
      converge_ok += r.converge_s <= kConvergeTarget;
    }
    if (r.replicate_s >= 0) {
      replicate.push_back(r.replicate_s);
      replicate_ok += r.replicate_s <= kReplicateTarget;
    }
  }
  std::printf(
      "total: %zu acknowledged, %zu lost, %zu duplicated, %zu falsely expelled; "
      "0 lost in %zu/%d trials; clean (no violation) %zu/%d\n",
      acked, lost, dups, expelled, zero_lost, flags.trials, clean_trials, flags.trials);
  std::printf(
      "heal -> one membership: median %s s, max %s s, within %.0f s in %d/%d "
      "(not reached in %zu)\n",
      Seconds(Median(converge)).c_str(),
      Seconds(converge.empty() ? -1 : *std::max_element(converge.begin(), converge.end())).c_str(),
      kConvergeTarget, converge_ok, flags.trials, flags.trials - converge.size());
  std::printf(
      "heal -> full replication: median %s s, max %s s, within %.0f s in %d/%d "
      "(not reached in %zu)\n",
      Seconds(Median(replicate)).c_str(),
      Seconds(replicate.empty() ? -1 : *std::max_element(replicate.begin(), replicate.end()))
          .c_str(),
      kReplicateTarget, replicate_ok, flags.trials, flags.trials - replicate.size());
  PrintMachine("after");
  return lost == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rs::harness

int main(int argc, char** argv) {
  rs::harness::Flags flags;
  if (!rs::harness::ParseFlags(argc, argv, &flags)) return 2;
  return rs::harness::Run(flags);
}
