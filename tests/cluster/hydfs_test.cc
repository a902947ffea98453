// Cluster tests of HyDFS: real raind processes on 127.0.0.1, files moved and inspected through
// the real rainctl. Each TEST_CASE has its own tag and runs as its own meson test (meson.build).
// Placement is checked against the replica set computed here from `list_mem_ids` ring ids, not
// against what the daemon says it is. Test data is pseudo-random with fixed seeds (a failure
// reproduces) and lives in the cluster's temp dir.
#include "tests/harness/hydfs.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "shared/util/hash.h"
#include "tests/harness/checks.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// Protocol periods at the daemon defaults: a write is acknowledged after 2 of 3 replicas commit;
// the third commits within the same transfer. The repair scan runs every 2 s, waits 1 s after a
// ring change and leaves a file alone until it has been quiet for 1 s, so a few rounds fit here.
constexpr auto kThirdCommit = 5s;
constexpr auto kRepairRounds = 20s;

struct Scratch {
  std::string dir;
  std::string Path(const std::string& name) const { return dir + "/" + name; }
  // Writes `data` to a new local file and returns its path.
  std::string Put(const std::string& name, const std::string& data) const {
    std::string p = Path(name);
    REQUIRE_OK(WriteLocal(p, data));
    return p;
  }
};

Scratch ScratchOf(Cluster& c) { return Scratch{c.dir() + "/files"}; }

// The local copy of a get: a fresh path per call, so no result is mistaken for an older one.
std::string FreshLocal(const Scratch& s) {
  static int n = 0;
  return s.Path("got-" + std::to_string(++n));
}

// --- multiappend content: every line is "client=I seq=KKKKKK" padded to kLineBytes ---

constexpr size_t kLineBytes = 64;
constexpr size_t kLinesPerAppend = 1500;  // ~94 KiB: two chunks of 64 KiB

std::string AppendLines(size_t client, size_t round) {
  std::string out;
  for (size_t k = round * kLinesPerAppend; k < (round + 1) * kLinesPerAppend; ++k) {
    char head[48];
    std::snprintf(head, sizeof(head), "client=%zu seq=%06zu ", client, k);
    std::string line = head;
    line.resize(kLineBytes - 1, '.');
    out += line + "\n";
  }
  return out;
}

// Checks `content` = `header` followed by whole appends: each client's lines appear with seq
// 0, 1, ... (rounds[client] appends of kLinesPerAppend lines), in its order, each append
// contiguous. Returns "" or what is wrong.
std::string CheckAppends(const std::string& content, const std::string& header,
                         const std::map<size_t, size_t>& rounds) {
  if (content.compare(0, header.size(), header) != 0) return "the header is not first";
  std::istringstream in(content.substr(header.size()));
  std::string line;
  std::map<size_t, size_t> next;  // client -> next expected seq
  size_t line_no = 0;
  long prev_client = -1;
  while (std::getline(in, line)) {
    ++line_no;
    size_t client = 0, seq = 0;
    if (line.size() != kLineBytes - 1 ||
        std::sscanf(line.c_str(), "client=%zu seq=%zu", &client, &seq) != 2) {
      return "line " + std::to_string(line_no) + " is torn: '" + line.substr(0, 40) + "'";
    }
    if (!rounds.count(client)) return "line " + std::to_string(line_no) + ": unknown client";
    if (seq != next[client]) {
      return "line " + std::to_string(line_no) + ": client " + std::to_string(client) + " seq " +
             std::to_string(seq) + " where " + std::to_string(next[client]) + " was expected";
    }
    if (seq % kLinesPerAppend != 0 && prev_client != static_cast<long>(client)) {
      return "line " + std::to_string(line_no) + ": an append of client " + std::to_string(client) +
             " is interleaved with another";
    }
    ++next[client];
    prev_client = static_cast<long>(client);
  }
  for (const auto& [client, n] : rounds) {
    if (next[client] != n * kLinesPerAppend) {
      return "client " + std::to_string(client) + " has " + std::to_string(next[client]) +
             " lines, expected " + std::to_string(n * kLinesPerAppend);
    }
  }
  return "";
}

struct MultiResult {
  int code = -1;
  std::vector<Json> entries;  // {node, local, ok, error} per NODE/LOCAL pair
  std::string describe;
};

