#include "daemon/stream/operator_codec.h"

#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

// "an integer", "a map"...
std::string AType(msgpack::type::object_type t) {
  std::string name = wire::TypeName(t);
  bool vowel = name.find_first_of("aeiou") == 0;
  return (vowel ? "an " : "a ") + name;
}

bool ReadBytes(const msgpack::object& o, std::string* out) {
  if (o.type == msgpack::type::STR) {
    out->assign(o.via.str.ptr, o.via.str.size);
  } else if (o.type == msgpack::type::BIN) {
    out->assign(o.via.bin.ptr, o.via.bin.size);
  } else {
    return false;
  }
  return true;
}

bool IsString(const msgpack::object& o, std::string_view s) {
  return o.type == msgpack::type::STR && std::string_view(o.via.str.ptr, o.via.str.size) == s;
}

// The message type of `msg` when it is an array starting with an unsigned integer.
std::optional<uint64_t> MessageTypeOf(const msgpack::object& msg) {
  if (msg.type != msgpack::type::ARRAY || msg.via.array.size == 0) return std::nullopt;
  const msgpack::object& t = msg.via.array.ptr[0];
  if (t.type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return t.via.u64;
}

bool ReadView(const msgpack::object& o, std::string_view* out) {
  if (o.type == msgpack::type::STR) {
    *out = std::string_view(o.via.str.ptr, o.via.str.size);
  } else if (o.type == msgpack::type::BIN) {
    *out = std::string_view(o.via.bin.ptr, o.via.bin.size);
  } else {
    return false;
  }
  return true;
}

void PackBytes(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

}  // namespace

std::string CheckShape(const msgpack::object& msg, OperatorMessage expected, const char* name) {
  auto type = MessageTypeOf(msg);
  if (!type) {
    if (msg.type != msgpack::type::ARRAY) return AType(msg.type);
    return "an array without a message type";
  }
  if (uint64_t want = expected; *type != want) {
    return "message type " + std::to_string(*type) + " instead of " + std::to_string(want) + " (" +
           name + ")";
  }
  if (msg.via.array.size != 2) {
    return std::string(name) + " with " + std::to_string(msg.via.array.size) +
           " elements instead of 2";
  }
  return "";
}

Result<ReadyInfo> ParseReady(const msgpack::object& msg) {
  std::string shape = CheckShape(msg, operator_protocol::kReady, "ready");
  if (!shape.empty()) return Status::Corruption(shape);
  const msgpack::object& info = msg.via.array.ptr[1];
  if (info.type != msgpack::type::MAP) {
    return Status::Corruption("ready info is " + AType(info.type));
  }
  ReadyInfo ready;
  for (uint32_t i = 0; i < info.via.map.size; ++i) {
    const msgpack::object& k = info.via.map.ptr[i].key;
    const msgpack::object& v = info.via.map.ptr[i].val;
    if (IsString(k, "stateful")) {
      if (v.type != msgpack::type::BOOLEAN) {
        return Status::Corruption("ready stateful is " + AType(v.type));
      }
      ready.stateful = v.via.boolean;
    } else if (IsString(k, "keyed_state")) {
      if (v.type != msgpack::type::BOOLEAN) {
        return Status::Corruption("ready keyed_state is " + AType(v.type));
      }
      ready.keyed_state = v.via.boolean;
    } else if (IsString(k, "state_changes")) {
      if (v.type != msgpack::type::BOOLEAN) {
        return Status::Corruption("ready state_changes is " + AType(v.type));
      }
      ready.state_changes = v.via.boolean;
    } else if (IsString(k, "regroup")) {
      if (v.type != msgpack::type::BOOLEAN) {
        return Status::Corruption("ready regroup is " + AType(v.type));
      }
      ready.regroup = v.via.boolean;
    } else if (IsString(k, "name")) {
      if (!ReadBytes(v, &ready.name)) {
        return Status::Corruption("ready name is " + AType(v.type));
      }
    } else if (IsString(k, "input_partition")) {
      if (IsString(v, "key")) {
        ready.csv_column.reset();
      } else if (v.type == msgpack::type::MAP && v.via.map.size == 1 &&
                 IsString(v.via.map.ptr[0].key, "csv_column") &&
                 v.via.map.ptr[0].val.type == msgpack::type::POSITIVE_INTEGER) {
        ready.csv_column = v.via.map.ptr[0].val.via.u64;
      } else {
        return Status::Corruption(
            "ready input_partition is neither \"key\" nor {\"csv_column\": N}");
      }
    }  // other fields: ignored, for operators newer than this worker
  }
  if (ready.keyed_state && !ready.stateful) {
    return Status::Corruption("ready says keyed_state but not stateful");
  }
  if (ready.state_changes && !ready.keyed_state) {
    return Status::Corruption("ready says state_changes but not keyed_state");
  }
  if (ready.regroup && !ready.keyed_state) {
    return Status::Corruption("ready says regroup but not keyed_state");
  }
  return ready;
}

Status ParseResultViews(const msgpack::object& msg, size_t tuples, ResultViews* r) {
  std::string shape = CheckShape(msg, operator_protocol::kResult, "result");
  if (!shape.empty()) return Status::Corruption(shape);
  const msgpack::object& outs = msg.via.array.ptr[1];
  if (outs.type != msgpack::type::ARRAY) {
    return Status::Corruption("outputs are " + AType(outs.type));
  }
  if (outs.via.array.size != tuples) {
    return Status::Corruption(std::to_string(outs.via.array.size) + " outputs for " +
                              std::to_string(tuples) + " input tuples");
  }
  r->offsets.assign(1, 0);
  r->offsets.reserve(tuples + 1);
  r->tuples.clear();
  r->tuples.reserve(tuples);
  for (size_t i = 0; i < tuples; ++i) {
    const msgpack::object& out = outs.via.array.ptr[i];
    if (out.type != msgpack::type::ARRAY) {
      return Status::Corruption("outputs[" + std::to_string(i) + "] is " + AType(out.type));
    }
    for (uint32_t j = 0; j < out.via.array.size; ++j) {
      const msgpack::object& t = out.via.array.ptr[j];
      TupleView v;
      if (t.type != msgpack::type::ARRAY || t.via.array.size != 2 ||
          !ReadView(t.via.array.ptr[0], &v.first) || !ReadView(t.via.array.ptr[1], &v.second)) {
        return Status::Corruption("outputs[" + std::to_string(i) + "][" + std::to_string(j) +
                                  "] is not a [key, value] pair of strings");
      }
      r->tuples.push_back(v);
    }
    r->offsets.push_back(static_cast<uint32_t>(r->tuples.size()));
  }
  return Status::Ok();
}

std::string PackHello(const OperatorContext& ctx) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(2);
  pk.pack_uint64(operator_protocol::kHello);
  pk.pack_map(9);
  PackBytes(pk, "version");
  pk.pack(uint64_t{1});
  PackBytes(pk, "job");
  PackBytes(pk, ctx.job);
  PackBytes(pk, "stage");
  pk.pack(ctx.stage);
  PackBytes(pk, "stages");
  pk.pack(ctx.stages);
  PackBytes(pk, "task");
  pk.pack(ctx.task);
  PackBytes(pk, "tasks");
  pk.pack(ctx.tasks);
  PackBytes(pk, "key_groups");
  pk.pack(ctx.key_groups);
  PackBytes(pk, "args");
  pk.pack_array(static_cast<uint32_t>(ctx.args.size()));
  for (const auto& a : ctx.args) PackBytes(pk, a);
  PackBytes(pk, "csv_header");
  if (ctx.csv_header) {
    PackBytes(pk, *ctx.csv_header);
  } else {
    pk.pack_nil();
  }
  return std::string(b.data(), b.size());
}

std::string PackBatch(const TupleView* first, size_t n, const uint32_t* groups) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(groups ? 3 : 2);
  pk.pack_uint64(operator_protocol::kBatch);
  pk.pack_array(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i, ++first) {
    pk.pack_array(2);
    PackBytes(pk, first->first);
    PackBytes(pk, first->second);
  }
  if (groups) {
    pk.pack_array(static_cast<uint32_t>(n));
    for (size_t i = 0; i < n; ++i) pk.pack_uint32(groups[i]);
  }
  return std::string(b.data(), b.size());
}

std::string PackSnapshotRequest(bool changes) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(changes ? 2 : 1);
  pk.pack_uint64(operator_protocol::kSnapshot);
  if (changes) pk.pack("changes");
  return std::string(b.data(), b.size());
}

std::string PackRegroup(std::string_view groups) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(2);
  pk.pack_uint64(operator_protocol::kRegroup);
  std::string out(b.data(), b.size());
  return out.append(groups);
}

std::string PackRestore(std::string_view state) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_array(2);
  pk.pack_uint64(operator_protocol::kRestore);
  std::string out(b.data(), b.size());
  return out.append(state);
}

}  // namespace rs::stream
