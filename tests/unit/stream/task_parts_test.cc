// The task's pure parts: its stage-1 source partition (task_source.h) and its checkpoint file
// generations (task_checkpoint.h, driven with a manual clock; the HyDFS calls complete when the
// test says).
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "daemon/stream/task_checkpoint.h"
#include "daemon/stream/task_source.h"
#include "shared/stream/limits.h"

namespace rs::stream {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> ReadAll(SourcePartition& p, size_t batch = 3) {
  std::vector<std::string> keys;
  while (!p.Exhausted()) {
    InFrame fr;
    REQUIRE(p.Read(batch, &fr).ok());
    for (const auto& t : fr.tuples) keys.push_back(std::string(t.key) + "=" + std::string(t.value));
  }
  return keys;
}

std::string Lines(int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i) s += "row" + std::to_string(i) + "\n";
  return s;
}

TEST_CASE("source partitions cover every line once, cut at line starts", "[stream][source]") {
  std::vector<SourceText> files = {{"a.txt", Lines(1, 10), false}, {"b.txt", Lines(11, 17), false}};
  for (uint32_t tasks : {1u, 2u, 3u, 5u, 40u}) {
    std::vector<std::string> all;
    for (uint32_t t = 0; t < tasks; ++t) {
      SourcePartition p(files, std::nullopt, t, tasks);
      auto part = ReadAll(p);
      all.insert(all.end(), part.begin(), part.end());
    }
    INFO(tasks << " tasks");
    REQUIRE(all.size() == 17);
    CHECK(all.front() == "a.txt:1=row1");
    CHECK(all[10] == "b.txt:1=row11");  // keys keep each file's own line numbers
    CHECK(all.back() == "b.txt:7=row17");
  }
}

// What a range reads, keys only, each with the origin it was read under.
std::vector<std::string> ReadRange(const std::vector<SourceText>& files, SourceRange r,
                                   std::optional<std::string> header = std::nullopt) {
  SourcePartition p(files, std::move(header), r);
  std::vector<std::string> keys;
  while (!p.Exhausted()) {
    InFrame fr;
    REQUIRE(p.Read(2, &fr).ok());
    for (const auto& t : fr.tuples) {
      CHECK(t.origin == r.origin);
      keys.push_back(std::string(t.key));
    }
  }
  return keys;
}

TEST_CASE("a source split mid-read gives the rest away in pieces at line starts, each line once",
          "[stream][source]") {
  std::vector<SourceText> files = {{"a.csv", "h1,h2\n" + Lines(1, 10), true},
                                   {"b.csv", "h1,h2\n" + Lines(11, 40), true}};
  for (size_t pieces : {1u, 2u, 3u, 7u}) {
    for (size_t read_first : {0u, 1u, 9u, 33u, 40u}) {
      SourcePartition p(files, std::string("h1,h2"), 0, 1);
      std::vector<std::string> keys;
      while (keys.size() < read_first && !p.Exhausted()) {
        InFrame fr;
        REQUIRE(p.Read(1, &fr).ok());
        for (const auto& t : fr.tuples) keys.push_back(std::string(t.key));
      }
      uint64_t at = p.Position();
      std::vector<uint64_t> origins;
      for (size_t j = 0; j < pieces; ++j) origins.push_back(100 + j);
      std::vector<SourceRange> given = p.Split(origins);
      REQUIRE(given.size() == pieces);
      CHECK(p.range().end >= at);  // nothing read is given away
      for (const auto& k : ReadAll(p, 4)) keys.push_back(k.substr(0, k.find('=')));
      uint64_t prev = p.range().end;
      for (size_t j = 0; j < pieces; ++j) {
        CHECK(given[j].origin == 100 + j);
        CHECK(given[j].begin == prev);  // contiguous, in order
        prev = given[j].end;
        auto part = ReadRange(files, given[j], std::string("h1,h2"));
        keys.insert(keys.end(), part.begin(), part.end());
      }
      CHECK(prev == p.total_bytes());
      INFO(pieces << " pieces after " << read_first << " lines");
      REQUIRE(keys.size() == 40);  // every data line once, no header
      std::set<std::string> distinct(keys.begin(), keys.end());
      CHECK(distinct.size() == 40);
      CHECK(keys.front() == "a.csv:2");
      CHECK(keys.back() == "b.csv:31");
    }
  }
}

