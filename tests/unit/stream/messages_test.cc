// The stream engine's typed messages between daemons (daemon/stream/messages.h): every message
// round-trips, and hostile bodies (truncated, mutated, mistyped) are refused, never thrown.
#include "daemon/stream/messages.h"

#include <catch2/catch.hpp>
#include <functional>
#include <random>

using namespace rs;
using namespace rs::stream;

namespace {

template <typename M>
std::string Encode(const M& m) {
  msgpack::sbuffer b;
  wire::Packer pk(b);
  Pack(pk, m);
  return std::string(b.data(), b.size());
}

// Decodes `bytes` as a control socket would (bounded containers), then with `decode`. nullopt
// when the bytes do not even unpack.
template <typename M>
std::optional<Result<M>> Decode(std::string_view bytes,
                                Result<M> (*decode)(const msgpack::object&)) {
  msgpack::object_handle oh;
  try {
    size_t n = std::max<size_t>(bytes.size(), 1);
    oh = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr,
                         msgpack::unpack_limit(n, n, n, n, n, 16));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return decode(oh.get());
}

template <typename M>
M RoundTrip(const M& m, Result<M> (*decode)(const msgpack::object&)) {
  auto d = Decode<M>(Encode(m), decode);
  REQUIRE(d.has_value());
  INFO(d->status().ToString());
  REQUIRE(d->ok());
  return std::move(**d);
}

TaskReport Report(uint32_t task) {
  TaskReport r;
  r.job = "job-9";
  r.stage = 2;
  r.task = task;
  r.incarnation = 3;
  r.node = "127.0.0.1:7001#5";
  r.pid = 4242;
  r.state = TaskState::kRunning;
  r.tuples_in = 10;
  r.tuples_out = 9;
  r.duplicates = 1;
  r.backpressure = 0.25;
  r.backpressure_us = 1500000;
  r.checkpoints = 7;
  r.checkpoint_bytes = 7000;
  r.checkpoint_last_bytes = 1000;
  r.checkpoint_last_us = 4200;
  Histogram h;
  h.ObserveMicros(4200, 7);
  r.checkpoint_seconds = h.Take();
  return r;
}

// Random damage to a valid body: every decoder answers, none throws or crashes.
template <typename M>
void Hostile(const std::string& good, Result<M> (*decode)(const msgpack::object&)) {
  for (size_t n = 0; n < good.size(); ++n) {
    auto d = Decode<M>(std::string_view(good.data(), n), decode);
    if (d) CHECK_FALSE(d->ok());  // a truncated map is never a message
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::string b = good;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    auto d = Decode<M>(b, decode);
    if (d && !d->ok()) {
      CHECK((d->status().code() == StatusCode::kInvalidArgument ||
             d->status().code() == StatusCode::kCorruption));
    }
  }
  // Not a map at all.
  for (const std::string& junk : {std::string("\xc0", 1), std::string("\x93\x01\x02\x03"),
                                  std::string("\xa3"
                                              "abc")}) {
    auto d = Decode<M>(junk, decode);
    REQUIRE(d.has_value());
    CHECK_FALSE(d->ok());
  }
}

}  // namespace

