#include "operators/builtin/operator_sdk.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "shared/stream/operator_messages.h"
#include "shared/wire/fields.h"

namespace rs::op {
namespace {

using namespace rs::operator_protocol;  // kHello, kBatch ... (the one list of message types)

constexpr size_t kReadBlock = 64u << 10;

// Strings and binaries point into the input buffer instead of being copied; the unpacker keeps
// that buffer alive as long as a decoded message refers to it.
bool ReferenceInput(msgpack::type::object_type, std::size_t, void*) { return true; }

Status Violation(std::string message) { return Status::FailedPrecondition(std::move(message)); }

void PackStr(StatePacker& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

// Reads the hello context leniently: absent fields keep their defaults, present ones must have
// the documented type.
Status ReadContext(const msgpack::object& o, Context* ctx) {
  if (o.type != msgpack::type::MAP) {
    return Violation(std::string("hello context is a ") + wire::TypeName(o.type) + ", not a map");
  }
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object& k = o.via.map.ptr[i].key;
    const msgpack::object& v = o.via.map.ptr[i].val;
    std::string_view key;
    if (!ReadBytes(k, &key)) return Violation("hello context has a key that is not a string");
    auto need_uint = [&](uint64_t* out) -> Status {
      if (v.type != msgpack::type::POSITIVE_INTEGER) {
        return Violation("hello context field '" + std::string(key) + "' is a " +
                         wire::TypeName(v.type) + ", not an unsigned integer");
      }
      *out = v.via.u64;
      return Status::Ok();
    };
    if (key == "version") {
      RS_RETURN_IF_ERROR(need_uint(&ctx->version));
      if (ctx->version != 1) {
        return Violation("unsupported protocol version " + std::to_string(ctx->version) +
                         " (this operator speaks version 1)");
      }
    } else if (key == "stage") {
      RS_RETURN_IF_ERROR(need_uint(&ctx->stage));
    } else if (key == "stages") {
      RS_RETURN_IF_ERROR(need_uint(&ctx->stages));
    } else if (key == "task") {
      RS_RETURN_IF_ERROR(need_uint(&ctx->task));
    } else if (key == "tasks") {
      RS_RETURN_IF_ERROR(need_uint(&ctx->tasks));
    } else if (key == "job") {
      std::string_view job;
      if (!ReadBytes(v, &job)) return Violation("hello context field 'job' is not a string");
      ctx->job = std::string(job);
    } else if (key == "args") {
      if (v.type != msgpack::type::ARRAY) {
        return Violation("hello context field 'args' is not an array");
      }
      ctx->args.clear();
      for (uint32_t j = 0; j < v.via.array.size; ++j) {
        std::string_view arg;
        if (!ReadBytes(v.via.array.ptr[j], &arg)) {
          return Violation("hello context field 'args' holds a non-string");
        }
        ctx->args.emplace_back(arg);
      }
    } else if (key == "csv_header") {
      std::string_view header;
      if (v.type == msgpack::type::NIL) {
        ctx->csv_header.reset();
      } else if (ReadBytes(v, &header)) {
        ctx->csv_header = std::string(header);
      } else {
        return Violation("hello context field 'csv_header' is neither a string nor nil");
      }
    }
    // Unknown fields are ignored: later protocol versions may add some.
  }
  return Status::Ok();
}

}  // namespace

bool ReadBytes(const msgpack::object& o, std::string_view* out) {
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

void Emitter::Emit(std::string_view key, std::string_view value) {
  StatePacker pk(buffer_);
  pk.pack_array(2);
  PackStr(pk, key);
  PackStr(pk, value);
  ++count_;
}

void Emitter::Reset() {
  buffer_.clear();
  count_ = 0;
}

Status Operator::Regroup(const msgpack::object& /*groups*/) {
  return Violation("regroup sent to an operator that did not offer it");
}

Status Operator::Restore(const msgpack::object& /*state*/) {
  return Violation("restore sent to an operator without state");
}

Session::Session(Operator* op, Writer writer, SessionLimits limits)
    : op_(op), writer_(std::move(writer)), limits_(limits) {
  msgpack::unpack_limit limit(limits_.max_array, limits_.max_map, limits_.max_str, limits_.max_str,
                              limits_.max_str, limits_.max_depth);
  unpacker_ = std::make_unique<msgpack::unpacker>(&ReferenceInput, nullptr, kReadBlock, limit);
}

Session::~Session() = default;

char* Session::InputBuffer(size_t min, size_t* capacity) {
  try {
    unpacker_->reserve_buffer(min);
  } catch (const std::bad_alloc&) {
    *capacity = 0;
    return nullptr;
  }
  *capacity = unpacker_->buffer_capacity();
  return unpacker_->buffer();
}

Status Session::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t cap = 0;
    char* buf = InputBuffer(std::min(bytes.size(), kReadBlock), &cap);
    if (buf == nullptr) return Status::Internal("out of memory");
    size_t n = std::min(cap, bytes.size());
    std::memcpy(buf, bytes.data(), n);
    bytes.remove_prefix(n);
    RS_RETURN_IF_ERROR(Commit(n));
  }
  return Status::Ok();
}

