#include "daemon/membership/codec.h"

#include "daemon/membership/config.h"
#include "shared/wire/fields.h"

namespace rs::membership {
namespace {

constexpr size_t kMaxUpdates = 256;
constexpr size_t kMaxHeartbeats = 65536;
constexpr size_t kMaxPorts = 32;

wire::MsgType TypeOf(MsgKind kind) {
  switch (kind) {
    case MsgKind::kPing:
      return wire::MsgType::kPing;
    case MsgKind::kAck:
      return wire::MsgType::kAck;
    case MsgKind::kPingReq:
      return wire::MsgType::kPingReq;
    case MsgKind::kGossip:
      return wire::MsgType::kGossip;
    case MsgKind::kSync:
      return wire::MsgType::kSync;
    case MsgKind::kSyncReply:
      return wire::MsgType::kSyncReply;
  }
  return wire::MsgType::kGossip;
}

}  // namespace

void PackRecord(wire::Packer& pk, const MemberRecord& r) {
  bool with_suspecter = r.state == MemberState::kSuspect && !r.suspecter.empty();
  pk.pack_array(with_suspecter ? 5 : 4);
  pk.pack(r.id.str());
  pk.pack_uint8(static_cast<uint8_t>(r.state));
  pk.pack_uint64(r.incarnation);
  pk.pack_map(static_cast<uint32_t>(r.ports.size()));
  for (const auto& [name, port] : r.ports) {
    pk.pack(name);
    pk.pack_uint16(port);
  }
  if (with_suspecter) pk.pack(r.suspecter.str());
}

Result<MemberRecord> UnpackRecord(const msgpack::object& o) {
  // 4 elements, or 5 with a suspect record's suspecter (older nodes send 4).
  if (o.type != msgpack::type::ARRAY || o.via.array.size < 4 || o.via.array.size > 5) {
    return Status::Corruption("member record is not a 4- or 5-element array");
  }
  const msgpack::object* a = o.via.array.ptr;
  std::string id_text;
  uint64_t state = 0, inc = 0;
  if (!wire::ReadString(a[0], &id_text) || !wire::ReadUint(a[1], &state) || state > 3 ||
      !wire::ReadUint(a[2], &inc) || a[3].type != msgpack::type::MAP ||
      a[3].via.map.size > kMaxPorts) {
    return Status::Corruption("member record fields have the wrong types");
  }
  auto id = NodeId::Parse(id_text);
  if (!id.ok()) return Status::Corruption("member record: " + id.status().message());
  MemberRecord r;
  r.id = *id;
  r.state = static_cast<MemberState>(state);
  r.incarnation = inc;
  for (uint32_t i = 0; i < a[3].via.map.size; ++i) {
    std::string name;
    uint64_t port = 0;
    if (!wire::ReadString(a[3].via.map.ptr[i].key, &name) ||
        !wire::ReadUint(a[3].via.map.ptr[i].val, &port) || port == 0 || port > 65535 ||
        name.size() > 32) {
      return Status::Corruption("member record has a bad port entry");
    }
    r.ports[name] = static_cast<uint16_t>(port);
  }
  if (o.via.array.size == 5) {
    std::string text;
    if (!wire::ReadString(a[4], &text)) {
      return Status::Corruption("member record: the suspecter is not a string");
    }
    auto suspecter = NodeId::Parse(text);
    if (!suspecter.ok()) {
      return Status::Corruption("member record: suspecter: " + suspecter.status().message());
    }
    if (r.state == MemberState::kSuspect) r.suspecter = *suspecter;
  }
  return r;
}

void PackConfig(wire::Packer& pk, const ClusterConfig& c) {
  const auto& keys = ConfigKeys();
  uint32_t cluster_keys = 0;
  for (const auto& k : keys) cluster_keys += k.cluster_wide ? 1 : 0;
  pk.pack_map(cluster_keys + 3);
  pk.pack("version");
  pk.pack_uint64(c.version);
  pk.pack("origin");
  pk.pack(c.origin);
  pk.pack("stamps");
  pk.pack_map(static_cast<uint32_t>(c.stamps.size()));
  for (const auto& [key, stamp] : c.stamps) {
    pk.pack(key);
    pk.pack_uint64(stamp);
  }
  LocalOptions unused;
  for (const auto& k : keys) {
    if (!k.cluster_wide) continue;
    pk.pack(k.name);
    pk.pack(GetConfigValue(c, unused, k.name).value());
  }
}

Result<ClusterConfig> UnpackConfig(const msgpack::object& o) {
  wire::FieldReader r(o, "cluster config");
  ClusterConfig c;
  c.version = r.Uint("version");
  c.origin = r.Str("origin", 300);
  const msgpack::object* stamps = r.Map("stamps");
  if (!r.ok()) return r.status();
  LocalOptions unused;
  for (uint32_t i = 0; i < stamps->via.map.size; ++i) {
    std::string key;
    uint64_t stamp = 0;
    if (!wire::ReadString(stamps->via.map.ptr[i].key, &key) || !IsClusterWide(key) ||
        !wire::ReadUint(stamps->via.map.ptr[i].val, &stamp)) {
      return Status::Corruption("cluster config: bad stamp entry");
    }
    c.stamps[key] = stamp;
  }
  for (const auto& k : ConfigKeys()) {
    if (!k.cluster_wide) continue;
    std::string value = r.Str(k.name, 64);
    if (!r.ok()) return r.status();
    // Each value in its own range; the combination is not checked (see SetConfigValue).
    Status st = SetConfigValue(&c, &unused, k.name, value, /*validate=*/false);
    if (!st.ok()) return Status::Corruption("cluster config: " + st.message());
  }
  return c;
}

std::string EncodeMessage(const Message& m) {
  return wire::Encode(TypeOf(m.kind), 0, [&](wire::Packer& pk) {
    pk.pack_array(7);
    PackRecord(pk, m.from);
    pk.pack(m.target.str());
    pk.pack_uint64(m.seq);
    pk.pack_uint64(m.config_digest);
    pk.pack_array(static_cast<uint32_t>(m.updates.size()));
    for (const auto& u : m.updates) PackRecord(pk, u);
    pk.pack_array(static_cast<uint32_t>(2 * m.heartbeats.size()));  // flat: id, hb, id, hb...
    for (const auto& [short_id, hb] : m.heartbeats) {
      pk.pack_uint32(short_id);
      pk.pack_uint64(hb);
    }
    if (m.config) {
      PackConfig(pk, *m.config);
    } else {
      pk.pack_nil();
    }
  });
}

Result<Message> DecodeMessage(const wire::Envelope& env) {
  Message m;
  switch (static_cast<wire::MsgType>(env.type)) {
    case wire::MsgType::kPing:
      m.kind = MsgKind::kPing;
      break;
    case wire::MsgType::kAck:
      m.kind = MsgKind::kAck;
      break;
    case wire::MsgType::kPingReq:
      m.kind = MsgKind::kPingReq;
      break;
    case wire::MsgType::kGossip:
      m.kind = MsgKind::kGossip;
      break;
    case wire::MsgType::kSync:
      m.kind = MsgKind::kSync;
      break;
    case wire::MsgType::kSyncReply:
      m.kind = MsgKind::kSyncReply;
      break;
    default:
      return Status::Corruption("message type " + std::to_string(env.type) +
                                " is not a membership datagram");
  }
  const msgpack::object& b = env.body;
  if (b.type != msgpack::type::ARRAY || b.via.array.size != 7) {
    return Status::Corruption("membership datagram is not a 7-element array");
  }
  const msgpack::object* a = b.via.array.ptr;
  auto from = UnpackRecord(a[0]);
  if (!from.ok()) return from.status();
  m.from = std::move(from.value());
  std::string target;
  if (!wire::ReadString(a[1], &target) || !wire::ReadUint(a[2], &m.seq) ||
      !wire::ReadUint(a[3], &m.config_digest) || a[4].type != msgpack::type::ARRAY ||
      a[5].type != msgpack::type::ARRAY || a[4].via.array.size > kMaxUpdates ||
      a[5].via.array.size > kMaxHeartbeats) {
    return Status::Corruption("membership datagram fields have the wrong types");
  }
  if (!target.empty()) {
    auto t = NodeId::Parse(target);
    if (!t.ok()) return Status::Corruption("datagram target: " + t.status().message());
    m.target = *t;
  }
  for (uint32_t i = 0; i < a[4].via.array.size; ++i) {
    auto u = UnpackRecord(a[4].via.array.ptr[i]);
    if (!u.ok()) return u.status();
    m.updates.push_back(std::move(u.value()));
  }
  if (a[5].via.array.size % 2 != 0) {
    return Status::Corruption("heartbeat table is not a flat list of (short id, heartbeat)");
  }
  for (uint32_t i = 0; i < a[5].via.array.size; i += 2) {
    uint64_t short_id = 0, value = 0;
    if (!wire::ReadUint(a[5].via.array.ptr[i], &short_id) || short_id > UINT32_MAX ||
        !wire::ReadUint(a[5].via.array.ptr[i + 1], &value)) {
      return Status::Corruption("heartbeat entry is not (uint32 short id, uint heartbeat)");
    }
    m.heartbeats.emplace_back(static_cast<uint32_t>(short_id), value);
  }
  if (a[6].type != msgpack::type::NIL) {
    auto config = UnpackConfig(a[6]);
    if (!config.ok()) return config.status();
    m.config = std::move(config.value());
  }
  return m;
}

std::string EncodeJoinRequest(uint64_t request_id, const MemberRecord& joiner) {
  return wire::Encode(wire::MsgType::kJoinRequest, request_id,
                      [&](wire::Packer& pk) { PackRecord(pk, joiner); });
}

void PackJoinReply(wire::Packer& pk, const JoinReply& reply) {
  pk.pack_map(2);
  pk.pack("members");
  pk.pack_array(static_cast<uint32_t>(reply.members.size()));
  for (const auto& r : reply.members) PackRecord(pk, r);
  pk.pack("config");
  PackConfig(pk, reply.config);
}

Result<JoinReply> UnpackJoinReply(const msgpack::object& payload) {
  wire::FieldReader r(payload, "join reply");
  const msgpack::object* members = r.Array("members");
  const msgpack::object* config = r.Map("config");
  if (!r.ok()) return r.status();
  JoinReply reply;
  for (uint32_t i = 0; i < members->via.array.size; ++i) {
    auto rec = UnpackRecord(members->via.array.ptr[i]);
    if (!rec.ok()) return rec.status();
    reply.members.push_back(std::move(rec.value()));
  }
  auto cfg = UnpackConfig(*config);
  if (!cfg.ok()) return cfg.status();
  reply.config = std::move(cfg.value());
  return reply;
}

}  // namespace rs::membership
