// Cluster tests of HyDFS refusals: each bad request ends with a clear one-line `rainctl: ...`
// error and the documented exit code (1 the node refused, 2 usage, 4 local file), and changes
// nothing in the cluster. Every node runs with a 1 MB store quota to simulate a full disk.
// One cluster, the steps in order (the quota step first, while the stores are empty).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "tests/harness/checks.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;

// A write that fails is aborted on every replica at once; its blobs are unlinked right away.
constexpr auto kAbortCleanup = 10s;

// The names `ls` lists cluster-wide.
std::set<std::string> AllNames(RaindProcess& via) {
  auto all = CtlJson(via.ControlAddress(), {"ls"});
  REQUIRE_OK(all.status());
  std::set<std::string> names;
  for (const Json& f : (*all)["files"].items()) names.insert(f["name"].Str());
  return names;
}

// A refusal: exit `code`, and one "rainctl: ..." line on stderr that contains `clue`.
void RequireRefused(const CommandResult& r, int code, const std::string& clue) {
  INFO("rainctl: " << r.Describe());
  REQUIRE(r.code() == code);
  CHECK(r.err.rfind("rainctl: ", 0) == 0);
  CHECK(r.err.find(clue) != std::string::npos);
}

void RequireNotFound(RaindProcess& via, const std::string& name) {
  CommandResult r = Ctl(via, {"ls", name});
  INFO("ls " << name << ": " << r.Describe());
  CHECK(r.code() == 1);
  CHECK(r.err.find("not_found") != std::string::npos);
}