Status Session::Commit(size_t n) {
  if (!failed_.ok()) return failed_;
  unpacker_->buffer_consumed(n);
  try {
    while (true) {
      msgpack::object_handle oh;
      if (!unpacker_->next(oh)) break;
      failed_ = Handle(oh.get());
      if (!failed_.ok()) return failed_;
    }
  } catch (const msgpack::size_overflow& e) {
    failed_ = Status::Corruption(std::string("input exceeds a size limit (") + e.what() + ")");
    return failed_;
  } catch (const msgpack::parse_error& e) {
    failed_ = Status::Corruption(std::string("undecodable input: ") + e.what());
    return failed_;
  } catch (const std::bad_alloc&) {
    failed_ = Status::Corruption("undecodable input: out of memory decoding a message");
    return failed_;
  } catch (const std::exception& e) {
    failed_ = Status::Internal(std::string("unexpected error: ") + e.what());
    return failed_;
  }
  if (unpacker_->message_size() > limits_.max_message_bytes) {
    failed_ = Status::Corruption("a message exceeds " + std::to_string(limits_.max_message_bytes) +
                                 " bytes");
  }
  return failed_;
}

Status Session::Finish() {
  if (!failed_.ok()) return failed_;
  if (unpacker_->message_size() > 0) {
    failed_ = Status::Corruption("input ends inside a message (" +
                                 std::to_string(unpacker_->message_size()) + " bytes pending)");
  }
  return failed_;
}

Status Session::Flush() {
  if (out_.size() == 0) return Status::Ok();
  Status s = writer_(std::string_view(out_.data(), out_.size()));
  out_.clear();
  return s;
}

Status Session::Handle(const msgpack::object& msg) {
  if (msg.type != msgpack::type::ARRAY) {
    return Violation(std::string("a message is a ") + wire::TypeName(msg.type) + ", not an array");
  }
  if (msg.via.array.size == 0) return Violation("an empty message array");
  const msgpack::object& type = msg.via.array.ptr[0];
  if (type.type != msgpack::type::POSITIVE_INTEGER) {
    return Violation(std::string("a message type is a ") + wire::TypeName(type.type) +
                     ", not an unsigned integer");
  }
  switch (type.via.u64) {
    case kHello:
      return HandleHello(msg);
    case kBatch:
      return HandleBatch(msg);
    case kSnapshot:
      return HandleSnapshot(msg);
    case kRestore:
      return HandleRestore(msg);
    case kRegroup:
      return HandleRegroup(msg);
    case kReady:
    case kResult:
    case kState:
      return Violation("message type " + std::to_string(type.via.u64) +
                       " goes from an operator to the worker, not the other way");
    default:
      return Violation("unknown message type " + std::to_string(type.via.u64));
  }
}

