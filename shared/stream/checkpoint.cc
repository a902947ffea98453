#include "shared/stream/checkpoint.h"

#include <msgpack.hpp>

#include "shared/stream/key_groups.h"
#include "shared/wire/envelope.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

void PutBe32(std::string* s, uint32_t v) {
  for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetBe32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
}

void PackBin(wire::Packer& pk, std::string_view b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

// Fields of a decoded record; each reader fails with Corruption naming the field.
class Reader {
 public:
  explicit Reader(const msgpack::object& map) : map_(map) {}

  Status Uint(const char* key, uint64_t* out) const {
    const msgpack::object* o = wire::MapGet(map_, key);
    if (o == nullptr) return Status::Ok();  // absent: 0
    if (!wire::ReadUint(*o, out)) return Bad(key, "an unsigned integer");
    return Status::Ok();
  }
  // The array under `key` (nullptr and ok when absent).
  Status Array(const char* key, const msgpack::object** out) const {
    *out = wire::MapGet(map_, key);
    if (*out != nullptr && (*out)->type != msgpack::type::ARRAY) return Bad(key, "an array");
    return Status::Ok();
  }
  // Entry `i` of `array`: an array of exactly `n` elements.
  static Status Tuple(const msgpack::object& array, uint32_t i, uint32_t n, const char* key,
                      const msgpack::object** out) {
    const msgpack::object& e = array.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != n) {
      return Status::Corruption(std::string("checkpoint record: ") + key + " entry " +
                                std::to_string(i) + " is not an array of " + std::to_string(n));
    }
    *out = e.via.array.ptr;
    return Status::Ok();
  }
  static bool Bytes(const msgpack::object& o, std::string_view* out) {
    if (o.type == msgpack::type::BIN) {
      *out = std::string_view(o.via.bin.ptr, o.via.bin.size);
    } else if (o.type == msgpack::type::STR) {
      *out = std::string_view(o.via.str.ptr, o.via.str.size);
    } else {
      return false;
    }
    return true;
  }
  static bool U32(const msgpack::object& o, uint32_t* out) {
    uint64_t v = 0;
    if (!wire::ReadUint(o, &v) || v > UINT32_MAX) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }
  static Status Bad(const char* key, const char* want) {
    return Status::Corruption(std::string("checkpoint record: ") + key + " is not " + want);
  }

 private:
  const msgpack::object& map_;
};

}  // namespace

std::string CheckpointDir(std::string_view job) { return "rainstorm/" + std::string(job) + "/"; }

std::string CheckpointFilePrefix(std::string_view job, uint32_t stage, uint32_t task) {
  return CheckpointDir(job) + "task-" + std::to_string(stage) + "-" + std::to_string(task) +
         ".ckpt.";
}

std::string CheckpointFileName(std::string_view job, uint32_t stage, uint32_t task, uint64_t gen) {
  return CheckpointFilePrefix(job, stage, task) + std::to_string(gen);
}

void AppendCheckpointRecord(const CheckpointRecord& r, std::string* out) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_map(9 + (r.state_changes ? 1 : 0) + (r.order ? 1 : 0) + (r.epoch > 0 ? 1 : 0) +
              (r.source ? 1 : 0));
  if (r.source) {
    pk.pack("source");
    pk.pack_array(3);
    pk.pack_uint64(r.source->origin);
    pk.pack_uint64(r.source->begin);
    pk.pack_uint64(r.source->end);
  }
  if (r.epoch > 0) {
    pk.pack("epoch");
    pk.pack_uint64(r.epoch);
  }
  pk.pack("time_ms");
  pk.pack_uint64(r.time_ms);
  pk.pack("commits");
  pk.pack_uint64(r.commits);
  pk.pack("wm");
  pk.pack_array(static_cast<uint32_t>(r.wm.size()));
  for (const auto& w : r.wm) {
    pk.pack_array(5);
    pk.pack_uint32(w.group);
    pk.pack_uint32(w.stage);
    pk.pack_uint32(w.task);
    pk.pack_uint64(w.origin);
    PackBin(pk, w.id);
  }
  pk.pack("in");
  pk.pack_array(static_cast<uint32_t>(r.in.size()));
  for (const auto& c : r.in) {
    pk.pack_array(5);
    pk.pack_uint32(c.stage);
    pk.pack_uint32(c.task);
    pk.pack_uint64(c.incarnation);
    pk.pack_uint64(c.processed);
    pk.pack(c.ended);
  }
  pk.pack("pending");
  pk.pack_array(static_cast<uint32_t>(r.pending.size()));
  for (const auto& f : r.pending) {
    pk.pack_array(3);
    pk.pack_uint32(f.to);
    pk.pack_uint64(f.seq);
    PackBin(pk, f.bytes);
  }
  pk.pack("pending_from");
  pk.pack_array(static_cast<uint32_t>(r.pending_from.size()));
  for (const auto& [to, seq] : r.pending_from) {
    pk.pack_array(2);
    pk.pack_uint32(to);
    pk.pack_uint64(seq);
  }
  pk.pack("state");
  if (r.state) {
    PackBin(pk, *r.state);
  } else {
    pk.pack_nil();
  }
  if (r.state_changes) {
    pk.pack("state_changes");
    pk.pack_true();
  }
  if (r.order) {
    pk.pack("order");
    pk.pack_uint64(*r.order);
  }
  pk.pack("spool_bytes");
  pk.pack_uint64(r.spool_bytes);
  pk.pack("counters");
  pk.pack_array(3);
  pk.pack_uint64(r.tuples_in);
  pk.pack_uint64(r.tuples_out);
  pk.pack_uint64(r.duplicates);
  out->reserve(out->size() + 4 + buf.size());
  PutBe32(out, static_cast<uint32_t>(buf.size()));
  out->append(buf.data(), buf.size());
}

