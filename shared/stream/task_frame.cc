#include "shared/stream/task_frame.h"

#include <cstring>
#include <msgpack.hpp>

#include "shared/wire/envelope.h"
#include "shared/wire/fields.h"
#include "shared/wire/message_types.h"

namespace rs::stream {
namespace {

// Minimal MessagePack writers into a std::string (faster than an sbuffer + packer round trip
// for the small fields of a tuple).
void PutU8(std::string* s, uint8_t v) { s->push_back(static_cast<char>(v)); }
void PutBe(std::string* s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutUint(std::string* s, uint64_t v) {
  if (v < 128) {
    PutU8(s, static_cast<uint8_t>(v));
  } else if (v <= 0xff) {
    PutU8(s, 0xcc);
    PutBe(s, v, 1);
  } else if (v <= 0xffff) {
    PutU8(s, 0xcd);
    PutBe(s, v, 2);
  } else if (v <= 0xffffffffu) {
    PutU8(s, 0xce);
    PutBe(s, v, 4);
  } else {
    PutU8(s, 0xcf);
    PutBe(s, v, 8);
  }
}
void PutStr(std::string* s, std::string_view v) {
  size_t n = v.size();
  if (n < 32) {
    PutU8(s, static_cast<uint8_t>(0xa0 | n));
  } else if (n <= 0xff) {
    PutU8(s, 0xd9);
    PutBe(s, n, 1);
  } else if (n <= 0xffff) {
    PutU8(s, 0xda);
    PutBe(s, n, 2);
  } else {
    PutU8(s, 0xdb);
    PutBe(s, n, 4);
  }
  s->append(v.data(), n);
}
void PutBin(std::string* s, std::string_view v) {
  size_t n = v.size();
  if (n <= 0xff) {
    PutU8(s, 0xc4);
    PutBe(s, n, 1);
  } else if (n <= 0xffff) {
    PutU8(s, 0xc5);
    PutBe(s, n, 2);
  } else {
    PutU8(s, 0xc6);
    PutBe(s, n, 4);
  }
  s->append(v.data(), n);
}
void PutBool(std::string* s, bool v) { PutU8(s, v ? 0xc3 : 0xc2); }
void PutNil(std::string* s) { PutU8(s, 0xc0); }
void PutArray(std::string* s, uint32_t n) {
  if (n < 16) {
    PutU8(s, static_cast<uint8_t>(0x90 | n));
  } else if (n <= 0xffff) {
    PutU8(s, 0xdc);
    PutBe(s, n, 2);
  } else {
    PutU8(s, 0xdd);
    PutBe(s, n, 4);
  }
}

void PutEnvelopeHead(std::string* s, wire::MsgType type) {
  PutArray(s, 4);
  PutUint(s, wire::kWireVersion);
  PutUint(s, static_cast<uint16_t>(type));
  PutUint(s, 0);  // request id: unused on the data plane
}

bool ReadView(const msgpack::object& o, std::string_view* out) {
  if (o.type == msgpack::type::STR) {
    *out = std::string_view(o.via.str.ptr, o.via.str.size);
    return true;
  }
  if (o.type == msgpack::type::BIN) {
    *out = std::string_view(o.via.bin.ptr, o.via.bin.size);
    return true;
  }
  return false;
}

}  // namespace

void DataFrameBuilder::Begin(const DataHeader& header) {
  header_ = header;
  tuples_.clear();
  count_ = 0;
}

void DataFrameBuilder::Add(uint64_t origin, uint32_t group, std::string_view id,
                           std::string_view key, std::string_view value) {
  PutArray(&tuples_, 5);
  PutUint(&tuples_, origin);
  PutUint(&tuples_, group);
  PutBin(&tuples_, id);
  PutStr(&tuples_, key);
  PutStr(&tuples_, value);
  ++count_;
}

std::string DataFrameBuilder::Finish(uint64_t seq, uint64_t emit_us, bool end,
                                     const OrderNote* order) {
  std::string s;
  s.reserve(64 + header_.job.size() + header_.ack_to.size() + tuples_.size());
  PutEnvelopeHead(&s, wire::MsgType::kTaskData);
  PutArray(&s, header_.epoch > 0 ? 11 : order ? 10 : 9);
  PutStr(&s, header_.job);
  PutUint(&s, header_.from_stage);
  PutUint(&s, header_.from_task);
  PutUint(&s, header_.incarnation);
  PutUint(&s, seq);
  PutStr(&s, header_.ack_to);
  PutUint(&s, emit_us);
  PutBool(&s, end);
  PutArray(&s, static_cast<uint32_t>(count_));
  s += tuples_;
  tuples_.clear();
  count_ = 0;
  if (order) {
    // [first, durable, [[upstream, origin, last_id], ...]]
    PutArray(&s, 3);
    PutUint(&s, order->runs.first);
    PutUint(&s, order->durable);
    PutArray(&s, static_cast<uint32_t>(order->runs.runs.size()));
    for (const auto& r : order->runs.runs) {
      PutArray(&s, 3);
      PutUint(&s, r.upstream);
      PutUint(&s, r.origin);
      PutBin(&s, r.last_id);
    }
  } else if (header_.epoch > 0) {
    PutNil(&s);
  }
  if (header_.epoch > 0) PutUint(&s, header_.epoch);
  return s;
}

std::string EncodeAck(const AckFrame& a) {
  std::string s;
  PutEnvelopeHead(&s, wire::MsgType::kTaskAck);
  PutArray(&s, 6);
  PutStr(&s, a.job);
  PutUint(&s, a.stage);
  PutUint(&s, a.task);
  PutUint(&s, a.incarnation);
  PutUint(&s, a.seq);
  PutUint(&s, a.durable);
  return s;
}

Result<TaskFrame> ParseTaskFrame(std::string bytes) {
  TaskFrame f;
  f.bytes = std::make_shared<const std::string>(std::move(bytes));
  const std::string& b = *f.bytes;
  msgpack::object_handle oh;
  try {
    std::size_t off = 0;
    auto all = [](msgpack::type::object_type, size_t, void*) { return true; };
    oh = msgpack::unpack(b.data(), b.size(), off, all, nullptr,
                         msgpack::unpack_limit(1u << 21, 64, 1u << 26, 1u << 26, 0, 8));
    if (off != b.size()) return Status::Corruption("trailing bytes after a task frame");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("undecodable task frame: ") + e.what());
  }
  const msgpack::object& root = oh.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 4) {
    return Status::Corruption("task frame is not a 4-element envelope");
  }
  uint64_t version = 0, type = 0;
  if (!wire::ReadUint(root.via.array.ptr[0], &version) || version != wire::kWireVersion ||
      !wire::ReadUint(root.via.array.ptr[1], &type)) {
    return Status::Corruption("task frame has a bad envelope header");
  }
  const msgpack::object& body = root.via.array.ptr[3];
  if (body.type != msgpack::type::ARRAY) return Status::Corruption("task frame body not an array");
  const msgpack::object* it = body.via.array.ptr;
  uint32_t n = body.via.array.size;
  auto u32 = [](const msgpack::object& o, uint32_t* out) {
    uint64_t v = 0;
    if (!wire::ReadUint(o, &v) || v > UINT32_MAX) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  };
  f.type = static_cast<uint16_t>(type);
  if (type == static_cast<uint16_t>(wire::MsgType::kTaskAck)) {
    if ((n != 5 && n != 6) || !wire::ReadString(it[0], &f.ack.job) || !u32(it[1], &f.ack.stage) ||
        !u32(it[2], &f.ack.task) || !wire::ReadUint(it[3], &f.ack.incarnation) ||
        !wire::ReadUint(it[4], &f.ack.seq) || (n == 6 && !wire::ReadUint(it[5], &f.ack.durable))) {
      return Status::Corruption("malformed task ack");
    }
    return f;
  }
  if (type != static_cast<uint16_t>(wire::MsgType::kTaskData)) {
    return Status::Corruption("unexpected message type " + std::to_string(type) +
                              " on a task inbox");
  }
  DataHeader& h = f.data;
  if ((n < 9 || n > 11) || !wire::ReadString(it[0], &h.job) || !u32(it[1], &h.from_stage) ||
      !u32(it[2], &h.from_task) || !wire::ReadUint(it[3], &h.incarnation) ||
      !wire::ReadUint(it[4], &h.seq) || !wire::ReadString(it[5], &h.ack_to) ||
      !wire::ReadUint(it[6], &h.emit_us) || !wire::ReadBool(it[7], &h.end) ||
      it[8].type != msgpack::type::ARRAY) {
    return Status::Corruption("malformed task data header");
  }
  if (n == 11 && !wire::ReadUint(it[10], &h.epoch)) {
    return Status::Corruption("malformed group table epoch in a task frame");
  }
  if (n >= 10 && it[9].type != msgpack::type::NIL) {
    const msgpack::object& o = it[9];
    OrderNote note;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 3 ||
        !wire::ReadUint(o.via.array.ptr[0], &note.runs.first) ||
        !wire::ReadUint(o.via.array.ptr[1], &note.durable) ||
        o.via.array.ptr[2].type != msgpack::type::ARRAY) {
      return Status::Corruption("malformed order note in a task frame");
    }
    const msgpack::object& runs = o.via.array.ptr[2];
    note.runs.runs.resize(runs.via.array.size);
    for (uint32_t i = 0; i < runs.via.array.size; ++i) {
      const msgpack::object& e = runs.via.array.ptr[i];
      OrderRun& r = note.runs.runs[i];
      std::string_view id;
      if (e.type != msgpack::type::ARRAY || e.via.array.size != 3 ||
          !u32(e.via.array.ptr[0], &r.upstream) || !wire::ReadUint(e.via.array.ptr[1], &r.origin) ||
          !ReadView(e.via.array.ptr[2], &id)) {
        return Status::Corruption("malformed run " + std::to_string(i) + " in a task frame");
      }
      r.last_id.assign(id.data(), id.size());
    }
    h.order = std::move(note);
  }
  const msgpack::object& tuples = it[8];
  f.tuples.resize(tuples.via.array.size);
  for (uint32_t i = 0; i < tuples.via.array.size; ++i) {
    const msgpack::object& t = tuples.via.array.ptr[i];
    TupleRef& r = f.tuples[i];
    if (t.type != msgpack::type::ARRAY || t.via.array.size != 5 ||
        !wire::ReadUint(t.via.array.ptr[0], &r.origin) || !u32(t.via.array.ptr[1], &r.group) ||
        !ReadView(t.via.array.ptr[2], &r.id) || !ReadView(t.via.array.ptr[3], &r.key) ||
        !ReadView(t.via.array.ptr[4], &r.value)) {
      return Status::Corruption("malformed tuple " + std::to_string(i) + " in a task frame");
    }
  }
  // The handle's zone only holds the array skeletons (strings are referenced); keep it alive
  // is not needed once views are taken.
  return f;
}

std::string SourceId(uint32_t file_index, uint64_t line) {
  std::string id;
  id.reserve(12);
  PutBe(&id, file_index, 4);
  PutBe(&id, line, 8);
  return id;
}

void AppendIdIndex(std::string* id, uint32_t index) { PutBe(id, index, 4); }

std::string FormatId(std::string_view id) {
  auto be = [&](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(id[at + i]);
    return v;
  };
  if (id.size() < 12 || (id.size() - 12) % 4 != 0) {
    static const char* digits = "0123456789abcdef";
    std::string hex = "0x";
    for (unsigned char c : id) {
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    return hex;
  }
  std::string out = std::to_string(be(0, 4));
  out += ':';
  out += std::to_string(be(4, 8));
  for (size_t at = 12; at < id.size(); at += 4) {
    out += '/';
    out += std::to_string(be(at, 4));
  }
  return out;
}

int CompareIds(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = std::memcmp(a.data(), b.data(), a.size());
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace rs::stream
