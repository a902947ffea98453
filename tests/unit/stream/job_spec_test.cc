// JobSpec: the RainStorm positional forms, SplitCommand's quoting, numbers and booleans, and the
// MessagePack encoding (round trip, hostile bytes).
#include "shared/stream/job_spec.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <random>
#include <set>

namespace rs::stream {
namespace {

using Argv = std::vector<std::string>;

// rainctl's rule without the file system: the built-in names, hydfs:NAME, and paths under
// /ops/ (standing for "an existing executable").
bool IsOp(const std::string& t) {
  static const std::set<std::string> names = {"identity", "grep",      "select", "count",   "upper",
                                              "split",    "wordcount", "filter", "template"};
  if (t.rfind("hydfs:", 0) == 0) return t.size() > 6;
  if (t.find('/') != std::string::npos) return t.rfind("/ops/", 0) == 0;
  return names.count(t) > 0;
}

Result<JobSpec> Parse(std::vector<std::string> tokens) { return ParseRainStormArgs(tokens, IsOp); }

std::string Message(const Result<JobSpec>& r) { return r.ok() ? "" : r.status().message(); }

}  // namespace

TEST_CASE("the spec form with one quoted command per stage parses", "[stream][job_spec]") {
  auto r = Parse(
      {"2", "3", "grep -i Parking", "select 0,3", "src", "dest", "true", "false", "0", "0", "0"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"grep", "-i", "Parking"}, {"select", "0,3"}});
  CHECK(r->tasks == 3);
  CHECK(r->src == "src");
  CHECK(r->dest == "dest");
  CHECK(r->exactly_once);
  CHECK_FALSE(r->autoscale);
  CHECK(r->input_rate == 0);
  CHECK_FALSE(r->live);
}

TEST_CASE("the spec form's <src> - is a live source (rainsource)", "[stream][job_spec]") {
  auto r = Parse({"2", "1", "grep SIGN_REGULATORY", "select 0,1,2", "-", "dest", "true", "true",
                  "1000", "20", "100"});
  REQUIRE(r.ok());
  CHECK(r->live);
  CHECK(r->src.empty());
  CHECK(r->autoscale);
  CHECK(r->input_rate == 1000);
  auto older = Parse({"grep Parking", "select 0", "-", "dest", "2"});
  REQUIRE(older.ok());
  CHECK(older->live);
}

TEST_CASE("the spec form with one argument per operator parses", "[stream][job_spec]") {
  auto r = Parse({"2", "3", "grep", "Parking", "select", "OBJECTID,Sign_Type", "src", "dest", "1",
                  "0", "100", "0", "0"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"grep", "Parking"}, {"select", "OBJECTID,Sign_Type"}});
  CHECK(r->exactly_once);
  CHECK(r->input_rate == 100);
}

TEST_CASE("unquoted commands split at each operator name", "[stream][job_spec]") {
  auto r = Parse({"3", "2", "grep", "-i", "Parking", "select", "0,3", "count", "src", "dest",
                  "false", "false", "10", "1", "5"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"grep", "-i", "Parking"}, {"select", "0,3"}, {"count"}});
  CHECK_FALSE(r->exactly_once);
  CHECK(r->low_watermark == 1);
  CHECK(r->high_watermark == 5);
}

TEST_CASE("an argument holding spaces stays an argument", "[stream][job_spec]") {
  auto r = Parse(
      {"2", "1", "grep", "-i", "No Parking", "count", "src", "dest", "1", "0", "0", "0", "0"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"grep", "-i", "No Parking"}, {"count"}});
}

TEST_CASE("quoted and unquoted commands mix", "[stream][job_spec]") {
  auto r = Parse({"3", "1", "grep -i 'No Parking'", "select", "0,3", "identity", "src", "dest",
                  "yes", "no", "0", "0", "0"});
  REQUIRE(r.ok());
  CHECK(r->stages ==
        std::vector<Argv>{{"grep", "-i", "No Parking"}, {"select", "0,3"}, {"identity"}});
}

TEST_CASE("paths and hydfs: names are operators", "[stream][job_spec]") {
  auto r = Parse({"2", "1", "/ops/myop", "--flag", "hydfs:op.py", "x", "src", "dest", "1", "0", "0",
                  "0", "0"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"/ops/myop", "--flag"}, {"hydfs:op.py", "x"}});
}