CheckpointRecords SplitCheckpointFile(std::string_view file) {
  CheckpointRecords out;
  size_t off = 0;
  while (off + 4 <= file.size()) {
    uint32_t len = GetBe32(file, off);
    if (len > file.size() - off - 4) break;
    out.records.push_back(file.substr(off + 4, len));
    off += 4 + static_cast<size_t>(len);
  }
  out.torn_bytes = file.size() - off;
  return out;
}

Result<CheckpointRecord> DecodeCheckpointRecord(std::string_view bytes) {
  auto handle = std::make_shared<msgpack::object_handle>();
  try {
    size_t off = 0;
    // Bounded like every decoder of bytes from elsewhere; entries are bins and small arrays.
    *handle = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                              msgpack::unpack_limit(1u << 24, 16, 1u << 30, 1u << 30, 0, 4));
    if (off != bytes.size()) return Status::Corruption("checkpoint record: bytes after the map");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("checkpoint record does not decode: ") + e.what());
  }
  const msgpack::object& map = handle->get();
  if (map.type != msgpack::type::MAP) return Status::Corruption("checkpoint record is not a map");
  CheckpointRecord r;
  r.hold = handle;
  Reader f(map);
  RS_RETURN_IF_ERROR(f.Uint("time_ms", &r.time_ms));
  RS_RETURN_IF_ERROR(f.Uint("commits", &r.commits));
  RS_RETURN_IF_ERROR(f.Uint("spool_bytes", &r.spool_bytes));
  const msgpack::object* a = nullptr;
  const msgpack::object* e = nullptr;
  RS_RETURN_IF_ERROR(f.Array("wm", &a));
  for (uint32_t i = 0; a != nullptr && i < a->via.array.size; ++i) {
    RS_RETURN_IF_ERROR(Reader::Tuple(*a, i, 5, "wm", &e));
    CheckpointWatermark w;
    if (!Reader::U32(e[0], &w.group) || !Reader::U32(e[1], &w.stage) ||
        !Reader::U32(e[2], &w.task) || !wire::ReadUint(e[3], &w.origin) ||
        !Reader::Bytes(e[4], &w.id)) {
      return Reader::Bad("a wm entry", "[group, stage, task, origin, id]");
    }
    r.wm.push_back(w);
  }
  RS_RETURN_IF_ERROR(f.Array("in", &a));
  for (uint32_t i = 0; a != nullptr && i < a->via.array.size; ++i) {
    RS_RETURN_IF_ERROR(Reader::Tuple(*a, i, 5, "in", &e));
    CheckpointChannel c;
    if (!Reader::U32(e[0], &c.stage) || !Reader::U32(e[1], &c.task) ||
        !wire::ReadUint(e[2], &c.incarnation) || !wire::ReadUint(e[3], &c.processed) ||
        !wire::ReadBool(e[4], &c.ended)) {
      return Reader::Bad("an in entry", "[stage, task, incarnation, processed, ended]");
    }
    r.in.push_back(c);
  }
  RS_RETURN_IF_ERROR(f.Array("pending", &a));
  for (uint32_t i = 0; a != nullptr && i < a->via.array.size; ++i) {
    RS_RETURN_IF_ERROR(Reader::Tuple(*a, i, 3, "pending", &e));
    CheckpointFrame p;
    if (!Reader::U32(e[0], &p.to) || !wire::ReadUint(e[1], &p.seq) ||
        !Reader::Bytes(e[2], &p.bytes)) {
      return Reader::Bad("a pending entry", "[to, seq, frame]");
    }
    r.pending.push_back(p);
  }
  // Optional: without it, `pending` is every frame still pending (a full record).
  if (const msgpack::object* pf = wire::MapGet(map, "pending_from"); pf != nullptr) {
    if (pf->type != msgpack::type::ARRAY) return Reader::Bad("pending_from", "an array");
    r.incremental = true;
    for (uint32_t i = 0; i < pf->via.array.size; ++i) {
      RS_RETURN_IF_ERROR(Reader::Tuple(*pf, i, 2, "pending_from", &e));
      uint32_t to = 0;
      uint64_t seq = 0;
      if (!Reader::U32(e[0], &to) || !wire::ReadUint(e[1], &seq)) {
        return Reader::Bad("a pending_from entry", "[to, seq]");
      }
      r.pending_from[to] = seq;
    }
  }
  if (const msgpack::object* st = wire::MapGet(map, "state");
      st != nullptr && st->type != msgpack::type::NIL) {
    std::string_view v;
    if (!Reader::Bytes(*st, &v)) return Reader::Bad("state", "bytes or nil");
    r.state = v;
  }
  // Optional: absent, the state is a full one.
  if (const msgpack::object* o = wire::MapGet(map, "epoch"); o != nullptr) {
    if (!wire::ReadUint(*o, &r.epoch)) return Reader::Bad("epoch", "an unsigned integer");
  }
  if (const msgpack::object* o = wire::MapGet(map, "source"); o != nullptr) {
    CheckpointRecord::Source s;
    if (o->type != msgpack::type::ARRAY || o->via.array.size != 3 ||
        !wire::ReadUint(o->via.array.ptr[0], &s.origin) ||
        !wire::ReadUint(o->via.array.ptr[1], &s.begin) ||
        !wire::ReadUint(o->via.array.ptr[2], &s.end) || s.begin > s.end) {
      return Reader::Bad("source", "[origin, begin, end] with begin <= end");
    }
    r.source = s;
  }
  if (const msgpack::object* o = wire::MapGet(map, "order"); o != nullptr) {
    uint64_t v = 0;
    if (!wire::ReadUint(*o, &v)) return Reader::Bad("order", "an unsigned integer");
    r.order = v;
  }
  if (const msgpack::object* sc = wire::MapGet(map, "state_changes"); sc != nullptr) {
    if (!wire::ReadBool(*sc, &r.state_changes)) return Reader::Bad("state_changes", "a bool");
  }
  // Optional: records written before counters were kept restore them as 0.
  if (const msgpack::object* c = wire::MapGet(map, "counters"); c != nullptr) {
    if (c->type != msgpack::type::ARRAY || c->via.array.size != 3 ||
        !wire::ReadUint(c->via.array.ptr[0], &r.tuples_in) ||
        !wire::ReadUint(c->via.array.ptr[1], &r.tuples_out) ||
        !wire::ReadUint(c->via.array.ptr[2], &r.duplicates)) {
      return Reader::Bad("counters", "[tuples_in, tuples_out, duplicates]");
    }
  }
  return r;
}

