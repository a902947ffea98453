// Cluster test of the console's JSON API and its access rules (daemon/http/README.md): on
// loopback a request without a token may read, and its answers are the payloads `rainctl --json`
// prints; acting (cancel, kill a task) needs an admin token from `rainctl keys token`; a read
// token cannot act; a forged token is refused; a revoked key's token stops working. Real raind
// and rainctl on 127.0.0.1, HTTP by python's urllib.
#include <string>
#include <vector>

#include "shared/security/keys.h"
#include "tests/cluster/stream_cases.h"
#include "tests/harness/metrics.h"

namespace rs::harness {
namespace {

using namespace std::chrono_literals;
using namespace stream_cases;

std::string Url(const RaindProcess& n, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(n.HttpPort()) + path;
}

HttpReply Request(const std::string& url, const std::string& method = "GET",
                  const std::string& token = "", const std::string& form = "") {
  auto r = HttpRequest(url, method, token, form);
  INFO(method << " " << url);
  REQUIRE_OK(r.status());
  return *r;
}

Json ParsedBody(const HttpReply& r) {
  auto j = Json::Parse(r.body);
  INFO(r.body);
  REQUIRE_OK(j.status());
  return *j;
}

std::string TokenOf(const std::string& key) {
  auto t = HttpToken(key);
  REQUIRE_OK(t.status());
  return *t;
}

}  // namespace

TEST_CASE("the console API reads like rainctl --json; tokens decide who may act", "[http-api]") {
  Cluster c(3, StreamArgs());
  StartStream(c);
  RaindProcess& n = c.node(1);  // not the leader: job commands go through it to the leader

  // Reads on loopback, no token: the payloads rainctl --json prints.
  HttpReply mem = Request(Url(n, "/api/v1/cmd/list_mem"));
  REQUIRE(mem.status == 200);
  CommandResult ctl = Ctl(n, {"--json", "list_mem"});
  REQUIRE(ctl.code() == 0);
  Json api_mem = ParsedBody(mem);
  auto ctl_mem = Json::Parse(ctl.out);
  REQUIRE_OK(ctl_mem.status());
  REQUIRE(api_mem["members"].size() == 3);
  REQUIRE((*ctl_mem)["members"].size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(api_mem["members"][i]["id"].Str() == (*ctl_mem)["members"][i]["id"].Str());
    CHECK(api_mem["members"][i]["ring_id"].Str() == (*ctl_mem)["members"][i]["ring_id"].Str());
    CHECK(api_mem["members"][i]["state"].Str() == "alive");
  }
  HttpReply files = Request(Url(n, "/api/v1/cmd/hydfs.lsall"));
  REQUIRE(files.status == 200);
  CHECK(files.body.find(kSample) != std::string::npos);
  HttpReply page = Request(Url(n, "/"));
  CHECK(page.status == 200);
  CHECK(page.body.find("<title>RainStorm") != std::string::npos);
  CHECK(Request(Url(n, "/console.js")).status == 200);
  CHECK(Request(Url(n, "/nothing.js")).status == 404);
  // The log view: another node's log through this one, filtered, then what came since.
  std::string other = c.node(2).ControlAddress();
  HttpReply tail =
      Request(Url(n, "/api/v1/cmd/log.tail?offset=0&pattern=event=ready&node=" + other));
  REQUIRE(tail.status == 200);
  Json lines = ParsedBody(tail);
  REQUIRE(lines["lines"].size() >= 1);
  CHECK(lines["lines"][0].Str().find("event=ready id=" + other) != std::string::npos);
  for (const Json& l : lines["lines"].items())
    CHECK(l.Str().find("event=ready") != std::string::npos);
  HttpReply since = Request(Url(n, "/api/v1/cmd/log.tail?pattern=event=ready&node=" + other +
                                       "&offset=" + lines["next"].Str()));
  REQUIRE(since.status == 200);
  CHECK(ParsedBody(since)["lines"].size() == 0);
  CHECK(Request(Url(n, "/api/v1/cmd/log.tail?pattern=a%5C(")).status == 400);
  CHECK(Request(Url(n, "/api/v1/cmd/log.tail?node=127.0.0.1:1")).status == 404);  // no member
  // Commands that stream their data elsewhere, unknown ones, and the wrong method.
  CHECK(Request(Url(n, "/api/v1/cmd/hydfs.get")).status == 404);
  CHECK(Request(Url(n, "/api/v1/cmd/no_such")).status == 404);
  CHECK(Request(Url(n, "/api/v1/cmd/job.cancel?job=x")).status == 405);

  // A live job waits for input: something to act on.
  JobRun run = RunJob(c.node(0), {"job", "submit", "--live", "--stage", "identity", "--tasks", "2",
                                  "--dest", Dest("http"), "--exactly-once", "--detach"});
  INFO(run.result.Describe());
  REQUIRE(run.result.code() == 0);
  REQUIRE_EVENTUALLY(kJobDeadline,
                     [&](std::string* why) { return JobIn(c.node(0), run.job, {"running"}, why); });
  HttpReply status = Request(Url(n, "/api/v1/cmd/job.status?job=" + run.job));
  REQUIRE(status.status == 200);
  CHECK(ParsedBody(status)["state"].Str() == "running");
  CHECK(Request(Url(n, "/api/v1/cmd/job.status?job=nope")).status == 404);

  std::string cancel = Url(n, "/api/v1/cmd/job.cancel");
  std::string form = "job=" + run.job;
  // No token: read only, even on loopback.
  HttpReply anon = Request(cancel, "POST", "", form);
  CHECK(anon.status == 403);
  CHECK(ParsedBody(anon)["error"]["code"].Str() == "permission_denied");
  // A read token: may read, may not act.
  std::string reader = *MakeUnlistedKey(c.dir(), "reader", "read");
  auto rf = security::ReadKeyFile(reader);
  REQUIRE_OK(rf.status());
  REQUIRE(Ctl(c.node(0), {"keys", "add", "read", rf->keys.public_key, "reader"}).code() == 0);
  std::string read_token = TokenOf(reader);
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {  // every node has the key on its keyring
    HttpReply r = Request(Url(n, "/api/v1/cmd/job.list"), "GET", read_token);
    *why = std::to_string(r.status) + " " + r.body;
    return r.status == 200;
  });
  CHECK(Request(cancel, "POST", read_token, form).status == 403);
  // A forged token (a later expiry on a real one) and junk: 401.
  std::string admin_token = TokenOf("");
  std::string forged = admin_token;
  size_t exp = forged.find('_', 4);
  forged.replace(exp + 1, 1, forged[exp + 1] == '9' ? "8" : "9");
  CHECK(Request(Url(n, "/api/v1/cmd/job.list"), "GET", forged).status == 401);
  CHECK(Request(Url(n, "/api/v1/cmd/job.list"), "GET", "junk").status == 401);
  CHECK(Request(Url(n, "/metrics"), "GET", "junk").status == 401);
  REQUIRE(JobState(c.node(0), run.job).value() == "running");

