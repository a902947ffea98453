// Task data and ack frames: builder/parse round trips (empty frames, end flags, long strings,
// binary ids), golden header bytes, hostile bytes, and tuple-id ordering.
#include "shared/stream/task_frame.h"

#include <catch2/catch.hpp>
#include <msgpack.hpp>
#include <optional>
#include <random>

#include "shared/wire/envelope.h"
#include "shared/wire/message_types.h"

namespace rs::stream {
namespace {

DataHeader Header() {
  DataHeader h;
  h.job = "job-17";
  h.from_stage = 2;
  h.from_task = 5;
  h.incarnation = 0xfedcba9876543210ull;
  h.ack_to = "tcp://10.0.0.1:40000";
  return h;
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string DataFrame(size_t tuples) {
  DataFrameBuilder b;
  b.Begin(Header());
  for (size_t i = 0; i < tuples; ++i) {
    b.Add(i, static_cast<uint32_t>(i % 128), SourceId(1, i + 1), "file:" + std::to_string(i + 1),
          "value " + std::to_string(i));
  }
  return b.Finish(9, 1234567, false);
}

}  // namespace

TEST_CASE("a data frame round-trips through the builder and the parser", "[stream][frame]") {
  DataFrameBuilder b;
  b.Begin(Header());
  std::string binary_id("\x00\xff\x00\x80", 4);
  b.Add(3, 127, binary_id, "k1", "v1");
  b.Add(0, 0, "", "", "");
  b.Add(UINT64_MAX, UINT32_MAX, SourceId(7, 42), "key", std::string("bin\0ary\xff", 8));
  CHECK(b.tuples() == 3);
  std::string bytes = b.Finish(77, 1700000000000000ull, false);
  CHECK(b.tuples() == 0);

  auto f = ParseTaskFrame(bytes);
  REQUIRE(f.ok());
  CHECK(f->type == static_cast<uint16_t>(wire::MsgType::kTaskData));
  CHECK(f->data.job == "job-17");
  CHECK(f->data.from_stage == 2);
  CHECK(f->data.from_task == 5);
  CHECK(f->data.incarnation == 0xfedcba9876543210ull);
  CHECK(f->data.seq == 77);
  CHECK(f->data.ack_to == "tcp://10.0.0.1:40000");
  CHECK(f->data.emit_us == 1700000000000000ull);
  CHECK_FALSE(f->data.end);
  REQUIRE(f->tuples.size() == 3);
  CHECK(f->tuples[0].origin == 3);
  CHECK(f->tuples[0].group == 127);
  CHECK(f->tuples[1].group == 0);
  CHECK(f->tuples[2].group == UINT32_MAX);
  CHECK(f->tuples[0].id == binary_id);
  CHECK(f->tuples[0].key == "k1");
  CHECK(f->tuples[0].value == "v1");
  CHECK(f->tuples[1].origin == 0);
  CHECK(f->tuples[1].id.empty());
  CHECK(f->tuples[1].key.empty());
  CHECK(f->tuples[1].value.empty());
  CHECK(f->tuples[2].origin == UINT64_MAX);
  CHECK(f->tuples[2].id == SourceId(7, 42));
  CHECK(f->tuples[2].value == std::string_view("bin\0ary\xff", 8));

  // The standard envelope: wire::Decode reads it too.
  auto env = wire::Decode(bytes);
  REQUIRE(env.ok());
  CHECK(env->type == static_cast<uint16_t>(wire::MsgType::kTaskData));
}

TEST_CASE("the tuple views outlive moves of the parsed frame", "[stream][frame]") {
  std::optional<TaskFrame> kept;
  {
    auto f = ParseTaskFrame(DataFrame(40));
    REQUIRE(f.ok());
    kept = std::move(f.value());
  }
  REQUIRE(kept->tuples.size() == 40);
  CHECK(kept->tuples[39].key == "file:40");
  CHECK(kept->tuples[39].value == "value 39");
  TaskFrame copy = *kept;
  kept.reset();
  CHECK(copy.tuples[0].id == SourceId(1, 1));
}

TEST_CASE("an empty end frame round-trips", "[stream][frame]") {
  DataFrameBuilder b;
  b.Begin(Header());
  CHECK(b.tuples() == 0);
  std::string bytes = b.Finish(1, 0, true);
  CHECK(bytes.size() <= b.bytes());
  auto f = ParseTaskFrame(bytes);
  REQUIRE(f.ok());
  CHECK(f->data.end);
  CHECK(f->data.seq == 1);
  CHECK(f->data.emit_us == 0);
  CHECK(f->tuples.empty());
}

TEST_CASE("the data header bytes are pinned", "[stream][frame]") {
  DataHeader h;
  h.job = "j";
  h.from_stage = 0;
  h.from_task = 0;
  h.incarnation = 1;
  h.ack_to = "a";
  DataFrameBuilder b;
  b.Begin(h);
  b.Add(2, 5, "\x01", "k", "v");
  // [1, 50, 0, ["j", 0, 0, 1, 3, "a", 4, true, [[2, 5, bin "\x01", "k", "v"]]]]
  CHECK(Hex(b.Finish(3, 4, true)) ==
        "94013200"
        "99"
        "a16a"
        "00"
        "00"
        "01"
        "03"
        "a161"
        "04"
        "c3"
        "91"
        "95"
        "02"
        "05"
        "c40101"
        "a16b"
        "a176");
}

TEST_CASE("strings and ids longer than 65535 bytes round-trip", "[stream][frame]") {
  std::string big_value(70000, 'v');
  big_value[12345] = '\0';
  std::string big_key(65536, 'k');
  std::string big_id(66000, '\xab');
  std::string mid(300, 'm');  // str8/bin16 boundaries
  DataFrameBuilder b;
  DataHeader h = Header();
  h.job = std::string(40, 'j');  // str8
  h.ack_to = std::string(70000, 'a');
  b.Begin(h);
  b.Add(1, 1, big_id, big_key, big_value);
  b.Add(2, 2, mid, mid, mid);
  b.Add(3, 3, std::string(255, 'x'), std::string(31, 'y'), std::string(32, 'z'));
  std::string bytes = b.Finish(UINT64_MAX, UINT64_MAX, false);
  CHECK(bytes.size() <= b.bytes() + big_id.size() + big_key.size() + big_value.size() +
                            3 * mid.size() + 255 + 31 + 32 + 64);
  auto f = ParseTaskFrame(bytes);
  REQUIRE(f.ok());
  CHECK(f->data.job == h.job);
  CHECK(f->data.ack_to == h.ack_to);
  CHECK(f->data.seq == UINT64_MAX);
  REQUIRE(f->tuples.size() == 3);
  CHECK(f->tuples[0].id == big_id);
  CHECK(f->tuples[0].key == big_key);
  CHECK(f->tuples[0].value == big_value);
  CHECK(f->tuples[1].id == mid);
  CHECK(f->tuples[2].id.size() == 255);
  CHECK(f->tuples[2].key.size() == 31);
  CHECK(f->tuples[2].value.size() == 32);
}

TEST_CASE("many tuples need the long array headers", "[stream][frame]") {
  for (size_t n : {15u, 16u, 65535u, 65536u}) {
    auto f = ParseTaskFrame(DataFrame(n));
    REQUIRE(f.ok());
    CHECK(f->tuples.size() == n);
    CHECK(f->tuples.back().origin == n - 1);
  }
}

TEST_CASE("bytes() bounds the finished frame and grows with the tuples", "[stream][frame]") {
  DataFrameBuilder b;
  b.Begin(Header());
  size_t empty = b.bytes();
  b.Add(1, 0, SourceId(0, 1), "stdin:1", std::string(1000, 'x'));
  CHECK(b.bytes() >= empty + 1000);
  size_t bound = b.bytes();
  CHECK(b.Finish(1, 1, false).size() <= bound);
}

TEST_CASE("a builder is reusable after Finish", "[stream][frame]") {
  DataFrameBuilder b;
  b.Begin(Header());
  b.Add(1, 0, "a", "k", "v");
  (void)b.Finish(1, 0, false);
  b.Add(2, 0, "b", "k2", "v2");
  auto f = ParseTaskFrame(b.Finish(2, 0, false));
  REQUIRE(f.ok());
  REQUIRE(f->tuples.size() == 1);
  CHECK(f->tuples[0].id == "b");
  CHECK(f->data.job == "job-17");
}

TEST_CASE("an ack round-trips and its bytes are pinned", "[stream][frame]") {
  AckFrame a;
  a.job = "j";
  a.stage = 1;
  a.task = 2;
  a.incarnation = 3;
  a.seq = 4;
  a.durable = 2;
  std::string bytes = EncodeAck(a);
  CHECK(Hex(bytes) ==
        "94013300"
        "96"
        "a16a"
        "01"
        "02"
        "03"
        "04"
        "02");
  // The 5-element form (before durable acks) still parses, with durable 0.
  auto old_form = ParseTaskFrame(std::string("\x94\x01\x33\x00\x95\xa1j\x01\x02\x03\x04", 11));
  REQUIRE(old_form.ok());
  CHECK(old_form->ack.seq == 4);
  CHECK(old_form->ack.durable == 0);
  auto pinned = ParseTaskFrame(bytes);
  REQUIRE(pinned.ok());
  CHECK(pinned->ack.durable == 2);
  AckFrame big{"job-x", UINT32_MAX, 63, UINT64_MAX, UINT64_MAX - 1};
  auto f = ParseTaskFrame(EncodeAck(big));
  REQUIRE(f.ok());
  CHECK(f->type == static_cast<uint16_t>(wire::MsgType::kTaskAck));
  CHECK(f->ack.job == "job-x");
  CHECK(f->ack.stage == UINT32_MAX);
  CHECK(f->ack.task == 63);
  CHECK(f->ack.incarnation == UINT64_MAX);
  CHECK(f->ack.seq == UINT64_MAX - 1);
  CHECK(f->tuples.empty());
}

std::string NotedFrame() {
  DataFrameBuilder b;
  b.Begin(Header());
  b.Add(3, 0, SourceId(1, 7), "k", "v");
  OrderNote note;
  note.runs.first = 41;
  note.runs.runs = {{1, 3, SourceId(1, 7)}, {0, 1u << 20, std::string(300, 'x')}};
  note.durable = 40;
  return b.Finish(9, 0, false, &note);
}

TEST_CASE("a frame to the sink carries the sender's order note", "[stream][frame]") {
  auto f = ParseTaskFrame(NotedFrame());
  REQUIRE(f.ok());
  REQUIRE(f->tuples.size() == 1);
  REQUIRE(f->data.order.has_value());
  CHECK(f->data.order->durable == 40);
  CHECK(f->data.order->runs.first == 41);
  REQUIRE(f->data.order->runs.runs.size() == 2);
  CHECK(f->data.order->runs.runs[0] == OrderRun{1, 3, SourceId(1, 7)});
  CHECK(f->data.order->runs.runs[1].origin == 1u << 20);
  CHECK(f->data.order->runs.runs[1].last_id == std::string(300, 'x'));
  // Without a note: none parsed.
  auto plain = ParseTaskFrame(DataFrame(1));
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->data.order.has_value());
}

TEST_CASE("a frame carries its sender's group table epoch, with or without an order note",
          "[stream][frame]") {
  DataFrameBuilder b;
  b.Begin(Header());
  b.set_epoch(7);
  b.Add(3, 5, SourceId(1, 7), "k", "v");
  auto f = ParseTaskFrame(b.Finish(9, 0, false));
  REQUIRE(f.ok());
  CHECK(f->data.epoch == 7);
  CHECK_FALSE(f->data.order.has_value());
  REQUIRE(f->tuples.size() == 1);
  CHECK(f->tuples[0].group == 5);
  OrderNote note;
  note.runs.first = 2;
  note.runs.runs = {{1, 3, SourceId(1, 7)}};
  auto g = ParseTaskFrame(b.Finish(10, 0, true, &note));  // the epoch stays for later frames
  REQUIRE(g.ok());
  CHECK(g->data.epoch == 7);
  CHECK(g->data.end);
  REQUIRE(g->data.order.has_value());
  CHECK(g->data.order->runs.runs.size() == 1);
  // Epoch 0 is not written: the frame is the 9-element one of before.
  CHECK(ParseTaskFrame(DataFrame(1))->data.epoch == 0);
  // A mistyped epoch is refused.
  std::string bytes = b.Finish(11, 0, false);
  bytes.back() = static_cast<char>(0xc2);  // false instead of a uint
  CHECK(ParseTaskFrame(bytes).status().code() == StatusCode::kCorruption);
}

TEST_CASE("every truncation of a frame is Corruption", "[stream][frame]") {
  for (const std::string& good :
       {DataFrame(3), DataFrame(0), NotedFrame(), EncodeAck(AckFrame{"job", 1, 2, 3, 4})}) {
    for (size_t n = 0; n < good.size(); ++n) {
      auto f = ParseTaskFrame(good.substr(0, n));
      REQUIRE_FALSE(f.ok());
      CHECK(f.status().code() == StatusCode::kCorruption);
    }
    auto f = ParseTaskFrame(good + std::string(1, '\0'));
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == StatusCode::kCorruption);
  }
}

