// Protocol tests of the built rainop-* executables: each test starts real processes (rs::Child)
// and speaks operators/PROTOCOL.md to them over pipes. RAINOP_DIR (set by meson) names the
// directory holding the executables; without it, the test binary's own directory is used.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <msgpack.hpp>
#include <random>

#include "shared/util/child.h"

namespace rs {
namespace {

using Tuple = std::pair<std::string, std::string>;

// prefix + number (spelled out: GCC 12 warns falsely on "k" + std::to_string(i)).
std::string Name(const char* prefix, size_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}
using Packer = msgpack::packer<msgpack::sbuffer>;
using Clock = std::chrono::steady_clock;

const std::string kHeader =
    "\xEF\xBB\xBFX,Y,OBJECTID,Sign_Type,Size_,Supplement,Sign_Post,Year_Insta,Category,Notes,"
    "MUTCD,Ownership,FACILITYID,Schools,Location_Adjusted,Replacement_Zone,Sign_Text,Set_ID,"
    "FieldVerifiedDate,GlobalID";
// Rows 1, 19 and 749 of the Champaign export.
const std::string kRowStreet =
    "-9822752.01226842,4887653.93470103,1,Streetname - Mast Arm,\"16\"\" X 42\"\"\", ,Traffic "
    "Signal Mast Arm, ,Streetname, ,D3-1,Champaign,1,,AERIAL,L,Mercury Dr,1,,"
    "{14F48419-04A7-4932-A850-884CA5DC67FA}";
const std::string kRowStop =
    "-9828647.69779254,4879492.90641255,19,Stop,\"30\"\"\", ,Unpunched Telespar,2010,Regulatory, "
    ",R1-1,Champaign,19,,AERIAL,E,,19,,{DC4E222F-61D4-496C-A612-5790AFF72FFD}";
const std::string kRowYield =
    "-9823158.12094014,4882303.68522775,749,Right Lane Must Yield,\"30\"\" X 48\"\"\", ,Sign "
    "Truss, ,Regulatory,,N/A,IDOT,766,,AERIAL,G,,581,,{7C5B8D0F-D2FA-4ADA-8769-6911014393BF}";

std::string OperatorPath(const std::string& name) {
  std::string dir;
  if (const char* env = std::getenv("RAINOP_DIR")) {
    dir = env;
  } else {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    dir = std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    dir = dir.substr(0, dir.rfind('/'));
  }
  return dir + "/rainop-" + name;
}

std::string Str(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

std::string Hello(std::optional<std::string> header, const std::vector<std::string>& args = {}) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(2);
  pk.pack(0);
  pk.pack_map(8);
  pk.pack("version");
  pk.pack(1);
  pk.pack("job");
  pk.pack("job-1");
  pk.pack("stage");
  pk.pack(1);
  pk.pack("stages");
  pk.pack(2);
  pk.pack("task");
  pk.pack(0);
  pk.pack("tasks");
  pk.pack(3);
  pk.pack("args");
  pk.pack(args);
  pk.pack("csv_header");
  if (header) {
    pk.pack(*header);
  } else {
    pk.pack_nil();
  }
  return Str(b);
}

std::string Batch(const std::vector<Tuple>& tuples) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(2);
  pk.pack(2);
  pk.pack(tuples);
  return Str(b);
}

// Values as tuples keyed "k0", "k1", ...
std::string BatchOf(const std::vector<std::string>& values) {
  std::vector<Tuple> tuples;
  for (size_t i = 0; i < values.size(); ++i) tuples.emplace_back(Name("k", i), values[i]);
  return Batch(tuples);
}

const std::string kSnapshot("\x91\x04", 2);

using GroupCounts = std::map<uint32_t, std::map<std::string, uint64_t>>;

std::string Restore(const GroupCounts& counts) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(2);
  pk.pack(6);
  pk.pack(counts);
  return Str(b);
}

// A batch whose tuples carry key groups: [2, tuples, groups].
std::string GroupedBatch(const std::vector<std::string>& values,
                         const std::vector<uint32_t>& groups) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(3);
  pk.pack(2);
  pk.pack_array(static_cast<uint32_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    pk.pack_array(2);
    pk.pack(Name("k", i));
    pk.pack(values[i]);
  }
  pk.pack(groups);
  return Str(b);
}

