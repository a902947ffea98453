// In-memory tests of the SDK's protocol core (Session) and of the built-in operator classes.
#include "operators/builtin/operator_sdk.h"

#include <catch2/catch.hpp>
#include <random>

#include "operators/builtin/builtin_operators.h"

namespace rs::op {
namespace {

using Tuple = std::pair<std::string, std::string>;

// prefix + number (spelled out: GCC 12 warns falsely on "k" + std::to_string(i)).
std::string Name(const char* prefix, size_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}
using Packer = msgpack::packer<msgpack::sbuffer>;

std::string Str(const msgpack::sbuffer& b) { return std::string(b.data(), b.size()); }

std::string Hello(std::optional<std::string> header = std::nullopt) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(2);
  pk.pack(0);
  pk.pack_map(3);
  pk.pack("version");
  pk.pack(1);
  pk.pack("job");
  pk.pack("j1");
  pk.pack("csv_header");
  if (header) {
    pk.pack(*header);
  } else {
    pk.pack_nil();
  }
  return Str(b);
}

std::string Batch(const std::vector<Tuple>& tuples, bool as_bin = false) {
  msgpack::sbuffer b;
  Packer pk(b);
  pk.pack_array(2);
  pk.pack(2);
  pk.pack_array(static_cast<uint32_t>(tuples.size()));
  for (const auto& [k, v] : tuples) {
    pk.pack_array(2);
    if (as_bin) {
      pk.pack_bin(static_cast<uint32_t>(k.size()));
      pk.pack_bin_body(k.data(), static_cast<uint32_t>(k.size()));
      pk.pack_bin(static_cast<uint32_t>(v.size()));
      pk.pack_bin_body(v.data(), static_cast<uint32_t>(v.size()));
    } else {
      pk.pack(k);
      pk.pack(v);
    }
  }
  return Str(b);
}

// A byte string from a literal that may hold NULs.
template <size_t N>
std::string B(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::string Snapshot() { return std::string("\x91\x04", 2); }

// An operator for the SDK tests: emits [key, value] then [value, key] when value is "twice",
// nothing for "drop", else one upper-cased copy; counts tuples as its state.
class TestOperator : public Operator {
 public:
  Result<ReadyInfo> Hello(const Context& ctx) override {
    ctx_ = ctx;
    return ReadyInfo{true, 4, "test"};
  }
  void Process(std::string_view key, std::string_view value, Emitter& out) override {
    ++seen_;
    if (value == "drop") return;
    if (value == "twice") {
      out.Emit(key, value);
      out.Emit(value, key);
      return;
    }
    std::string up(value);
    for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.Emit(key, up);
  }
  void Snapshot(StatePacker& pk) override { pk.pack_uint64(seen_); }
  Status Restore(const msgpack::object& state) override {
    if (state.type != msgpack::type::POSITIVE_INTEGER) return Status::InvalidArgument("bad");
    seen_ = state.via.u64;
    return Status::Ok();
  }
  Context ctx_;
  uint64_t seen_ = 0;
};

// Collects everything a Session writes and decodes it message by message.
struct Harness {
  explicit Harness(Operator* op)
      : session(op, [this](std::string_view b) {
          ++writes;
          out.append(b);
          return Status::Ok();
        }) {}

  std::vector<msgpack::object_handle> Messages() {
    std::vector<msgpack::object_handle> msgs;
    size_t off = 0;
    while (off < out.size()) msgs.push_back(msgpack::unpack(out.data(), out.size(), off));
    return msgs;
  }

  Session session;
  std::string out;
  int writes = 0;
};

std::vector<std::vector<Tuple>> ResultOutputs(const msgpack::object& msg) {
  REQUIRE(msg.type == msgpack::type::ARRAY);
  REQUIRE(msg.via.array.size == 2);
  REQUIRE(msg.via.array.ptr[0].as<int>() == 3);
  std::vector<std::vector<Tuple>> outs;
  for (const auto& per_input : msg.via.array.ptr[1].as<std::vector<msgpack::object>>()) {
    outs.push_back(per_input.as<std::vector<Tuple>>());
  }
  return outs;
}

// Runs one operator over a hello, one batch of values (keys "k0", "k1", ...) and returns the
// outputs; `header` is the context's csv_header.
std::vector<std::vector<Tuple>> RunBatch(Operator* op, std::optional<std::string> header,
                                         const std::vector<std::string>& values) {
  Harness h(op);
  std::vector<Tuple> tuples;
  for (size_t i = 0; i < values.size(); ++i) tuples.emplace_back(Name("k", i), values[i]);
  REQUIRE(h.session.Feed(Hello(header) + Batch(tuples)).ok());
  REQUIRE(h.session.Finish().ok());
  auto msgs = h.Messages();
  REQUIRE(msgs.size() == 2);
  return ResultOutputs(msgs[1].get());
}

}  // namespace

TEST_CASE("the sdk answers hello with ready and each batch with one result", "[operators]") {
  TestOperator op;
  Harness h(&op);
  REQUIRE(h.session.Feed(Hello("a,b")).ok());
  REQUIRE(h.writes == 1);
  CHECK(op.ctx_.job == "j1");
  CHECK(op.ctx_.csv_header == std::optional<std::string>("a,b"));
  auto msgs = h.Messages();
  const auto& ready = msgs.at(0);
  CHECK(ready->via.array.ptr[0].as<int>() == 1);
  auto info = ready->via.array.ptr[1].as<std::map<std::string, msgpack::object>>();
  CHECK(info.at("stateful").as<bool>());
  CHECK(info.at("name").as<std::string>() == "test");
  CHECK(info.at("input_partition").as<std::map<std::string, int>>().at("csv_column") == 4);

  REQUIRE(h.session.Feed(Batch({{"k1", "abc"}, {"k2", "drop"}, {"k3", "twice"}})).ok());
  CHECK(h.writes == 2);
  auto outs = ResultOutputs(h.Messages().at(1).get());
  REQUIRE(outs.size() == 3);
  CHECK(outs[0] == std::vector<Tuple>{{"k1", "ABC"}});
  CHECK(outs[1].empty());
  CHECK(outs[2] == std::vector<Tuple>{{"k3", "twice"}, {"twice", "k3"}});
  CHECK(h.session.Finish().ok());
}

TEST_CASE("the sdk decodes messages split at every byte boundary", "[operators]") {
  std::string input =
      Hello() + Batch({{"a", "x"}, {"b", "y"}}) + Batch({{"c", "z"}}, true) + Snapshot();
  TestOperator op;
  Harness h(&op);
  for (char c : input) REQUIRE(h.session.Feed(std::string_view(&c, 1)).ok());
  REQUIRE(h.session.Finish().ok());
  auto msgs = h.Messages();
  REQUIRE(msgs.size() == 4);
  CHECK(ResultOutputs(msgs[1].get())[1] == std::vector<Tuple>{{"b", "Y"}});
  CHECK(ResultOutputs(msgs[2].get())[0] == std::vector<Tuple>{{"c", "Z"}});  // BIN in, STR out
  CHECK(msgs[3]->as<std::vector<int>>() == std::vector<int>{5, 3});
}

TEST_CASE("the sdk restores state after hello and before batches", "[operators]") {
  TestOperator op;
  Harness h(&op);
  REQUIRE(
      h.session.Feed(Hello() + std::string("\x92\x06\x0a", 3) + Batch({{"a", "b"}}) + Snapshot())
          .ok());
  auto msgs = h.Messages();
  REQUIRE(msgs.size() == 3);  // ready, result, state: restore has no answer
  CHECK(msgs[2]->as<std::vector<int>>() == std::vector<int>{5, 11});
}

TEST_CASE("the sdk rejects protocol violations with a reason", "[operators]") {
  auto fails = [](const std::string& input) {
    TestOperator op;
    Harness h(&op);
    Status s = h.session.Feed(input);
    if (s.ok()) s = h.session.Finish();
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().find('\n') == std::string::npos);
    return s.message();
  };
  CHECK_THAT(fails(Batch({{"a", "b"}})), Catch::Contains("batch before hello"));
  CHECK_THAT(fails(Snapshot()), Catch::Contains("before hello"));
  CHECK_THAT(fails(Hello() + Hello()), Catch::Contains("second hello"));
  CHECK_THAT(fails("\x05"), Catch::Contains("not an array"));
  CHECK_THAT(fails("\x90"), Catch::Contains("empty message"));
  CHECK_THAT(fails("\x91\xa1x"), Catch::Contains("not an unsigned integer"));
  CHECK_THAT(fails("\x91\x09"), Catch::Contains("unknown message type 9"));
  CHECK_THAT(fails(Hello() + "\x92\x03\x90"), Catch::Contains("from an operator"));
  CHECK_THAT(fails(Hello() + "\x92\x02\x91\x91\xa1k"), Catch::Contains("tuple 0"));
  CHECK_THAT(fails(Hello() + "\x92\x02\x91\x92\xa1k\x07"), Catch::Contains("tuple 0"));
  CHECK_THAT(fails(Hello() + "\x92\x02\xa1x"), Catch::Contains("not an array"));
  CHECK_THAT(fails(Hello() + "\x91\x02"), Catch::Contains("batch is not"));
  CHECK_THAT(fails(B("\x92\x00\x05")), Catch::Contains("not a map"));
  CHECK_THAT(fails(B("\x92\x00\x81\xa7version\x02")), Catch::Contains("version 2"));
  CHECK_THAT(fails(B("\x92\x00\x81\xa4"
                     "args\x91\x01")),
             Catch::Contains("args"));
  CHECK_THAT(fails(Hello() + Batch({{"a", "b"}}) + "\x92\x06\x01"),
             Catch::Contains("restore after a batch"));
  CHECK_THAT(fails(Hello() + "\x92\x06\x01\x92\x06\x01"), Catch::Contains("second restore"));
  CHECK_THAT(fails(Hello() + "\x92\x06\xa1x"), Catch::Contains("bad"));  // the operator's own
  CHECK_THAT(fails(std::string("\xc1", 1)), Catch::Contains("undecodable"));
  CHECK_THAT(fails(Hello().substr(0, 5)), Catch::Contains("input ends inside a message"));
  // A string header claiming 4 GiB: msgpack checks string limits only once the bytes are there,
  // so the message limit is what stops the buffering.
  {
    TestOperator op;
    SessionLimits limits;
    limits.max_message_bytes = 4096;
    Session session(
        &op, [](std::string_view) { return Status::Ok(); }, limits);
    REQUIRE(session.Feed(B("\x92\x00\xdb\xff\xff\xff\xff")).ok());
    Status s = session.Feed(std::string(5000, 'x'));
    CHECK_THAT(s.message(), Catch::Contains("exceeds 4096 bytes"));
    CHECK_FALSE(session.Feed("x").ok());  // and stays failed
  }
  CHECK_THAT(fails(std::string("\xdd\xff\xff\xff\xff", 5)), Catch::Contains("limit"));
  std::string deep(100, '\x91');
  CHECK_THAT(fails(deep), Catch::Contains("limit"));
}