TEST_CASE("frames of the wrong shape are Corruption", "[stream][frame]") {
  auto packed = [](auto fill) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    fill(pk);
    return std::string(buf.data(), buf.size());
  };
  auto corrupt = [](const std::string& bytes) {
    auto f = ParseTaskFrame(bytes);
    return !f.ok() && f.status().code() == StatusCode::kCorruption;
  };
  // Another message type on a task inbox.
  CHECK(corrupt(
      wire::Encode(wire::MsgType::kAdminCommand, 0, [](wire::Packer& pk) { pk.pack_map(0); })));
  // Wrong version.
  std::string bad_version = EncodeAck(AckFrame{"j", 1, 1, 1, 1});
  bad_version[1] = 2;
  CHECK(corrupt(bad_version));
  // An ack with a stage above 32 bits, a negative seq, a missing field.
  CHECK(corrupt(packed([](auto& pk) {
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(51);
    pk.pack(0);
    pk.pack_array(5);
    pk.pack("j");
    pk.pack(uint64_t{1} << 32);
    pk.pack(0);
    pk.pack(1);
    pk.pack(1);
  })));
  CHECK(corrupt(packed([](auto& pk) {
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(51);
    pk.pack(0);
    pk.pack_array(5);
    pk.pack("j");
    pk.pack(1);
    pk.pack(0);
    pk.pack(1);
    pk.pack(-1);
  })));
  CHECK(corrupt(packed([](auto& pk) {
    pk.pack_array(4);
    pk.pack(1);
    pk.pack(51);
    pk.pack(0);
    pk.pack_array(4);
    pk.pack("j");
    pk.pack(1);
    pk.pack(0);
    pk.pack(1);
  })));
  // A tuple with three fields, a tuple whose key is a number, tuples that are not an array.
  auto data = [&](auto tuples) {
    return packed([&](auto& pk) {
      pk.pack_array(4);
      pk.pack(1);
      pk.pack(50);
      pk.pack(0);
      pk.pack_array(9);
      pk.pack("j");
      pk.pack(1);
      pk.pack(0);
      pk.pack(1);
      pk.pack(1);
      pk.pack("tcp://x:1");
      pk.pack(0);
      pk.pack(false);
      tuples(pk);
    });
  };
  CHECK(corrupt(data([](auto& pk) {
    pk.pack_array(1);
    pk.pack_array(3);
    pk.pack(0);
    pk.pack("");
    pk.pack("k");
  })));
  CHECK(corrupt(data([](auto& pk) {
    pk.pack_array(1);
    pk.pack_array(4);
    pk.pack(0);
    pk.pack("");
    pk.pack(5);
    pk.pack("v");
  })));
  CHECK(corrupt(data([](auto& pk) { pk.pack("no tuples"); })));
  // Plain garbage and a huge declared array.
  CHECK(corrupt(""));
  CHECK(corrupt("hello"));
  CHECK(corrupt(std::string("\x94\x01\x32\x00\xdd\xff\xff\xff\xff", 9)));
  CHECK(corrupt(std::string("\xc1", 1)));
}

