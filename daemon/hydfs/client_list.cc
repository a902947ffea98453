// The cluster-wide listing and the remove, as in-process calls (ListAll, Remove) and as the
// console commands hydfs.lsall and hydfs.rm that wrap them.
#include <utility>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "shared/logging.h"
#include "shared/util/hash.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

}  // namespace

void HydfsService::ListAll(const std::string& prefix, std::function<void(Result<Listing>)> done) {
  TimePoint requested = Clock::now();
  loop_.Post([this, prefix, requested, done = std::move(done)] {
    ListAllOnLoop(prefix, requested, done);
  });
}

void HydfsService::Remove(const std::string& name, std::function<void(Result<uint64_t>)> done) {
  TimePoint requested = Clock::now();
  loop_.Post(
      [this, name, requested, done = std::move(done)] { RemoveOnLoop(name, requested, done); });
}

void HydfsService::ListAllOnLoop(const std::string& prefix, TimePoint requested,
                                 std::function<void(Result<Listing>)> done) {
  done = [this, requested, done = std::move(done)](Result<Listing> r) {
    RecordOp(OpKind::kLsAll, requested, r.status(), 0);
    done(std::move(r));
  };
  auto nodes = ring_->nodes();
  if (nodes.empty()) {
    done(Status::Unavailable("no HyDFS node is on the ring"));
    return;
  }
  struct Acc {
    size_t pending = 0;
    std::map<std::string, ListedFile> files;
    std::vector<std::string> unanswered;
  };
  auto acc = std::make_shared<Acc>();
  acc->pending = nodes.size();
  for (const auto& node : nodes) {
    rpc_->Call(
        node.rpc_endpoint(), wire::MsgType::kHydfsList,
        [&](wire::Packer& pk) {
          pk.pack_map(1);
          pk.pack("prefix");
          pk.pack(prefix);
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms),
        [acc, node, prefix, done](Result<wire::Envelope> reply) {
          Result<msgpack::object> payload =
              reply.ok() ? wire::ReplyPayload(*reply) : Result<msgpack::object>(reply.status());
          if (!payload.ok() || payload->type != msgpack::type::ARRAY) {
            acc->unanswered.push_back(node.id.str());
          } else {
            for (uint32_t i = 0; i < payload->via.array.size; ++i) {
              auto s = ReadSummary(payload->via.array.ptr[i]);
              if (!s.ok() || s->name.rfind(prefix, 0) != 0) continue;
              ListedFile& f = acc->files[s->name];
              bool first = f.stored_on.empty();
              if (!first && s->digest != f.digest) f.in_sync = false;
              if (first || std::pair(s->gen, s->appends) > std::pair(f.gen, f.appends)) {
                f.gen = s->gen;
                f.appends = s->appends;
                f.digest = s->digest;
              }
              f.name = s->name;
              f.size = std::max(f.size, s->size);
              f.stored_on.push_back(node.id.str());
            }
          }
          if (--acc->pending > 0) return;
          Listing out;
          out.unanswered = std::move(acc->unanswered);
          for (auto& [name, f] : acc->files) out.files.push_back(std::move(f));
          done(std::move(out));
        });
  }
}

void HydfsService::CmdLsAll(const std::string& prefix, TimePoint requested, Reply done) {
  ListAllOnLoop(prefix, requested, [done](Result<Listing> r) {
    if (!r.ok()) {
      done(r.status(), {});
      return;
    }
    done(Status::Ok(), [l = std::move(*r)](wire::Packer& pk) {
      pk.pack_map(2);
      pk.pack("unanswered");
      pk.pack(l.unanswered);
      pk.pack("files");
      pk.pack_array(static_cast<uint32_t>(l.files.size()));
      for (const auto& f : l.files) {
        pk.pack_map(8);
        pk.pack("name");
        pk.pack(f.name);
        pk.pack("file_id");
        pk.pack(Hex64(FileId(f.name)));
        pk.pack("size");
        pk.pack_uint64(f.size);
        pk.pack("stored_on");
        pk.pack(f.stored_on);
        // The newest copy's version (as hydfs.liststore names it), and whether all agree.
        pk.pack("version");
        pk.pack(Hex64(f.digest));
        pk.pack("gen");
        pk.pack_uint64(f.gen);
        pk.pack("appends");
        pk.pack_uint64(f.appends);
        pk.pack("in_sync");
        pk.pack(f.in_sync);
      }
    });
  });
}

void HydfsService::RemoveOnLoop(const std::string& name, TimePoint requested,
                                std::function<void(Result<uint64_t>)> done) {
  done = [this, requested, done = std::move(done)](Result<uint64_t> r) {
    RecordOp(OpKind::kRm, requested, r.status(), 0);
    done(std::move(r));
  };
  Status st = ValidateName(name);
  if (!st.ok()) {
    done(st);
    return;
  }
  auto replicas = ReplicasOf(name);
  Log()->info("event=op_start op=rm file={} client={}", name, self_id_);
  CollectManifests(
      name, replicas,
      [this, name, replicas, done](std::vector<std::optional<Manifest>> copies, std::vector<bool>) {
        auto gen = ChooseGeneration(copies);
        if (!gen) {
          Log()->info("event=op_done op=rm file={} status=not_found", name);
          done(Status::NotFound("no such file: " + name));
          return;
        }
        cache_->Invalidate(name);
        struct Acc {
          size_t pending;
          size_t removed = 0;
        };
        auto acc = std::make_shared<Acc>(Acc{replicas.size()});
        for (const auto& node : replicas) {
          rpc_->Call(
              node.rpc_endpoint(), wire::MsgType::kHydfsRemove,
              [&](wire::Packer& pk) {
                pk.pack_map(3);
                pk.pack("name");
                pk.pack(name);
                pk.pack("gen");
                pk.pack_uint64(*gen);
                pk.pack("tombstone");
                pk.pack(true);
              },
              std::chrono::milliseconds(options_.rpc_timeout_ms),
              [acc, name, done](Result<wire::Envelope> reply) {
                if (reply.ok() && wire::ReplyPayload(*reply).ok()) ++acc->removed;
                if (--acc->pending > 0) return;
                Log()->info("event=op_done op=rm file={} replicas_removed={}", name, acc->removed);
                if (acc->removed == 0) {
                  done(Status::Unavailable("no replica of " + name + " answered the remove"));
                  return;
                }
                done(static_cast<uint64_t>(acc->removed));
              });
        }
      });
}

void HydfsService::CmdRm(const std::string& name, TimePoint requested, Reply done) {
  RemoveOnLoop(name, requested, [name, done](Result<uint64_t> r) {
    if (!r.ok()) {
      done(r.status(), {});
      return;
    }
    done(Status::Ok(), [name, removed = *r](wire::Packer& pk) {
      pk.pack_map(2);
      pk.pack("file");
      pk.pack(name);
      pk.pack("replicas_removed");
      pk.pack_uint64(removed);
    });
  });
}

}  // namespace rs::hydfs