TEST_CASE("the sdk survives random bytes", "[operators]") {
  std::mt19937_64 rng(20240611);
  int failed = 0;
  for (int round = 0; round < 500; ++round) {
    std::string input;
    // Half the rounds start with a valid hello, so batches and the rest get exercised too.
    if (round % 2 == 0) input = Hello("a,b");
    size_t len = 1 + rng() % 64;
    for (size_t i = 0; i < len; ++i) input.push_back(static_cast<char>(rng()));
    TestOperator op;
    Harness h(&op);
    Status s = h.session.Feed(input);
    if (s.ok()) s = h.session.Finish();
    if (!s.ok()) ++failed;
    // Whatever happened, what was written decodes as whole messages.
    REQUIRE_NOTHROW(h.Messages());
  }
  CHECK(failed > 400);
}

TEST_CASE("identity passes every tuple through", "[operators]") {
  auto op = MakeIdentity({});
  REQUIRE(op.ok());
  auto outs = RunBatch(op->get(), std::nullopt, {"a", "", "c,d"});
  CHECK(outs == std::vector<std::vector<Tuple>>{{{"k0", "a"}}, {{"k1", ""}}, {{"k2", "c,d"}}});
  CHECK_FALSE(MakeIdentity({"x"}).ok());
}

TEST_CASE("grep options select the tuples to pass", "[operators]") {
  auto passed = [](std::vector<std::string> args, std::vector<std::string> values,
                   std::optional<std::string> header = std::nullopt) {
    auto op = MakeGrep(args);
    REQUIRE(op.ok());
    std::vector<size_t> kept;
    auto outs = RunBatch(op->get(), header, values);
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!outs[i].empty()) {
        REQUIRE(outs[i].size() == 1);
        CHECK(outs[i][0].second == values[i]);
        kept.push_back(i);
      }
    }
    return kept;
  };
  using Kept = std::vector<size_t>;
  std::vector<std::string> v = {"Stop sign", "STOP", "yield", "stop,x", "a.c"};
  CHECK(passed({"Stop"}, v) == Kept{0});
  CHECK(passed({"-i", "stop"}, v) == Kept{0, 1, 3});
  CHECK(passed({"-v", "-i", "stop"}, v) == Kept{2, 4});
  CHECK(passed({"-vi", "STOP"}, v) == Kept{2, 4});
  CHECK(passed({"a.c"}, v) == Kept{4});
  CHECK(passed({"-E", "^(yield|STOP)$"}, v) == Kept{1, 2});
  CHECK(passed({"-E", "-i", "^stop"}, v) == Kept{0, 1, 3});
  CHECK(passed({"--column", "1", "x"}, v) == Kept{3});
  CHECK(passed({"--column=0", "-E", "^stop$"}, v) == Kept{3});
  CHECK(passed({""}, v) == Kept{0, 1, 2, 3, 4});
  CHECK(passed({"-i", ""}, {"", "x"}) == Kept{0, 1});
  CHECK(passed({"--", "-v"}, {"a-v", "v"}) == Kept{0});
  // By name: the header row is skipped even when it would match.
  CHECK(passed({"--column", "b", "-v", "zzz"}, {"a,b", "1,2", "3"}, std::string("a,b")) ==
        Kept{1, 2});
}

