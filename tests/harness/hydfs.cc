#include "tests/harness/hydfs.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "shared/util/hash.h"
#include "tests/harness/checks.h"
#include "tests/harness/eventually.h"
#include "tests/harness/subprocess.h"

namespace rs::harness {
namespace fs = std::filesystem;

namespace {

std::string FirstLine(const std::string& text) {
  size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

// `rainctl --node NODE --json --timeout 10000 ARGS...` parsed; a non-zero exit becomes a status
// carrying the exit code and stderr.
Result<Json> JsonCtl(const std::string& node, const std::vector<std::string>& args) {
  std::vector<std::string> full = {"--node", node, "--json", "--timeout", "10000"};
  full.insert(full.end(), args.begin(), args.end());
  CommandResult r = RunCtl(full, kTransferTimeout);
  if (r.code() != 0) {
    std::string what;
    for (const auto& a : full) what += " " + a;
    std::string msg = "rainctl" + what + ": exit " + std::to_string(r.code()) +
                      (r.timed_out ? " (timed out)" : "") + ": " + FirstLine(r.err);
    return r.code() == 3 ? Status::Unavailable(msg) : Status::Internal(msg);
  }
  auto json = Json::Parse(FirstLine(r.out));
  if (!json.ok()) {
    return Status::Corruption("rainctl printed bad JSON (" + json.status().message() +
                              "): " + r.out);
  }
  return json;
}

Result<GotFile> ReadGot(Result<Json> reply, const std::string& local) {
  if (!reply.ok()) return reply.status();
  auto data = ReadLocal(local);
  if (!data.ok()) return data.status();
  return GotFile{std::move(reply.value()), std::move(data.value())};
}

}  // namespace

std::vector<std::string> HydfsArgs(std::vector<std::string> more) {
  // Log shipping off: these scenarios count the files and bytes each node stores.
  std::vector<std::string> args = {"--set", "hydfs_chunk_size=" + std::to_string(kTestChunkSize),
                                   "--set", "log_ship_interval_ms=0"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    for (int k = 0; k < 8; ++k) s[i + k] = static_cast<char>((v >> (8 * k)) & 0xFF);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng() & 0xFF);
  return s;
}

Status WriteLocal(const std::string& path, const std::string& data) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return Status::IOError("cannot write " + path);
  return Status::Ok();
}

Result<std::string> ReadLocal(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return Status::NotFound(path + " does not exist");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read " + path);
  return s.str();
}

bool LocalExists(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

Result<uint64_t> ParseHex64(const std::string& hex) {
  if (hex.size() != 16) return Status::Corruption("not 16 hex digits: '" + hex + "'");
  uint64_t v = 0;
  for (char c : hex) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return Status::Corruption("not lowercase hex: '" + hex + "'");
    v = v << 4 | static_cast<uint64_t>(d);
  }
  return v;
}

Result<std::vector<RingEntry>> RingAt(const RaindProcess& node) {
  auto j = CtlJson(node.ControlAddress(), {"list_mem_ids"});
  if (!j.ok()) return j.status();
  if (!(*j)["members"].is_array()) return Status::Corruption("list_mem_ids: no members array");
  std::vector<RingEntry> ring;
  for (const Json& m : (*j)["members"].items()) {
    auto id = ParseHex64(m["ring_id"].Str());
    if (!id.ok()) return id.status();
    ring.push_back(RingEntry{m["id"].Str(), *id});
  }
  std::sort(ring.begin(), ring.end(), [](const RingEntry& a, const RingEntry& b) {
    return a.ring_id != b.ring_id ? a.ring_id < b.ring_id : a.id < b.id;
  });
  return ring;
}

std::vector<std::string> SuccessorsOf(const std::vector<RingEntry>& ring, uint64_t file_id,
                                      size_t n) {
  std::vector<std::string> out;
  if (ring.empty()) return out;
  size_t start = 0;
  while (start < ring.size() && ring[start].ring_id < file_id) ++start;
  for (size_t i = 0; i < std::min(n, ring.size()); ++i) {
    out.push_back(ring[(start + i) % ring.size()].id);
  }
  return out;
}

bool RingsHave(const std::vector<RaindProcess*>& nodes, size_t n, std::string* why) {
  for (RaindProcess* node : nodes) {
    auto stats = HydfsStats(*node);
    if (!stats.ok()) {
      *why = node->name() + ": " + stats.status().ToString();
      return false;
    }
    if ((*stats)["ring_nodes"].Uint() != n) {
      *why = node->name() + " has " + (*stats)["ring_nodes"].Str() + " nodes on its HyDFS ring";
      return false;
    }
    auto ring = RingAt(*node);
    if (!ring.ok() || ring->size() != n) {
      *why = node->name() + ": list_mem_ids " +
             (ring.ok() ? "lists " + std::to_string(ring->size()) : ring.status().ToString());
      return false;
    }
  }
  why->clear();
  return true;
}

Result<Json> HydfsCreate(const RaindProcess& via, const std::string& local,
                         const std::string& name) {
  return JsonCtl(via.ControlAddress(), {"create", local, name});
}

Result<Json> HydfsAppend(const RaindProcess& via, const std::string& local,
                         const std::string& name) {
  return JsonCtl(via.ControlAddress(), {"append", local, name});
}

Result<GotFile> HydfsGet(const RaindProcess& via, const std::string& name,
                         const std::string& local) {
  return ReadGot(JsonCtl(via.ControlAddress(), {"get", name, local}), local);
}

Result<GotFile> HydfsGetFromReplica(const std::string& replica, const std::string& name,
                                    const std::string& local) {
  // --node is where rainctl sends the command: the replica itself.
  std::string address = replica.substr(0, replica.find('#'));
  return ReadGot(JsonCtl(address, {"getfromreplica", replica, name, local}), local);
}

Result<Json> HydfsLs(const RaindProcess& via, const std::string& name) {
  return JsonCtl(via.ControlAddress(), {"ls", name});
}

Result<std::set<std::string>> StoredNames(const RaindProcess& node) {
  auto j = JsonCtl(node.ControlAddress(), {"liststore"});
  if (!j.ok()) return j.status();
  if (!(*j)["files"].is_array()) return Status::Corruption("liststore: no files array");
  std::set<std::string> names;
  for (const Json& f : (*j)["files"].items()) names.insert(f["name"].Str());
  return names;
}

Result<Json> HydfsStats(const RaindProcess& node) {
  return JsonCtl(node.ControlAddress(), {"hydfs-stats"});
}

std::vector<std::string> ReplicaIds(const Json& ls) {
  std::vector<std::string> ids;
  for (const Json& r : ls["replicas"].items()) ids.push_back(r["node"].Str());
  return ids;
}

bool PlacementExact(Cluster& c, const std::vector<std::string>& names, std::string* why) {
  auto nodes = c.Running();
  auto ring = RingAt(*nodes[0]);
  if (!ring.ok()) return (*why = ring.status().ToString()), false;
  std::map<std::string, std::set<std::string>> holders;
  for (RaindProcess* n : nodes) {
    auto stored = StoredNames(*n);
    if (!stored.ok()) return (*why = n->name() + ": " + stored.status().ToString()), false;
    std::string id = SelfId(*n);
    for (const auto& name : *stored) holders[name].insert(id);
  }
  for (const auto& name : names) {
    auto expected = SuccessorsOf(*ring, StableHash64(name));
    if (holders[name] != std::set<std::string>(expected.begin(), expected.end())) {
      *why = name + " is stored on " +
             Join(std::vector<std::string>(holders[name].begin(), holders[name].end()), ",") +
             " but belongs on " + Join(expected, ",");
      return false;
    }
  }
  why->clear();
  return true;
}

Result<std::map<std::string, uint64_t>> SumStats(Cluster& c, const std::vector<std::string>& keys) {
  std::map<std::string, uint64_t> sums;
  for (const auto& key : keys) sums[key] = 0;
  for (RaindProcess* n : c.Running()) {
    auto s = HydfsStats(*n);
    if (!s.ok()) return s.status();
    for (const auto& key : keys) {
      if (!(*s).Has(key)) return Status::NotFound("hydfs-stats has no " + key);
      sums[key] += (*s)[key].Uint();
    }
  }
  return sums;
}

Result<uint64_t> SumStat(Cluster& c, const std::string& key) {
  auto sums = SumStats(c, {key});
  if (!sums.ok()) return sums.status();
  return (*sums)[key];
}

Status StartHydfs(Cluster& c) {
  RS_RETURN_IF_ERROR(c.Start());
  auto nodes = c.Running();
  auto wait = Eventually([&](std::string* why) { return RingsHave(nodes, nodes.size(), why); },
                         kConvergeDeadline);
  if (!wait.ok) return Status::Timeout("HyDFS rings did not fill: " + wait.ToString());
  return Status::Ok();
}

RaindProcess* NodeWithId(Cluster& c, const std::string& id) {
  for (RaindProcess* n : c.Running()) {
    if (n->Id() == id) return n;
  }
  return nullptr;
}

std::vector<std::string> LogLinesWith(const RaindProcess& node,
                                      const std::vector<std::string>& needles) {
  std::vector<std::string> out;
  std::istringstream in(ReadFile(node.LogPath()));
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& n : needles) all = all && line.find(n) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

}  // namespace rs::harness
