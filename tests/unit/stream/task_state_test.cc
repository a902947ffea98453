// One Task driven directly (the fixture: task_harness.h): its state. Checkpoints of a stateful
// operator with their watermarks, an operator that dies, the sink's retried appends, and a task
// without exactly-once.
#include <catch2/catch.hpp>

#include "shared/stream/checkpoint.h"
#include "tests/unit/stream/task_harness.h"

namespace rs::stream::task_test {
namespace {

// The records of a checkpoint file: each a 4-byte big-endian length, then a MessagePack map.
std::vector<msgpack::object_handle> CheckpointRecords(const std::string& file) {
  std::vector<msgpack::object_handle> out;
  size_t off = 0;
  while (off + 4 <= file.size()) {
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(file[off + i]);
    off += 4;
    REQUIRE(off + len <= file.size());
    out.push_back(msgpack::unpack(file.data() + off, len));
    off += len;
  }
  CHECK(off == file.size());
  return out;
}

// The records of a checkpoint file, decoded by the task's own codec.
std::vector<rs::stream::CheckpointRecord> Decoded(const std::string& file) {
  std::vector<rs::stream::CheckpointRecord> all;
  for (auto bytes : SplitCheckpointFile(file).records) {
    auto rec = DecodeCheckpointRecord(bytes);
    INFO(rec.status().ToString());
    REQUIRE(rec.ok());
    all.push_back(std::move(*rec));
  }
  return all;
}

const msgpack::object* Field(const msgpack::object& map, const std::string& key) {
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    if (map.via.map.ptr[i].key.as<std::string>() == key) return &map.via.map.ptr[i].val;
  }
  return nullptr;
}


TEST_CASE("a stateful operator's state is checkpointed to HyDFS with the watermarks",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  std::vector<std::string> argv = {RainopPath("count"), "0"};
  c.argv = argv;
  h.Start(c, argv);
  CHECK(h.task().stateful());
  REQUIRE(h.task().input_partition_column().has_value());
  CHECK(*h.task().input_partition_column() == 0);

  std::vector<std::string> values = {"a,x", "b,y", "a,z", "c,x", "a,y", "b,z"};
  // Key groups as an upstream would give them: "a" and "c" in group 3, "b" in group 7.
  std::map<char, uint32_t> group_of = {{'a', 3}, {'b', 7}, {'c', 3}};
  std::vector<InTuple> in;
  for (size_t i = 0; i < values.size(); ++i) {
    in.push_back({0, SourceId(0, i + 1), "f:" + std::to_string(i + 1), values[i],
                  group_of[values[i][0]]});
  }
  h.Send(0, 1, {in.begin(), in.begin() + 3});
  h.Send(0, 2, {in.begin() + 3, in.end()});
  h.WaitOutputs(6);
  auto out = h.Outputs();
  std::vector<std::string> want = {"a,1", "b,1", "a,2", "c,1", "a,3", "b,2"};
  REQUIRE(out.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(out[i].id == Derived(in[i].id));
    CHECK(out[i].key == values[i].substr(0, 1));
    CHECK(out[i].value == want[i]);
  }

  const std::string name = std::string("rainstorm/") + kJob + "/task-2-0.ckpt.1";
  // Keyed state: the operator's counts per group, and the watermarks per group.
  std::map<uint32_t, std::map<std::string, uint64_t>> expected = {{3, {{"a", 3}, {"c", 1}}},
                                                                  {7, {{"b", 2}}}};
  std::map<uint32_t, std::map<std::string, uint64_t>> state;
  std::map<uint32_t, std::string> wm_id;
  const std::map<uint32_t, std::string> want_wm = {{3, SourceId(0, 5)}, {7, SourceId(0, 6)}};
  uint64_t commits = 0;
  h.Pump(
      [&] {
        auto file = h.hydfs().File(name);
        if (!file) return false;
        auto records = CheckpointRecords(*file);
        if (records.empty()) return false;
        const msgpack::object& m = records.back().get();
        REQUIRE(m.type == msgpack::type::MAP);
        std::set<std::string> keys;
        for (uint32_t i = 0; i < m.via.map.size; ++i)
          keys.insert(m.via.map.ptr[i].key.as<std::string>());
        keys.erase("state_changes");  // only in records holding changes
        CHECK(keys == std::set<std::string>{"time_ms", "commits", "wm", "in", "pending",
                                            "pending_from", "state", "spool_bytes", "counters"});
        const msgpack::object* st = Field(m, "state");
        REQUIRE(st != nullptr);
        REQUIRE(st->type == msgpack::type::BIN);  // a stateful operator always has a state
        msgpack::object_handle sh;
        // The state a rebuild would restore (a record may hold only changes).
        std::vector<rs::stream::CheckpointRecord> all = Decoded(*file);
        auto restored = StateAt(all);
        REQUIRE(restored.ok());
        sh = msgpack::unpack(restored->data(), restored->size());
        state = sh.get().as<std::map<uint32_t, std::map<std::string, uint64_t>>>();
        const msgpack::object* wm = Field(m, "wm");
        REQUIRE(wm != nullptr);
        REQUIRE(wm->type == msgpack::type::ARRAY);
        wm_id.clear();
        for (uint32_t i = 0; i < wm->via.array.size; ++i) {
          const msgpack::object& e = wm->via.array.ptr[i];
          REQUIRE(e.type == msgpack::type::ARRAY);
          REQUIRE(e.via.array.size == 5);  // [group, stage, task, origin, id]
          if (e.via.array.ptr[1].as<uint32_t>() == 1 && e.via.array.ptr[2].as<uint32_t>() == 0 &&
              e.via.array.ptr[3].as<uint64_t>() == 0) {
            wm_id[e.via.array.ptr[0].as<uint32_t>()] = e.via.array.ptr[4].as<std::string>();
          }
        }
        CHECK(Field(m, "time_ms")->as<uint64_t>() > 1600000000000ull);
        commits = Field(m, "commits")->as<uint64_t>();  // 0 before the first commit
        CHECK(Field(m, "pending")->type == msgpack::type::ARRAY);
        CHECK(Field(m, "in")->type == msgpack::type::ARRAY);
        CHECK(Field(m, "spool_bytes")->as<uint64_t>() == 0);
        return state == expected && wm_id == want_wm;
      },
      "a checkpoint with the full state");
  CHECK(state == expected);
  CHECK(wm_id == want_wm);
  CHECK(commits >= 1);  // taken after the commit that processed tuple 6, or later
  // The first record created the file, the later ones were appended.
  CHECK(h.hydfs().creates() == 1);
  // count offers state changes: once a record is durable, the next ones hold only the counts
  // changed since, and the generation's records add up to the state.
  std::vector<InTuple> more = {{0, SourceId(0, 7), "f:7", "a,w", 3}};
  h.Send(0, 3, more);
  h.WaitOutputs(7);
  h.Pump(
      [&] {
        std::vector<rs::stream::CheckpointRecord> all = Decoded(*h.hydfs().File(name));
        if (!all.back().state_changes) return false;
        auto restored = StateAt(all);
        REQUIRE(restored.ok());
        auto full = msgpack::unpack(restored->data(), restored->size());
        return full.get().as<std::map<uint32_t, std::map<std::string, uint64_t>>>() ==
               std::map<uint32_t, std::map<std::string, uint64_t>>{{3, {{"a", 4}, {"c", 1}}},
                                                                   {7, {{"b", 2}}}};
      },
      "a record of changes bringing a to 4");
  std::vector<rs::stream::CheckpointRecord> all = Decoded(*h.hydfs().File(name));
  CHECK_FALSE(all.front().state_changes);  // a generation starts with a full state
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
}

// The records' positions of upstream (1, `task`): [stage, task, run, processed, ended] entries.
uint64_t ProcessedIn(const msgpack::object& record, uint32_t task) {
  const msgpack::object* in = Field(record, "in");
  REQUIRE(in != nullptr);
  for (uint32_t i = 0; i < in->via.array.size; ++i) {
    const msgpack::object& e = in->via.array.ptr[i];
    if (e.via.array.ptr[0].as<uint32_t>() == 1 && e.via.array.ptr[1].as<uint32_t>() == task) {
      return e.via.array.ptr[3].as<uint64_t>();
    }
  }
  return 0;
}

TEST_CASE("a stateless task logs no outputs: its inputs become durable once its outputs are",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);  // we play a downstream task whose checkpoint lags
  h.Start(h.Config());
  std::vector<InTuple> a = Range(0, 1, 3);
  h.Send(0, 1, a);
  h.WaitOutputs(3);
  uint64_t high = h.high();
  h.AckProcessed(high, 0);
  h.WaitAck(0, 1);
  // Checkpoints come every 100 ms, but none may count input frame 1 while its outputs could
  // still be lost with the downstream task: upstream must keep the frame.
  h.Idle(std::chrono::milliseconds(600));
  for (const auto& ack : h.AcksTo(0)) CHECK(ack.durable == 0);
  const std::string name = std::string("rainstorm/") + kJob + "/task-2-0.ckpt.1";
  if (auto file = h.hydfs().File(name)) {
    for (const auto& rec : CheckpointRecords(*file)) CHECK(ProcessedIn(rec.get(), 0) == 0);
  }
  // Downstream's checkpoint covers them now: the task's record follows, then the durable ack.
  h.AckProcessed(high, high);
  h.Pump([&] { return !h.AcksTo(0).empty() && h.AcksTo(0).back().durable >= 1; },
         "input frame 1 acknowledged as durable");
  auto file = h.hydfs().File(name);
  REQUIRE(file.has_value());
  auto records = CheckpointRecords(*file);
  REQUIRE_FALSE(records.empty());
  const msgpack::object& last = records.back().get();
  CHECK(ProcessedIn(last, 0) == 1);
  const msgpack::object* pending = Field(last, "pending");
  REQUIRE(pending != nullptr);
  CHECK(pending->via.array.size == 0);  // a rebuild regenerates the outputs by replay
  const msgpack::object* counters = Field(last, "counters");
  REQUIRE(counters != nullptr);
  CHECK(counters->via.array.ptr[0].as<uint64_t>() == 3);  // tuples_in
  CHECK(counters->via.array.ptr[1].as<uint64_t>() == 3);  // tuples_out
  h.StopAndReport();
}