TEST_CASE("grep rejects bad arguments at startup", "[operators]") {
  CHECK_THAT(MakeGrep({}).status().message(), Catch::Contains("missing PATTERN"));
  CHECK_THAT(MakeGrep({"a", "b"}).status().message(), Catch::Contains("more than one"));
  CHECK_THAT(MakeGrep({"-q", "a"}).status().message(), Catch::Contains("unknown option -q"));
  CHECK_THAT(MakeGrep({"--nope", "a"}).status().message(), Catch::Contains("--nope"));
  CHECK_THAT(MakeGrep({"a", "--column"}).status().message(), Catch::Contains("needs a column"));
  CHECK_THAT(MakeGrep({"--column", "0-2", "a"}).status().message(),
             Catch::Contains("not one column"));
  CHECK_THAT(MakeGrep({"-E", "a("}).status().message(), Catch::Contains("bad regular expression"));
}

TEST_CASE("select emits the chosen columns as a csv line", "[operators]") {
  auto op = MakeSelect({"2,0-1"});
  REQUIRE(op.ok());
  auto outs = RunBatch(op->get(), std::nullopt, {"a,b,c", "\"x,1\",y,\"q\"\"\"", "only"});
  CHECK(outs[0] == std::vector<Tuple>{{"k0", "c,a,b"}});
  CHECK(outs[1] == std::vector<Tuple>{{"k1", "\"q\"\"\",\"x,1\",y"}});
  CHECK(outs[2] == std::vector<Tuple>{{"k2", ",only,"}});
  CHECK_FALSE(MakeSelect({}).ok());
  CHECK_FALSE(MakeSelect({"2-1"}).ok());
}

