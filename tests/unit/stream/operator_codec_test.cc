// The operator protocol's messages (daemon/stream/operator_codec.h, operators/PROTOCOL.md):
// what the worker writes is what the protocol says, and what an operator answers is checked
// field by field, with a clear reason for each way it can be wrong.
#include "daemon/stream/operator_codec.h"

#include <catch2/catch.hpp>

namespace rs::stream {
namespace {

msgpack::object_handle Unpack(const std::string& bytes) {
  size_t off = 0;
  msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size(), off);
  REQUIRE(off == bytes.size());  // one message, nothing after it
  return oh;
}

template <typename Fn>
std::string Packed(Fn fn) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  fn(pk);
  return std::string(b.data(), b.size());
}

TEST_CASE("operator codec: hello, batch, snapshot and restore as PROTOCOL.md writes them",
          "[operator-codec]") {
  OperatorContext ctx;
  ctx.job = "j1";
  ctx.stage = 2;
  ctx.stages = 3;
  ctx.task = 1;
  ctx.tasks = 4;
  ctx.args = {"a", "b"};
  ctx.key_groups = 128;
  auto hello = Unpack(PackHello(ctx));
  const msgpack::object& h = hello.get();
  REQUIRE(h.type == msgpack::type::ARRAY);
  REQUIRE(h.via.array.size == 2);
  CHECK(h.via.array.ptr[0].as<uint64_t>() == 0);
  auto info = h.via.array.ptr[1].as<std::map<std::string, msgpack::object>>();
  CHECK(info.at("version").as<uint64_t>() == 1);
  CHECK(info.at("job").as<std::string>() == "j1");
  CHECK(info.at("stage").as<uint64_t>() == 2);
  CHECK(info.at("tasks").as<uint64_t>() == 4);
  CHECK(info.at("key_groups").as<uint64_t>() == 128);
  CHECK(info.at("args").as<std::vector<std::string>>() == std::vector<std::string>{"a", "b"});
  CHECK(info.at("csv_header").is_nil());

  std::vector<TupleView> tuples = {{"k1", "v1"}, {std::string_view("\0x", 2), ""}};
  uint32_t groups[] = {7, 9};
  auto plain = Unpack(PackBatch(tuples.data(), 2, nullptr));
  REQUIRE(plain.get().via.array.size == 2);
  CHECK(plain.get().via.array.ptr[0].as<uint64_t>() == 2);
  auto pairs = plain.get().via.array.ptr[1].as<std::vector<std::vector<std::string>>>();
  CHECK(pairs == std::vector<std::vector<std::string>>{{"k1", "v1"}, {std::string("\0x", 2), ""}});
  auto keyed = Unpack(PackBatch(tuples.data(), 2, groups));
  REQUIRE(keyed.get().via.array.size == 3);
  CHECK(keyed.get().via.array.ptr[2].as<std::vector<uint32_t>>() == std::vector<uint32_t>{7, 9});

  CHECK(PackSnapshotRequest() == std::string("\x91\x04", 2));
  CHECK(PackSnapshotRequest(true) == std::string("\x92\x04\xa7" "changes", 10));
  std::string state = Packed([](auto& pk) { pk.pack(std::map<std::string, int>{{"x", 1}}); });
  CHECK(PackRestore(state) == std::string("\x92\x06", 2) + state);
}

TEST_CASE("operator codec: a ready answer is read field by field", "[operator-codec]") {
  auto ready = [](auto fill) {
    return Unpack(Packed([&](auto& pk) {
      pk.pack_array(2);
      pk.pack(1);
      fill(pk);
    }));
  };
  auto ok = ready([](auto& pk) {
    pk.pack_map(4);
    pk.pack("stateful");
    pk.pack(true);
    pk.pack("keyed_state");
    pk.pack(true);
    pk.pack("input_partition");
    pk.pack_map(1);
    pk.pack("csv_column");
    pk.pack(3);
    pk.pack("future_field");
    pk.pack("ignored");
  });
  auto r = ParseReady(ok.get());
  REQUIRE(r.ok());
  CHECK(r->stateful);
  CHECK(r->keyed_state);
  CHECK(r->csv_column == std::optional<uint64_t>(3));

  auto keyed_only = ready([](auto& pk) {
    pk.pack_map(1);
    pk.pack("keyed_state");
    pk.pack(true);
  });
  CHECK(ParseReady(keyed_only.get()).status().message().find("not stateful") !=
        std::string::npos);
  CHECK_FALSE(r->state_changes);
  auto changes = ready([](auto& pk) {
    pk.pack_map(3);
    pk.pack("stateful");
    pk.pack(true);
    pk.pack("keyed_state");
    pk.pack(true);
    pk.pack("state_changes");
    pk.pack(true);
  });
  auto rc = ParseReady(changes.get());
  REQUIRE(rc.ok());
  CHECK(rc->state_changes);
  auto changes_unkeyed = ready([](auto& pk) {
    pk.pack_map(2);
    pk.pack("stateful");
    pk.pack(true);
    pk.pack("state_changes");
    pk.pack(true);
  });
  CHECK(ParseReady(changes_unkeyed.get()).status().message() ==
        "ready says state_changes but not keyed_state");
  auto wrong_type = ready([](auto& pk) {
    pk.pack_map(1);
    pk.pack("stateful");
    pk.pack("yes");
  });
  CHECK(ParseReady(wrong_type.get()).status().message() == "ready stateful is a str");
  auto not_map = ready([](auto& pk) { pk.pack(5); });
  CHECK_FALSE(ParseReady(not_map.get()).ok());
  auto result_instead = Unpack(Packed([](auto& pk) {
    pk.pack_array(2);
    pk.pack(3);
    pk.pack_map(0);
  }));
  CHECK(ParseReady(result_instead.get()).status().message() ==
        "message type 3 instead of 1 (ready)");
}

TEST_CASE("operator codec: a result must match its batch", "[operator-codec]") {
  auto result = [](auto fill) {
    return Unpack(Packed([&](auto& pk) {
      pk.pack_array(2);
      pk.pack(3);
      fill(pk);
    }));
  };
  auto two = result([](auto& pk) {
    pk.pack_array(2);
    pk.pack_array(2);  // input 0: two outputs
    pk.pack(std::vector<std::string>{"a", "1"});
    pk.pack(std::vector<std::string>{"b", "2"});
    pk.pack_array(0);  // input 1: none
  });
  ResultViews r;
  REQUIRE(ParseResultViews(two.get(), 2, &r).ok());
  CHECK(r.offsets == std::vector<uint32_t>{0, 2, 2});
  REQUIRE(r.tuples.size() == 2);
  CHECK(r.tuples[1] == TupleView{"b", "2"});
  CHECK(ParseResultViews(two.get(), 3, &r).message() == "2 outputs for 3 input tuples");
  auto bad_pair = result([](auto& pk) {
    pk.pack_array(1);
    pk.pack_array(1);
    pk.pack(std::vector<int>{1, 2});
  });
  CHECK(ParseResultViews(bad_pair.get(), 1, &r).message() ==
        "outputs[0][0] is not a [key, value] pair of strings");
}

}  // namespace
}  // namespace rs::stream