TEST_CASE("bad HyDFS requests get a clear error and change nothing", "[hydfs][hydfs-bad-input]") {
  Cluster c(5, HydfsArgs({"--set", "hydfs_quota_mb=1"}));
  REQUIRE_OK(StartHydfs(c));
  const std::string files = c.dir() + "/files";
  auto local = [&](const std::string& n) { return files + "/" + n; };
  RaindProcess& a = c.node(0);
  RaindProcess& b = c.node(3);

  {
    INFO("step: a file larger than the store quota: no space, and nothing stays behind");
    REQUIRE_OK(WriteLocal(local("huge"), RandomBytes(3 << 20, 81)));
    RequireRefused(Ctl(a, {"create", local("huge"), "huge"}, 30s), 1, "no space");
    RequireNotFound(b, "huge");
    REQUIRE_EVENTUALLY(kAbortCleanup, [&](std::string* why) {
      for (RaindProcess* n : c.Running()) {
        auto stats = HydfsStats(*n);
        if (!stats.ok()) return (*why = stats.status().ToString()), false;
        if ((*stats)["store_used_bytes"].Uint() != 0 || (*stats)["store_files"].Uint() != 0) {
          *why = n->name() + " store_used_bytes=" + (*stats)["store_used_bytes"].Str() +
                 " store_files=" + (*stats)["store_files"].Str();
          return false;
        }
      }
      return true;
    });
    CHECK(AllNames(a).empty());
    // The space was given back: a file that fits is stored.
    const std::string fits = RandomBytes(500 * 1024, 82);
    REQUIRE_OK(WriteLocal(local("fits"), fits));
    REQUIRE_OK(HydfsCreate(a, local("fits"), "fits").status());
    auto got = HydfsGet(b, "fits", local("fits.got"));
    REQUIRE_OK(got.status());
    CHECK(got->data == fits);
  }

  {
    INFO("step: a second create of a name, and appends or gets of a missing file");
    const std::string first = RandomBytes(10 * 1024, 83);
    REQUIRE_OK(WriteLocal(local("first"), first));
    REQUIRE_OK(WriteLocal(local("second"), RandomBytes(12 * 1024, 84)));
    REQUIRE_OK(HydfsCreate(a, local("first"), "taken").status());
    RequireRefused(Ctl(b, {"create", local("second"), "taken"}), 1, "already exists");
    auto got = HydfsGet(c.node(2), "taken", local("taken.got"));
    REQUIRE_OK(got.status());
    CHECK(got->data == first);

    RequireRefused(Ctl(a, {"append", local("second"), "missing"}), 1, "missing");
    RequireRefused(Ctl(b, {"get", "missing", local("missing.got")}), 1, "missing");
    CHECK_FALSE(LocalExists(local("missing.got")));
    RequireRefused(Ctl(b, {"rm", "missing"}), 1, "missing");
    RequireNotFound(a, "missing");
    CHECK(AllNames(b) == std::set<std::string>{"fits", "taken"});
  }

  {
    INFO("step: a local file that is missing or unreadable: exit 4, nothing created");
    RequireRefused(Ctl(a, {"create", local("no-such-file"), "ghost"}), 4, "no-such-file");
    REQUIRE_OK(WriteLocal(local("dir/inside"), "x"));
    RequireRefused(Ctl(a, {"create", local("dir"), "ghost"}), 4, "dir");
    if (::geteuid() != 0) {
      REQUIRE_OK(WriteLocal(local("locked"), "secret"));
      REQUIRE(::chmod(local("locked").c_str(), 0) == 0);
      RequireRefused(Ctl(a, {"create", local("locked"), "ghost"}), 4, "locked");
    } else {
      WARN("running as root: chmod 000 does not stop reads, only the directory case is checked");
    }
    RequireNotFound(b, "ghost");
    CHECK(AllNames(b) == std::set<std::string>{"fits", "taken"});
  }

  {
    INFO("step: names that are empty, relative, absolute, a prefix or hold a newline are refused");
    REQUIRE_OK(WriteLocal(local("data"), RandomBytes(5000, 85)));
    for (const std::string name :
         {"", "a/../b", "./x", "/abs", "trailing/", "two//slashes", "line\nbreak", " padded"}) {
      INFO("name '" << name << "'");
      CommandResult r = Ctl(a, {"create", local("data"), name});
      INFO(r.Describe());
      CHECK((r.code() == 1 || r.code() == 2));
      CHECK(r.err.rfind("rainctl: ", 0) == 0);
      CHECK(r.err.size() > std::string("rainctl: ").size() + 5);
      CommandResult g = Ctl(b, {"get", name, local("odd.got")});
      INFO(g.Describe());
      CHECK((g.code() == 1 || g.code() == 2));
      CHECK_FALSE(LocalExists(local("odd.got")));
    }
    CHECK(AllNames(b) == std::set<std::string>{"fits", "taken"});
  }

  {
    INFO("step: an empty file can be created and read, but not appended");
    REQUIRE_OK(WriteLocal(local("empty"), ""));
    auto created = HydfsCreate(a, local("empty"), "empty");
    REQUIRE_OK(created.status());
    CHECK((*created)["bytes"].Uint() == 0);
    auto got = HydfsGet(b, "empty", local("empty.got"));
    REQUIRE_OK(got.status());
    CHECK(got->data.empty());
    RequireRefused(Ctl(b, {"append", local("empty"), "empty"}), 1, "empty");
    auto ls = HydfsLs(a, "empty");
    REQUIRE_OK(ls.status());
    CHECK((*ls)["size"].Uint() == 0);
    for (const Json& r : (*ls)["replicas"].items()) CHECK(r["appends"].Uint() == 1);
  }

  {
    INFO("step: rm makes a file unreadable and its name free for a new create");
    const std::string old_data = RandomBytes(70 * 1024, 86);
    const std::string new_data = RandomBytes(90 * 1024, 87);
    REQUIRE_OK(WriteLocal(local("old"), old_data));
    REQUIRE_OK(WriteLocal(local("new"), new_data));
    REQUIRE_OK(HydfsCreate(a, local("old"), "recycled").status());
    REQUIRE_EXIT(Ctl(b, {"rm", "recycled"}), 0);
    RequireRefused(Ctl(a, {"get", "recycled", local("gone.got")}), 1, "recycled");
    CHECK_FALSE(LocalExists(local("gone.got")));
    RequireNotFound(c.node(4), "recycled");
    REQUIRE_OK(HydfsCreate(b, local("new"), "recycled").status());
    auto got = HydfsGet(c.node(1), "recycled", local("recycled.got"));
    REQUIRE_OK(got.status());
    CHECK(got->data == new_data);
  }

  {
    INFO("step: a get into a directory that does not exist: exit 4 and no file");
    REQUIRE_OK(WriteLocal(local("payload"), RandomBytes(200 * 1024, 88)));
    REQUIRE_OK(HydfsCreate(a, local("payload"), "payload").status());
    std::string target = local("no/such/dir/out");
    RequireRefused(Ctl(b, {"get", "payload", target}), 4, "no/such/dir");
    CHECK_FALSE(LocalExists(local("no")));
    // Nothing partial beside the target either.
    CHECK_FALSE(LocalExists(target));
  }
}

}  // namespace
}  // namespace rs::harness