// One operator process: input is queued and written as the pipe accepts it while output is read,
// so any amount can be pipelined without a pipe deadlock.
class OpProcess {
 public:
  explicit OpProcess(const std::string& name, std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {OperatorPath(name)};
    argv.insert(argv.end(), args.begin(), args.end());
    ::signal(SIGPIPE, SIG_IGN);  // an operator that exits early must not kill the test
    ChildOptions options;
    options.pipe_stdin = true;
    Status s = child_.Start(argv, options);
    REQUIRE(s.ok());
    ::fcntl(child_.stdin_fd(), F_SETFL, ::fcntl(child_.stdin_fd(), F_GETFL) | O_NONBLOCK);
  }

  void Send(const std::string& bytes) { pending_ += bytes; }

  // Pumps until `n` more messages arrived (or the output ended, or 20 s passed).
  std::vector<msgpack::object_handle> Read(size_t n) {
    std::vector<msgpack::object_handle> msgs;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (msgs.size() < n && Clock::now() < deadline && !stdout_eof_) {
      Pump(100);
      msgpack::object_handle oh;
      while (msgs.size() < n && unpacker_.next(oh)) msgs.push_back(std::move(oh));
    }
    return msgs;
  }
  msgpack::object_handle ReadOne() {
    auto msgs = Read(1);
    REQUIRE(msgs.size() == 1);
    return std::move(msgs[0]);
  }

  // Sends what is queued, closes stdin, reads until the process exits; returns its exit.
  ChildExit Finish() {
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!pending_.empty() && !stdout_eof_ && Clock::now() < deadline) Pump(100);
    child_.CloseStdin();
    while ((!stdout_eof_ || !stderr_eof_) && Clock::now() < deadline) Pump(100);
    if (Clock::now() >= deadline) child_.Kill();
    return child_.Wait();
  }

  // Messages that arrived after the last Read (call after Finish).
  std::vector<msgpack::object_handle> Rest() {
    std::vector<msgpack::object_handle> msgs;
    msgpack::object_handle oh;
    while (unpacker_.next(oh)) msgs.push_back(std::move(oh));
    return msgs;
  }
  const std::string& err() const { return stderr_; }

 private:
  void Pump(int timeout_ms) {
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (!stdout_eof_) {
      fds[n] = {child_.stdout_fd(), POLLIN, 0};
      out_i = n++;
    }
    if (!stderr_eof_) {
      fds[n] = {child_.stderr_fd(), POLLIN, 0};
      err_i = n++;
    }
    if (!pending_.empty() && child_.stdin_fd() >= 0) {
      fds[n] = {child_.stdin_fd(), POLLOUT, 0};
      in_i = n++;
    }
    if (::poll(fds, n, timeout_ms) <= 0) return;
    if (in_i >= 0 && fds[in_i].revents != 0) {
      ssize_t w = ::write(child_.stdin_fd(), pending_.data(), pending_.size());
      if (w > 0) {
        pending_.erase(0, static_cast<size_t>(w));
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        pending_.clear();  // the operator is gone (EPIPE)
      }
    }
    if (out_i >= 0 && fds[out_i].revents != 0) {
      unpacker_.reserve_buffer(64 << 10);
      ssize_t r = ::read(child_.stdout_fd(), unpacker_.buffer(), unpacker_.buffer_capacity());
      if (r > 0) {
        unpacker_.buffer_consumed(static_cast<size_t>(r));
      } else if (r == 0) {
        stdout_eof_ = true;
      }
    }
    if (err_i >= 0 && fds[err_i].revents != 0) {
      char buf[4096];
      ssize_t r = ::read(child_.stderr_fd(), buf, sizeof(buf));
      if (r > 0) {
        stderr_.append(buf, static_cast<size_t>(r));
      } else if (r == 0) {
        stderr_eof_ = true;
      }
    }
  }

  Child child_;
  std::string pending_;
  msgpack::unpacker unpacker_;
  std::string stderr_;
  bool stdout_eof_ = false;
  bool stderr_eof_ = false;
};

int Type(const msgpack::object_handle& msg) {
  REQUIRE(msg->type == msgpack::type::ARRAY);
  REQUIRE(msg->via.array.size >= 1);
  return msg->via.array.ptr[0].as<int>();
}

std::map<std::string, msgpack::object> ReadyInfo(const msgpack::object_handle& msg) {
  REQUIRE(Type(msg) == 1);
  return msg->via.array.ptr[1].as<std::map<std::string, msgpack::object>>();
}

