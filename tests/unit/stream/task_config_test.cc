// TaskConfig and TaskReport: MessagePack round trips of every field (optional fields nil and
// set), and hostile bytes (truncations, wrong types, random bytes) refused without a throw.
#include "daemon/stream/task_config.h"

#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <msgpack.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace rs::stream {
namespace {

TaskConfig FullConfig() {
  TaskConfig c;
  c.job = "job-42";
  c.stage = 2;
  c.stages = 3;
  c.task = 4;
  c.tasks = 5;
  c.argv = {"/usr/bin/rainop-grep", "pattern", "", "with space"};
  c.csv_header = "a,b,c";
  c.exactly_once = false;
  c.incarnation = 0x1234567890abcdefull;
  c.src = {{"in/one.csv", 0xfeedfacecafebeefull, 3, 1234, 0x1122334455667788ull, true},
           {"in/two.csv", 2, 1, 0, 9, false}};
  c.live = true;
  c.upstreams = 7;
  c.rate = 123456789012ull;
  c.downstream = {"tcp://10.0.0.1:4000", "tcp://10.0.0.2:4001"};
  c.partition_column = 3;
  c.key_groups = 64;
  c.dest = "out/result.txt";
  c.leader = "10.0.0.9:7000";
  c.window = 17;
  c.batch_tuples = 99;
  c.resend_ms = 321;
  c.checkpoint_ms = 55;
  c.sink_flush_ms = 77;
  c.ack_delay_ms = 9;
  c.test_duplicate_every = 3;
  c.replay_order = OrderRuns{12, {{2, 5, "id-1"}, {0, 1, std::string("\0\1", 2)}}};
  c.rescalable = true;
  c.origin_radix = 64;
  c.in_epoch = 3;
  c.out_epoch = 5;
  c.in_owners = KeyGroupMap::Even(64, 5).owners();
  c.in_prev_owners = KeyGroupMap::Even(64, 4).owners();
  c.out_owners = KeyGroupMap::Even(64, 2).owners();
  return c;
}

void CheckSame(const TaskConfig& a, const TaskConfig& b) {
  CHECK(a.job == b.job);
  CHECK(a.stage == b.stage);
  CHECK(a.stages == b.stages);
  CHECK(a.task == b.task);
  CHECK(a.tasks == b.tasks);
  CHECK(a.argv == b.argv);
  CHECK(a.csv_header == b.csv_header);
  CHECK(a.exactly_once == b.exactly_once);
  CHECK(a.incarnation == b.incarnation);
  CHECK(a.src == b.src);
  CHECK(a.live == b.live);
  CHECK(a.upstreams == b.upstreams);
  CHECK(a.rate == b.rate);
  CHECK(a.downstream == b.downstream);
  CHECK(a.partition_column == b.partition_column);
  CHECK(a.key_groups == b.key_groups);
  CHECK(a.dest == b.dest);
  CHECK(a.leader == b.leader);
  CHECK(a.window == b.window);
  CHECK(a.batch_tuples == b.batch_tuples);
  CHECK(a.resend_ms == b.resend_ms);
  CHECK(a.checkpoint_ms == b.checkpoint_ms);
  CHECK(a.sink_flush_ms == b.sink_flush_ms);
  CHECK(a.ack_delay_ms == b.ack_delay_ms);
  CHECK(a.test_duplicate_every == b.test_duplicate_every);
  CHECK(a.replay_order == b.replay_order);
  CHECK(a.rescalable == b.rescalable);
  CHECK(a.origin_radix == b.origin_radix);
  CHECK(a.in_epoch == b.in_epoch);
  CHECK(a.out_epoch == b.out_epoch);
  CHECK(a.in_owners == b.in_owners);
  CHECK(a.in_prev_owners == b.in_prev_owners);
  CHECK(a.out_owners == b.out_owners);
}

TaskReport FullReport() {
  TaskReport r;
  r.job = "job-42";
  r.stage = 3;
  r.task = 1;
  r.node = "10.0.0.1:7000#1700000000000";
  r.pid = 31337;
  r.op = "count";
  r.log = "/var/lib/rain/stream/job-42/task-3-1.log";
  r.state = TaskState::kFailed;
  r.reason = "operator exited with exit code 1; stderr: boom";
  r.permanent = true;
  r.tuples_in = 1000001;
  r.tuples_out = 999999;
  r.duplicates = 12;
  r.injected = 34;
  r.resent_frames = 56;
  r.rate_in = 1234.5;
  r.rate_out = 0.25;
  r.busy = 0.625;
  r.epoch = 12;
  r.output_lines = 77;
  r.output_bytes = 8888;
  r.latency_p50_us = 1500;
  r.latency_p99_us = 250000;
  r.latency_samples = 4242;
  return r;
}

std::string EncodeReport(const TaskReport& r) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  PackTaskReport(pk, r);
  return std::string(buf.data(), buf.size());
}