TEST_CASE("an operator that dies mid-run fails the task with its exit code and stderr",
          "[stream][task]") {
  Harness h;
  // A python operator that raises on its 4th tuple (exit 1, traceback on stderr).
  std::string script = h.dir() + "/dies.py";
  fs::create_directories(h.dir());
  {
    std::ofstream f(script);
    f << "import sys\n"
         "sys.path.insert(0, '" RS_SOURCE_ROOT
         "/operators/python')\n"
         "from rainstorm_op import run\n"
         "seen = 0\n"
         "def process(key, value):\n"
         "    global seen\n"
         "    seen += 1\n"
         "    if seen > 3:\n"
         "        raise RuntimeError('boom after 3 tuples')\n"
         "    return ((key, value),)\n"
         "run(process)\n";
  }
  TaskConfig c = h.Config();
  c.argv = {script};
  h.Start(c, {kPython, script});
  int64_t pid = h.task().pid();
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitOutputs(2);
  h.Send(0, 2, Range(0, 3, 5));
  TaskReport r = h.WaitState(TaskState::kFailed);
  INFO(r.reason);
  CHECK_THAT(r.reason, Catch::Contains("exit code 1"));
  CHECK_THAT(r.reason, Catch::Contains("boom after 3 tuples"));
  // Frame 2 was never processed: not acknowledged.
  CHECK(h.AckedTo(0) <= 1);
  h.Pump([&] { return ProcessGone(pid); }, "the operator process to be gone");
  CHECK(ReadFile(h.task().log_path()).find("event=task_failed") != std::string::npos);
}