// `rainctl --json multiappend|multicreate NAME NODE... LOCAL...`.
MultiResult Multi(const std::string& cmd, const std::string& name,
                  const std::vector<RaindProcess*>& nodes, const std::vector<std::string>& locals) {
  std::vector<std::string> args = {"--node", nodes[0]->ControlAddress(), "--json", cmd, name};
  for (RaindProcess* n : nodes) args.push_back(n->Id());
  args.insert(args.end(), locals.begin(), locals.end());
  CommandResult r = RunCtl(args, kTransferTimeout);
  MultiResult m;
  m.code = r.code();
  m.describe = r.Describe();
  auto j = Json::Parse(r.out.substr(0, r.out.find('\n')));
  if (j.ok()) m.entries = j->items();
  return m;
}

// Every replica's own copy (getfromreplica), by replica id; "" ids are not asked.
std::map<std::string, std::string> ReplicaCopies(const Scratch& s, const std::string& name,
                                                 const std::vector<std::string>& replicas,
                                                 std::string* why) {
  std::map<std::string, std::string> copies;
  for (const auto& id : replicas) {
    auto got = HydfsGetFromReplica(id, name, FreshLocal(s));
    if (!got.ok()) {
      *why += id + ": " + got.status().ToString() + "; ";
      continue;
    }
    copies[id] = got->data;
  }
  return copies;
}

TEST_CASE(
    "files created through one node read back byte-identical through another and sit on "
    "the first three successors of their ring position",
    "[hydfs][hydfs-basic]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  struct File {
    std::string name;
    size_t size;
  };
  const std::vector<File> files = {{"tiny", 1},
                                   {"logs/a.txt", 100 * 1024},
                                   {"multi-chunk", 300 * 1024},
                                   {"big.bin", 1024 * 1024},
                                   {"logs/sub/b.bin", 150 * 1024}};
  std::map<std::string, std::string> content;
  for (size_t i = 0; i < files.size(); ++i) {
    const File& f = files[i];
    content[f.name] = RandomBytes(f.size, 1000 + i);
    std::string local = s.Put("src-" + std::to_string(i), content[f.name]);
    auto created = HydfsCreate(c.node(i % 5), local, f.name);
    REQUIRE_OK(created.status());
    CHECK((*created)["bytes"].Uint() == f.size);
  }

  for (size_t i = 0; i < files.size(); ++i) {
    const File& f = files[i];
    INFO("file " << f.name << " created through " << c.node(i % 5).name());
    auto got = HydfsGet(c.node((i + 1) % 5), f.name, FreshLocal(s));
    REQUIRE_OK(got.status());
    CHECK(got->data == content[f.name]);
    CHECK(got->reply["bytes"].Uint() == f.size);
  }

  auto ring = RingAt(c.node(2));
  REQUIRE_OK(ring.status());
  REQUIRE(ring->size() == 5);
  for (const RingEntry& e : *ring) CHECK(e.ring_id == StableHash64(e.id));
  for (const File& f : files) {
    INFO("file " << f.name);
    auto ls = HydfsLs(c.node(3), f.name);
    REQUIRE_OK(ls.status());
    auto file_id = ParseHex64((*ls)["file_id"].Str());
    REQUIRE_OK(file_id.status());
    CHECK(*file_id == StableHash64(f.name));
    auto expected = SuccessorsOf(*ring, *file_id);
    CHECK(ReplicaIds(*ls) == expected);
    CHECK((*ls)["size"].Uint() == f.size);
    // Every replica took the write (sent to all three; acknowledged after two).
    REQUIRE_EVENTUALLY(kThirdCommit, [&](std::string* why) {
      auto now = HydfsLs(c.node(3), f.name);
      if (!now.ok()) return (*why = now.status().ToString()), false;
      for (const Json& r : (*now)["replicas"].items()) {
        if (!r["has_copy"].Bool() || r["version"].Str() != (*now)["version"].Str()) {
          *why = r["node"].Str() + " has_copy=" + r["has_copy"].Str() +
                 " version=" + r["version"].Str();
          return false;
        }
      }
      return true;
    });
    // liststore: exactly the three successors store it.
    for (RaindProcess* n : c.Running()) {
      auto stored = StoredNames(*n);
      REQUIRE_OK(stored.status());
      bool is_replica = std::count(expected.begin(), expected.end(), n->Id()) > 0;
      INFO(n->name() << " " << n->Id() << (is_replica ? " is" : " is not") << " a replica");
      CHECK(stored->count(f.name) == (is_replica ? 1u : 0u));
    }
  }

  // ls without a name lists every file with its holders; ls PREFIX/ only the files under it.
  auto all = CtlJson(c.node(4).ControlAddress(), {"ls"});
  REQUIRE_OK(all.status());
  std::set<std::string> listed;
  for (const Json& f : (*all)["files"].items()) {
    listed.insert(f["name"].Str());
    auto file_id = ParseHex64(f["file_id"].Str());
    REQUIRE_OK(file_id.status());
    auto expected = SuccessorsOf(*ring, *file_id);
    std::set<std::string> holders;
    for (const Json& h : f["stored_on"].items()) holders.insert(h.Str());
    CHECK(holders == std::set<std::string>(expected.begin(), expected.end()));
  }
  CHECK(listed ==
        std::set<std::string>{"tiny", "logs/a.txt", "multi-chunk", "big.bin", "logs/sub/b.bin"});
  CHECK((*all)["unanswered"].size() == 0);
  auto under = CtlJson(c.node(1).ControlAddress(), {"ls", "logs/"});
  REQUIRE_OK(under.status());
  std::set<std::string> logs;
  for (const Json& f : (*under)["files"].items()) logs.insert(f["name"].Str());
  CHECK(logs == std::set<std::string>{"logs/a.txt", "logs/sub/b.bin"});
}