TEST_CASE("count keeps running counts per value", "[operators]") {
  auto op = MakeCount({"1"});
  REQUIRE(op.ok());
  auto outs = RunBatch(op->get(), std::nullopt, {"1,a", "2,b", "3,a", "4,\"x,y\"", "5,\"x,y\""});
  CHECK(outs[0] == std::vector<Tuple>{{"a", "a,1"}});
  CHECK(outs[1] == std::vector<Tuple>{{"b", "b,1"}});
  CHECK(outs[2] == std::vector<Tuple>{{"a", "a,2"}});
  CHECK(outs[4] == std::vector<Tuple>{{"x,y", "\"x,y\",2"}});
  CHECK_THAT(MakeCount({"1,2"}).status().message(), Catch::Contains("not one column"));
}

namespace {

// [2, tuples, groups]: a batch to an operator with keyed state.
std::string GroupedBatch(const std::vector<std::pair<std::string, uint32_t>>& values) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(3);
  pk.pack_uint8(2);
  pk.pack_array(static_cast<uint32_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) pk.pack(Tuple(Name("k", i), values[i].first));
  pk.pack_array(static_cast<uint32_t>(values.size()));
  for (const auto& v : values) pk.pack_uint32(v.second);
  return Str(b);
}

using GroupCounts = std::map<uint32_t, std::map<std::string, uint64_t>>;

