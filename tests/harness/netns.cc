#include "tests/harness/netns.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "tests/harness/ctl.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {
namespace {

constexpr auto kToolTimeout = std::chrono::seconds(20);
constexpr const char* kTable = "rsfault";  // the nftables table in every host namespace

std::optional<std::string> FindTool(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::istringstream in(path);
    for (std::string d; std::getline(in, d, ':');) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  dirs.insert(dirs.end(), {"/usr/sbin", "/sbin", "/usr/bin", "/bin"});
  for (const auto& d : dirs) {
    std::string p = d + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

std::string Words(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

Result<CommandResult> RunToolOutput(std::vector<std::string> argv) {
  auto tool = FindTool(argv.at(0));
  if (!tool) return Status::NotFound(argv[0] + " is not installed (PATH, /usr/sbin, /sbin)");
  argv[0] = *tool;
  CommandResult r = RunCommand(argv, kToolTimeout);
  if (r.code() != 0) {
    std::string err = r.err.empty() ? r.out : r.err;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return Status::Internal(Words(argv) + ": " + (r.timed_out ? "timed out, " : "") +
                            r.status.ToString() + ": " + err);
  }
  return r;
}

// Runs `nft -f SCRIPT` inside `ns` (the script from a temp file: one atomic transaction).
Status NftScript(const std::string& ns, const std::string& script) {
  char path[] = "/tmp/rsnt-nft-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return Status::IOError("mkstemp for an nft script failed");
  bool written = write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  close(fd);
  Status st = written ? RunTool({"ip", "netns", "exec", ns, FindTool("nft").value_or("nft"), "-f",
                                 path})
                      : Status::IOError("cannot write an nft script");
  unlink(path);
  if (!st.ok()) return Status::Internal(st.message() + "\nscript:\n" + script);
  return st;
}

std::string TableScript() {
  return std::string("table inet ") + kTable +
         " {\n"
         "  chain input { type filter hook input priority 0; policy accept; }\n"
         "  chain output { type filter hook output priority 0; policy accept; }\n"
         "}\n";
}

// Deletes `rsnt-<pid>-...` namespaces whose pid no longer runs.
void SweepStale() {
  auto list = RunToolOutput({"ip", "netns", "list"});
  if (!list.ok()) return;
  std::istringstream in(list->out);
  for (std::string line; std::getline(in, line);) {
    std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kNetnsPrefix, 0) != 0) continue;
    std::string rest = name.substr(std::string(kNetnsPrefix).size());
    char* end = nullptr;
    long pid = std::strtol(rest.c_str(), &end, 10);
    if (end == rest.c_str() || pid <= 0) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    (void)RunTool({"ip", "netns", "del", name});
  }
}

}  // namespace

Status RunTool(const std::vector<std::string>& argv) { return RunToolOutput(argv).status(); }

Status Network::Supported() {
  static const Status probed = [] {
    if (geteuid() != 0) return Status::FailedPrecondition("not root: cannot make network namespaces");
    for (const char* tool : {"ip", "nft"}) {
      if (!FindTool(tool)) {
        return Status::FailedPrecondition(std::string(tool) +
                                          " is not installed (Debian: iproute2, nftables)");
      }
    }
    std::string ns = std::string(kNetnsPrefix) + std::to_string(getpid()) + "-probe";
    Status st = RunTool({"ip", "netns", "add", ns});
    if (!st.ok()) return Status::FailedPrecondition("cannot make a namespace: " + st.message());
    st = RunTool({"ip", "-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name",
                  "probe1"});
    if (st.ok()) st = NftScript(ns, TableScript());
    (void)RunTool({"ip", "netns", "del", ns});
    if (!st.ok()) return Status::FailedPrecondition("namespace probe failed: " + st.message());
    return Status::Ok();
  }();
  return probed;
}

Result<std::unique_ptr<Network>> Network::Create(size_t hosts) {
  RS_RETURN_IF_ERROR(Supported());
  if (hosts == 0 || hosts > 200) return Status::InvalidArgument("hosts must be 1..200");
  SweepStale();
  std::unique_ptr<Network> net(new Network());
  Status st = net->Build(hosts);
  if (!st.ok()) return st;  // the destructor removes what was made
  return net;
}

Status Network::Build(size_t hosts) {
  static std::atomic<int> counter{0};
  prefix_ = std::string(kNetnsPrefix) + std::to_string(getpid()) + "-" +
            std::to_string(counter++) + "-";
  // A /24 in 10.16.0.0-10.239.255.0 picked per run (each run has its own switch, so two runs
  // never share a wire; a fresh subnet only keeps addresses in logs unambiguous).
  uint64_t h = std::hash<std::string>{}(
      prefix_ + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::string subnet =
      "10." + std::to_string(16 + h % 224) + "." + std::to_string((h >> 16) % 256) + ".";

  switch_ns_ = prefix_ + "sw";
  RS_RETURN_IF_ERROR(RunTool({"ip", "netns", "add", switch_ns_}));
  made_.push_back(switch_ns_);
  RS_RETURN_IF_ERROR(RunTool({"ip", "-n", switch_ns_, "link", "set", "lo", "up"}));
  RS_RETURN_IF_ERROR(RunTool({"ip", "-n", switch_ns_, "link", "add", "br0", "type", "bridge"}));
  RS_RETURN_IF_ERROR(RunTool({"ip", "-n", switch_ns_, "link", "set", "br0", "up"}));
  for (size_t i = 0; i < hosts; ++i) {
    Host host{prefix_ + "h" + std::to_string(i), subnet + std::to_string(i + 1)};
    std::string port = "p" + std::to_string(i);
    RS_RETURN_IF_ERROR(RunTool({"ip", "netns", "add", host.ns}));
    made_.push_back(host.ns);
    RS_RETURN_IF_ERROR(RunTool({"ip", "-n", host.ns, "link", "set", "lo", "up"}));
    RS_RETURN_IF_ERROR(RunTool({"ip", "-n", switch_ns_, "link", "add", port, "type", "veth",
                                "peer", "name", "eth0", "netns", host.ns}));
    RS_RETURN_IF_ERROR(
        RunTool({"ip", "-n", switch_ns_, "link", "set", port, "master", "br0", "up"}));
    RS_RETURN_IF_ERROR(
        RunTool({"ip", "-n", host.ns, "addr", "add", host.address + "/24", "dev", "eth0"}));
    RS_RETURN_IF_ERROR(RunTool({"ip", "-n", host.ns, "link", "set", "eth0", "up"}));
    RS_RETURN_IF_ERROR(NftScript(host.ns, TableScript()));
    hosts_.push_back(host);
    dropped_.push_back(0);
    rules_.push_back("");
    RouteCtlHost(host.address, Exec(i));
  }
  return Status::Ok();
}

Network::~Network() {
  for (const Host& h : hosts_) UnrouteCtlHost(h.address);
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    Status st = RunTool({"ip", "netns", "del", *it});
    if (!st.ok()) std::fprintf(stderr, "netns: cannot delete %s: %s\n", it->c_str(),
                               st.ToString().c_str());
  }
}

int Network::HostOf(const std::string& address) const {
  std::string host = address.substr(0, address.find('#'));
  if (host.find(':') != std::string::npos) host = host.substr(0, host.rfind(':'));
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].address == host) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> Network::Exec(size_t host) const {
  return {FindTool("ip").value_or("/usr/sbin/ip"), "netns", "exec", Namespace(host)};
}