TEST_CASE(
    "appends through one node are read back in their order by that node and by every "
    "replica",
    "[hydfs][hydfs-append-order]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  const std::string original = RandomBytes(150 * 1024, 21);
  const std::string a = RandomBytes(100 * 1024, 22);
  const std::string b = RandomBytes(70 * 1024, 23);
  REQUIRE_OK(HydfsCreate(c.node(0), s.Put("orig", original), "journal").status());
  RaindProcess& writer = c.node(2);
  REQUIRE_OK(HydfsAppend(writer, s.Put("a", a), "journal").status());
  REQUIRE_OK(HydfsAppend(writer, s.Put("b", b), "journal").status());

  // Read-my-writes: the writer sees both appends at once, in order.
  auto got = HydfsGet(writer, "journal", FreshLocal(s));
  REQUIRE_OK(got.status());
  CHECK(got->data.size() == original.size() + a.size() + b.size());
  CHECK(got->data == original + a + b);

  // Every replica's own copy ends up with both, and never shows B without A before it.
  auto ls = HydfsLs(c.node(4), "journal");
  REQUIRE_OK(ls.status());
  auto replicas = ReplicaIds(*ls);
  REQUIRE(replicas.size() == kHydfsReplicas);
  const std::set<std::string> allowed = {original, original + a, original + a + b};
  bool out_of_order = false;
  REQUIRE_EVENTUALLY(kThirdCommit, [&](std::string* why) {
    auto copies = ReplicaCopies(s, "journal", replicas, why);
    bool all = copies.size() == replicas.size();
    for (const auto& [id, data] : copies) {
      if (!allowed.count(data)) {
        out_of_order = true;
        *why += id + " holds " + std::to_string(data.size()) + " bytes in another order; ";
      }
      if (data != original + a + b) all = false;
    }
    return all;
  });
  CHECK_FALSE(out_of_order);
}