std::vector<std::vector<Tuple>> Outputs(const msgpack::object_handle& msg) {
  REQUIRE(Type(msg) == 3);
  std::vector<std::vector<Tuple>> outs;
  for (const auto& per_input : msg->via.array.ptr[1].as<std::vector<msgpack::object>>()) {
    outs.push_back(per_input.as<std::vector<Tuple>>());
  }
  return outs;
}

// The values of the tuples each input produced, flattened; "-" for an input with no output.
std::vector<std::string> Values(const msgpack::object_handle& msg) {
  std::vector<std::string> values;
  for (const auto& outs : Outputs(msg)) {
    if (outs.empty()) values.push_back("-");
    for (const auto& t : outs) values.push_back(t.second);
  }
  return values;
}

struct RunResult {
  ChildExit exit;
  std::string err;
  std::vector<msgpack::object_handle> msgs;
};

// Starts an operator, sends `input`, closes stdin and collects everything.
RunResult RunWith(const std::string& name, const std::vector<std::string>& args,
                  const std::string& input) {
  OpProcess p(name, args);
  p.Send(input);
  RunResult r;
  r.exit = p.Finish();
  r.err = p.err();
  r.msgs = p.Rest();
  return r;
}

}  // namespace

TEST_CASE("each operator answers hello with its ready info", "[operators]") {
  {
    OpProcess p("identity");
    p.Send(Hello(std::nullopt));
    auto ready = p.ReadOne();  // owns the objects `info` points into
    auto info = ReadyInfo(ready);
    CHECK_FALSE(info.at("stateful").as<bool>());
    CHECK(info.at("input_partition").as<std::string>() == "key");
    CHECK(info.at("name").as<std::string>() == "identity");
    CHECK(p.Finish().code == 0);
  }
  {
    OpProcess p("count", {"Sign_Type"});
    p.Send(Hello(kHeader, {"Sign_Type"}));
    auto ready = p.ReadOne();  // owns the objects `info` points into
    auto info = ReadyInfo(ready);
    CHECK(info.at("stateful").as<bool>());
    CHECK(info.at("input_partition").as<std::map<std::string, int>>() ==
          std::map<std::string, int>{{"csv_column", 3}});
    CHECK(info.at("name").as<std::string>() == "count Sign_Type");
    CHECK(info.at("keyed_state").as<bool>());
    CHECK(p.Finish().code == 0);
  }
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"grep", {"-i", "stop"}}, {"select", {"0-2"}}}) {
    OpProcess p(name, args);
    p.Send(Hello(std::nullopt, args));
    auto ready = p.ReadOne();  // owns the objects `info` points into
    auto info = ReadyInfo(ready);
    CHECK_FALSE(info.at("stateful").as<bool>());
    CHECK(info.at("input_partition").as<std::string>() == "key");
    CHECK(p.Finish().code == 0);
  }
}

TEST_CASE("pipelined batches get one result each, in order, one output list per tuple",
          "[operators]") {
  OpProcess p("identity");
  std::string input = Hello(std::nullopt);
  for (int b = 0; b < 20; ++b) {
    std::vector<Tuple> tuples;
    for (int i = 0; i <= b; ++i) tuples.emplace_back(Name("b", b), std::to_string(i));
    input += Batch(tuples);
  }
  p.Send(input);  // everything before reading anything
  auto msgs = p.Read(21);
  REQUIRE(msgs.size() == 21);
  CHECK(Type(msgs[0]) == 1);
  for (int b = 0; b < 20; ++b) {
    auto outs = Outputs(msgs[b + 1]);
    REQUIRE(outs.size() == static_cast<size_t>(b + 1));
    for (int i = 0; i <= b; ++i) {
      CHECK(outs[i] == std::vector<Tuple>{{Name("b", b), std::to_string(i)}});
    }
  }
  CHECK(p.Finish().code == 0);
}

