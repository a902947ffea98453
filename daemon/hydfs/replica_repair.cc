// The replica side of repairs: OnApplyOrder (a merge or repair gives this replica an order to
// adopt: it fetches the appends it lacks from their holders, or copies them from its own legacy
// copy, then adopts the order atomically) and RepairChunk (a chunk found corrupt on this node's
// disk is fetched again from another replica). Loop thread, disk work on the IO pool.
#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

}  // namespace

void HydfsService::RepairChunk(const Manifest& m, const AppendMeta& a, uint32_t chunk) {
  std::vector<RingNode> sources;
  for (const auto& n : ReplicasOf(m.file.name)) {
    if (n.id.str() != self_id_) sources.push_back(n);
  }
  if (sources.empty()) {
    Log()->error("event=chunk_repair_failed file={} append={} chunk={} reason=\"no other replica\"",
                 m.file.name, Hex64(a.id), chunk);
    return;
  }
  uint64_t stream = transport::NewStreamId();
  auto fetch = std::make_shared<Fetch>(
      MakeFetchEnv(std::chrono::milliseconds(options_.transfer_timeout_ms)), stream, m.file.name,
      m.file.gen, std::vector<FetchItem>{FetchItem{a, chunk, chunk + 1, sources}});
  std::string name = m.file.name;
  fetch->on_chunk = [this, a, name](transport::StreamMsg& msg, const FetchItem&, uint32_t c) {
    Status st = store_->RewriteChunk(a, c, msg.data);  // rare: a sync write on the loop is fine
    if (st.ok()) {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.chunks_repaired;
    }
    return st;
  };
  fetch->on_done = [this, stream, name, a, chunk](Status st) {
    if (st.ok()) {
      Log()->warn("event=chunk_repaired file={} append={} chunk={} node={}", name, Hex64(a.id),
                  chunk, self_id_);
    } else {
      Log()->error("event=chunk_repair_failed file={} append={} chunk={} error=\"{}\"", name,
                   Hex64(a.id), chunk, st.ToString());
    }
    client_->Unregister(stream);
    loop_.Post([this, stream] { fetches_.erase(stream); });
  };
  fetches_[stream] = fetch;
  Fetch* raw = fetch.get();
  client_->Register(stream, [raw](transport::StreamMsg& msg) { raw->OnFrame(msg); });
  fetch->Start();
}