// Decodes report bytes the way a receiver does: unpack (the test's own adapter), then read.
// nullopt when the bytes do not even unpack.
std::optional<Result<TaskReport>> DecodeReport(std::string_view bytes) {
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                         msgpack::unpack_limit(1024, 1024, 1u << 20, 1u << 20, 0, 16));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return ReadTaskReport(oh.get());
}

void CheckSame(const TaskReport& a, const TaskReport& b) {
  CHECK(a.job == b.job);
  CHECK(a.stage == b.stage);
  CHECK(a.task == b.task);
  CHECK(a.node == b.node);
  CHECK(a.pid == b.pid);
  CHECK(a.op == b.op);
  CHECK(a.log == b.log);
  CHECK(a.state == b.state);
  CHECK(a.reason == b.reason);
  CHECK(a.permanent == b.permanent);
  CHECK(a.tuples_in == b.tuples_in);
  CHECK(a.tuples_out == b.tuples_out);
  CHECK(a.duplicates == b.duplicates);
  CHECK(a.injected == b.injected);
  CHECK(a.resent_frames == b.resent_frames);
  CHECK(a.rate_in == b.rate_in);
  CHECK(a.rate_out == b.rate_out);
  CHECK(a.busy == b.busy);
  CHECK(a.epoch == b.epoch);
  CHECK(a.output_lines == b.output_lines);
  CHECK(a.output_bytes == b.output_bytes);
  CHECK(a.latency_p50_us == b.latency_p50_us);
  CHECK(a.latency_p99_us == b.latency_p99_us);
  CHECK(a.latency_samples == b.latency_samples);
}

// The map in `good` re-packed with the value of `key` replaced by `value` (packed by `fill`), or
// dropped when `fill` is null.
template <typename Fill>
std::string Replace(const std::string& good, const std::string& key, Fill fill) {
  msgpack::object_handle oh = msgpack::unpack(good.data(), good.size());
  const msgpack::object& o = oh.get();
  REQUIRE(o.type == msgpack::type::MAP);
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(o.via.map.size);
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    pk.pack(kv.key);
    if (kv.key.as<std::string>() == key) {
      fill(pk);
    } else {
      pk.pack(kv.val);
    }
  }
  return std::string(buf.data(), buf.size());
}

std::string Drop(const std::string& good, const std::string& key) {
  msgpack::object_handle oh = msgpack::unpack(good.data(), good.size());
  const msgpack::object& o = oh.get();
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(o.via.map.size - 1);
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.as<std::string>() == key) continue;
    pk.pack(kv.key);
    pk.pack(kv.val);
  }
  return std::string(buf.data(), buf.size());
}

using Packer = msgpack::packer<msgpack::sbuffer>;
struct WrongValue {
  const char* name;
  void (*fill)(Packer&);
};
const WrongValue kWrongValues[] = {
    {"nil", [](Packer& pk) { pk.pack_nil(); }},
    {"true", [](Packer& pk) { pk.pack(true); }},
    {"-1", [](Packer& pk) { pk.pack(-1); }},
    {"1.5", [](Packer& pk) { pk.pack(1.5); }},
    {"\"str\"", [](Packer& pk) { pk.pack(std::string("str")); }},
    {"bin",
     [](Packer& pk) {
       pk.pack_bin(2);
       pk.pack_bin_body("\x01\x02", 2);
     }},
    {"[7]", [](Packer& pk) { pk.pack(std::vector<int>{7}); }},
    {"{a:1}",
     [](Packer& pk) {
       pk.pack_map(1);
       pk.pack(std::string("a"));
       pk.pack(1);
     }},
    {"huge uint", [](Packer& pk) { pk.pack(UINT64_MAX); }},
};

