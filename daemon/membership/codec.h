// MessagePack layouts of membership records, the cluster config and datagrams (documented in
// shared/wire/FORMAT.md). Decoders validate everything and never throw. Thread-compatible.
#pragma once

#include <string>

#include "daemon/membership/types.h"
#include "shared/status.h"
#include "shared/wire/envelope.h"

namespace rs::membership {

void PackRecord(wire::Packer& pk, const MemberRecord& record);
Result<MemberRecord> UnpackRecord(const msgpack::object& o);

void PackConfig(wire::Packer& pk, const ClusterConfig& config);
Result<ClusterConfig> UnpackConfig(const msgpack::object& o);

std::string EncodeMessage(const Message& message);
// `env` must be one of the datagram types (ping, ack, ping_req, gossip).
Result<Message> DecodeMessage(const wire::Envelope& env);

}  // namespace rs::membership

namespace rs::membership {
// Join request body: the joiner's record. Join reply payload: {"members": [...], "config": {...}}.
std::string EncodeJoinRequest(uint64_t request_id, const MemberRecord& joiner);
void PackJoinReply(wire::Packer& pk, const JoinReply& reply);
Result<JoinReply> UnpackJoinReply(const msgpack::object& payload);
}  // namespace rs::membership
