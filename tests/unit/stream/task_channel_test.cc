// One Task driven directly (the fixture: task_harness.h): its channels. Derived ids and origins,
// dedup by watermark, key groups, resends, gaps, upstream incarnations, the output window, the
// end of the stream, junk on the inbox, and the duplicate test knob.
#include <catch2/catch.hpp>

#include "tests/unit/stream/task_harness.h"

namespace rs::stream::task_test {
namespace {

TEST_CASE("a middle-stage task passes tuples through with derived ids and origins kept",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  CHECK_FALSE(h.task().stateful());
  CHECK_FALSE(h.task().input_partition_column().has_value());

  std::vector<InTuple> a = Range(0, 1, 3);
  a.push_back(T(5, 1));  // another origin, its own stream
  std::vector<InTuple> b = Range(1, 1, 2);
  h.Send(0, 1, a);
  h.Send(1, 1, b);
  h.WaitOutputs(6);
  h.WaitAck(0, 1);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == Concat({PassedAll(a), PassedAll(b)}));
  for (const auto& t : out) CHECK(t.id.size() == 16);  // 12-byte source id + 4-byte index
  CHECK(h.AcksTo(0).back().incarnation == 1);

  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 6);
  CHECK(r.tuples_out == 6);
  CHECK(r.duplicates == 0);
  CHECK(r.job == kJob);
  CHECK(r.stage == 2);
  CHECK(r.node == "test");
  CHECK(r.op.find("identity") != std::string::npos);
  CHECK(fs::exists(h.dir() + "/task-2-0.log"));
  h.Pump([&] { return ProcessGone(r.pid); }, "the operator process to be gone");
}

TEST_CASE("from stage 3 on, a task's output origin names the upstream task it came through",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.stage = 3;
  c.stages = 3;  // downstream is the sink (stage 4)
  c.task = 1;
  c.tasks = 2;
  h.Start(c);
  // Origins are stage-1 task indexes (< tasks); out = origin * tasks + upstream task.
  std::vector<InTuple> from0 = {T(0, 1), T(1, 1)};
  std::vector<InTuple> from1 = {T(0, 1), T(1, 1), T(1, 2)};
  h.Send(0, 1, from0);
  h.Send(1, 1, from1);
  h.WaitOutputs(5);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == std::vector<OutTuple>{Passed(from0[0], 0), Passed(from0[1], 2), Passed(from1[0], 1),
                                     Passed(from1[1], 3), Passed(from1[2], 3)});
  h.WaitAck(0, 1);
  h.WaitAck(1, 1);
  // The downstream (the sink, stage 4) acknowledged with stage 4: no resends needed, and the
  // task stays healthy.
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.stage == 3);
  CHECK(r.task == 1);
  CHECK(r.tuples_out == 5);
}

TEST_CASE("tuples at or below their (channel, origin) watermark are discarded and counted",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 5));
  h.Send(0, 2, Range(0, 3, 8));  // 3, 4, 5 were delivered by frame 1
  h.WaitOutputs(8);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 8)));
  h.WaitAck(0, 2);

  // The same ids on the other channel are another stream.
  h.Send(1, 1, Range(0, 1, 5));
  h.WaitOutputs(13);
  // On one channel, each origin is a stream of its own: origin 1 below origin 0's mark passes;
  // a mixed frame keeps the new ones of each origin.
  std::vector<InTuple> mixed = {T(1, 1), T(0, 8), T(1, 2), T(0, 9), T(1, 2), T(0, 2)};
  h.Send(0, 3, mixed);
  h.WaitOutputs(16);
  h.WaitAck(0, 3);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == Concat({PassedAll(Range(0, 1, 8)), PassedAll(Range(0, 1, 5)),
                       PassedAll({T(1, 1), T(1, 2), T(0, 9)})}));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3 + 3);  // 3, 4, 5 of frame 2; 8, the second 1:2 and 0:2 of frame 3
  CHECK(r.tuples_in == 8 + 5 + 3);
  CHECK(r.tuples_out == 16);
}

