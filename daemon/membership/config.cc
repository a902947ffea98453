#include "daemon/membership/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

#include "shared/util/hash.h"

namespace rs::membership {

const char* StateName(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kFailed:
      return "failed";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

const char* ProtocolName(Protocol protocol) {
  return protocol == Protocol::kPing ? "ping" : "gossip";
}

const char* EventName(EventKind kind) {
  switch (kind) {
    case EventKind::kJoin:
      return "join";
    case EventKind::kSuspect:
      return "suspect";
    case EventKind::kAlive:
      return "alive";
    case EventKind::kFail:
      return "fail";
    case EventKind::kLeave:
      return "leave";
    case EventKind::kRemove:
      return "remove";
    case EventKind::kRefute:
      return "refute";
    case EventKind::kExpelled:
      return "expelled";
    case EventKind::kConfig:
      return "config";
    case EventKind::kWithheld:
      return "withheld";
  }
  return "unknown";
}

uint64_t ClusterConfig::Digest() const {
  std::string text;
  for (const auto& [key, stamp] : stamps) text += key + "=" + std::to_string(stamp) + ";";
  return StableHash64(text);
}

uint64_t MakeStamp(uint64_t version, const std::string& origin) {
  return (version << 20) | (StableHash64(origin) & 0xFFFFF);
}

bool MergeConfig(ClusterConfig* into, const ClusterConfig& from) {
  bool changed = false;
  LocalOptions unused;
  for (const auto& [key, stamp] : from.stamps) {
    auto mine = into->stamps.find(key);
    if (mine != into->stamps.end() && mine->second >= stamp) continue;
    auto value = GetConfigValue(from, unused, key);
    if (!value.ok() || !IsClusterWide(key)) continue;
    if (!SetConfigValue(into, &unused, key, *value, /*validate=*/false).ok()) continue;
    into->stamps[key] = stamp;
    changed = true;
  }
  if (from.version > into->version) {
    into->version = from.version;
    into->origin = from.origin;
    changed = true;
  }
  return changed;
}

void StampAll(ClusterConfig* config, const std::string& origin) {
  config->version = std::max<uint64_t>(config->version, 1);
  config->origin = origin;
  for (const auto& key : ConfigKeys()) {
    if (key.cluster_wide) config->stamps[key.name] = MakeStamp(config->version, origin);
  }
}

namespace {

using U32Field = uint32_t ClusterConfig::*;

struct U32Key {
  const char* name;
  U32Field field;
  uint32_t min;
  uint32_t max;
  const char* doc;
};

// Unit, default and tradeoff of every numeric cluster-wide knob.
const U32Key kU32Keys[] = {
    {"probe_interval_ms", &ClusterConfig::probe_interval_ms, 20, 60000,
     "ping protocol: one member is probed per interval (default 250). Shorter detects sooner "
     "and sends more."},
    {"probe_timeout_ms", &ClusterConfig::probe_timeout_ms, 5, 30000,
     "ping protocol: wait for a direct ack before asking others to probe (default 100); at most "
     "half the probe interval. Too short on a loaded machine causes suspicion."},
    {"indirect_probes", &ClusterConfig::indirect_probes, 0, 16,
     "ping protocol: members asked to probe indirectly after a missed ack (default 3). More "
     "means fewer false suspicions under loss."},
    {"gossip_interval_ms", &ClusterConfig::gossip_interval_ms, 10, 60000,
     "how often pending membership updates are pushed to gossip_fanout random members "
     "(default 100); nothing is sent when there is nothing new."},
    {"gossip_fanout", &ClusterConfig::gossip_fanout, 1, 16,
     "members each gossip or heartbeat message goes to (default 3)."},
    {"heartbeat_interval_ms", &ClusterConfig::heartbeat_interval_ms, 20, 60000,
     "gossip protocol: how often a node bumps its heartbeat and sends its heartbeat table "
     "(default 200)."},
    {"heartbeat_timeout_ms", &ClusterConfig::heartbeat_timeout_ms, 50, 600000,
     "gossip protocol: a member whose heartbeat has not risen for this long is suspected (or "
     "failed without suspicion) (default 1000). Must cover a few gossip hops."},
    {"suspicion_timeout_ms", &ClusterConfig::suspicion_timeout_ms, 50, 600000,
     "a suspect not refuted within this time is declared failed (default 1000); independent "
     "suspicions by other members shorten it to half. Longer tolerates more loss, "
     "detects later."},
    {"retransmit_mult", &ClusterConfig::retransmit_mult, 1, 20,
     "each update is sent retransmit_mult * ceil(log2(N+1)) times (default 3)."},
    {"max_piggyback", &ClusterConfig::max_piggyback, 1, 64,
     "updates carried by one datagram at most (default 8)."},
    {"cleanup_ms", &ClusterConfig::cleanup_ms, 100, 86400000,
     "failed and left entries stay listed this long before removal (default 30000)."},
};

bool ParseU32(std::string_view text, uint32_t* out) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ParseBool(std::string_view text, bool* out) {
  if (text == "true" || text == "1" || text == "on" || text == "yes") {
    *out = true;
    return true;
  }
  if (text == "false" || text == "0" || text == "off" || text == "no") {
    *out = false;
    return true;
  }
  return false;
}

std::string FormatDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

}  // namespace

const std::vector<KeyInfo>& ConfigKeys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> k;
    k.push_back(
        {"protocol", true, "failure detector: ping (SWIM ping-ack) or gossip (heartbeats)"});
    k.push_back({"suspicion", true, "true: a missed probe suspects first; false: fails at once"});
    for (const auto& key : kU32Keys) k.push_back({key.name, true, key.doc});
    k.push_back({"drop_rate", false,
                 "node-local fault injection: % (0-100) of received membership datagrams dropped"});
    k.push_back({"join_timeout_ms", false, "node-local: how long a join retries (default 3000)"});
    k.push_back({"leave_linger_ms", false,
                 "node-local: how long a leaving node keeps gossiping its leave (default 300)"});
    return k;
  }();
  return keys;
}