TEST_CASE("a source split shares about evenly; a limit given back after a rebuild holds",
          "[stream][source]") {
  std::vector<SourceText> files = {{"a.txt", Lines(1000, 1999), false}};  // 8 bytes a line
  SourcePartition p(files, std::nullopt, 0, 1);
  auto given = p.Split({5, 6});
  CHECK(p.range().end == 2672);  // a third of 8000 (2666), at the next line start
  CHECK(given[0].begin == 2672);
  CHECK(given[0].end == 5336);
  CHECK(given[1].end == 8000);
  // A rebuilt giver restores its range from before the split and learns of the piece it gave.
  SourcePartition again(files, std::nullopt, 0, 1);
  again.LimitEnd(given[0].begin);
  CHECK(ReadAll(again).size() == 334);
  // Nothing left: the pieces are empty.
  SourcePartition done(files, std::nullopt, 0, 1);
  ReadAll(done);
  auto none = done.Split({9});
  CHECK(none[0].begin == none[0].end);
}

TEST_CASE("source ids increase and the last frame says end", "[stream][source]") {
  SourcePartition p({{"a.txt", "x\r\ny\nz", false}}, std::nullopt, 0, 1);
  InFrame f1, f2;
  REQUIRE(p.Read(2, &f1).ok());
  CHECK(!f1.end);
  REQUIRE(f1.tuples.size() == 2);
  CHECK(f1.tuples[0].value == "x");  // CR LF endings lose the CR
  CHECK(f1.tuples[0].id == SourceId(0, 1));
  CHECK(CompareIds(f1.tuples[0].id, f1.tuples[1].id) < 0);
  REQUIRE(p.Read(2, &f2).ok());
  CHECK(f2.end);
  REQUIRE(f2.tuples.size() == 1);
  CHECK(f2.tuples[0].value == "z");  // the unterminated last line
}

TEST_CASE("source CSV headers: the first file's, and a later file's only when repeated",
          "[stream][source]") {
  std::string header = "id,name";
  SourcePartition p({{"a.csv", header + "\n1,x\n2,y\n", true},
                     {"b.csv", header + "\n3,z\n", true},
                     {"c.csv", "4,w\n5,v\n", true}},
                    header, 0, 1);
  CHECK(ReadAll(p) == std::vector<std::string>{"a.csv:2=1,x", "a.csv:3=2,y", "b.csv:2=3,z",
                                               "c.csv:1=4,w", "c.csv:2=5,v"});
  // Without the header flag the first line is data.
  SourcePartition raw({{"a.txt", header + "\n1,x\n", false}}, std::nullopt, 0, 1);
  CHECK(ReadAll(raw).size() == 2);
}

TEST_CASE("a rebuilt source resumes after its checkpoint's line", "[stream][source]") {
  SourcePartition p({{"a.txt", Lines(1, 10), false}}, std::nullopt, 0, 1);
  CHECK(p.ResumeAfter(SourceId(0, 6)) == 6);
  CHECK(p.line() == 7);
  CHECK(ReadAll(p).front() == "a.txt:7=row7");
}

TEST_CASE("a source line over the tuple limit is refused", "[stream][source]") {
  std::string big(kMaxTupleBytes + 1, 'x');
  SourcePartition p({{"a.txt", "ok\n" + big + "\n", false}}, std::nullopt, 0, 1);
  InFrame fr;
  Status s = p.Read(10, &fr);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().find("line 2 of input file a.txt") != std::string::npos);
}

TEST_CASE("a rate-limited source reads ~2 ms batches", "[stream][source]") {
  TimePoint t0{};
  SourceRate r(10000, 1024, t0);
  CHECK(r.Allowed(t0) == 0);
  CHECK(r.WaitMs() == 2);
  size_t n = r.Allowed(t0 + 10ms);
  CHECK(n == 100);
  r.Spend(n);
  CHECK(r.Allowed(t0 + 10ms) == 0);
  CHECK(r.Allowed(t0 + 1s) == 200);  // at most 20 ms of burst
  SourceRate unlimited(0, 512, t0);
  CHECK(unlimited.Allowed(t0) == 512);
}