TEST_CASE("a frame holding a tuple of a key group the task does not own is refused whole",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.tasks = 2;  // task 0 owns groups 0-63 of 128
  c.key_groups = 128;
  h.Start(c);
  std::vector<InTuple> bad = {T(0, 1), T(0, 2)};
  bad[1].group = 64;  // task 1's
  h.Send(0, 1, bad);
  // Refused before the channel took it: not processed, not acknowledged. The sender's resend
  // with the right groups is then the frame 1 it expects.
  std::vector<InTuple> good = {T(0, 1), T(0, 2)};
  good[1].group = 63;
  h.Send(0, 1, good);
  h.WaitOutputs(2);
  CHECK(h.Outputs() == PassedAll(good));
  h.WaitAck(0, 1);
  CHECK(h.LogTail().find("key group 64") != std::string::npos);
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 2);
}

TEST_CASE("a resent input frame is discarded as a whole and acknowledged again", "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  std::string frame1 = h.DataFrame(0, 1, Range(0, 1, 3));
  h.SendRaw(frame1);
  h.WaitOutputs(3);
  h.WaitAck(0, 1);
  size_t acks = h.AcksTo(0).size();
  h.SendRaw(frame1);
  h.Pump([&] { return h.AcksTo(0).size() > acks; }, "the ack of a resent frame");
  CHECK(h.AcksTo(0).back().seq == 1);
  // The next frame's outputs come right after frame 1's: the resend produced none.
  h.Send(0, 2, Range(0, 4, 4));
  h.WaitOutputs(4);
  h.WaitAck(0, 2);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 4)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3);
  CHECK(r.tuples_in == 4);
  CHECK(r.tuples_out == 4);
}

TEST_CASE("a frame after a gap is dropped unacknowledged until the gap is filled",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitAck(0, 1);
  std::string frame3 = h.DataFrame(0, 3, Range(0, 5, 6));
  h.SendRaw(frame3);             // seq 2 is missing: dropped
  h.Send(0, 2, Range(0, 3, 4));  // fills the gap
  h.WaitAck(0, 2);
  // The ack after 1 is 2, not 3: frame 3 was not taken.
  REQUIRE(h.AcksTo(0).size() >= 2);
  CHECK(h.AcksTo(0)[1].seq == 2);
  h.WaitOutputs(4);
  h.SendRaw(frame3);  // the resend of 3 is taken now
  h.WaitAck(0, 3);
  h.WaitOutputs(6);
  // Acks are cumulative: two frames sent back to back are covered by an ack of the later one.
  h.Send(0, 4, Range(0, 7, 8));
  h.Send(0, 5, Range(0, 9, 10));
  h.WaitAck(0, 5);
  h.WaitOutputs(10);
  for (const auto& a : h.AcksTo(0)) CHECK(a.seq <= 5);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == PassedAll(Range(0, 1, 10)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 0);
  CHECK(r.tuples_out == 10);
}

TEST_CASE("a new incarnation of an upstream starts at seq 1 and is still deduplicated by id",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 5));
  h.WaitAck(0, 1);
  h.WaitOutputs(5);

  h.SetIncarnation(0, 2);
  h.Send(0, 1, Range(0, 3, 8));  // the new run resends what it cannot know was delivered
  h.WaitAck(0, 1);               // an ack of run 2 (AckedTo looks at the current run)
  CHECK(h.AcksTo(0).back().incarnation == 2);
  h.WaitOutputs(8);

  // A late frame of the old run is ignored: no ack, no output.
  h.SendRaw(h.DataFrame(0, 2, Range(0, 100, 100), false, /*incarnation=*/1));
  h.Send(0, 2, Range(0, 9, 9));
  h.WaitAck(0, 2);
  h.WaitOutputs(9);
  for (const auto& a : h.AcksTo(0)) CHECK((a.incarnation == 2 || a.seq == 1));
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == PassedAll(Range(0, 1, 9)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3);
  CHECK(r.tuples_out == 9);
}