// Caps the process's address space while alive (the soft limit; restored after). The hostile
// bytes loops run under it as a second line of defence: should a decoder lose its
// msgpack::unpack_limit (see the allocation test below), a few bytes could declare a container of
// billions of elements, which msgpack allocates before reading them; under MALLOC_PERTURB_ (meson
// test sets it) that memory is also written. Under the cap such allocations fail at once.
class AddressSpaceCap {
 public:
  explicit AddressSpaceCap(uint64_t headroom_bytes) {
    REQUIRE(::getrlimit(RLIMIT_AS, &saved_) == 0);
    std::ifstream statm("/proc/self/statm");
    uint64_t pages = 0;
    statm >> pages;
    REQUIRE(pages > 0);
    rlimit cap = saved_;
    cap.rlim_cur = pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) + headroom_bytes;
    if (saved_.rlim_max != RLIM_INFINITY && cap.rlim_cur > saved_.rlim_max) {
      cap.rlim_cur = saved_.rlim_max;
    }
    REQUIRE(::setrlimit(RLIMIT_AS, &cap) == 0);
  }
  ~AddressSpaceCap() { ::setrlimit(RLIMIT_AS, &saved_); }

 private:
  rlimit saved_{};
};

// The field kinds of the config, to know which wrong values must be refused.
enum class Kind { kStr, kUint, kBool, kStrList, kSrcList, kOptStr, kOptUint };

}  // namespace

TEST_CASE("a task config round-trips every field", "[stream][task_config]") {
  TaskConfig c = FullConfig();
  auto d = DecodeTaskConfig(EncodeTaskConfig(c));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CheckSame(c, *d);
  CHECK(d->name() == "job-42/2.4");
  CHECK_FALSE(d->is_sink());
}

TEST_CASE("a task config round-trips optional fields unset and empty lists",
          "[stream][task_config]") {
  TaskConfig c = FullConfig();
  c.csv_header.reset();
  c.partition_column.reset();
  c.argv.clear();
  c.src.clear();
  c.downstream.clear();
  c.exactly_once = true;
  c.stage = c.stages + 1;  // the sink
  auto d = DecodeTaskConfig(EncodeTaskConfig(c));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CheckSame(c, *d);
  CHECK_FALSE(d->csv_header.has_value());
  CHECK_FALSE(d->partition_column.has_value());
  CHECK(d->is_sink());

  // Set to their zero values: still set, not confused with nil.
  c.csv_header = "";
  c.partition_column = 0;
  d = DecodeTaskConfig(EncodeTaskConfig(c));
  REQUIRE(d.ok());
  REQUIRE(d->csv_header.has_value());
  CHECK(d->csv_header->empty());
  REQUIRE(d->partition_column.has_value());
  CHECK(*d->partition_column == 0);

  // Defaults survive too.
  TaskConfig def;
  d = DecodeTaskConfig(EncodeTaskConfig(def));
  REQUIRE(d.ok());
  CheckSame(def, *d);
}