TEST_CASE("every stream message round-trips", "[stream][messages]") {
  TaskConfig c;
  c.job = "job-9";
  c.stage = 2;
  c.stages = 3;
  c.task = 1;
  c.tasks = 2;
  c.argv = {"/x/rainop-count", "0"};
  c.downstream = {"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"};
  c.key_groups = 16;
  auto start = RoundTrip(StartTaskRequest{c}, &DecodeStartTaskRequest);
  CHECK(EncodeTaskConfig(start.config) == EncodeTaskConfig(c));

  StartTaskReply sr{"tcp://127.0.0.1:5000", 77, true, 3, "/d/task-2-1.log"};
  auto sr2 = RoundTrip(sr, &DecodeStartTaskReply);
  CHECK(sr2.endpoint == sr.endpoint);
  CHECK(sr2.pid == 77);
  CHECK(sr2.stateful);
  CHECK(sr2.input_partition_column == std::optional<uint64_t>(3));
  CHECK(sr2.log == sr.log);
  sr.input_partition_column.reset();
  CHECK_FALSE(RoundTrip(sr, &DecodeStartTaskReply).input_partition_column.has_value());

  auto sj = RoundTrip(StopJobRequest{"job-9", true}, &DecodeStopJobRequest);
  CHECK(sj.job == "job-9");
  CHECK(sj.remove);
  auto sjr = RoundTrip(StopJobReply{{Report(0), Report(1)}}, &DecodeStopJobReply);
  REQUIRE(sjr.reports.size() == 2);
  CHECK(sjr.reports[1].task == 1);
  CHECK(sjr.reports[1].tuples_out == 9);

  auto st = RoundTrip(StopTaskRequest{"job-9", 2, 1}, &DecodeStopTaskRequest);
  CHECK((st.job == "job-9" && st.stage == 2 && st.task == 1));
  CHECK(RoundTrip(StopTaskReply{Report(1)}, &DecodeStopTaskReply).report.pid == 4242);

  auto rw = RoundTrip(RewireRequest{"job-9", 3, 0, "tcp://10.0.0.2:4000"}, &DecodeRewireRequest);
  CHECK((rw.stage == 3 && rw.task == 0 && rw.endpoint == "tcp://10.0.0.2:4000"));
  CHECK(RoundTrip(RewireReply{5}, &DecodeRewireReply).tasks == 5);

  RegroupRequest rg{"job-9", {2, 7, {0, 1, 1, 2}, {"tcp://a:1", "tcp://b:2", "tcp://c:3"}, {}, {}}};
  auto rgb = RoundTrip(rg, &DecodeRegroupRequest);
  CHECK(rgb.job == "job-9");
  CHECK(rgb.order.stage == 2);
  CHECK(rgb.order.epoch == 7);
  CHECK(rgb.order.owners == rg.order.owners);
  CHECK(rgb.order.inboxes == rg.order.inboxes);
  CHECK_FALSE(rgb.stage_only);
  CHECK(rgb.order.pieces.empty());
  CHECK_FALSE(rgb.order.source_rate);
  rg.stage_only = true;
  CHECK(RoundTrip(rg, &DecodeRegroupRequest).stage_only);
  rg.stage_only = false;
  // Stage 1 of a job reading files: the pieces cut and each task's share of INPUT_RATE.
  RegroupRequest cut = rg;
  cut.order.pieces = {{0, 2, 70}, {1, 2, 71}};
  cut.order.source_rate = 334;
  auto cutb = RoundTrip(cut, &DecodeRegroupRequest);
  CHECK(cutb.order.pieces == cut.order.pieces);
  CHECK(cutb.order.source_rate == std::optional<uint64_t>(334));
  cut.order.pieces = {{0, 3, 70}};  // a taker the stage does not have
  CHECK_FALSE(Decode<RegroupRequest>(Encode(cut), &DecodeRegroupRequest)->ok());
  CHECK(RoundTrip(RegroupReply{2}, &DecodeRegroupReply).tasks == 2);
  // A group owned by a task the stage does not have, or an inbox that is not tcp://.
  RegroupRequest bad = rg;
  bad.order.owners = {0, 3};
  CHECK_FALSE(Decode<RegroupRequest>(Encode(bad), &DecodeRegroupRequest)->ok());
  bad = rg;
  bad.order.inboxes[1] = "ipc:///tmp/x";
  CHECK_FALSE(Decode<RegroupRequest>(Encode(bad), &DecodeRegroupRequest)->ok());
  bad = rg;
  bad.order.owners.clear();
  CHECK_FALSE(Decode<RegroupRequest>(Encode(bad), &DecodeRegroupRequest)->ok());

  auto rep = RoundTrip(ReportMessage{{Report(0)}}, &DecodeReportMessage);
  REQUIRE(rep.reports.size() == 1);
  CHECK(rep.reports[0].node == "127.0.0.1:7001#5");
  // The metrics' fields: a histogram goes whole, an empty one stays empty.
  const TaskReport& got = rep.reports[0];
  CHECK(got.backpressure == 0.25);
  CHECK(got.backpressure_us == 1500000);
  CHECK(got.checkpoints == 7);
  CHECK(got.checkpoint_bytes == 7000);
  CHECK(got.checkpoint_last_bytes == 1000);
  CHECK(got.checkpoint_last_us == 4200);
  CHECK(got.checkpoint_seconds.counts == Report(0).checkpoint_seconds.counts);
  CHECK(got.checkpoint_seconds.sum_seconds == Approx(7 * 0.0042));
  CHECK(got.checkpoint_seconds.Quantile(0.5) == 0.005);
  CHECK(got.latency_seconds.counts.empty());
}