TEST_CASE("a sink retries a failed destination append with exactly the same bytes",
          "[stream][task]") {
  // HyDFS resumes a failed append's id only for the same bytes (daemon/hydfs/retry.h): output
  // committed after the failure must wait for the next append, not join the retry.
  Harness h;
  TaskConfig c = h.Config();
  c.stage = c.stages + 1;
  c.downstream.clear();
  c.dest = "out/sink.txt";
  c.sink_flush_ms = 10;
  h.hydfs().Create(c.dest, "", [](Status) {});
  h.hydfs().FailAppends(1);
  h.Start(c);
  h.Send(0, 1, Range(0, 1, 30));
  h.Pump([&] { return !h.hydfs().AppendCalls(c.dest).empty(); }, "the first (failing) append");
  h.Send(1, 1, Range(1, 1, 20), /*end=*/true);
  h.Send(0, 2, {}, /*end=*/true);
  TaskReport r = h.WaitState(TaskState::kDone);
  CHECK(r.reason.empty());
  std::vector<std::string> calls = h.hydfs().AppendCalls(c.dest);
  REQUIRE(calls.size() >= 3);
  CHECK(calls[1] == calls[0]);
  std::string want;
  for (const auto& t : Range(0, 1, 30)) want += t.value + "\n";
  CHECK(calls[0] == want);
  for (const auto& t : Range(1, 1, 20)) want += t.value + "\n";
  auto file = h.hydfs().File(c.dest);
  REQUIRE(file.has_value());
  CHECK(*file == want);
  CHECK(ReadFile(h.task().log_path()).find("event=sink_append_failed") != std::string::npos);
}

TEST_CASE("without exactly-once a task passes everything, with empty ids, and still acks",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.exactly_once = false;
  h.Start(c);
  std::vector<InTuple> a = {{0, "", "k1", "v1"}, {0, "", "k2", "v2"}};
  h.Send(0, 1, a);
  h.Send(0, 2, a);  // the same tuples again: no dedup
  h.Send(1, 1, a);
  h.WaitOutputs(6);
  h.WaitAck(0, 2);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  std::vector<OutTuple> once = {{0, "", "k1", "v1"}, {0, "", "k2", "v2"}};
  CHECK(out == Concat({once, once, once}));
  // A resent frame (same seq) is still discarded: seqs number frames for flow control.
  size_t acks = h.AcksTo(0).size();
  h.Send(0, 2, a);
  h.Pump([&] { return h.AcksTo(0).size() > acks; }, "the ack of a resent frame");
  h.Send(0, 3, {{0, "", "k3", "v3"}});
  h.WaitOutputs(7);
  CHECK(h.Outputs().back() == OutTuple{0, "", "k3", "v3"});
  // Every output frame is acknowledged (auto-ack): none stays unacknowledged to be resent.
  TaskReport r = h.StopAndReport();
  CHECK(r.tuples_out == 7);
  CHECK_FALSE(fs::exists(h.dir() + "/task-2-0.mdb"));
  CHECK(h.hydfs().FileCount() == 0);  // no checkpoints
}

}  // namespace
}  // namespace rs::stream::task_test