bool IsClusterWide(std::string_view key) {
  for (const auto& k : ConfigKeys()) {
    if (k.name == key) return k.cluster_wide;
  }
  return false;
}

Result<std::string> GetConfigValue(const ClusterConfig& cluster, const LocalOptions& local,
                                   std::string_view key) {
  if (key == "protocol") return std::string(ProtocolName(cluster.protocol));
  if (key == "suspicion") return std::string(cluster.suspicion ? "true" : "false");
  for (const auto& k : kU32Keys) {
    if (key == k.name) return std::to_string(cluster.*(k.field));
  }
  if (key == "drop_rate") return FormatDouble(local.drop_rate);
  if (key == "join_timeout_ms") return std::to_string(local.join_timeout_ms);
  if (key == "leave_linger_ms") return std::to_string(local.leave_linger_ms);
  return Status::NotFound("unknown config key '" + std::string(key) + "'");
}

Status ValidateConfig(const ClusterConfig& c) {
  if (c.probe_timeout_ms * 2 > c.probe_interval_ms) {
    return Status::InvalidArgument("probe_timeout_ms (" + std::to_string(c.probe_timeout_ms) +
                                   ") must be at most half of probe_interval_ms (" +
                                   std::to_string(c.probe_interval_ms) + ")");
  }
  if (c.heartbeat_timeout_ms < 2 * c.heartbeat_interval_ms) {
    return Status::InvalidArgument(
        "heartbeat_timeout_ms must be at least twice heartbeat_interval_ms");
  }
  return Status::Ok();
}

Status SetConfigValue(ClusterConfig* cluster, LocalOptions* local, std::string_view key,
                      std::string_view value, bool validate) {
  auto bad = [&](const std::string& want) {
    return Status::InvalidArgument("bad value '" + std::string(value) + "' for " +
                                   std::string(key) + ": want " + want);
  };
  if (key == "protocol") {
    if (value == "ping") {
      cluster->protocol = Protocol::kPing;
    } else if (value == "gossip") {
      cluster->protocol = Protocol::kGossip;
    } else {
      return bad("ping or gossip");
    }
    return Status::Ok();
  }
  if (key == "suspicion") {
    if (!ParseBool(value, &cluster->suspicion)) return bad("true or false");
    return Status::Ok();
  }
  for (const auto& k : kU32Keys) {
    if (key != k.name) continue;
    uint32_t v = 0;
    if (!ParseU32(value, &v) || v < k.min || v > k.max) {
      return bad("an integer from " + std::to_string(k.min) + " to " + std::to_string(k.max));
    }
    ClusterConfig candidate = *cluster;
    candidate.*(k.field) = v;
    if (validate) RS_RETURN_IF_ERROR(ValidateConfig(candidate));
    *cluster = candidate;
    return Status::Ok();
  }
  if (key == "drop_rate") {
    std::string text(value);
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < 0 ||
        v > 100) {
      return bad("a percentage from 0 to 100");
    }
    local->drop_rate = v;
    return Status::Ok();
  }
  if (key == "join_timeout_ms" || key == "leave_linger_ms") {
    uint32_t v = 0;
    if (!ParseU32(value, &v) || v < 10 || v > 600000) return bad("an integer from 10 to 600000");
    (key == "join_timeout_ms" ? local->join_timeout_ms : local->leave_linger_ms) = v;
    return Status::Ok();
  }
  return Status::NotFound("unknown config key '" + std::string(key) + "' (see rainctl config get)");
}

}  // namespace rs::membership
