#include "shared/stream/regroup.h"

#include <algorithm>
#include <msgpack.hpp>
#include <set>

#include "shared/stream/checkpoint.h"
#include "shared/wire/envelope.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

void PackBin(wire::Packer& pk, std::string_view b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<uint32_t>(b.size()));
}

bool ReadBytes(const msgpack::object& o, std::string* out) {
  if (o.type == msgpack::type::BIN) {
    out->assign(o.via.bin.ptr, o.via.bin.size);
  } else if (o.type == msgpack::type::STR) {
    out->assign(o.via.str.ptr, o.via.str.size);
  } else {
    return false;
  }
  return true;
}

Status Bad(const std::string& what) { return Status::Corruption("handoff: " + what); }

// One whole MessagePack map of `what` (a handoff, source pieces), nested at most `depth` deep.
// No container may claim more elements than there are bytes (msgpack-cxx allocates for the claim
// up front).
Status UnpackMap(std::string_view bytes, const std::string& what, size_t depth,
                 msgpack::object_handle* oh) {
  try {
    size_t off = 0;
    size_t n = std::max<size_t>(bytes.size(), 1);
    *oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr,
                          msgpack::unpack_limit(n, n, n, n, n, depth));
    if (off != bytes.size()) return Status::Corruption(what + ": trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(what + " does not decode: " + e.what());
  }
  if (oh->get().type != msgpack::type::MAP) return Status::Corruption(what + ": not a map");
  return Status::Ok();
}

}  // namespace

std::vector<GroupMove> GroupMoves(const KeyGroupMap& before, const KeyGroupMap& after) {
  std::vector<GroupMove> moves;
  uint32_t n = std::min(before.groups(), after.groups());
  for (uint32_t g = 0; g < n; ++g) {
    if (before.Owner(g) != after.Owner(g)) moves.push_back({g, before.Owner(g), after.Owner(g)});
  }
  return moves;
}

std::string EncodeHandoff(const Handoff& h) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_map(7);
  pk.pack("job");
  pk.pack(h.job);
  pk.pack("stage");
  pk.pack_uint32(h.stage);
  pk.pack("epoch");
  pk.pack_uint64(h.epoch);
  pk.pack("from");
  pk.pack_uint32(h.from_task);
  pk.pack("groups");
  pk.pack_array(static_cast<uint32_t>(h.groups.size()));
  for (uint32_t g : h.groups) pk.pack_uint32(g);
  pk.pack("state");
  pk.pack_map(static_cast<uint32_t>(h.state.size()));
  for (const auto& [g, s] : h.state) {
    pk.pack_uint32(g);
    PackBin(pk, s);
  }
  pk.pack("marks");
  pk.pack_array(static_cast<uint32_t>(h.marks.size()));
  for (const auto& m : h.marks) {
    pk.pack_array(5);
    pk.pack_uint32(m.group);
    pk.pack_uint32(m.stage);
    pk.pack_uint32(m.task);
    pk.pack_uint64(m.origin);
    PackBin(pk, m.id);
  }
  return std::string(buf.data(), buf.size());
}

Result<Handoff> DecodeHandoff(std::string_view bytes) {
  msgpack::object_handle oh;
  if (Status s = UnpackMap(bytes, "handoff", 16, &oh); !s.ok()) return s;
  const msgpack::object& o = oh.get();
  wire::FieldReader r(o, "handoff");
  Handoff h;
  h.job = r.Str("job", 256);
  h.stage = static_cast<uint32_t>(r.Uint("stage", UINT32_MAX));
  h.epoch = r.Uint("epoch");
  h.from_task = static_cast<uint32_t>(r.Uint("from", UINT32_MAX));
  const msgpack::object* groups = r.Array("groups");
  const msgpack::object* state = r.Map("state");
  const msgpack::object* marks = r.Array("marks");
  if (!r.ok()) return Status::Corruption(r.status().message());
  for (uint32_t i = 0; i < groups->via.array.size; ++i) {
    uint64_t g = 0;
    if (!wire::ReadUint(groups->via.array.ptr[i], &g) || g >= kMaxKeyGroups) {
      return Bad("group " + std::to_string(i) + " is not a key group number");
    }
    if (!h.groups.empty() && g <= h.groups.back()) return Bad("groups are not ascending");
    h.groups.push_back(static_cast<uint32_t>(g));
  }
  auto listed = [&](uint64_t g) { return std::binary_search(h.groups.begin(), h.groups.end(), g); };
  for (uint32_t i = 0; i < state->via.map.size; ++i) {
    const msgpack::object_kv& kv = state->via.map.ptr[i];
    uint64_t g = 0;
    std::string s;
    if (!wire::ReadUint(kv.key, &g) || !listed(g) || !ReadBytes(kv.val, &s)) {
      return Bad("state entry " + std::to_string(i) + " is not a handed-over group's bytes");
    }
    h.state[static_cast<uint32_t>(g)] = std::move(s);
  }
  for (uint32_t i = 0; i < marks->via.array.size; ++i) {
    const msgpack::object& e = marks->via.array.ptr[i];
    uint64_t g = 0, stage = 0, task = 0, origin = 0;
    HandoffMark m;
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 5 ||
        !wire::ReadUint(e.via.array.ptr[0], &g) || !listed(g) ||
        !wire::ReadUint(e.via.array.ptr[1], &stage) || stage > UINT32_MAX ||
        !wire::ReadUint(e.via.array.ptr[2], &task) || task > UINT32_MAX ||
        !wire::ReadUint(e.via.array.ptr[3], &origin) || !ReadBytes(e.via.array.ptr[4], &m.id)) {
      return Bad("mark " + std::to_string(i) +
                 " is not [handed-over group, stage, task, origin, id]");
    }
    m.group = static_cast<uint32_t>(g);
    m.stage = static_cast<uint32_t>(stage);
    m.task = static_cast<uint32_t>(task);
    m.origin = origin;
    h.marks.push_back(std::move(m));
  }
  return h;
}