Cluster::Placement Network::Placement() const {
  return [this](size_t index, RaindOptions* options) {
    size_t host = index % hosts_.size();
    options->host = Address(host);
    options->exec_prefix = Exec(host);
  };
}

std::string Network::AddressSet(const std::set<size_t>& hosts) const {
  std::string s = "{ ";
  bool first = true;
  for (size_t h : hosts) {
    s += (first ? "" : ", ") + Address(h);
    first = false;
  }
  return s + " }";
}

Status Network::SetRules(size_t host, const std::vector<std::string>& input,
                         const std::vector<std::string>& output) {
  std::string t = std::string(" inet ") + kTable + " ";
  std::string rules;
  for (const auto& r : input) rules += "add rule" + t + "input " + r + "\n";
  for (const auto& r : output) rules += "add rule" + t + "output " + r + "\n";
  // Unchanged hosts are left alone: a flapping link touches one host per step.
  if (rules == rules_.at(host)) return Status::Ok();
  if (!rules_[host].empty()) dropped_[host] += CurrentDrops(host);
  RS_RETURN_IF_ERROR(NftScript(Namespace(host), "flush chain" + t + "input\nflush chain" + t +
                                                    "output\n" + rules));
  rules_[host] = rules;
  return Status::Ok();
}

Status Network::Isolate(const std::set<size_t>& cut) {
  std::set<size_t> rest;
  for (size_t i = 0; i < size(); ++i) {
    if (!cut.count(i)) rest.insert(i);
  }
  for (size_t h : cut) {
    if (h >= size()) return Status::InvalidArgument("no host " + std::to_string(h));
  }
  for (size_t i = 0; i < size(); ++i) {
    if (cut.count(i) && !rest.empty()) {
      RS_RETURN_IF_ERROR(SetRules(i, {"ip saddr " + AddressSet(rest) + " counter drop"},
                                  {"ip daddr " + AddressSet(rest) + " counter drop"}));
    } else {
      RS_RETURN_IF_ERROR(SetRules(i, {}, {}));
    }
  }
  fault_ = "isolate" + AddressSet(cut);
  return Status::Ok();
}