// HyDFS as the checkpoint files see it: calls complete when the test completes them.
struct Files {
  std::map<std::string, std::string> data;
  std::vector<std::pair<std::string, std::function<void(Status)>>> calls;
  std::vector<std::string> removed;
  CheckpointFiles::Io Io() {
    CheckpointFiles::Io io;
    io.create = [this](const std::string& name, std::string d, std::function<void(Status)> done) {
      data[name] = std::move(d);
      calls.emplace_back(name, std::move(done));
    };
    io.append = [this](const std::string& name, std::string d, std::function<void(Status)> done) {
      data[name] += d;
      calls.emplace_back(name, std::move(done));
    };
    io.remove = [this](const std::string& name) {
      removed.push_back(name);
      data.erase(name);
    };
    io.log = [](const std::string&) {};
    return io;
  }
  void Complete(Status s = Status::Ok()) {
    REQUIRE(!calls.empty());
    auto done = std::move(calls.front().second);
    calls.erase(calls.begin());
    done(std::move(s));
  }
};

TEST_CASE("checkpoint generations roll over and the old one goes once the new is durable",
          "[stream][checkpoint]") {
  Files fs;
  CheckpointFiles c("ck.", fs.Io());
  TimePoint t{};
  CHECK(c.Check(t) == CheckpointFiles::Poll::kIdle);
  c.Write(std::string(CheckpointFiles::kRollBytes, 'a'), t);
  CHECK(c.Check(t) == CheckpointFiles::Poll::kBusy);
  fs.Complete();
  CHECK(c.Check(t) == CheckpointFiles::Poll::kDurable);
  CHECK(c.gen() == 2);  // full: the next record starts generation 2
  c.Write("b", t);
  CHECK(fs.data.count("ck.1") == 1);  // kept until generation 2 is durable
  fs.Complete();
  CHECK(c.Check(t) == CheckpointFiles::Poll::kDurable);
  CHECK(fs.removed == std::vector<std::string>{"ck.1"});
  c.Write("c", t);  // appended
  fs.Complete();
  CHECK(c.Check(t) == CheckpointFiles::Poll::kDurable);
  CHECK(fs.data["ck.2"] == "bc");
}

TEST_CASE("stalled checkpoint writes leave no generations behind", "[stream][checkpoint]") {
  Files fs;
  CheckpointFiles c("ck.", fs.Io());
  TimePoint t{};
  c.Write("1", t);
  fs.Complete();
  REQUIRE(c.Check(t) == CheckpointFiles::Poll::kDurable);
  // Three writes in a row hang: each abandons its generation for the next.
  for (int i = 0; i < 3; ++i) {
    c.Write("x", t);
    CHECK(c.Check(t + 1s) == CheckpointFiles::Poll::kBusy);
    t += CheckpointFiles::kStall;
    CHECK(c.Check(t) == CheckpointFiles::Poll::kStalled);
  }
  CHECK(c.gen() == 4);
  c.Write("2", t);
  fs.calls.back().second(Status::Ok());  // the newest lands; the hung ones never answer
  CHECK(c.Check(t) == CheckpointFiles::Poll::kDurable);
  std::set<std::string> removed(fs.removed.begin(), fs.removed.end());
  CHECK(removed == std::set<std::string>{"ck.1", "ck.2", "ck.3"});
  CHECK(fs.data.size() == 1);
  CHECK(fs.data.count("ck.4") == 1);
}

TEST_CASE("a rebuilt task writes the next generation; the one it read goes once that is durable",
          "[stream][checkpoint]") {
  Files fs;
  fs.data["ck.5"] = "old";
  CheckpointFiles c("ck.", fs.Io());
  TimePoint t{};
  c.ResumeAfter(5);
  CHECK(c.gen() == 6);
  CHECK(c.fresh());  // its first record must list every pending frame
  c.Write("new", t);
  CHECK(fs.data.count("ck.5") == 1);  // still the only durable state
  fs.Complete(Status::IOError("replica down"));
  CHECK(c.Check(t) == CheckpointFiles::Poll::kFailed);
  CHECK(c.fresh());  // the create failed: the next record is still the generation's first
  c.Write("new2", t);
  fs.Complete();
  CHECK(c.Check(t) == CheckpointFiles::Poll::kDurable);
  CHECK_FALSE(c.fresh());
  CHECK(fs.removed == std::vector<std::string>{"ck.5"});
  CHECK(fs.data["ck.6"] == "new2");
}

}  // namespace
}  // namespace rs::stream