  // An admin token: kill a task (the drill), then cancel.
  HttpReply killed =
      Request(Url(n, "/api/v1/cmd/job.kill_task"), "POST", admin_token, form + "&stage=1&task=0");
  INFO(killed.body);
  REQUIRE(killed.status == 200);
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    auto st = JobStatus(c.node(0), run.job);
    if (!st.ok()) {
      *why = st.status().ToString();
      return false;
    }
    *why = "rebuilds " + (*st)["rebuilds"].Str();
    return (*st)["rebuilds"].Uint() == 1;
  });
  CHECK(Request(Url(n, "/api/v1/cmd/job.kill_task"), "POST", admin_token, form + "&stage=1&task=9")
            .status == 404);
  HttpReply cancelled = Request(cancel, "POST", admin_token, form);
  REQUIRE(cancelled.status == 200);
  CHECK(ParsedBody(cancelled)["state"].Str() == "cancelled");
  REQUIRE_EVENTUALLY(kJobDeadline, [&](std::string* why) {
    return JobIn(c.node(0), run.job, {"cancelled"}, why);
  });

  // Revoking the read key voids its token on every node.
  REQUIRE(Ctl(c.node(0), {"keys", "revoke", "reader"}).code() == 0);
  REQUIRE_EVENTUALLY(10s, [&](std::string* why) {
    for (size_t i = 0; i < c.size(); ++i) {
      HttpReply r = Request(Url(c.node(i), "/api/v1/cmd/job.list"), "GET", read_token);
      if (r.status != 401) {
        *why = "node " + std::to_string(i + 1) + " answers " + std::to_string(r.status);
        return false;
      }
    }
    return true;
  });
}

}  // namespace rs::harness