TEST_CASE("a CSV header or an argument longer than 4 KiB round-trips (up to 1 MiB)",
          "[stream][task_config]") {
  TaskConfig c = FullConfig();
  c.csv_header = std::string(100000, 'h');
  c.argv.push_back(std::string(5000, 'a'));
  auto d = DecodeTaskConfig(EncodeTaskConfig(c));
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  CheckSame(c, *d);
  c.csv_header = std::string(kMaxConfigString + 1, 'h');
  d = DecodeTaskConfig(EncodeTaskConfig(c));
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("a task config's input files must be [name, gen, appends, size, digest, header]",
          "[stream][task_config]") {
  const std::string good = EncodeTaskConfig(FullConfig());
  auto with_src = [&](std::function<void(Packer&)> fill) {
    return DecodeTaskConfig(Replace(good, "src", std::move(fill)));
  };
  CHECK(with_src([](Packer& pk) { pk.pack_array(0); }).ok());
  auto one = [](int n, bool header_bool) {
    return [n, header_bool](Packer& pk) {
      pk.pack_array(1);
      pk.pack_array(static_cast<uint32_t>(n));
      pk.pack(std::string("f"));
      for (int i = 1; i < n - 1; ++i) pk.pack_uint64(1);
      if (n >= 2) header_bool ? pk.pack(true) : pk.pack_uint64(1);
    };
  };
  CHECK(with_src(one(6, true)).ok());
  CHECK_FALSE(with_src(one(6, false)).ok());  // header not a bool
  CHECK_FALSE(with_src(one(5, true)).ok());
  CHECK_FALSE(with_src(one(7, true)).ok());
  CHECK_FALSE(with_src([](Packer& pk) {
                pk.pack_array(1);
                pk.pack_array(6);
                for (int i = 0; i < 5; ++i) pk.pack_uint64(1);  // a name that is a uint
                pk.pack(true);
              }).ok());
}

TEST_CASE("a task config with out-of-range positions is refused", "[stream][task_config]") {
  auto refused = [](TaskConfig c) {
    auto d = DecodeTaskConfig(EncodeTaskConfig(c));
    CHECK_FALSE(d.ok());
    if (!d.ok()) CHECK(d.status().code() == StatusCode::kInvalidArgument);
  };
  TaskConfig c = FullConfig();
  c.stage = 0;
  refused(c);
  c = FullConfig();
  c.stage = c.stages + 2;
  refused(c);
  c = FullConfig();
  c.task = c.tasks;
  refused(c);
  c = FullConfig();
  c.tasks = 0;
  c.task = 0;
  refused(c);
  c = FullConfig();
  c.window = 0;
  refused(c);
  c = FullConfig();
  c.batch_tuples = 0;
  refused(c);
  c = FullConfig();
  c.job = std::string(129, 'j');
  refused(c);
  c = FullConfig();
  c.key_groups = 0;
  refused(c);
  c = FullConfig();
  c.key_groups = c.tasks - 1;  // fewer groups than tasks
  refused(c);
  c = FullConfig();
  c.key_groups = kMaxKeyGroups + 1;
  refused(c);
}

TEST_CASE("hostile task config bytes give InvalidArgument, never a throw",
          "[stream][task_config]") {
  TaskConfig c = FullConfig();
  const std::string good = EncodeTaskConfig(c);
  AddressSpaceCap cap(1ull << 30);

  SECTION("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      auto d = DecodeTaskConfig(std::string_view(good.data(), n));
      INFO("length " << n);
      REQUIRE_FALSE(d.ok());
      CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
  }

  SECTION("not a map") {
    for (const auto& w : kWrongValues) {
      msgpack::sbuffer buf;
      Packer pk(buf);
      w.fill(pk);
      auto d = DecodeTaskConfig(std::string_view(buf.data(), buf.size()));
      INFO(w.name);
      REQUIRE_FALSE(d.ok());
      CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
    // A huge declared array or string in a few bytes.
    for (std::string b :
         {std::string("\xdd\xff\xff\xff\xff", 5), std::string("\xdb\xff\xff\xff\xff", 5),
          std::string("\x81\xa4"
                      "argv\xdd\x0f\xff\xff\xff",
                      11),
          std::string("\xdf\xff\xff\xff\xff", 5)}) {
      auto d = DecodeTaskConfig(b);
      REQUIRE_FALSE(d.ok());
      CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
  }

  SECTION("every field mistyped or missing") {
    const std::vector<std::pair<std::string, Kind>> fields = {
        {"job", Kind::kStr},
        {"stage", Kind::kUint},
        {"stages", Kind::kUint},
        {"task", Kind::kUint},
        {"tasks", Kind::kUint},
        {"argv", Kind::kStrList},
        {"csv_header", Kind::kOptStr},
        {"exactly_once", Kind::kBool},
        {"incarnation", Kind::kUint},
        {"src", Kind::kSrcList},
        {"live", Kind::kBool},
        {"upstreams", Kind::kUint},
        {"rate", Kind::kUint},
        {"downstream", Kind::kStrList},
        {"partition_column", Kind::kOptUint},
        {"key_groups", Kind::kUint},
        {"dest", Kind::kStr},
        {"leader", Kind::kStr},
        {"window", Kind::kUint},
        {"batch_tuples", Kind::kUint},
        {"resend_ms", Kind::kUint},
        {"checkpoint_ms", Kind::kUint},
        {"sink_flush_ms", Kind::kUint},
        {"test_duplicate_every", Kind::kUint},
    };
    for (const auto& [key, kind] : fields) {
      INFO("field " << key);
      // Missing: refused unless optional.
      auto d = DecodeTaskConfig(Drop(good, key));
      if (kind == Kind::kOptStr || kind == Kind::kOptUint) {
        CHECK(d.ok());
      } else {
        REQUIRE_FALSE(d.ok());
        CHECK(d.status().code() == StatusCode::kInvalidArgument);
        CHECK_THAT(d.status().message(), Catch::Contains(key));
      }
      for (const auto& w : kWrongValues) {
        INFO("value " << w.name);
        std::string bytes = Replace(good, key, w.fill);
        auto r = DecodeTaskConfig(bytes);
        bool acceptable = false;
        std::string wn = w.name;
        switch (kind) {
          case Kind::kUint:  // the huge uint is in range only for 64-bit fields
            acceptable = wn == "huge uint" && (key == "incarnation" || key == "rate");
            break;
          case Kind::kOptUint:
            acceptable = wn == "nil" || wn == "huge uint";
            break;
          case Kind::kOptStr:
            acceptable = wn == "nil" || wn == "\"str\"";
            break;
          case Kind::kStr:
            acceptable = wn == "\"str\"";
            break;
          case Kind::kBool:
            acceptable = wn == "true";
            break;
          case Kind::kStrList:
            acceptable = false;  // [7] is a list, but not of strings
            break;
          case Kind::kSrcList:
            acceptable = false;  // [7] is a list, but not of [name, gen, ...] arrays
            break;
        }
        if (acceptable) continue;
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == StatusCode::kInvalidArgument);
      }
    }
    // A group table of another size than the key groups, or naming no task number.
    for (const char* key : {"in_owners", "in_prev_owners", "out_owners"}) {
      INFO(key);
      CHECK_FALSE(DecodeTaskConfig(Replace(good, key, [](Packer& pk) {
                    pk.pack_array(2);
                    pk.pack(0);
                    pk.pack(1);
                  })).ok());
      CHECK_FALSE(DecodeTaskConfig(Replace(good, key, [](Packer& pk) {
                    pk.pack_array(1);
                    pk.pack(std::string("x"));
                  })).ok());
      CHECK(DecodeTaskConfig(Drop(good, key)).ok());  // optional
    }
    // A list of strings holding one non-string.
    auto bad_argv = Replace(good, "argv", [](Packer& pk) {
      pk.pack_array(2);
      pk.pack(std::string("op"));
      pk.pack(3);
    });
    CHECK_FALSE(DecodeTaskConfig(bad_argv).ok());
  }

  SECTION("random bytes and random mutations") {
    std::mt19937 rng(4242);
    for (int round = 0; round < 5000; ++round) {
      std::string b = good;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
      auto d = DecodeTaskConfig(b);
      if (!d.ok()) CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
    for (int round = 0; round < 3000; ++round) {
      std::string b(rng() % 64, '\0');
      for (auto& ch : b) ch = static_cast<char>(rng());
      auto d = DecodeTaskConfig(b);
      if (!d.ok()) CHECK(d.status().code() == StatusCode::kInvalidArgument);
    }
  }
}

// BUG (reported): DecodeTaskConfig calls msgpack::unpack without an unpack_limit (DecodeJobSpec
// and the envelope decoder pass one), so 11 bytes declaring a 16M-element argv make msgpack
// allocate 384 MiB before it finds the bytes missing; 0x0fffffff elements: 6 GiB. The child
// process below makes malloc write what it hands out (M_PERTURB, as MALLOC_PERTURB_ does) so that
// its peak RSS shows the allocation.
TEST_CASE("a few hostile bytes never make the task config decoder allocate much",
          "[stream][task_config]") {
  const std::string hostile(
      "\x81\xa4"
      "argv\xdd\x01\x00\x00\x00",
      11);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::mallopt(M_PERTURB, 0x5a);
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    auto d = DecodeTaskConfig(hostile);
    ::getrusage(RUSAGE_SELF, &after);
    long grown_kib = after.ru_maxrss - before.ru_maxrss;
    ::_exit(d.ok() ? 2
                   : (d.status().code() != StatusCode::kInvalidArgument ? 3
                      : grown_kib > 64 * 1024                           ? 1
                                                                        : 0));
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  INFO("1: the decoder's peak memory grew by more than 64 MiB; 2: decoded; 3: not InvalidArgument");
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a task report round-trips every field and every state", "[stream][task_config]") {
  TaskReport r = FullReport();
  for (TaskState s : {TaskState::kStarting, TaskState::kRunning, TaskState::kDone,
                      TaskState::kFailed, TaskState::kStopped}) {
    r.state = s;
    INFO(TaskStateName(s));
    auto d = DecodeReport(EncodeReport(r));
    REQUIRE(d.has_value());
    INFO(d->status().ToString());
    REQUIRE(d->ok());
    CheckSame(r, **d);
  }
  // Zero values and empty strings.
  TaskReport z;
  auto d = DecodeReport(EncodeReport(z));
  REQUIRE(d.has_value());
  REQUIRE(d->ok());
  CheckSame(z, **d);
  // A negative pid survives (an int field).
  z.pid = -5;
  d = DecodeReport(EncodeReport(z));
  REQUIRE(d.has_value());
  REQUIRE(d->ok());
  CHECK((*d)->pid == -5);
  CHECK(std::string(TaskStateName(TaskState::kDone)) == "done");
}

// ReadTaskReport reports mistyped fields through wire::FieldReader, whose code is Corruption;
// an unknown state is InvalidArgument. Either way: refused, never thrown.
TEST_CASE("hostile task report bytes are refused, never thrown", "[stream][task_config]") {
  const std::string good = EncodeReport(FullReport());
  auto refused = [](const Result<TaskReport>& r) {
    REQUIRE_FALSE(r.ok());
    CHECK((r.status().code() == StatusCode::kInvalidArgument ||
           r.status().code() == StatusCode::kCorruption));
  };

  SECTION("every truncation") {
    for (size_t n = 0; n < good.size(); ++n) {
      INFO("length " << n);
      auto d = DecodeReport(std::string_view(good.data(), n));
      if (d) refused(*d);  // most truncations do not even unpack
    }
  }

  SECTION("wrong shapes, missing and mistyped fields") {
    for (const auto& w : kWrongValues) {
      msgpack::sbuffer buf;
      Packer pk(buf);
      w.fill(pk);
      auto d = DecodeReport(std::string_view(buf.data(), buf.size()));
      REQUIRE(d.has_value());
      refused(*d);
    }
    for (const char* key : {"job", "stage", "task", "pid", "state"}) {
      INFO("missing " << key);
      auto d = DecodeReport(Drop(good, key));
      REQUIRE(d.has_value());
      refused(*d);
    }
    // Optional fields may be absent.
    for (const char* key : {"node", "op", "log", "reason", "permanent", "tuples_in", "injected",
                            "rate_in", "latency_samples"}) {
      INFO("optional " << key);
      auto d = DecodeReport(Drop(good, key));
      REQUIRE(d.has_value());
      CHECK(d->ok());
    }
    for (const char* key : {"job", "stage", "task", "pid", "state", "node", "reason", "permanent",
                            "tuples_in", "duplicates", "rate_in", "latency_p99_us"}) {
      INFO("mistyped " << key);
      auto d = DecodeReport(Replace(good, key, [](Packer& pk) {
        pk.pack_array(1);
        pk.pack(1);
      }));
      REQUIRE(d.has_value());
      refused(*d);
    }
    auto d =
        DecodeReport(Replace(good, "state", [](Packer& pk) { pk.pack(std::string("dancing")); }));
    REQUIRE(d.has_value());
    refused(*d);
    CHECK_THAT(d->status().message(), Catch::Contains("dancing"));
    d = DecodeReport(Replace(good, "rate_in", [](Packer& pk) { pk.pack(std::nan("")); }));
    REQUIRE(d.has_value());
    refused(*d);
  }

  SECTION("random bytes and random mutations") {
    std::mt19937 rng(777);
    for (int round = 0; round < 5000; ++round) {
      std::string b = good;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
      (void)DecodeReport(b);
    }
    for (int round = 0; round < 3000; ++round) {
      std::string b(rng() % 64, '\0');
      for (auto& ch : b) ch = static_cast<char>(rng());
      (void)DecodeReport(b);
    }
  }
}

}  // namespace rs::stream
