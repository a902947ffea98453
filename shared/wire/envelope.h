// The RainStorm wire envelope: every ZeroMQ payload frame is one MessagePack array
//   [version: uint, type: uint, request_id: uint, body: any]
// (layout and every body are in shared/wire/FORMAT.md). Encoding is infallible; decoding never
// throws and never trusts a length: hostile bytes yield a Corruption status. Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <msgpack.hpp>
#include <string>
#include <string_view>

#include "shared/status.h"
#include "shared/wire/message_types.h"

namespace rs::wire {

inline constexpr uint8_t kWireVersion = 1;

using Packer = msgpack::packer<msgpack::sbuffer>;
using BodyWriter = std::function<void(Packer&)>;

// Bytes of one envelope; `body` packs exactly one MessagePack object (nil when empty).
std::string Encode(MsgType type, uint64_t request_id, const BodyWriter& body = {});

// A decoded envelope. Owns the unpacked objects; `body` points into them.
struct Envelope {
  uint8_t version = 0;
  uint16_t type = 0;
  uint64_t request_id = 0;
  msgpack::object body;
  std::shared_ptr<msgpack::zone> zone;  // keeps `body` alive
};

// Limits applied while unpacking untrusted bytes.
struct DecodeLimits {
  size_t max_bytes = 64u << 20;
  size_t max_array = 1u << 20;
  size_t max_map = 1u << 16;
  size_t max_str = 16u << 20;
  size_t max_bin = 64u << 20;
  size_t max_depth = 32;
  // Bin payloads point into `bytes` instead of being copied (the caller keeps `bytes` alive as
  // long as the envelope): the data plane's megabyte chunks are then never copied on receipt.
  bool reference_bins = false;
};

Result<Envelope> Decode(std::string_view bytes, const DecodeLimits& limits = {});

// Replies: body = [code, message, payload]. A non-ok status carries a nil payload.
std::string EncodeReply(uint64_t request_id, const Status& status, const BodyWriter& payload = {});
// The payload of an ok reply, or the remote status. Checks the envelope is a reply.
Result<msgpack::object> ReplyPayload(const Envelope& env);

}  // namespace rs::wire