std::vector<CheckpointFrame> PendingFrames(const std::vector<CheckpointRecord>& records) {
  if (records.empty()) return {};
  const CheckpointRecord& last = records.back();
  if (!last.incremental) return last.pending;
  std::map<std::pair<uint32_t, uint64_t>, std::string_view> frames;
  for (const auto& r : records) {
    for (const auto& f : r.pending) frames[{f.to, f.seq}] = f.bytes;
  }
  std::vector<CheckpointFrame> out;
  for (const auto& [key, bytes] : frames) {
    auto from = last.pending_from.find(key.first);
    if (from != last.pending_from.end() && key.second >= from->second) {
      out.push_back(CheckpointFrame{key.first, key.second, bytes});
    }
  }
  return out;
}

Result<std::string> StateAt(const std::vector<CheckpointRecord>& records) {
  if (records.empty() || !records.back().state) return std::string();
  if (!records.back().state_changes) return std::string(*records.back().state);
  size_t base = records.size() - 1;
  while (base > 0 && (!records[base].state || records[base].state_changes)) --base;
  if (!records[base].state || records[base].state_changes) {
    return Status::Corruption("the checkpoint holds state changes but no full state before them");
  }
  std::vector<std::string_view> changes;
  for (size_t i = base + 1; i < records.size(); ++i) {
    if (records[i].state) changes.push_back(*records[i].state);
  }
  return ApplyKeyedStateChanges(*records[base].state, changes);
}

}  // namespace rs::stream