TEST_CASE(
    "concurrent appends from four nodes merge into one identical order on every replica, "
    "and a second merge moves nothing",
    "[hydfs][hydfs-multiappend]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  const std::string name = "shared/events.log";
  const std::string header = "header of the shared log\n";
  REQUIRE_OK(HydfsCreate(c.node(0), s.Put("header", header), name).status());

  std::vector<RaindProcess*> clients = {&c.node(1), &c.node(2), &c.node(3), &c.node(4)};
  std::map<size_t, size_t> rounds;
  for (size_t round = 0; round < 3; ++round) {
    std::vector<std::string> locals;
    for (size_t i = 0; i < clients.size(); ++i) {
      locals.push_back(
          s.Put("c" + std::to_string(i) + "-r" + std::to_string(round), AppendLines(i, round)));
    }
    MultiResult m = Multi("multiappend", name, clients, locals);
    INFO("round " << round << ": " << m.describe);
    REQUIRE(m.code == 0);
    REQUIRE(m.entries.size() == clients.size());
    for (size_t i = 0; i < clients.size(); ++i) {
      CHECK(m.entries[i]["ok"].Bool());
      ++rounds[i];
    }
  }

  // get returns the merged view; the merge must produce exactly that order.
  auto before = HydfsGet(c.node(0), name, FreshLocal(s));
  REQUIRE_OK(before.status());
  {
    std::string bad = CheckAppends(before->data, header, rounds);
    INFO(bad);
    CHECK(bad.empty());
  }

  auto merged = CtlJson(c.node(0).ControlAddress(), {"merge", name});
  REQUIRE_OK(merged.status());
  INFO("first merge moved " << (*merged)["moved_bytes"].Uint() << " bytes to "
                            << (*merged)["replicas_changed"].Uint() << " replicas");

  auto ls = HydfsLs(c.node(0), name);
  REQUIRE_OK(ls.status());
  auto replicas = ReplicaIds(*ls);
  REQUIRE(replicas.size() == kHydfsReplicas);
  std::string why;
  auto copies = ReplicaCopies(s, name, replicas, &why);
  INFO(why);
  REQUIRE(copies.size() == kHydfsReplicas);
  for (const auto& [id, data] : copies) {
    INFO("replica " << id);
    CHECK(data == before->data);
    std::string bad = CheckAppends(data, header, rounds);
    INFO(bad);
    CHECK(bad.empty());
  }

  auto again = CtlJson(c.node(3).ControlAddress(), {"merge", name});
  REQUIRE_OK(again.status());
  CHECK((*again)["replicas_changed"].Uint() == 0);
  CHECK((*again)["moved_bytes"].Uint() == 0);
  auto after = HydfsGet(c.node(2), name, FreshLocal(s));
  REQUIRE_OK(after.status());
  CHECK(after->data == before->data);
}

TEST_CASE(
    "the replicas of a file with concurrent appends become identical without a merge "
    "command",
    "[hydfs][hydfs-converge]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  const std::string name = "converging";
  const std::string header = "converging header\n";
  REQUIRE_OK(HydfsCreate(c.node(4), s.Put("header", header), name).status());
  std::vector<RaindProcess*> clients = {&c.node(0), &c.node(1), &c.node(2), &c.node(3)};
  std::map<size_t, size_t> rounds;
  for (size_t round = 0; round < 2; ++round) {
    std::vector<std::string> locals;
    for (size_t i = 0; i < clients.size(); ++i) {
      locals.push_back(
          s.Put("c" + std::to_string(i) + "-r" + std::to_string(round), AppendLines(i, round)));
    }
    MultiResult m = Multi("multiappend", name, clients, locals);
    INFO("round " << round << ": " << m.describe);
    REQUIRE(m.code == 0);
    for (size_t i = 0; i < clients.size(); ++i) ++rounds[i];
  }
  auto ls = HydfsLs(c.node(4), name);
  REQUIRE_OK(ls.status());
  auto replicas = ReplicaIds(*ls);
  REQUIRE(replicas.size() == kHydfsReplicas);

  std::map<std::string, std::string> last;
  REQUIRE_EVENTUALLY(kRepairRounds, [&](std::string* why) {
    last = ReplicaCopies(s, name, replicas, why);
    if (last.size() != replicas.size()) return false;
    for (const auto& [id, data] : last) {
      if (data != last.begin()->second) {
        *why += id + " differs from " + last.begin()->first + "; ";
        return false;
      }
    }
    return true;
  });
  std::string bad = CheckAppends(last.begin()->second, header, rounds);
  INFO(bad);
  CHECK(bad.empty());
  auto got = HydfsGet(c.node(1), name, FreshLocal(s));
  REQUIRE_OK(got.status());
  CHECK(got->data == last.begin()->second);
}