Status Session::HandleHello(const msgpack::object& msg) {
  if (hello_done_) return Violation("a second hello");
  if (msg.via.array.size != 2) return Violation("hello is not [0, context]");
  Context ctx;
  RS_RETURN_IF_ERROR(ReadContext(msg.via.array.ptr[1], &ctx));
  Result<ReadyInfo> info = op_->Hello(ctx);
  if (!info.ok()) return info.status();
  if (info->keyed_state && !info->stateful) {
    return Status::InvalidArgument("an operator with keyed state must be stateful");
  }
  if (info->state_changes && !info->keyed_state) {
    return Status::InvalidArgument("an operator offering state changes must have keyed state");
  }
  if (info->regroup && !info->keyed_state) {
    return Status::InvalidArgument("an operator offering regroup must have keyed state");
  }
  hello_done_ = true;
  stateful_ = info->stateful;
  state_changes_ = info->state_changes;
  regroup_ = info->regroup;
  StatePacker pk(out_);
  pk.pack_array(2);
  pk.pack_uint8(kReady);
  pk.pack_map(3 + (info->keyed_state ? 1 : 0) + (info->state_changes ? 1 : 0) +
              (info->regroup ? 1 : 0));
  PackStr(pk, "stateful");
  if (info->stateful) {
    pk.pack_true();
  } else {
    pk.pack_false();
  }
  if (info->keyed_state) {
    PackStr(pk, "keyed_state");
    pk.pack_true();
  }
  if (info->state_changes) {
    PackStr(pk, "state_changes");
    pk.pack_true();
  }
  if (info->regroup) {
    PackStr(pk, "regroup");
    pk.pack_true();
  }
  PackStr(pk, "input_partition");
  if (info->csv_column) {
    pk.pack_map(1);
    PackStr(pk, "csv_column");
    pk.pack_uint64(*info->csv_column);
  } else {
    PackStr(pk, "key");
  }
  PackStr(pk, "name");
  PackStr(pk, info->name);
  return Flush();
}