TEST_CASE("frames of an upstream's earlier run still queued never advance its new run's acks",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());  // window 4
  // Fill the window so that later inputs wait in the task's queue.
  for (uint64_t s = 1; s <= 4; ++s) {
    h.Send(0, s, {T(0, s)});
    h.WaitFrame(s);
  }
  h.WaitAck(0, 4);
  h.Send(0, 5, {T(0, 5)});
  h.Send(0, 6, {T(0, 6)}, /*end=*/true);
  // The upstream restarts: run 2 sends its frame 1, queued behind the old run's 5 and 6.
  h.SetIncarnation(0, 2);
  h.Send(0, 1, {T(0, 7)});
  h.Ack(4);
  h.WaitOutputs(7);
  h.WaitAck(0, 1);
  for (const auto& a : h.AcksTo(0)) {
    INFO("ack of run " << a.incarnation << " seq " << a.seq);
    CHECK((a.incarnation == 1 ? a.seq <= 6 : a.seq <= 1));
  }
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 7)));
  // The old run's end does not end the new run: upstream 1 ending is not enough to finish.
  h.Send(1, 1, {}, /*end=*/true);
  h.WaitAck(1, 1);
  h.Ack(h.high());
  h.Send(0, 2, {T(0, 8)});
  h.WaitAck(0, 2);
  h.WaitOutputs(8);
  h.WaitCopies(h.high(), 2);  // time enough for a wrong end frame to follow
  for (const auto& [seq, f] : h.frames()) CHECK_FALSE(f.end);
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_out == 8);
}

TEST_CASE("unacknowledged output frames are resent as they were; the window bounds them",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());  // window 4, resend_ms 200

  // Frame 1 unacknowledged: resent, byte for byte (the harness compares every copy).
  h.Send(0, 1, {T(0, 1)});
  h.WaitFrame(1);
  h.WaitCopies(1, 2);
  h.Ack(1);
  // The ack reaches the task before the next input (one FIFO connection), so from frame 2's
  // arrival on, frame 1 is never sent again; frame 2 is, until acknowledged.
  h.Send(0, 2, {T(0, 2)});
  h.WaitFrame(2);
  int copies1 = h.frames().at(1).copies;
  h.WaitCopies(2, 3);
  CHECK(h.frames().at(1).copies == copies1);
  h.Ack(2);

  // Fill the window: 4 frames of one tuple each, none acknowledged.
  for (uint64_t s = 3; s <= 6; ++s) {
    h.Send(0, s, {T(0, s)});
    h.WaitFrame(s);
  }
  h.WaitAck(0, 6);
  // A fifth input is accepted into the queue but not processed: no frame 7, no ack of input 7,
  // for as long as it takes every unacknowledged frame to be resent twice.
  h.Send(0, 7, {T(0, 7)});
  for (uint64_t s = 3; s <= 6; ++s) h.WaitCopies(s, 3);
  CHECK(h.high() == 6);
  CHECK(h.AckedTo(0) == 6);
  // One ack opens the window by one frame.
  h.Ack(3);
  h.WaitFrame(7);
  h.WaitAck(0, 7);
  CHECK(h.frames().at(7).tuples == std::vector<OutTuple>{Passed(T(0, 7), 0)});
  h.Ack(7);
  auto out = h.Outputs();
  CHECK(out == PassedAll(Range(0, 1, 7)));
  TaskReport r = h.StopAndReport();
  CHECK(r.resent_frames >= 1 + 2 + 4 * 2);
  CHECK(r.state == TaskState::kStopped);  // not failed: the stall timeout is far away
}

TEST_CASE("a task ends its output once every upstream ended and everything is acknowledged",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 3));
  h.Send(0, 2, Range(0, 4, 4), /*end=*/true);
  h.WaitAck(0, 2);
  h.WaitOutputs(4);
  // One upstream still runs: no end frame (checked on every frame that arrives).
  for (const auto& [seq, f] : h.frames()) CHECK_FALSE(f.end);
  h.Ack(h.high());
  h.Send(1, 1, {}, /*end=*/true);  // an empty end frame
  h.WaitAck(1, 1);
  h.Pump([&] { return h.high() > 0 && h.frames().at(h.high()).end; }, "the end frame");
  const OutFrame& end = h.frames().at(h.high());
  CHECK(end.tuples.empty());
  // Until the end frame is acknowledged, the task is not done: it resends it.
  h.WaitCopies(end.seq, 2);
  CHECK(h.task().Report().state == TaskState::kRunning);
  h.Ack(end.seq);
  TaskReport r = h.WaitState(TaskState::kDone);
  CHECK(r.reason.empty());
  CHECK(r.tuples_in == 4);
  CHECK(r.tuples_out == 4);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 4)));
  CHECK(h.AckedTo(0) == 2);
  CHECK(h.AckedTo(1) == 1);
  // The operator finished and is gone.
  h.Pump([&] { return ProcessGone(r.pid); }, "the operator process to be gone");
  auto reports = h.Reports();
  REQUIRE_FALSE(reports.empty());
  CHECK(reports.back().state == TaskState::kDone);
  CHECK(ReadFile(h.task().log_path()).find("event=task_done") != std::string::npos);
}