TEST_CASE("a split that does not give Nstages commands asks for quoting", "[stream][job_spec]") {
  // grep's pattern is an operator name: three commands where two were announced.
  auto r = Parse(
      {"2", "1", "grep", "count", "select", "0,3", "x", "src", "dest", "1", "0", "0", "0", "0"});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(Message(r), Catch::Contains("quote"));
  // One command where two were announced.
  r = Parse({"2", "1", "grep", "Parking", "src", "dest", "1", "0", "0", "0", "0"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(Message(r), Catch::Contains("found 1 operators where Nstages is 2"));
}

TEST_CASE("the first operator token must be an operator", "[stream][job_spec]") {
  auto r = Parse({"1", "1", "Parking", "grep", "x", "src", "dest", "1", "0", "0", "0", "0"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(Message(r), Catch::Contains("'Parking' is not an operator"));
}

TEST_CASE("a badly quoted command is refused", "[stream][job_spec]") {
  auto r =
      Parse({"2", "1", "grep 'No Parking", "count", "x", "src", "dest", "1", "0", "0", "0", "0"});
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(Message(r), Catch::Contains("unterminated quote"));
}

TEST_CASE("the older five-word form parses", "[stream][job_spec]") {
  auto r = Parse({"grep Parking", "select 0,3", "src", "dest", "4"});
  REQUIRE(r.ok());
  CHECK(r->stages == std::vector<Argv>{{"grep", "Parking"}, {"select", "0,3"}});
  CHECK(r->tasks == 4);
  CHECK(r->exactly_once);
  CHECK(r->input_rate == 0);
  CHECK_FALSE(r->autoscale);
}

TEST_CASE("bad numbers and booleans name the field", "[stream][job_spec]") {
  auto spec = [](std::string eo, std::string as, std::string rate, std::string lw, std::string hw) {
    return Parse({"1", "1", "grep", "x", "src", "dest", eo, as, rate, lw, hw});
  };
  CHECK_THAT(Message(spec("maybe", "0", "0", "0", "0")), Catch::Contains("exactly_once"));
  CHECK_THAT(Message(spec("1", "2", "0", "0", "0")), Catch::Contains("autoscale"));
  CHECK_THAT(Message(spec("1", "0", "-5", "0", "0")), Catch::Contains("INPUT_RATE"));
  CHECK_THAT(Message(spec("1", "0", "1.5", "0", "0")), Catch::Contains("INPUT_RATE"));
  CHECK_THAT(Message(spec("1", "0", "", "0", "0")), Catch::Contains("INPUT_RATE"));
  CHECK_THAT(Message(spec("1", "0", "0", "x", "0")), Catch::Contains("LW"));
  CHECK_THAT(Message(spec("1", "0", "0", "0", "99999999999999999999")), Catch::Contains("HW"));
  CHECK_THAT(Message(spec("1", "0", "0", "9", "3")), Catch::Contains("above HW"));
  CHECK(spec("TRUE", "No", "0", "3", "9").ok());
  // Autoscaling on: the thresholds must make sense.
  CHECK(spec("1", "1", "1000", "3", "9").ok());
  CHECK_THAT(Message(spec("1", "1", "1000", "9", "3")), Catch::Contains("above HW"));
  CHECK_THAT(Message(spec("1", "1", "1000", "5", "5")), Catch::Contains("must be below HW"));
  CHECK_THAT(Message(spec("1", "1", "1000", "0", "0")), Catch::Contains("needs HW > 0"));
  CHECK_THAT(Message(spec("1", "1", "-1000", "1", "9")), Catch::Contains("INPUT_RATE"));
  CHECK_THAT(Message(spec("1", "1", "1000", "-1", "9")), Catch::Contains("LW"));
  CHECK_THAT(Message(spec("1", "1", "1000", "1", "-9")), Catch::Contains("HW"));
  CHECK_THAT(Message(Parse({"1", "0", "grep", "x", "src", "dest", "1", "1", "10", "1", "9"})),
             Catch::Contains("tasks per stage must be 1"));

  CHECK_THAT(Message(Parse({"17", "1", "grep", "x", "src", "dest", "1", "0", "0", "0", "0"})),
             Catch::Contains("Nstages"));
  CHECK_THAT(Message(Parse({"0", "1", "grep", "x", "src", "dest", "1", "0", "0", "0", "0"})),
             Catch::Contains("Nstages"));
  CHECK_THAT(Message(Parse({"1", "65", "grep", "x", "src", "dest", "1", "0", "0", "0", "0"})),
             Catch::Contains("Ntasks"));
  CHECK_THAT(Message(Parse({"1", "0", "grep", "x", "src", "dest", "1", "0", "0", "0", "0"})),
             Catch::Contains("tasks per stage"));
  CHECK_THAT(Message(Parse({"grep", "select", "src", "dest", "x"})), Catch::Contains("num_tasks"));
  CHECK_FALSE(Parse({"1", "1", "grep", "src", "dest", "1", "0", "0", "0"}).ok());  // too few
  CHECK_FALSE(Parse({"grep", "select", "src", "dest"}).ok());
  CHECK_FALSE(Parse({}).ok());
}

TEST_CASE("the destination may not be the source", "[stream][job_spec]") {
  auto r = Parse({"1", "1", "grep", "x", "same", "same", "1", "0", "0", "0", "0"});
  CHECK_THAT(Message(r), Catch::Contains("destination"));
}

TEST_CASE("ParseBool and ParseCount", "[stream][job_spec]") {
  for (const char* t : {"true", "True", "1", "yes", "YES"}) CHECK(*ParseBool(t, "b"));
  for (const char* t : {"false", "FALSE", "0", "no"}) CHECK_FALSE(*ParseBool(t, "b"));
  for (const char* t : {"", "2", "tru", " true", "on"}) CHECK_FALSE(ParseBool(t, "b").ok());
  CHECK(*ParseCount("0", "n") == 0);
  CHECK(*ParseCount("18446744073709551615", "n") == UINT64_MAX);
  CHECK_FALSE(ParseCount("18446744073709551616", "n").ok());
  CHECK_FALSE(ParseCount("+1", "n").ok());
  CHECK_FALSE(ParseCount(" 1", "n").ok());
  CHECK_FALSE(ParseCount("1 ", "n").ok());
  CHECK_FALSE(ParseCount("0x10", "n").ok());
  CHECK(*ParseCount("16", "n", 16) == 16);
  CHECK_THAT(ParseCount("17", "Nstages", 16).status().message(), Catch::Contains("at most 16"));
}

TEST_CASE("SplitCommand quotes like sh", "[stream][job_spec]") {
  CHECK(*SplitCommand("grep -i Parking") == Argv{"grep", "-i", "Parking"});
  CHECK(*SplitCommand("  grep\t-i   'No Parking'  ") == Argv{"grep", "-i", "No Parking"});
  CHECK(*SplitCommand("grep \"No Parking\"") == Argv{"grep", "No Parking"});
  CHECK(*SplitCommand("grep No\\ Parking") == Argv{"grep", "No Parking"});
  CHECK(*SplitCommand("grep ''") == Argv{"grep", ""});
  CHECK(*SplitCommand("grep a'b c'd") == Argv{"grep", "ab cd"});
  CHECK(*SplitCommand("grep 'it\"s'") == Argv{"grep", "it\"s"});
  CHECK(*SplitCommand("grep \"it's\"") == Argv{"grep", "it's"});
  CHECK(*SplitCommand("grep 'a\\.b'") == Argv{"grep", "a\\.b"});    // single quotes: literal
  CHECK(*SplitCommand("grep \"a\\.b\"") == Argv{"grep", "a\\.b"});  // \. is kept in "..."
  CHECK(*SplitCommand("grep \"a\\\"b\\\\\"") == Argv{"grep", "a\"b\\"});
  CHECK(*SplitCommand("grep a\\.b") == Argv{"grep", "a.b"});  // unquoted: escapes
  CHECK_FALSE(SplitCommand("grep 'No Parking").ok());
  CHECK_FALSE(SplitCommand("grep \"x").ok());
  CHECK_FALSE(SplitCommand("").ok());
  CHECK_FALSE(SplitCommand("   ").ok());
}

TEST_CASE("a job spec survives encode and decode", "[stream][job_spec]") {
  JobSpec s;
  s.stages = {{"grep", "-i", "No Parking"}, {"/abs/op", ""}, {"hydfs:x"}};
  s.tasks = 7;
  s.src = "logs/";
  s.dest = "out.txt";
  s.exactly_once = false;
  s.autoscale = true;
  s.input_rate = 12345;
  s.low_watermark = 10;
  s.high_watermark = UINT64_MAX;
  s.name = "nightly \xff\x01";
  auto d = DecodeJobSpec(EncodeJobSpec(s));
  REQUIRE(d.ok());
  CHECK(d->stages == s.stages);
  CHECK(d->tasks == 7);
  CHECK(d->src == s.src);
  CHECK_FALSE(d->live);
  CHECK(d->dest == s.dest);
  CHECK_FALSE(d->exactly_once);
  CHECK(d->autoscale);
  CHECK(d->input_rate == 12345);
  CHECK(d->low_watermark == 10);
  CHECK(d->high_watermark == UINT64_MAX);
  CHECK(d->name == s.name);
  CHECK_FALSE(d->header.has_value());
  CHECK_FALSE(d->keep);
  s.keep = true;
  CHECK(DecodeJobSpec(EncodeJobSpec(s))->keep);
  CHECK(d->key_groups == kDefaultKeyGroups);
  s.key_groups = 4096;
  CHECK(DecodeJobSpec(EncodeJobSpec(s))->key_groups == 4096);
  CHECK(d->autoscale_policy == "thresholds");
  CHECK(d->cooldown_ms == kDefaultCooldownMs);
  CHECK(d->max_tasks == 0);
  s.autoscale_policy = "target";
  s.cooldown_ms = 0;
  s.max_tasks = 9;
  auto scaled = DecodeJobSpec(EncodeJobSpec(s));
  REQUIRE(scaled.ok());
  CHECK(scaled->autoscale_policy == "target");
  CHECK(scaled->cooldown_ms == 0);
  CHECK(scaled->max_tasks == 9);
  for (bool h : {true, false}) {
    s.header = h;
    auto e = DecodeJobSpec(EncodeJobSpec(s));
    REQUIRE(e.ok());
    CHECK(e->header == std::optional<bool>(h));
  }

  JobSpec live;
  live.stages = {{"identity"}};
  live.live = true;
  live.dest = std::string("live-output.txt");
  auto l = DecodeJobSpec(EncodeJobSpec(live));
  REQUIRE(l.ok());
  CHECK(l->live);
  CHECK(l->src.empty());
  CHECK(l->exactly_once);
  CHECK(ValidateJobSpec(*l).ok());
}

TEST_CASE("a decoded spec with optional fields absent takes the defaults", "[stream][job_spec]") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack("stages");
  pk.pack(std::vector<Argv>{{"count"}});
  pk.pack("tasks");
  pk.pack(2);
  pk.pack("dest");
  pk.pack("d");
  auto d = DecodeJobSpec(std::string_view(buf.data(), buf.size()));
  REQUIRE(d.ok());
  CHECK(d->exactly_once);
  CHECK(d->src.empty());
  CHECK_FALSE(d->live);
  CHECK(d->input_rate == 0);
  CHECK(d->key_groups == kDefaultKeyGroups);
}

TEST_CASE("hostile job spec bytes are refused, never thrown", "[stream][job_spec]") {
  JobSpec s;
  s.stages = {{"grep", "x"}, {"count"}};
  s.src = "in";
  s.dest = "out";
  std::string good = EncodeJobSpec(s);

  // Every truncation.
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = DecodeJobSpec(std::string_view(good.data(), n));
    CHECK_FALSE(d.ok());
  }
  // Trailing bytes.
  CHECK_FALSE(DecodeJobSpec(good + "x").ok());
  // Wrong shapes.
  auto packed = [](auto fill) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    fill(pk);
    return std::string(buf.data(), buf.size());
  };
  CHECK_FALSE(DecodeJobSpec(packed([](auto& pk) { pk.pack(5); })).ok());
  CHECK_FALSE(DecodeJobSpec(packed([](auto& pk) {
                pk.pack_map(3);
                pk.pack("stages");
                pk.pack(std::vector<int>{1, 2});
                pk.pack("tasks");
                pk.pack(1);
                pk.pack("dest");
                pk.pack("d");
              })).ok());
  CHECK_FALSE(DecodeJobSpec(packed([](auto& pk) {
                pk.pack_map(3);
                pk.pack("stages");
                pk.pack(std::vector<Argv>{{"a"}});
                pk.pack("tasks");
                pk.pack(-1);
                pk.pack("dest");
                pk.pack("d");
              })).ok());
  CHECK_FALSE(DecodeJobSpec(packed([](auto& pk) {
                pk.pack_map(2);
                pk.pack("stages");
                pk.pack(std::vector<Argv>{{"a"}});
                pk.pack("tasks");
                pk.pack(1);  // no dest
              })).ok());
  // A huge declared array in a few bytes.
  CHECK_FALSE(DecodeJobSpec(std::string("\x81\xa6stages\xdd\xff\xff\xff\xff", 13)).ok());

  // Random mutations of a good spec: decode or refuse, never crash.
  std::mt19937 rng(42);
  for (int round = 0; round < 5000; ++round) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    auto d = DecodeJobSpec(b);
    if (d.ok()) (void)ValidateJobSpec(*d);
  }
  for (int round = 0; round < 2000; ++round) {
    std::string b(rng() % 64, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    (void)DecodeJobSpec(b);
  }
}

TEST_CASE("ValidateJobSpec names the problem", "[stream][job_spec]") {
  JobSpec s;
  s.stages = {{"grep", "x"}};
  s.src = "in";
  s.dest = "out";
  CHECK(ValidateJobSpec(s).ok());
  JobSpec t = s;
  t.stages.push_back({});
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("stage 2 has no operator"));
  t = s;
  t.stages.clear();
  CHECK_FALSE(ValidateJobSpec(t).ok());
  t = s;
  t.stages.assign(kMaxStages + 1, {"identity"});
  CHECK_FALSE(ValidateJobSpec(t).ok());
  t = s;
  t.live = true;
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("either"));
  t = s;
  t.src.clear();
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("source"));
  t = s;
  t.dest.clear();
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("destination"));
  t = s;
  t.tasks = kMaxTasksPerStage + 1;
  CHECK_FALSE(ValidateJobSpec(t).ok());
  // Key groups: at least the tasks per stage (each task owns one), at most kMaxKeyGroups.
  t = s;
  t.tasks = 8;
  t.key_groups = 7;
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("key groups must be 8"));
  t.key_groups = 8;
  CHECK(ValidateJobSpec(t).ok());
  t.key_groups = kMaxKeyGroups + 1;
  CHECK_FALSE(ValidateJobSpec(t).ok());
  t.key_groups = 0;
  CHECK_FALSE(ValidateJobSpec(t).ok());
  // Autoscaling: a known policy; thresholds need 0 <= LW < HW; a cooldown and a task maximum in
  // range (at least the tasks, at most the key groups and kMaxTasksPerStage).
  t = s;
  t.autoscale = true;
  t.high_watermark = 100;
  CHECK(ValidateJobSpec(t).ok());
  CHECK(MaxTasks(t) == kMaxTasksPerStage);
  t.autoscale_policy = "magic";
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("thresholds or target"));
  t.autoscale_policy = "target";
  t.high_watermark = 0;
  CHECK(ValidateJobSpec(t).ok());  // the target policy needs no thresholds
  t.cooldown_ms = kMaxCooldownMs + 1;
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("cooldown"));
  t.cooldown_ms = 0;
  t.tasks = 4;
  t.key_groups = 16;
  CHECK(MaxTasks(t) == 16);
  t.max_tasks = 3;
  CHECK_THAT(ValidateJobSpec(t).message(), Catch::Contains("max tasks must be 4"));
  t.max_tasks = 17;
  CHECK_FALSE(ValidateJobSpec(t).ok());
  t.max_tasks = 16;
  CHECK(ValidateJobSpec(t).ok());
  CHECK(MaxTasks(t) == 16);
  t.autoscale = false;
  CHECK(MaxTasks(t) == 4);
}

TEST_CASE("an input has a CSV header when the spec says so, else when it is named *.csv",
          "[stream][job_spec]") {
  JobSpec s;
  CHECK(InputHasHeader(s, "data/signs.csv"));
  CHECK(InputHasHeader(s, "data/SIGNS.CSV"));
  CHECK(InputHasHeader(s, ".csv"));
  CHECK_FALSE(InputHasHeader(s, "data/signs.txt"));
  CHECK_FALSE(InputHasHeader(s, "csv"));
  CHECK_FALSE(InputHasHeader(s, "data/signs.csv.gz"));
  s.header = false;
  CHECK_FALSE(InputHasHeader(s, "data/signs.csv"));
  s.header = true;
  CHECK(InputHasHeader(s, "logs/app.log"));
}

}  // namespace rs::stream