TEST_CASE("count emits running counts, snapshots them and continues after a restore",
          "[operators]") {
  GroupCounts state;
  {
    OpProcess p("count", {"Sign_Type"});
    std::vector<std::string> rows = {kHeader};
    for (int i = 0; i < 10; ++i) rows.push_back(kRowStop);
    rows.push_back(kRowStreet);
    rows.push_back(kRowYield);
    p.Send(Hello(kHeader) + BatchOf(rows) + kSnapshot);
    auto msgs = p.Read(3);
    REQUIRE(msgs.size() == 3);
    auto outs = Outputs(msgs[1]);
    REQUIRE(outs.size() == 13);
    CHECK(outs[0].empty());  // the header line
    CHECK(outs[1] == std::vector<Tuple>{{"Stop", "Stop,1"}});
    CHECK(outs[10] == std::vector<Tuple>{{"Stop", "Stop,10"}});
    CHECK(outs[11] == std::vector<Tuple>{{"Streetname - Mast Arm", "Streetname - Mast Arm,1"}});
    REQUIRE(Type(msgs[2]) == 5);
    // Keyed state: a batch without groups is all group 0.
    state = msgs[2]->via.array.ptr[1].as<GroupCounts>();
    CHECK(state == GroupCounts{{0,
                                {{"Stop", 10},
                                 {"Streetname - Mast Arm", 1},
                                 {"Right Lane Must Yield", 1}}}});
    CHECK(p.Finish().code == 0);
  }
  {
    // A rebuilt task: the same operator, restored, continues from the counts.
    OpProcess p("count", {"3"});
    p.Send(Hello(kHeader) + Restore(state) + BatchOf({kRowStop, kRowYield, kRowStop}) + kSnapshot);
    auto msgs = p.Read(3);
    REQUIRE(msgs.size() == 3);
    CHECK(Values(msgs[1]) ==
          std::vector<std::string>{"Stop,11", "Right Lane Must Yield,2", "Stop,12"});
    CHECK(msgs[2]->via.array.ptr[1].as<GroupCounts>().at(0).at("Stop") == 12);
    CHECK(p.Finish().code == 0);
  }
  {
    // Counts are kept per key group: the same value in two groups counts apart (a worker never
    // does that; it shows the groups are apart), and the snapshot holds each group.
    OpProcess p("count", {"3"});
    p.Send(Hello(kHeader) + GroupedBatch({kRowStop, kRowStop, kRowYield, kRowStop}, {4, 9, 4, 4}) +
           kSnapshot);
    auto msgs = p.Read(3);
    REQUIRE(msgs.size() == 3);
    CHECK(Values(msgs[1]) ==
          std::vector<std::string>{"Stop,1", "Stop,1", "Right Lane Must Yield,1", "Stop,2"});
    GroupCounts by_group = msgs[2]->via.array.ptr[1].as<GroupCounts>();
    CHECK(by_group ==
          GroupCounts{{4, {{"Stop", 2}, {"Right Lane Must Yield", 1}}}, {9, {{"Stop", 1}}}});
    CHECK(p.Finish().code == 0);
    // Restored, each group continues its own count.
    OpProcess q("count", {"3"});
    q.Send(Hello(kHeader) + Restore(by_group) + GroupedBatch({kRowStop, kRowStop}, {9, 4}));
    CHECK(Values(q.Read(2).at(1)) == std::vector<std::string>{"Stop,2", "Stop,3"});
    CHECK(q.Finish().code == 0);
  }
  {
    // Groups that are not one uint per tuple are a protocol error.
    auto r = RunWith("count", {"3"}, Hello(kHeader) + GroupedBatch({kRowStop}, {1, 2}));
    CHECK(r.exit.code == 2);
  }
  {
    // A value that needs quoting is quoted in the output value, raw in the key.
    OpProcess p("count", {"1"});
    p.Send(Hello(std::nullopt) + BatchOf({"a,\"x,y\"", "b,\"x,y\""}));
    auto outs = Outputs(p.Read(2).at(1));
    CHECK(outs[1] == std::vector<Tuple>{{"x,y", "\"x,y\",2"}});
    CHECK(p.Finish().code == 0);
  }
  {
    auto r = RunWith("count", {"1"}, Hello(std::nullopt) + std::string("\x92\x06\x91\x01", 4));
    CHECK(r.exit.code == 2);
    CHECK_THAT(r.err, Catch::Contains("count state"));
  }
}