GroupCounts StateOf(const msgpack::object& msg) {
  REQUIRE(msg.via.array.size == 2);
  REQUIRE(msg.via.array.ptr[0].as<int>() == 5);
  return msg.via.array.ptr[1].as<GroupCounts>();
}

}  // namespace

TEST_CASE("count offers state changes: only the counts changed since the last snapshot",
          "[operators]") {
  auto op = MakeCount({"0"});
  REQUIRE(op.ok());
  Harness h(op->get());
  const std::string changes("\x92\x04\xa7" "changes", 10);
  REQUIRE(h.session.Feed(Hello()).ok());
  REQUIRE(h.session.Feed(GroupedBatch({{"a", 3}, {"b", 7}, {"a", 3}, {"c", 3}})).ok());
  REQUIRE(h.session.Feed(changes).ok());  // nothing snapshotted before: everything changed
  REQUIRE(h.session.Feed(GroupedBatch({{"a", 3}})).ok());
  REQUIRE(h.session.Feed(changes).ok());
  REQUIRE(h.session.Feed(changes).ok());  // nothing since
  REQUIRE(h.session.Feed(GroupedBatch({{"b", 7}})).ok());
  REQUIRE(h.session.Feed(Snapshot()).ok());  // a full one resets what counts as changed
  REQUIRE(h.session.Feed(changes).ok());
  auto msgs = h.Messages();
  REQUIRE(msgs.size() == 9);
  auto ready = msgs[0].get().via.array.ptr[1].as<std::map<std::string, msgpack::object>>();
  REQUIRE(ready.count("state_changes") == 1);
  CHECK(ready["state_changes"].as<bool>());
  CHECK(ready["keyed_state"].as<bool>());
  CHECK(StateOf(msgs[2].get()) == GroupCounts{{3, {{"a", 2}, {"c", 1}}}, {7, {{"b", 1}}}});
  CHECK(StateOf(msgs[4].get()) == GroupCounts{{3, {{"a", 3}}}});
  CHECK(StateOf(msgs[5].get()).empty());
  CHECK(StateOf(msgs[7].get()) == GroupCounts{{3, {{"a", 3}, {"c", 1}}}, {7, {{"b", 2}}}});
  CHECK(StateOf(msgs[8].get()).empty());
}

TEST_CASE("a snapshot of changes to an operator that did not offer them is a violation",
          "[operators]") {
  TestOperator op;
  Harness h(&op);
  const std::string changes("\x92\x04\xa7" "changes", 10);
  REQUIRE(h.session.Feed(Hello()).ok());
  Status s = h.session.Feed(changes);
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::Contains("did not offer"));
  Harness h2(&op);
  REQUIRE(h2.session.Feed(Hello()).ok());
  Status bad = h2.session.Feed(std::string("\x92\x04\xa3" "all", 6));
  CHECK_THAT(bad.message(), Catch::Contains("[4, \"changes\"]"));
}

}  // namespace rs::op
