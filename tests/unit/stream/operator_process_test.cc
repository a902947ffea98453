// OperatorProcess against real operator processes: the built-in rainop-* executables (found in
// <build>/operators/builtin, beside this test's <build>/tests/unit, or $RAINOP_DIR), the Python
// upper.py from the source tree, and small broken operators written inline in sh and python3.
#include "daemon/stream/operator_process.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "shared/stream/key_groups.h"
#include "tests/unit/stream/rainop_path.h"

namespace rs::stream {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const char kPython[] = "/usr/bin/python3";

// A fast preset: broken operators are detected in well under a second.
OperatorProcessOptions FastOptions() {
  ::signal(SIGPIPE, SIG_IGN);  // as raind does: a dead operator must not kill the test
  OperatorProcessOptions o;
  o.hello_timeout = 3000ms;
  o.batch_timeout = 3000ms;
  o.finish_timeout = 3000ms;
  o.max_in_flight = 8;
  return o;
}

std::unique_ptr<OperatorProcess> MustStart(const std::vector<std::string>& argv,
                                           const OperatorProcessOptions& options,
                                           OperatorContext ctx = {}) {
  auto p = OperatorProcess::Start(argv, ctx, options);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  return std::move(p).value();
}

bool ProcessGone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

std::string Name(const char* prefix, size_t i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

// A python3 operator: answers hello with `ready` (a Python expression), then runs `on_batch`
// (statements with `msg` bound) for every batch.
std::vector<std::string> PythonOperator(const std::string& ready, const std::string& on_batch) {
  std::string script =
      "import sys, msgpack\n"
      "out = sys.stdout.buffer\n"
      "for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):\n"
      "    if msg[0] == 0:\n"
      "        out.write(msgpack.packb([1, " +
      ready +
      "]))\n"
      "    elif msg[0] == 2:\n"
      "        " +
      on_batch +
      "\n"
      "    out.flush()\n";
  return {kPython, "-c", script};
}

TEST_CASE("hello reaches the operator and its ready fields come back", "[stream]") {
  auto options = FastOptions();
  auto identity = MustStart({RainopPath("identity")}, options);
  CHECK_FALSE(identity->ready().stateful);
  CHECK_FALSE(identity->ready().csv_column.has_value());
  CHECK(identity->ready().name.find("identity") != std::string::npos);
  CHECK(identity->Finish().ok());

  OperatorContext ctx;
  ctx.job = "job-1";
  ctx.stage = 1;
  ctx.stages = 2;
  ctx.args = {"city"};
  ctx.csv_header = "id,city";
  auto count = MustStart({RainopPath("count"), "city"}, options, ctx);
  CHECK(count->ready().stateful);
  REQUIRE(count->ready().csv_column.has_value());
  CHECK(*count->ready().csv_column == 1);  // "city" resolved against the hello's csv_header
  CHECK(count->Finish().ok());

  // The python SDK: upper.py in the source tree.
  auto upper = MustStart({kPython, RS_SOURCE_ROOT "/operators/python/upper.py"}, options);
  CHECK(upper->ready().name == "upper");
  REQUIRE(upper->SendBatch({{"k", "hello"}, {"k2", "world"}}).ok());
  auto r = upper->NextResult();
  REQUIRE(r.ok());
  CHECK(*r == std::vector<Tuples>{{{"k", "HELLO"}}, {{"k2", "WORLD"}}});
  CHECK(upper->Finish().ok());
}

TEST_CASE("pipelined batches come back in order, also when they exceed the pipes", "[stream]") {
  auto options = FastOptions();
  auto p = MustStart({RainopPath("identity")}, options);
  constexpr size_t kBatches = 300, kTuples = 40;
  size_t sent = 0, received = 0;
  while (received < kBatches) {
    if (sent < kBatches && p->in_flight() < options.max_in_flight) {
      Tuples batch;
      for (size_t i = 0; i < kTuples; ++i) batch.emplace_back(Name("b", sent), Name("v", i));
      REQUIRE(p->SendBatch(batch).ok());
      ++sent;
      continue;
    }
    auto r = p->NextResult();
    REQUIRE(r.ok());
    REQUIRE(r->size() == kTuples);
    CHECK((*r)[0] == Tuples{{Name("b", received), "v0"}});
    CHECK((*r)[kTuples - 1] == Tuples{{Name("b", received), Name("v", kTuples - 1)}});
    ++received;
  }
  CHECK(p->SendBatch({{"k", "v"}}).ok());
  for (size_t i = 1; i < options.max_in_flight; ++i) REQUIRE(p->SendBatch({{"k", "v"}}).ok());
  CHECK(p->SendBatch({{"k", "v"}}).code() == StatusCode::kFailedPrecondition);
  for (size_t i = 0; i < options.max_in_flight; ++i) REQUIRE(p->NextResult().ok());

  // Four 1 MiB batches in flight: the operator's answers fill stdout while stdin is written.
  std::string big(1000, 'x');
  Tuples batch;
  for (size_t i = 0; i < 1000; ++i) batch.emplace_back(Name("k", i), big);
  for (int i = 0; i < 4; ++i) REQUIRE(p->SendBatch(batch).ok());
  for (int i = 0; i < 4; ++i) {
    auto r = p->NextResult();
    REQUIRE(r.ok());
    CHECK((*r)[999] == Tuples{{"k999", big}});
  }
  CHECK(p->Finish().ok());
}

TEST_CASE("grep keeps only the matching tuples, one output list per input", "[stream]") {
  auto p = MustStart({RainopPath("grep"), "foo"}, FastOptions());
  REQUIRE(p->SendBatch({{"1", "a foo"}, {"2", "bar"}, {"3", "foofoo"}}).ok());
  auto r = p->NextResult();
  REQUIRE(r.ok());
  CHECK(*r == std::vector<Tuples>{{{"1", "a foo"}}, {}, {{"3", "foofoo"}}});
  CHECK(p->Finish().ok());
}

TEST_CASE("a count snapshot restored into a new process continues the count", "[stream]") {
  auto options = FastOptions();
  std::string state;
  {
    auto p = MustStart({RainopPath("count"), "0"}, options);
    Tuples batch;
    for (int i = 0; i < 10; ++i) batch.emplace_back("k", "x");
    REQUIRE(p->SendBatch(batch).ok());
    auto r = p->NextResult();
    REQUIRE(r.ok());
    CHECK((*r)[9] == Tuples{{"x", "x,10"}});
    auto s = p->Snapshot();
    REQUIRE(s.ok());
    state = *s;
    CHECK(p->Finish().ok());
  }
  auto p = MustStart({RainopPath("count"), "0"}, options);
  REQUIRE(p->Restore(state).ok());
  CHECK(p->Restore(state).code() == StatusCode::kFailedPrecondition);  // at most once
  REQUIRE(p->SendBatch({{"k", "x"}, {"k", "y"}}).ok());
  auto r = p->NextResult();
  REQUIRE(r.ok());
  CHECK(*r == std::vector<Tuples>{{{"x", "x,11"}}, {{"y", "y,1"}}});
  CHECK(p->Finish().ok());

  auto identity = MustStart({RainopPath("identity")}, options);
  CHECK(identity->Snapshot().status().code() == StatusCode::kFailedPrecondition);
  CHECK(identity->Restore(state).code() == StatusCode::kFailedPrecondition);
}

// Feeds `values` (each its own key) of key group `group` and returns the last output's value.
std::string CountIn(OperatorProcess& p, uint32_t group, const std::vector<std::string>& values) {
  std::vector<TupleView> views;
  std::vector<uint32_t> groups;
  for (const auto& v : values) {
    views.emplace_back(v, v);
    groups.push_back(group);
  }
  REQUIRE(p.SendBatchViews(views.data(), views.size(), groups.data()).ok());
  auto r = p.NextResult();
  REQUIRE(r.ok());
  REQUIRE(r->size() == values.size());
  REQUIRE(!r->back().empty());
  return r->back().back().second;
}

// A regroup moves key groups between two running operators of one stage (PROTOCOL.md
// "Regroup"): the giver drops a group, the taker gets its state and counts on from it.
void CheckRegroup(const std::vector<std::string>& argv, const std::string& one_x,
                  const std::string& four_x, const std::string& three_y) {
  auto options = FastOptions();
  OperatorContext ctx;
  ctx.key_groups = 4;
  auto a = MustStart(argv, options, ctx);
  auto b = MustStart(argv, options, ctx);
  REQUIRE(a->ready().regroup);
  CHECK(CountIn(*a, 1, {"x", "x", "x"}) == "x,3");
  CHECK(CountIn(*a, 2, {"y", "y"}) == "y,2");
  auto whole = a->Snapshot();
  REQUIRE(whole.ok());
  auto split = SplitKeyedState(*whole);
  REQUIRE(split.ok());
  REQUIRE(split->count(1) == 1);
  // a gives group 1 up, b takes it.
  REQUIRE(a->Regroup(JoinKeyedState({{1, std::string("\xc0", 1)}})).ok());
  REQUIRE(b->Regroup(JoinKeyedState({{1, split->at(1)}})).ok());
  CHECK(CountIn(*b, 1, {"x"}) == four_x);
  CHECK(CountIn(*a, 2, {"y"}) == three_y);
  // a no longer holds group 1: its snapshot lists only group 2, and a new x starts at 1.
  auto after = a->Snapshot();
  REQUIRE(after.ok());
  auto groups = SplitKeyedState(*after);
  REQUIRE(groups.ok());
  CHECK(groups->count(1) == 0);
  CHECK(groups->count(2) == 1);
  CHECK(CountIn(*a, 1, {"x"}) == one_x);
  // Not one MessagePack map: refused before it is sent.
  CHECK(a->Regroup("\x01").code() == StatusCode::kInvalidArgument);
  CHECK(a->Finish().ok());
  CHECK(b->Finish().ok());
}

TEST_CASE("count and the Python SDK take groups over and give them up while they run",
          "[stream][regroup]") {
  CheckRegroup({RainopPath("count"), "0"}, "x,1", "x,4", "y,3");
  CheckRegroup({kPython, RS_SOURCE_ROOT "/operators/python/wordcount.py"}, "x,1", "x,4", "y,3");
  // An operator that did not offer it is never sent one.
  auto identity = MustStart({RainopPath("identity")}, FastOptions());
  CHECK(identity->Regroup(JoinKeyedState({})).code() == StatusCode::kFailedPrecondition);
  CHECK(identity->Finish().ok());
  // A regroup the operator cannot take fails it (exit 2, seen at the next call).
  OperatorContext ctx;
  ctx.key_groups = 4;
  auto count = MustStart({RainopPath("count"), "0"}, FastOptions(), ctx);
  REQUIRE(count->Regroup(JoinKeyedState({{1, std::string("\x05", 1)}})).ok());
  // The next call sees it: the send when the operator already exited (a broken pipe), else the
  // result (a race with the operator's exit that the loaded CI machine ran both ways).
  Status sent = count->SendBatch({{"k", "x"}});
  Status failure = sent.ok() ? count->NextResult().status() : sent;
  INFO(failure.ToString());
  REQUIRE_FALSE(failure.ok());
  CHECK(failure.message().find("exit code 2") != std::string::npos);
}

TEST_CASE("an operator that exits mid-stream is reported with its exit code and stderr",
          "[stream]") {
  auto p = MustStart(
      PythonOperator("{'name': 'dies'}", "print('boom: bad tuple', file=sys.stderr); sys.exit(3)"),
      FastOptions());
  pid_t pid = p->pid();
  REQUIRE(p->SendBatch({{"k", "v"}}).ok());
  auto start = std::chrono::steady_clock::now();
  auto r = p->NextResult();
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK(r.status().message().find("exit code 3") != std::string::npos);
  CHECK(r.status().message().find("boom: bad tuple") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(ProcessGone(pid));
  // Sticky: every later call reports the same failure.
  CHECK(p->SendBatch({{"k", "v"}}) == r.status());

  // Exits while a batch larger than the pipe is being written: SendBatch or NextResult says so.
  auto early = MustStart(PythonOperator("{'name': 'early'}", "sys.exit(5)"), FastOptions());
  REQUIRE(early->SendBatch({{"k", "v"}}).ok());
  Status sent = early->SendBatch({{"k", std::string(1 << 20, 'x')}});
  Status failure = sent.ok() ? early->NextResult().status() : sent;
  INFO(failure.ToString());
  CHECK(failure.code() == StatusCode::kUnavailable);
  CHECK(failure.message().find("exit code 5") != std::string::npos);

  // Exits non-zero at the end of its input: Finish reports it.
  auto at_end = MustStart({kPython, "-c",
                           "import sys, msgpack\n"
                           "for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):\n"
                           "    sys.stdout.buffer.write(msgpack.packb([1, {}])); "
                           "sys.stdout.flush()\n"
                           "sys.stderr.write('flush failed\\n'); sys.exit(4)\n"},
                          FastOptions());
  Status finished = at_end->Finish();
  INFO(finished.ToString());
  CHECK(finished.code() == StatusCode::kUnavailable);
  CHECK(finished.message().find("exit code 4 at the end of its input") != std::string::npos);
  CHECK(finished.message().find("flush failed") != std::string::npos);

  // One that cannot even be executed.
  auto missing = OperatorProcess::Start({"/nonexistent/rainop"}, {}, FastOptions());
  REQUIRE_FALSE(missing.ok());
  INFO(missing.status().ToString());
  CHECK(missing.status().code() == StatusCode::kIOError);
  CHECK(missing.status().message().find("cannot execute /nonexistent/rainop: No such file") !=
        std::string::npos);
}

TEST_CASE("an idle operator that dies is noticed between batches", "[stream]") {
  auto p = MustStart({RainopPath("identity")}, FastOptions());
  REQUIRE(p->SendBatch({{"k", "v"}}).ok());
  REQUIRE(p->NextResult().ok());
  CHECK(p->CheckIdle().ok());  // alive and idle
  pid_t pid = p->pid();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  Status st;
  for (int i = 0; i < 200 && st.ok(); ++i) {
    std::this_thread::sleep_for(10ms);
    st = p->CheckIdle();
  }
  INFO(st.ToString());
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK(st.message().find("between batches") != std::string::npos);
  CHECK(p->SendBatch({{"k", "v"}}) == st);  // sticky
  // A finished operator is not a failed one.
  auto done = MustStart({RainopPath("identity")}, FastOptions());
  REQUIRE(done->Finish().ok());
  CHECK(done->CheckIdle().ok());
}

TEST_CASE("an operator that hangs times out within the deadline and is killed", "[stream]") {
  auto options = FastOptions();
  options.hello_timeout = 300ms;
  options.batch_timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto r = OperatorProcess::Start({"sleep", "30"}, {}, options);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kTimeout);
  CHECK(took >= 300ms);
  CHECK(took < 10s);  // the deadline, not the operator's 30 s (generous: shared machines)

  // Hangs after ready: the batch's result times out; the process group is gone. (python3 may
  // take more than 300 ms to start on a loaded machine: only the batch deadline is short.)
  options.hello_timeout = 20s;
  auto p = MustStart(PythonOperator("{'name': 'hangs'}",
                                    "print('stuck', file=sys.stderr, flush=True); "
                                    "import time; time.sleep(30)"),
                     options);
  pid_t pid = p->pid();
  REQUIRE(p->SendBatch({{"k", "v"}}).ok());
  start = std::chrono::steady_clock::now();
  auto result = p->NextResult();
  took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(result.ok());
  INFO(result.status().ToString());
  CHECK(result.status().code() == StatusCode::kTimeout);
  CHECK(result.status().message().find("stuck") != std::string::npos);
  CHECK(took < 10s);
  CHECK(ProcessGone(pid));
}

TEST_CASE("bytes that break the protocol are Corruption, quickly", "[stream]") {
  auto options = FastOptions();
  auto start = std::chrono::steady_clock::now();
  auto garbage = OperatorProcess::Start({"sh", "-c", "echo garbage; sleep 5"}, {}, options);
  REQUIRE_FALSE(garbage.ok());
  INFO(garbage.status().ToString());
  CHECK(garbage.status().code() == StatusCode::kCorruption);
  CHECK(std::chrono::steady_clock::now() - start < 1s);

  // Undecodable: 0xc1 is never used in MessagePack.
  auto undecodable = OperatorProcess::Start({"sh", "-c", "printf '\\301'; sleep 5"}, {}, options);
  REQUIRE_FALSE(undecodable.ok());
  INFO(undecodable.status().ToString());
  CHECK(undecodable.status().code() == StatusCode::kCorruption);

  // A result with one output list too few.
  auto p = MustStart(PythonOperator("{'name': 'short'}",
                                    "out.write(msgpack.packb([3, [[]] * (len(msg[1]) - 1)]))"),
                     options);
  pid_t pid = p->pid();
  REQUIRE(p->SendBatch({{"a", "1"}, {"b", "2"}, {"c", "3"}}).ok());
  auto r = p->NextResult();
  REQUIRE_FALSE(r.ok());
  INFO(r.status().ToString());
  CHECK(r.status().code() == StatusCode::kCorruption);
  CHECK(r.status().message().find("2 outputs for 3 input tuples") != std::string::npos);
  CHECK(ProcessGone(pid));

  // A key that is not a string.
  auto q = MustStart(PythonOperator("{'name': 'intkey'}",
                                    "out.write(msgpack.packb([3, [[[1, 'v']] for t in msg[1]]]))"),
                     options);
  REQUIRE(q->SendBatch({{"a", "1"}}).ok());
  CHECK(q->NextResult().status().code() == StatusCode::kCorruption);

  // A ready that is not a ready.
  auto state_first = OperatorProcess::Start(
      {kPython, "-c",
       "import sys, msgpack\nsys.stdout.buffer.write(msgpack.packb([5, 1]))\n"
       "sys.stdout.flush()\nimport time\ntime.sleep(5)\n"},
      {}, options);
  REQUIRE_FALSE(state_first.ok());
  CHECK(state_first.status().code() == StatusCode::kCorruption);
}

TEST_CASE("stderr lines go to the log with a timestamp, and a chatty operator never blocks",
          "[stream]") {
  auto dir = fs::temp_directory_path() / ("rs_opproc_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto options = FastOptions();
  options.log_path = (dir / "task.log").string();
  // 400 KB of stderr before ready (more than a pipe holds), then per batch a line.
  auto p = MustStart(
      {kPython, "-c",
       "import sys, msgpack\n"
       "out = sys.stdout.buffer\n"
       "for msg in msgpack.Unpacker(sys.stdin.buffer.raw, raw=False):\n"
       "    if msg[0] == 0:\n"
       "        for i in range(4000): sys.stderr.write('chatter %d %s\\n' % (i, 'x' * 90))\n"
       "        sys.stderr.flush()\n"
       "        out.write(msgpack.packb([1, {'name': 'chatty'}]))\n"
       "    elif msg[0] == 2:\n"
       "        sys.stderr.write('got %d tuples\\n' % len(msg[1])); sys.stderr.flush()\n"
       "        out.write(msgpack.packb([3, [[t] for t in msg[1]]]))\n"
       "    out.flush()\n"
       "sys.stderr.write('bye without newline')\n"},
      options);
  REQUIRE(p->SendBatch({{"k", "v"}, {"k", "w"}}).ok());
  REQUIRE(p->NextResult().ok());
  Status finished = p->Finish();
  INFO(finished.ToString());
  REQUIRE(finished.ok());
  p.reset();

  std::ifstream in(options.log_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4002);
  // "2024-05-01T12:00:00.123Z chatter 0 xxx..."
  CHECK(lines[0].size() > 25);
  CHECK(lines[0][4] == '-');
  CHECK(lines[0][10] == 'T');
  CHECK(lines[0][23] == 'Z');
  CHECK(lines[0].substr(25, 10) == "chatter 0 ");
  CHECK(lines[4000].substr(25) == "got 2 tuples");
  CHECK(lines[4001].substr(25) == "bye without newline");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rs::stream

namespace rs::stream {

// Deadlines measure progress: a batch's clock starts at its send or at the previous answer,
// whichever is later. Eight pipelined batches of an operator taking 0.2 s each take 1.6 s in
// all, over a 0.5 s batch_timeout; each is answered 0.2 s after the one before, so none is late.
// A silent operator still fails at the first batch's deadline.
TEST_CASE("a slow operator that keeps answering is never past its deadline; a silent one is",
          "[stream][operator_process]") {
  auto options = FastOptions();
  options.batch_timeout = 500ms;
  auto slow =
      MustStart(PythonOperator("{'name': 'slow'}",
                               "import time; time.sleep(0.2); "
                               "out.write(msgpack.packb([3, [[[k, v]] for k, v in msg[1]]]))"),
                options);
  for (int i = 0; i < 8; ++i) REQUIRE(slow->SendBatch({{"k", Name("v", i)}}).ok());
  for (int i = 0; i < 8; ++i) {
    auto r = slow->NextResult();
    INFO("batch " << i << ": " << r.status().ToString());
    REQUIRE(r.ok());
    CHECK((*r)[0][0].second == Name("v", i));
  }
  auto silent = MustStart(PythonOperator("{'name': 'silent'}", "pass"), options);
  REQUIRE(silent->SendBatch({{"k", "v"}}).ok());
  auto r = silent->NextResult();
  CHECK(r.status().code() == StatusCode::kTimeout);
}

}  // namespace rs::stream