TEST_CASE(
    "a repeated get is served from the client cache, and an append elsewhere is never "
    "read stale",
    "[hydfs][hydfs-cache]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  const std::string original = RandomBytes(300 * 1024, 71);
  const std::string more = RandomBytes(80 * 1024, 72);
  REQUIRE_OK(HydfsCreate(c.node(0), s.Put("orig", original), "cached.bin").status());
  RaindProcess& reader = c.node(3);

  auto first = HydfsGet(reader, "cached.bin", FreshLocal(s));
  REQUIRE_OK(first.status());
  CHECK(first->data == original);
  CHECK_FALSE(first->reply["cached"].Bool());
  auto stats1 = HydfsStats(reader);
  REQUIRE_OK(stats1.status());

  auto second = HydfsGet(reader, "cached.bin", FreshLocal(s));
  REQUIRE_OK(second.status());
  CHECK(second->data == original);
  CHECK(second->reply["cached"].Bool());
  auto stats2 = HydfsStats(reader);
  REQUIRE_OK(stats2.status());
  CHECK((*stats2)["chunk_bytes_in"].Uint() == (*stats1)["chunk_bytes_in"].Uint());
  CHECK((*stats2)["cache_hits"].Uint() == (*stats1)["cache_hits"].Uint() + 1);

  REQUIRE_OK(HydfsAppend(c.node(1), s.Put("more", more), "cached.bin").status());
  auto third = HydfsGet(reader, "cached.bin", FreshLocal(s));
  REQUIRE_OK(third.status());
  CHECK(third->data == original + more);
  CHECK_FALSE(third->reply["cached"].Bool());
  CHECK(third->reply["version"].Str() != second->reply["version"].Str());

  // The new version is cached in its turn.
  auto fourth = HydfsGet(reader, "cached.bin", FreshLocal(s));
  REQUIRE_OK(fourth.status());
  CHECK(fourth->data == original + more);
  CHECK(fourth->reply["cached"].Bool());

  // Removed and created again elsewhere under the same name: a new file, not the cached one.
  const std::string reborn = RandomBytes(120 * 1024, 73);
  REQUIRE_EXIT(Ctl(c.node(4), {"rm", "cached.bin"}), 0);
  REQUIRE_OK(HydfsCreate(c.node(2), s.Put("reborn", reborn), "cached.bin").status());
  auto fifth = HydfsGet(reader, "cached.bin", FreshLocal(s));
  REQUIRE_OK(fifth.status());
  CHECK(fifth->data == reborn);
  CHECK_FALSE(fifth->reply["cached"].Bool());
}

TEST_CASE(
    "of three simultaneous creates of one name exactly one wins and its content is the "
    "file's",
    "[hydfs][hydfs-multicreate]") {
  Cluster c(5, HydfsArgs());
  REQUIRE_OK(StartHydfs(c));
  Scratch s = ScratchOf(c);
  std::vector<RaindProcess*> creators = {&c.node(0), &c.node(2), &c.node(4)};
  for (int round = 0; round < 3; ++round) {
    std::string name = "race-" + std::to_string(round);
    std::vector<std::string> data, locals;
    for (size_t i = 0; i < creators.size(); ++i) {
      data.push_back(RandomBytes(200 * 1024, 900 + 10 * round + i));
      locals.push_back(s.Put(name + "-from-" + std::to_string(i), data.back()));
    }
    MultiResult m = Multi("multicreate", name, creators, locals);
    INFO("round " << round << ": " << m.describe);
    REQUIRE(m.entries.size() == creators.size());
    std::vector<size_t> winners;
    for (size_t i = 0; i < creators.size(); ++i) {
      if (m.entries[i]["ok"].Bool()) {
        winners.push_back(i);
      } else {
        CHECK(m.entries[i]["error"].Str().find("already exists") != std::string::npos);
      }
    }
    REQUIRE(winners.size() == 1);
    CHECK(m.code == 1);
    const std::string& winner = data[winners[0]];
    auto got = HydfsGet(c.node(1), name, FreshLocal(s));
    REQUIRE_OK(got.status());
    CHECK(got->data == winner);
    auto ls = HydfsLs(c.node(3), name);
    REQUIRE_OK(ls.status());
    auto replicas = ReplicaIds(*ls);
    REQUIRE_EVENTUALLY(kThirdCommit, [&](std::string* why) {
      auto copies = ReplicaCopies(s, name, replicas, why);
      if (copies.size() != replicas.size()) return false;
      for (const auto& [id, d] : copies) {
        if (d != winner) return (*why += id + " holds other content"), false;
      }
      return true;
    });
  }
}

}  // namespace
}  // namespace rs::harness