Status Session::HandleBatch(const msgpack::object& msg) {
  if (!hello_done_) return Violation("a batch before hello");
  if (msg.via.array.size != 2 && msg.via.array.size != 3) {
    return Violation("batch is not [2, tuples] or [2, tuples, groups]");
  }
  const msgpack::object& tuples = msg.via.array.ptr[1];
  if (tuples.type != msgpack::type::ARRAY) {
    return Violation(std::string("batch tuples are a ") + wire::TypeName(tuples.type) +
                     ", not an array");
  }
  // Check every tuple before processing any, so a bad batch produces no partial result.
  const uint32_t n = tuples.via.array.size;
  // The tuples' key groups (PROTOCOL.md "Keyed state"); without them every tuple is group 0.
  const msgpack::object* groups = nullptr;
  if (msg.via.array.size == 3) {
    groups = &msg.via.array.ptr[2];
    if (groups->type != msgpack::type::ARRAY || groups->via.array.size != n) {
      return Violation("batch groups are not an array of one group per tuple");
    }
    for (uint32_t i = 0; i < n; ++i) {
      const msgpack::object& g = groups->via.array.ptr[i];
      if (g.type != msgpack::type::POSITIVE_INTEGER || g.via.u64 > UINT32_MAX) {
        return Violation("batch group " + std::to_string(i) + " is not a key group number");
      }
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    const msgpack::object& t = tuples.via.array.ptr[i];
    std::string_view k, v;
    if (t.type != msgpack::type::ARRAY || t.via.array.size != 2 ||
        !ReadBytes(t.via.array.ptr[0], &k) || !ReadBytes(t.via.array.ptr[1], &v)) {
      return Violation("batch tuple " + std::to_string(i) + " is not [key, value] of strings");
    }
  }
  StatePacker pk(out_);
  pk.pack_array(2);
  pk.pack_uint8(kResult);
  pk.pack_array(n);
  for (uint32_t i = 0; i < n; ++i) {
    const msgpack::object* kv = tuples.via.array.ptr[i].via.array.ptr;
    std::string_view k, v;
    ReadBytes(kv[0], &k);
    ReadBytes(kv[1], &v);
    emitter_.Reset();
    emitter_.group_ = groups ? static_cast<uint32_t>(groups->via.array.ptr[i].via.u64) : 0;
    op_->Process(k, v, emitter_);
    pk.pack_array(static_cast<uint32_t>(emitter_.count()));
    out_.write(emitter_.buffer_.data(), emitter_.buffer_.size());
  }
  ++batches_;
  tuples_ += n;
  return Flush();
}

Status Session::HandleSnapshot(const msgpack::object& msg) {
  if (!hello_done_) return Violation("a snapshot before hello");
  bool changes = false;
  if (msg.via.array.size == 2) {
    const msgpack::object& what = msg.via.array.ptr[1];
    if (what.type != msgpack::type::STR ||
        std::string_view(what.via.str.ptr, what.via.str.size) != "changes") {
      return Violation("snapshot is not [4] or [4, \"changes\"]");
    }
    if (!state_changes_) return Violation("a snapshot of changes, which the ready did not offer");
    changes = true;
  } else if (msg.via.array.size != 1) {
    return Violation("snapshot is not [4] or [4, \"changes\"]");
  }
  StatePacker pk(out_);
  pk.pack_array(2);
  pk.pack_uint8(kState);
  if (changes) {
    op_->SnapshotChanges(pk);
  } else {
    op_->Snapshot(pk);
  }
  return Flush();
}

Status Session::HandleRestore(const msgpack::object& msg) {
  if (!hello_done_) return Violation("a restore before hello");
  if (restored_) return Violation("a second restore");
  if (batches_ > 0) return Violation("a restore after a batch");
  if (!stateful_) return Violation("a restore sent to a stateless operator");
  if (msg.via.array.size != 2) return Violation("restore is not [6, state]");
  restored_ = true;
  return op_->Restore(msg.via.array.ptr[1]);
}

Status Session::HandleRegroup(const msgpack::object& msg) {
  if (!hello_done_) return Violation("a regroup before hello");
  if (!regroup_) return Violation("a regroup, which the ready did not offer");
  if (msg.via.array.size != 2 || msg.via.array.ptr[1].type != msgpack::type::MAP) {
    return Violation("regroup is not [7, {group: state}]");
  }
  return op_->Regroup(msg.via.array.ptr[1]);
}

int RunOperator(Operator& op, std::string_view program) {
  ::signal(SIGPIPE, SIG_IGN);
  std::string prefix(program);
  bool stdout_closed = false;
  Session session(&op, [&](std::string_view bytes) -> Status {
    while (!bytes.empty()) {
      ssize_t w = ::write(1, bytes.data(), bytes.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        stdout_closed = true;
        return Status::IOError(std::string("cannot write to stdout: ") + std::strerror(errno));
      }
      bytes.remove_prefix(static_cast<size_t>(w));
    }
    return Status::Ok();
  });
  Status status;
  while (status.ok()) {
    size_t cap = 0;
    char* buf = session.InputBuffer(kReadBlock, &cap);
    if (buf == nullptr) {
      status = Status::Internal("out of memory");
      break;
    }
    ssize_t r = ::read(0, buf, cap);
    if (r < 0) {
      if (errno == EINTR) continue;
      status = Status::IOError(std::string("cannot read stdin: ") + std::strerror(errno));
      break;
    }
    if (r == 0) {
      status = session.Finish();
      if (status.ok()) return 0;
      break;
    }
    status = session.Commit(static_cast<size_t>(r));
  }
  std::string line = status.message();
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "%s: %s\n", prefix.c_str(), line.c_str());
  return stdout_closed ? 1 : 2;
}

}  // namespace rs::op