TEST_CASE("grep filters real rows by value or by a named column", "[operators]") {
  std::vector<std::string> rows = {kHeader, kRowStreet, kRowStop, kRowYield};
  auto run = [&](std::vector<std::string> args) {
    OpProcess p("grep", args);
    p.Send(Hello(kHeader, args) + BatchOf(rows));
    auto msgs = p.Read(2);
    REQUIRE(msgs.size() == 2);
    CHECK(p.Finish().code == 0);
    std::vector<int> kept;
    auto outs = Outputs(msgs[1]);
    for (size_t i = 0; i < outs.size(); ++i) {
      if (outs[i].empty()) continue;
      CHECK(outs[i] == std::vector<Tuple>{{Name("k", i), rows[i]}});
      kept.push_back(static_cast<int>(i));
    }
    return kept;
  };
  using Kept = std::vector<int>;
  CHECK(run({"Stop"}) == Kept{2});
  CHECK(run({"-i", "STOP"}) == Kept{2});
  CHECK(run({"-v", "Stop"}) == Kept{0, 1, 3});  // by value: the header is an ordinary tuple
  CHECK(run({"-E", "Mast Arm|Yield"}) == Kept{1, 3});
  CHECK(run({"-E", "-i", "^right lane"}) == Kept{});
  CHECK(run({"--column", "Sign_Type", "-E", "-i", "^right lane"}) == Kept{3});
  CHECK(run({"--column", "Sign_Type", "-v", "Stop"}) == Kept{1, 3});  // header skipped
  CHECK(run({"--column", "3", "-v", "Stop"}) == Kept{0, 1, 3});       // by index: not skipped
  CHECK(run({"--column", "Ownership", "IDOT"}) == Kept{3});
  // -x: the whole column must match (equality, or an anchored regex).
  CHECK(run({"-x", "--column", "Sign_Type", "Stop"}) == Kept{2});
  CHECK(run({"-x", "--column", "Sign_Type", "Sto"}) == Kept{});
  CHECK(run({"-x", "-i", "--column", "Sign_Type", "STOP"}) == Kept{2});
  CHECK(run({"-x", "-E", "--column", "Category", "Regulatory|Streetname"}) == Kept{1, 2, 3});
  CHECK(run({"-x", "-E", "--column", "Sign_Post", "Telespar"}) == Kept{});
  CHECK(run({"-x", "Stop"}) == Kept{});  // the whole line is not "Stop"
}

TEST_CASE("select emits named columns and ranges as csv", "[operators]") {
  std::vector<std::string> rows = {kHeader, kRowStreet, "short"};
  {
    OpProcess p("select", {"OBJECTID,Sign_Type,Size_"});
    p.Send(Hello(kHeader) + BatchOf(rows));
    auto msgs = p.Read(2);
    REQUIRE(msgs.size() == 2);
    CHECK(Values(msgs[1]) ==
          std::vector<std::string>{"-", "1,Streetname - Mast Arm,\"16\"\" X 42\"\"\"", ",,"});
    CHECK(Outputs(msgs[1])[1][0].first == "k1");
    CHECK(p.Finish().code == 0);
  }
  {
    OpProcess p("select", {"2-3,0"});
    p.Send(Hello(kHeader) + BatchOf(rows));
    auto msgs = p.Read(2);
    REQUIRE(msgs.size() == 2);
    CHECK(Values(msgs[1]) == std::vector<std::string>{"OBJECTID,Sign_Type,\xEF\xBB\xBFX",
                                                      "1,Streetname - Mast Arm,-9822752.01226842",
                                                      ",,short"});
    CHECK(p.Finish().code == 0);
  }
}

TEST_CASE("operators explain themselves and refuse bad arguments", "[operators]") {
  for (const std::string name : {"identity", "grep", "select", "count"}) {
    Child c;
    REQUIRE(c.Start({OperatorPath(name), "--help"}).ok());
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = ::read(c.stdout_fd(), buf, sizeof(buf))) > 0) out.append(buf, r);
    CHECK(c.Wait().code == 0);
    CHECK_THAT(out, Catch::Contains("usage: rainop-" + name));
    if (name != "identity") CHECK_THAT(out, Catch::Contains("0-based"));
  }
  auto refused = [](const std::string& name, std::vector<std::string> args) {
    auto r = RunWith(name, args, "");
    CHECK(r.exit.code == 2);
    CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
    return r.err;
  };
  CHECK_THAT(refused("grep", {}), Catch::Contains("rainop-grep: missing PATTERN"));
  CHECK_THAT(refused("grep", {"-E", "("}), Catch::Contains("bad regular expression"));
  CHECK_THAT(refused("select", {"3-1"}), Catch::Contains("descending"));
  CHECK_THAT(refused("count", {}), Catch::Contains("COL"));
  CHECK_THAT(refused("identity", {"x"}), Catch::Contains("no arguments"));
  // Names are resolved at hello.
  auto r = RunWith("select", {"OBJECTID,Nope"}, Hello(kHeader));
  CHECK(r.exit.code == 2);
  CHECK_THAT(r.err, Catch::Contains("unknown column 'Nope'"));
  CHECK(r.msgs.empty());
  r = RunWith("count", {"Sign_Type"}, Hello(std::nullopt));
  CHECK(r.exit.code == 2);
  CHECK_THAT(r.err, Catch::Contains("no CSV header"));
}