Result<Handoff> HandoffPart(Handoff h, const std::vector<uint32_t>& groups) {
  std::set<uint32_t> want(groups.begin(), groups.end());
  std::set<uint32_t> has(h.groups.begin(), h.groups.end());
  for (uint32_t g : want) {
    if (!has.count(g)) {
      return Status::Corruption("the handoff of task " + std::to_string(h.from_task) +
                                " does not hold group " + std::to_string(g));
    }
  }
  h.groups.assign(want.begin(), want.end());
  std::erase_if(h.state, [&](const auto& kv) { return !want.count(kv.first); });
  std::erase_if(h.marks, [&](const HandoffMark& m) { return !want.count(m.group); });
  return h;
}

std::string HandoffFileName(std::string_view job, uint32_t stage, uint64_t epoch,
                            uint32_t from_task) {
  return CheckpointDir(job) + "handoff-" + std::to_string(stage) + "-" + std::to_string(epoch) +
         "." + std::to_string(from_task);
}

std::string EncodeSourcePieces(const SourcePieces& p) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(4);
  pk.pack("job");
  pk.pack(p.job);
  pk.pack("epoch");
  pk.pack_uint64(p.epoch);
  pk.pack("giver");
  pk.pack_uint32(p.giver);
  pk.pack("pieces");
  pk.pack_array(static_cast<uint32_t>(p.pieces.size()));
  for (const auto& x : p.pieces) {
    pk.pack_array(4);
    pk.pack_uint32(x.taker);
    pk.pack_uint64(x.origin);
    pk.pack_uint64(x.begin);
    pk.pack_uint64(x.end);
  }
  return std::string(buf.data(), buf.size());
}

Result<SourcePieces> DecodeSourcePieces(std::string_view bytes) {
  msgpack::object_handle oh;
  if (Status s = UnpackMap(bytes, "source pieces", 8, &oh); !s.ok()) return s;
  const msgpack::object& o = oh.get();
  wire::FieldReader r(o, "source pieces");
  SourcePieces p;
  p.job = r.Str("job", 256);
  p.epoch = r.Uint("epoch");
  p.giver = static_cast<uint32_t>(r.Uint("giver", UINT32_MAX));
  const msgpack::object* pieces = r.Array("pieces");
  if (!r.ok()) return Status::Corruption(r.status().message());
  for (uint32_t i = 0; i < pieces->via.array.size; ++i) {
    const msgpack::object& e = pieces->via.array.ptr[i];
    SourcePiece x;
    uint64_t taker = 0;
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 4 ||
        !wire::ReadUint(e.via.array.ptr[0], &taker) || taker > UINT32_MAX ||
        !wire::ReadUint(e.via.array.ptr[1], &x.origin) ||
        !wire::ReadUint(e.via.array.ptr[2], &x.begin) ||
        !wire::ReadUint(e.via.array.ptr[3], &x.end) || x.begin > x.end ||
        (!p.pieces.empty() && x.begin != p.pieces.back().end)) {
      return Status::Corruption("source piece " + std::to_string(i) +
                                " is not [taker, origin, begin, end] after the one before");
    }
    x.taker = static_cast<uint32_t>(taker);
    p.pieces.push_back(x);
  }
  return p;
}

std::string PieceFileName(std::string_view job, uint64_t epoch, uint32_t giver) {
  return CheckpointDir(job) + "piece-" + std::to_string(epoch) + "." + std::to_string(giver);
}

}  // namespace rs::stream
