#include "shared/wire/envelope.h"

#include <algorithm>
#include <exception>

#include "shared/wire/fields.h"

namespace rs::wire {

std::string_view MsgTypeName(uint16_t type) {
  switch (static_cast<MsgType>(type)) {
    case MsgType::kReply:
      return "reply";
    case MsgType::kAdminCommand:
      return "admin_command";
    case MsgType::kJoinRequest:
      return "join_request";
    case MsgType::kPing:
      return "ping";
    case MsgType::kAck:
      return "ack";
    case MsgType::kPingReq:
      return "ping_req";
    case MsgType::kGossip:
      return "gossip";
    case MsgType::kSync:
      return "sync";
    case MsgType::kSyncReply:
      return "sync_reply";
    case MsgType::kHydfsHead:
      return "hydfs_head";
    case MsgType::kHydfsManifest:
      return "hydfs_manifest";
    case MsgType::kHydfsReserve:
      return "hydfs_reserve";
    case MsgType::kHydfsPut:
      return "hydfs_put";
    case MsgType::kHydfsRead:
      return "hydfs_read";
    case MsgType::kHydfsApplyOrder:
      return "hydfs_apply_order";
    case MsgType::kHydfsRemove:
      return "hydfs_remove";
    case MsgType::kHydfsList:
      return "hydfs_list";
    case MsgType::kStreamChunk:
      return "stream_chunk";
    case MsgType::kStreamAck:
      return "stream_ack";
    case MsgType::kStreamEnd:
      return "stream_end";
    case MsgType::kTaskData:
      return "task_data";
    case MsgType::kTaskAck:
      return "task_ack";
    case MsgType::kStreamStartTask:
      return "stream_start_task";
    case MsgType::kStreamStopJob:
      return "stream_stop_job";
    case MsgType::kStreamStopTask:
      return "stream_stop_task";
    case MsgType::kStreamRewire:
      return "stream_rewire";
    case MsgType::kStreamReport:
      return "stream_report";
    case MsgType::kStreamRegroup:
      return "stream_regroup";
  }
  return "unknown";
}

std::string Encode(MsgType type, uint64_t request_id, const BodyWriter& body) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(4);
  pk.pack_uint8(kWireVersion);
  pk.pack_uint16(static_cast<uint16_t>(type));
  pk.pack_uint64(request_id);
  if (body) {
    body(pk);
  } else {
    pk.pack_nil();
  }
  return std::string(buf.data(), buf.size());
}

Result<Envelope> Decode(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return Status::Corruption("frame of " + std::to_string(bytes.size()) + " bytes is too large");
  }
  if (bytes.empty()) return Status::Corruption("empty frame");
  msgpack::object_handle handle;
  try {
    size_t offset = 0;
    // No container can hold more elements than the frame has bytes (each takes at least one,
    // each map entry two), nor a string more bytes: msgpack-cxx reserves an array's storage from
    // its header before reading it, so a 200-byte frame of 40 nested "1M-element" headers would
    // otherwise reserve 24 MB per level and stall its reader for seconds on a loaded machine.
    size_t n = bytes.size();
    msgpack::unpack_limit limit(std::min(limits.max_array, n), std::min(limits.max_map, n / 2),
                                std::min(limits.max_str, n), std::min(limits.max_bin, n),
                                std::min(limits.max_bin, n), limits.max_depth);
    msgpack::unpack_reference_func reference = nullptr;
    if (limits.reference_bins) {
      reference = [](msgpack::type::object_type type, size_t, void*) {
        return type == msgpack::type::BIN;
      };
    }
    handle = msgpack::unpack(bytes.data(), bytes.size(), offset, reference, nullptr, limit);
    if (offset != bytes.size()) {
      return Status::Corruption(std::to_string(bytes.size() - offset) +
                                " trailing bytes after the envelope");
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("undecodable frame: ") + e.what());
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 4) {
    return Status::Corruption("envelope is not a 4-element array");
  }
  const msgpack::object* items = root.via.array.ptr;
  uint64_t version = 0, type = 0, request_id = 0;
  if (!ReadUint(items[0], &version) || !ReadUint(items[1], &type) ||
      !ReadUint(items[2], &request_id) || type > UINT16_MAX) {
    return Status::Corruption("envelope header fields have the wrong types");
  }
  if (version != kWireVersion) {
    return Status::Corruption("unsupported wire version " + std::to_string(version));
  }
  Envelope env;
  env.version = static_cast<uint8_t>(version);
  env.type = static_cast<uint16_t>(type);
  env.request_id = request_id;
  env.body = items[3];
  env.zone = std::shared_ptr<msgpack::zone>(handle.zone().release());
  return env;
}

std::string EncodeReply(uint64_t request_id, const Status& status, const BodyWriter& payload) {
  return Encode(MsgType::kReply, request_id, [&](Packer& pk) {
    pk.pack_array(3);
    pk.pack_uint8(static_cast<uint8_t>(status.code()));
    pk.pack(status.message());
    if (status.ok() && payload) {
      payload(pk);
    } else {
      pk.pack_nil();
    }
  });
}

Result<msgpack::object> ReplyPayload(const Envelope& env) {
  if (env.type != static_cast<uint16_t>(MsgType::kReply)) {
    return Status::Corruption("expected a reply, got message type " + std::to_string(env.type));
  }
  const msgpack::object& body = env.body;
  if (body.type != msgpack::type::ARRAY || body.via.array.size != 3) {
    return Status::Corruption("reply body is not [code, message, payload]");
  }
  int64_t code = 0;
  std::string message;
  if (!ReadInt(body.via.array.ptr[0], &code) || !ReadString(body.via.array.ptr[1], &message)) {
    return Status::Corruption("reply status has the wrong types");
  }
  if (code != 0) {
    StatusCode sc = StatusCodeFromWire(code);
    if (sc == StatusCode::kOk) sc = StatusCode::kInternal;
    return Status(sc, message);
  }
  return body.via.array.ptr[2];
}

}  // namespace rs::wire