void HydfsService::OnApplyOrder(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "apply_order");
  const msgpack::object* file_obj = fr.Map("file");
  const msgpack::object* order_obj = fr.Array("order");
  const msgpack::object* sources_obj = fr.Array("sources");
  uint64_t merged = fr.UintOr("merged", 0);
  bool background = fr.BoolOr("background", false);
  if (!fr.ok()) {
    r.Reply(fr.status());
    return;
  }
  auto file = ReadFile(*file_obj);
  if (!file.ok()) {
    r.Reply(file.status());
    return;
  }
  std::vector<AppendMeta> order;
  for (uint32_t i = 0; i < order_obj->via.array.size; ++i) {
    auto a = ReadAppend(order_obj->via.array.ptr[i]);
    if (!a.ok()) {
      r.Reply(a.status());
      return;
    }
    order.push_back(std::move(a.value()));
  }
  std::map<uint64_t, std::vector<RingNode>> holders;
  for (uint32_t i = 0; i < sources_obj->via.array.size; ++i) {
    const msgpack::object& it = sources_obj->via.array.ptr[i];
    uint64_t id = 0;
    if (it.type != msgpack::type::ARRAY || it.via.array.size != 2 ||
        !wire::ReadUint(it.via.array.ptr[0], &id) ||
        it.via.array.ptr[1].type != msgpack::type::ARRAY) {
      r.Reply(Status::Corruption("apply_order: sources must be [append id, [node ids]]"));
      return;
    }
    const msgpack::object& nodes = it.via.array.ptr[1];
    for (uint32_t k = 0; k < nodes.via.array.size; ++k) {
      std::string node;
      if (!wire::ReadString(nodes.via.array.ptr[k], &node)) continue;
      auto parsed = NodeId::Parse(node);
      if (!parsed.ok() || parsed->str() == self_id_) continue;
      if (auto rn = ring_->Find(*parsed)) holders[id].push_back(*rn);
    }
  }
  const std::string name = file->name;
  if (store_->IsRemoved(name, file->gen)) {
    r.Reply(Status::FailedPrecondition(name + ": this generation was removed here"));
    return;
  }
  if (applying_.count(name)) {
    r.Reply(Status::FailedPrecondition("a merge of " + name + " is already running here"));
    return;
  }
  std::vector<FetchItem> items;
  std::vector<std::unique_ptr<BlobWriter>> writers;
  // Appends this node holds in a legacy copy of the generation (it hands that copy over to
  // itself as a new replica) are copied from the legacy store, not fetched.
  auto local = std::make_shared<std::vector<std::pair<AppendMeta, size_t>>>();  // (meta, writer)
  std::map<uint64_t, AppendMeta> old;
  if (auto m = legacy_->GetManifest(name); m.ok() && m->file.gen == file->gen) {
    for (const auto& a : m->appends) old.emplace(a.id, a);
  }
  uint64_t missing_bytes = 0;
  for (const auto& a : order) {
    if (a.size == 0 || store_->HasBlob(a.id)) continue;
    auto w = store_->NewBlob(a);
    if (!w.ok()) {
      r.Reply(w.status());
      return;
    }
    writers.push_back(std::move(w.value()));
    if (auto o = old.find(a.id); o != old.end() && o->second.crcs == a.crcs) {
      local->emplace_back(o->second, writers.size() - 1);
      continue;
    }
    items.push_back(FetchItem{a, 0, a.chunk_count(), holders[a.id]});
    missing_bytes += a.size;
  }
  Log()->info(
      "event=replica_received op=apply_order file={} appends={} missing={} "
      "missing_bytes={} background={}",
      name, order.size(), items.size(), missing_bytes, background);
  applying_.insert(name);
  auto start = Clock::now();
  auto shared_writers =
      std::make_shared<std::vector<std::unique_ptr<BlobWriter>>>(std::move(writers));
  FileMeta f = *file;
  auto commit = [this, r, f, order, merged, shared_writers, name, start, missing_bytes,
                 local](Status fetched) {
    if (!fetched.ok()) {
      applying_.erase(name);
      Log()->warn("event=replica_done op=apply_order file={} status=\"{}\"", name,
                  fetched.ToString());
      r.Reply(fetched);
      return;
    }
    Io(
        [this, f, order, merged, shared_writers, local] {
          for (const auto& [meta, k] : *local) {
            std::string buf;
            for (uint32_t c = 0; c < meta.chunk_count(); ++c) {
              buf.resize(meta.ChunkBytes(c));
              RS_RETURN_IF_ERROR(legacy_->ReadChunk(meta, c, buf.data()));
              RS_RETURN_IF_ERROR((*shared_writers)[k]->WriteChunk(c, buf, meta.crcs[c]));
            }
          }
          for (auto& w : *shared_writers) {
            auto done = w->Finish(options_.fsync_before_ack);
            if (!done.ok()) return done.status();
          }
          Status st = store_->SetOrder(f, order, merged, /*replace_other_gen=*/true);
          if (st.ok()) {
            for (auto& w : *shared_writers) SyncLater(w->meta().id);
          }
          return st;
        },
        [this, r, name, start, missing_bytes, shared_writers](Status st) {
          applying_.erase(name);
          if (st.ok()) last_write_.erase(name);
          Log()->info(
              "event=replica_done op=apply_order file={} fetched_bytes={} ms={} "
              "status=\"{}\"",
              name, missing_bytes, ToMillis(Clock::now() - start), st.ToString());
          shared_writers->clear();
          if (!st.ok()) {
            r.Reply(st);
          } else {
            r.Ok([=](wire::Packer& pk) {
              pk.pack_map(1);
              pk.pack("fetched_bytes");
              pk.pack_uint64(missing_bytes);
            });
          }
        });
  };
  if (items.empty()) {
    commit(Status::Ok());
    return;
  }
  // Map each item back to its writer by append id.
  auto writer_of = std::make_shared<std::map<uint64_t, BlobWriter*>>();
  for (auto& w : *shared_writers) (*writer_of)[w->meta().id] = w.get();
  uint64_t stream = transport::NewStreamId();
  auto fetch =
      std::make_shared<Fetch>(MakeFetchEnv(std::chrono::milliseconds(options_.transfer_timeout_ms)),
                              stream, name, f.gen, std::move(items));
  fetch->manual_ack = background;  // background repairs are paced by the repair rate limit
  std::weak_ptr<Fetch> weak = fetch;
  fetch->on_chunk = [this, writer_of, background, weak](transport::StreamMsg& msg,
                                                        const FetchItem& item, uint32_t chunk) {
    Status st = (*writer_of)[item.meta.id]->WriteChunk(chunk, msg.data, msg.crc);
    if (!st.ok()) return st;
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.chunk_bytes_stored += msg.data.size();
    }
    if (background) {
      uint64_t seq = msg.seq;
      auto delay = RepairDelay(msg.data.size());
      loop_.AddTimer(delay, [weak, seq] {
        if (auto f = weak.lock()) f->AckThrough(seq);
      });
    }
    return Status::Ok();
  };
  fetch->on_corrupt = [this, name](const RingNode& source, const AppendMeta& a, uint32_t chunk,
                                   const std::string& what) {
    Log()->warn("event=corruption_reported file={} append={} chunk={} source={} what=\"{}\"", name,
                Hex64(a.id), chunk, source.id.str(), what);
  };
  fetch->on_done = [this, stream, commit](Status st) {
    client_->Unregister(stream);
    loop_.Post([this, stream] { fetches_.erase(stream); });
    commit(st);
  };
  fetches_[stream] = fetch;
  Fetch* raw = fetch.get();
  client_->Register(stream, [raw](transport::StreamMsg& msg) { raw->OnFrame(msg); });
  fetch->Start();
}

}  // namespace rs::hydfs