TEST_CASE("random mutations of frames never crash", "[stream][frame]") {
  std::mt19937 rng(7);
  std::vector<std::string> seeds = {DataFrame(5), NotedFrame(),
                                    EncodeAck(AckFrame{"job", 1, 2, 3, 4})};
  int parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string b = seeds[static_cast<size_t>(round) % seeds.size()];
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) b.resize(rng() % b.size());
    auto f = ParseTaskFrame(b);
    if (f.ok()) {
      ++parsed;
      for (const auto& t : f->tuples) {
        // Views stay inside the frame's bytes.
        const char* lo = f->bytes->data();
        const char* hi = lo + f->bytes->size();
        for (std::string_view v : {t.id, t.key, t.value}) {
          CHECK((v.empty() || (v.data() >= lo && v.data() + v.size() <= hi)));
        }
      }
    } else {
      CHECK(f.status().code() == StatusCode::kCorruption);
    }
  }
  CHECK(parsed > 0);  // some mutations only change values
}

TEST_CASE("tuple ids order by length, then bytes", "[stream][frame]") {
  CHECK(SourceId(0, 1).size() == 12);
  CHECK(Hex(SourceId(0x01020304, 0x05)) ==
        "01020304"
        "0000000000000005");
  CHECK(CompareIds(SourceId(0, 1), SourceId(0, 2)) < 0);
  CHECK(CompareIds(SourceId(0, 255), SourceId(0, 256)) < 0);  // big-endian: numeric order
  CHECK(CompareIds(SourceId(0, UINT64_MAX), SourceId(1, 0)) < 0);
  CHECK(CompareIds(SourceId(3, 9), SourceId(3, 9)) == 0);
  CHECK(CompareIds(SourceId(3, 10), SourceId(3, 9)) > 0);
  std::string out = SourceId(0, 5);
  AppendIdIndex(&out, 0);
  CHECK(out.size() == 16);
  std::string out2 = SourceId(0, 5);
  AppendIdIndex(&out2, 1);
  CHECK(CompareIds(out, out2) < 0);
  std::string later = SourceId(0, 6);
  AppendIdIndex(&later, 0);
  CHECK(CompareIds(out2, later) < 0);
  // Shorter sorts first, whatever the bytes.
  CHECK(CompareIds("\xff", std::string("\x00\x00", 2)) < 0);
  CHECK(CompareIds("", std::string("\x00", 1)) < 0);
  CHECK(CompareIds("", "") == 0);
  // Bytes compare unsigned.
  CHECK(CompareIds("\x80", "\x7f") > 0);
}

TEST_CASE("ids print as FILE:LINE/INDEX..., anything else as hex", "[stream][frame]") {
  CHECK(FormatId(SourceId(0, 4411)) == "0:4411");
  std::string id = SourceId(3, 1ull << 40);
  AppendIdIndex(&id, 0);
  AppendIdIndex(&id, 4294967295u);
  CHECK(FormatId(id) == "3:1099511627776/0/4294967295");
  CHECK(FormatId("") == "0x");
  CHECK(FormatId(std::string("\x00\xab\x10", 3)) == "0x00ab10");
  CHECK(FormatId(SourceId(1, 2) + "x") ==
        "0x" + std::string("00000001") + "0000000000000002" + "78");
}

}  // namespace rs::stream