TEST_CASE("operators exit 0 at end of input and 2 on bad input", "[operators]") {
  auto ok = RunWith("identity", {}, Hello(std::nullopt) + BatchOf({"a", "b"}));
  CHECK(ok.exit.code == 0);
  CHECK_FALSE(ok.exit.signaled);
  CHECK(ok.msgs.size() == 2);  // every batch read is answered before the exit
  CHECK(ok.err.empty());

  CHECK(RunWith("identity", {}, "").exit.code == 0);

  auto early = RunWith("grep", {"x"}, BatchOf({"a"}));
  CHECK(early.exit.code == 2);
  CHECK_THAT(early.err, Catch::Contains("batch before hello"));

  auto garbage = RunWith("select", {"0"}, Hello(std::nullopt) + "\xc1garbage");
  CHECK(garbage.exit.code == 2);
  CHECK_THAT(garbage.err, Catch::Contains("rainop-select: "));
  CHECK(garbage.msgs.size() == 1);  // the ready

  auto not_array = RunWith("count", {"0"}, std::string("\xa5hello"));
  CHECK(not_array.exit.code == 2);
  CHECK_THAT(not_array.err, Catch::Contains("not an array"));

  auto truncated = RunWith("identity", {}, Hello(std::nullopt).substr(0, 9));
  CHECK(truncated.exit.code == 2);
  CHECK_THAT(truncated.err, Catch::Contains("ends inside a message"));

  std::mt19937 rng(99);
  for (int round = 0; round < 30; ++round) {
    std::string input = round % 2 ? Hello(kHeader) : "";
    size_t len = 1 + rng() % 200;
    for (size_t i = 0; i < len; ++i) input.push_back(static_cast<char>(rng()));
    auto r = RunWith(round % 3 == 0 ? "count" : "grep", {round % 3 == 0 ? "1" : "a"}, input);
    INFO("round " << round << ": " << r.exit.ToString() << ", stderr: " << r.err);
    CHECK_FALSE(r.exit.signaled);
    CHECK((r.exit.code == 0 || r.exit.code == 2));
    if (r.exit.code == 2) CHECK_FALSE(r.err.empty());
  }
}

TEST_CASE("identity throughput with batches of 1000 (a figure, not a limit)", "[operators]") {
  constexpr int kBatches = 300;
  constexpr int kBatchSize = 1000;
  std::vector<Tuple> tuples;
  for (int i = 0; i < kBatchSize; ++i) tuples.emplace_back("key" + std::to_string(i), kRowStop);
  const std::string batch = Batch(tuples);
  OpProcess p("identity");
  p.Send(Hello(std::nullopt));
  p.ReadOne();
  auto start = Clock::now();
  constexpr int kWindow = 8;  // batches in flight, as a worker would pipeline them
  int sent = 0, received = 0;
  while (received < kBatches) {
    while (sent < kBatches && sent - received < kWindow) {
      p.Send(batch);
      ++sent;
    }
    auto msgs = p.Read(1);
    REQUIRE(msgs.size() == 1);
    REQUIRE(Type(msgs[0]) == 3);
    REQUIRE(msgs[0]->via.array.ptr[1].via.array.size == kBatchSize);
    ++received;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  double rate = kBatches * kBatchSize / seconds;
  std::printf(
      "rainop-identity: %d tuples (%zu-byte values, batches of %d) in %.3f s: %.0f tuples/s\n",
      kBatches * kBatchSize, kRowStop.size(), kBatchSize, seconds, rate);
  CHECK(p.Finish().code == 0);
}

}  // namespace rs
