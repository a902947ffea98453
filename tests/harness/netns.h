// Network: hosts of their own for cluster tests and benchmarks. N "host" network namespaces,
// each with `lo` up and one veth (eth0, a private 10.x.y.(i+1)/24 address) cabled to a bridge in
// a "switch" namespace of its own; the root namespace's network is never touched. raind and
// rainctl run inside a host with `ip netns exec NS ...` (Placement() and the rainctl routes of
// ctl.h do it for a Cluster). Faults are nftables rules inside the host namespaces (this kernel
// has no tc netem): a host isolated, a split into groups, inbound loss (all or a percentage,
// one way), and Heal(). Each fault call replaces the previous one atomically.
//
// Cleanup: namespaces are named `rsnt-<pid>-<k>-...`; the destructor deletes them, and Create()
// first deletes every `rsnt-<pid>-...` whose pid no longer runs (a run killed before its
// destructor). Kill the processes inside before the Network goes (declare it before the
// Cluster). Needs root, iproute2 and nftables: Supported() says why not, and a test then SKIPs.
// Thread-compatible: one owner thread (fault calls are not concurrent with each other).
//   auto net = Network::Create(5);  Cluster c(5, args);  c.set_placement(net->Placement());
//   net->Isolate({4});  ...  net->Heal();
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "shared/status.h"
#include "tests/harness/cluster.h"

namespace rs::harness {

inline constexpr const char* kNetnsPrefix = "rsnt-";

class Network {
 public:
  // Ok when namespaces, veths, a bridge and nftables rules can be made here; else why not
  // (not root, no `ip` or `nft`, no permission, no nf_tables). Probes once per process.
  static Status Supported();
  // Makes `hosts` host namespaces and the switch, after sweeping stale namespaces.
  static Result<std::unique_ptr<Network>> Create(size_t hosts);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  size_t size() const { return hosts_.size(); }
  const std::string& Namespace(size_t host) const { return hosts_.at(host).ns; }
  const std::string& Address(size_t host) const { return hosts_.at(host).address; }
  // The host whose address is `host` (the host part of a HOST:PORT or member id), or -1.
  int HostOf(const std::string& address) const;
  // {"ip", "netns", "exec", NS}: run a command on `host`.
  std::vector<std::string> Exec(size_t host) const;
  // Node i of a Cluster runs on host i % size(), bound to that host's address.
  Cluster::Placement Placement() const;

  // --- faults (nftables inside the host namespaces; each call replaces all rules) ---

  // Every host in `hosts` drops all traffic to and from every host not in `hosts` (inbound and
  // outbound rules on the cut-off hosts; they still reach each other).
  Status Isolate(const std::set<size_t>& hosts);
  // Each host drops inbound traffic from every host of another group. Hosts in no group are
  // untouched (they reach everyone).
  Status Split(const std::vector<std::set<size_t>>& groups);
  // `host` drops `percent` % of the inbound packets from `from` (all other hosts when empty);
  // its outbound traffic passes: loss one way only.
  Status DropInbound(size_t host, int percent, const std::set<size_t>& from = {});
  // Removes every rule: the network is whole again.
  Status Heal();
  // The active fault in words ("none" when healed), for logs and reports.
  const std::string& Fault() const { return fault_; }
  // Packets the rules dropped on `host` since Create() (nft counters), for evidence that a
  // fault really cut traffic.
  uint64_t DroppedPackets(size_t host) const;

 private:
  struct Host {
    std::string ns;
    std::string address;
  };
  Network() = default;
  Status Build(size_t hosts);
  // Replaces host's rules with `rules` (nft rule bodies, each ending in a verdict) for the
  // input and output hooks.
  Status SetRules(size_t host, const std::vector<std::string>& input,
                  const std::vector<std::string>& output);
  std::string AddressSet(const std::set<size_t>& hosts) const;
  uint64_t CurrentDrops(size_t host) const;  // the counters of host's current rules

  std::string prefix_;  // rsnt-<pid>-<k>-
  std::string switch_ns_;
  std::vector<Host> hosts_;
  std::vector<std::string> made_;  // namespaces to delete, in creation order
  std::vector<uint64_t> dropped_;   // per host: packets dropped by rules already replaced
  std::vector<std::string> rules_;  // per host: the rules in force ("" = none)
  std::string fault_ = "none";
};

// Runs a system tool (ip, nft) found in PATH, /usr/sbin or /sbin; fails with its stderr.
Status RunTool(const std::vector<std::string>& argv);

}  // namespace rs::harness