Status Network::Split(const std::vector<std::set<size_t>>& groups) {
  std::map<size_t, size_t> group_of;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t h : groups[g]) {
      if (h >= size()) return Status::InvalidArgument("no host " + std::to_string(h));
      if (!group_of.emplace(h, g).second) {
        return Status::InvalidArgument("host " + std::to_string(h) + " is in two groups");
      }
    }
  }
  fault_ = "split";
  for (size_t i = 0; i < size(); ++i) {
    std::set<size_t> others;
    auto mine = group_of.find(i);
    if (mine != group_of.end()) {
      for (const auto& [h, g] : group_of) {
        if (g != mine->second) others.insert(h);
      }
    }
    std::vector<std::string> input;
    if (!others.empty()) input.push_back("ip saddr " + AddressSet(others) + " counter drop");
    RS_RETURN_IF_ERROR(SetRules(i, input, {}));
  }
  for (const auto& g : groups) fault_ += " " + AddressSet(g);
  return Status::Ok();
}

Status Network::DropInbound(size_t host, int percent, const std::set<size_t>& from) {
  if (host >= size()) return Status::InvalidArgument("no host " + std::to_string(host));
  if (percent < 0 || percent > 100) return Status::InvalidArgument("percent must be 0..100");
  std::set<size_t> senders = from;
  if (senders.empty()) {
    for (size_t i = 0; i < size(); ++i) {
      if (i != host) senders.insert(i);
    }
  }
  for (size_t i = 0; i < size(); ++i) {
    if (i != host) RS_RETURN_IF_ERROR(SetRules(i, {}, {}));
  }
  std::string rule = "ip saddr " + AddressSet(senders);
  if (percent < 100) rule += " numgen random mod 100 < " + std::to_string(percent);
  RS_RETURN_IF_ERROR(SetRules(host, {rule + " counter drop"}, {}));
  fault_ = "drop " + std::to_string(percent) + "% inbound at " + Address(host) + " from " +
           AddressSet(senders);
  return Status::Ok();
}

Status Network::Heal() {
  for (size_t i = 0; i < size(); ++i) RS_RETURN_IF_ERROR(SetRules(i, {}, {}));
  fault_ = "none";
  return Status::Ok();
}

uint64_t Network::CurrentDrops(size_t host) const {
  auto list = RunToolOutput({"ip", "netns", "exec", Namespace(host),
                             FindTool("nft").value_or("nft"), "list", "table", "inet", kTable});
  if (!list.ok()) return 0;
  uint64_t total = 0;
  const std::string key = "packets ";
  for (size_t at = list->out.find(key); at != std::string::npos;
       at = list->out.find(key, at + key.size())) {
    total += std::strtoull(list->out.c_str() + at + key.size(), nullptr, 10);
  }
  return total;
}

uint64_t Network::DroppedPackets(size_t host) const {
  return dropped_.at(host) + (rules_.at(host).empty() ? 0 : CurrentDrops(host));
}

}  // namespace rs::harness