TEST_CASE("junk on a task's inbox is ignored and the task keeps working", "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());
  std::mt19937 rng(5);
  for (int i = 0; i < 20; ++i) {
    std::string junk(1 + rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    h.SendRaw(junk);
  }
  h.SendRaw("");
  h.SendMultipart(h.DataFrame(0, 1, Range(0, 50, 50)), "second part");
  h.SendRaw(h.DataFrame(0, 1, Range(0, 60, 60), false, std::nullopt, "another-job"));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 70, 70), false, std::nullopt, kJob, /*from_stage=*/2));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 80, 80), false, std::nullopt, kJob, /*from_stage=*/0));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 90, 90), false, /*incarnation=*/0));
  h.SendRaw(h.DataFrame(/*from_task=*/1, 1, Range(0, 95, 95)).substr(0, 20));  // truncated
  // A task index past the upstream stage's tasks (2 here).
  h.SendRaw(h.DataFrame(/*from_task=*/2, 1, Range(0, 96, 96), /*end=*/true));
  // Acks for frames that do not exist, from tasks that are not downstream.
  h.Ack(1, 0, kJob, /*stage=*/3, /*task=*/5);
  h.Ack(1, 0, kJob, /*stage=*/9, 0);
  h.Ack(1, 0, "another-job");
  h.Ack(1, /*incarnation=*/99);
  // A well-formed frame is taken as seq 1: none of the above counted as a frame of (1, 0).
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitAck(0, 1);
  h.WaitFrame(1);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 2)));
  // Bogus acks of the frame that now exists do not acknowledge it: it is resent after them.
  h.Ack(1, 0, kJob, 3, 5);
  h.Ack(1, 0, kJob, 2, 0);
  h.Ack(1, 0, "another-job");
  h.Ack(1, 99);
  h.Send(0, 2, Range(0, 3, 3));
  h.WaitFrame(2);  // the bogus acks were handled before this
  int copies = h.frames().at(1).copies;
  h.WaitCopies(1, copies + 1);
  h.Ack(2);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 3)));
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 3);
  CHECK(r.duplicates == 0);
  CHECK(ReadFile(h.task().log_path()).find("event=bad_frame") != std::string::npos);
}

TEST_CASE("the duplicate test knob resends every N-th frame's tuples under the next seq",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.test_duplicate_every = 2;
  h.Start(c);
  // One input frame at a time, so that each makes exactly one output frame.
  for (uint64_t k = 0; k < 6; ++k) {
    h.Send(0, k + 1, Range(0, 2 * k + 1, 2 * k + 2));
    h.WaitOutputs(2 * k + 2 + (k + 1) / 2 * 2);  // plus the copies so far
  }
  h.WaitAck(0, 6);
  // Frames: 1 A, 2 B, 3 B', 4 C, 5 D, 6 D', 7 E, 8 F, 9 F'.
  REQUIRE(h.high() == 9);
  uint64_t injected = 0;
  uint64_t n = 1;
  for (uint64_t seq = 1; seq <= 9; ++seq) {
    const OutFrame& f = h.frames().at(seq);
    INFO("frame " << seq);
    CHECK_FALSE(f.end);
    REQUIRE(f.tuples.size() == 2);
    bool copy = seq % 3 == 0;
    if (copy) {
      CHECK(f.tuples == h.frames().at(seq - 1).tuples);  // same tuples, same ids
      CHECK(f.bytes != h.frames().at(seq - 1).bytes);    // another seq
      injected += f.tuples.size();
    } else {
      CHECK(f.tuples == PassedAll(Range(0, n, n + 1)));
      n += 2;
    }
  }
  TaskReport r = h.StopAndReport();
  CHECK(r.injected == injected);
  CHECK(r.injected == 6);
  CHECK(r.tuples_out == 12);
  CHECK(r.duplicates == 0);
}

}  // namespace
}  // namespace rs::stream::task_test