TEST_CASE("stream messages check what a worker acts on", "[stream][messages]") {
  // A job id names a directory: nothing that could leave it.
  const std::vector<std::string> bads = {"", "../etc", "a/b", std::string(129, 'j'), "job 1"};
  for (const std::string& bad : bads) {
    CHECK_FALSE(ValidJobId(bad));
    auto d = Decode<StopJobRequest>(Encode(StopJobRequest{bad, true}), &DecodeStopJobRequest);
    REQUIRE(d.has_value());
    CHECK(d->status().code() == StatusCode::kInvalidArgument);
    CHECK_FALSE(
        Decode<StopTaskRequest>(Encode(StopTaskRequest{bad, 1, 0}), &DecodeStopTaskRequest)->ok());
  }
  CHECK(ValidJobId("job-1_x"));
  // A task config that does not decode is refused with its reason.
  TaskConfig c;
  c.job = "job-1";
  c.window = 0;  // out of range
  auto d = Decode<StartTaskRequest>(Encode(StartTaskRequest{c}), &DecodeStartTaskRequest);
  REQUIRE(d.has_value());
  CHECK(d->status().code() == StatusCode::kInvalidArgument);
  // A rewire to something that is not a tcp endpoint.
  CHECK_FALSE(Decode<RewireRequest>(Encode(RewireRequest{"job-1", 2, 0, "ipc:///tmp/x"}),
                                    &DecodeRewireRequest)
                  ->ok());
  // Stage and task numbers in range.
  CHECK_FALSE(
      Decode<StopTaskRequest>(Encode(StopTaskRequest{"job-1", 5000, 0}), &DecodeStopTaskRequest)
          ->ok());
}

TEST_CASE("hostile stream message bodies are refused, never thrown", "[stream][messages]") {
  TaskConfig c;
  c.job = "job-9";
  c.argv = {"grep", "x"};
  c.downstream = {"tcp://127.0.0.1:1"};
  Hostile<StartTaskRequest>(Encode(StartTaskRequest{c}), &DecodeStartTaskRequest);
  Hostile<StartTaskReply>(Encode(StartTaskReply{"tcp://127.0.0.1:1", 5, false, 2, "l"}),
                          &DecodeStartTaskReply);
  Hostile<StopJobRequest>(Encode(StopJobRequest{"job-9", false}), &DecodeStopJobRequest);
  Hostile<StopJobReply>(Encode(StopJobReply{{Report(0), Report(1)}}), &DecodeStopJobReply);
  Hostile<StopTaskRequest>(Encode(StopTaskRequest{"job-9", 1, 1}), &DecodeStopTaskRequest);
  Hostile<StopTaskReply>(Encode(StopTaskReply{Report(2)}), &DecodeStopTaskReply);
  Hostile<RewireRequest>(Encode(RewireRequest{"job-9", 2, 1, "tcp://127.0.0.1:9"}),
                         &DecodeRewireRequest);
  Hostile<RewireReply>(Encode(RewireReply{3}), &DecodeRewireReply);
  Hostile<RegroupRequest>(
      Encode(RegroupRequest{"job-9", {3, 2, {0, 1, 0, 1}, {"tcp://a:1", "tcp://b:2"}, {}, {}}}),
      &DecodeRegroupRequest);
  Hostile<RegroupReply>(Encode(RegroupReply{3}), &DecodeRegroupReply);
  Hostile<ReportMessage>(Encode(ReportMessage{{Report(0)}}), &DecodeReportMessage);
}
