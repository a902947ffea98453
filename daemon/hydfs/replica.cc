// The replica side of HyDFS: the control RPCs peers send to this node and the data streams it
// serves. Every write is logged when received and when done.
#include <algorithm>
#include <thread>

#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/legacy.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

constexpr auto kReservationTtl = std::chrono::seconds(30);

}  // namespace

void HydfsService::OnHead(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "head");
  const msgpack::object* items = fr.Array("items");
  if (!fr.ok()) {
    r.Reply(fr.status());
    return;
  }
  struct Row {
    std::string name;
    std::optional<FileSummary> summary;
    bool removed = false;
    std::optional<uint64_t> lacks;  // of the ids asked, how many this copy lacks
  };
  std::vector<Row> rows;
  for (uint32_t i = 0; i < items->via.array.size && i < 100000; ++i) {
    const msgpack::object& it = items->via.array.ptr[i];
    std::string name;
    uint64_t gen = 0;
    // [name, gen] or [name, gen, [append id...]] (version 2: the ids a holder outside the
    // replica set asks about; the row then says how many of them this copy lacks).
    if (it.type != msgpack::type::ARRAY || it.via.array.size < 2 || it.via.array.size > 3 ||
        !wire::ReadString(it.via.array.ptr[0], &name) ||
        !wire::ReadUint(it.via.array.ptr[1], &gen) ||
        (it.via.array.size == 3 && it.via.array.ptr[2].type != msgpack::type::ARRAY)) {
      r.Reply(Status::Corruption("head: items must be [name, gen] or [name, gen, [ids]]"));
      return;
    }
    std::optional<std::vector<uint64_t>> ids;
    if (it.via.array.size == 3) {
      const msgpack::object& list = it.via.array.ptr[2];
      ids.emplace();
      for (uint32_t k = 0; k < list.via.array.size; ++k) {
        uint64_t id = 0;
        if (!wire::ReadUint(list.via.array.ptr[k], &id)) {
          r.Reply(Status::Corruption("head: append ids must be unsigned integers"));
          return;
        }
        ids->push_back(id);
      }
    }
    if (Status st = ValidateName(name); !st.ok()) {
      r.Reply(st);
      return;
    }
    Row row;
    row.name = name;
    if (ids) {
      auto m = store_->GetManifest(name);
      std::optional<Manifest> copy;
      if (m.ok()) copy = std::move(m.value());
      if (copy) row.summary = FileSummary{name, copy->file.gen, copy->size(),
                                          copy->appends.size(), copy->merged,
                                          OrderDigest(copy->file.gen, copy->appends)};
      row.lacks = CountLacking(copy, gen, *ids);
    } else {
      auto s = store_->Summary(name);
      if (s.ok()) row.summary = *s;
    }
    row.removed = gen != 0 && store_->IsRemoved(name, gen);
    rows.push_back(std::move(row));
  }
  r.Ok([&](wire::Packer& pk) {
    pk.pack_array(static_cast<uint32_t>(rows.size()));
    for (const auto& row : rows) {
      pk.pack_map(row.lacks ? 4 : 3);
      pk.pack("name");
      pk.pack(row.name);
      pk.pack("removed");
      pk.pack(row.removed);
      if (row.lacks) {
        pk.pack("lacks");
        pk.pack_uint64(*row.lacks);
      }
      pk.pack("summary");
      if (row.summary) {
        PackSummary(pk, *row.summary);
      } else {
        pk.pack_nil();
      }
    }
  });
}

void HydfsService::OnManifest(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "manifest request");
  std::string name = fr.Str("name", 1024);
  if (Status st = fr.ok() ? ValidateName(name) : fr.status(); !st.ok()) {
    r.Reply(st);
    return;
  }
  auto m = store_->GetManifest(name);
  if (!m.ok()) {
    r.Reply(m.status());
    return;
  }
  r.Ok([&](wire::Packer& pk) { PackManifest(pk, *m); });
}

void HydfsService::OnReserve(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "reserve");
  std::string name = fr.Str("name", 1024);
  uint64_t gen = fr.Uint("gen");
  std::string client = fr.StrOr("client", "", 256);
  bool release = fr.BoolOr("release", false);
  if (Status st = fr.ok() ? ValidateName(name) : fr.status(); !st.ok()) {
    r.Reply(st);
    return;
  }
  auto it = reservations_.find(name);
  if (release) {
    if (it != reservations_.end() && it->second.first == gen) reservations_.erase(it);
    r.Ok();
    return;
  }
  auto existing = store_->Summary(name);
  if (existing.ok()) {
    if (existing->gen == gen) {
      r.Ok();  // a retry of the create that made it
    } else {
      r.Reply(Status::AlreadyExists(name + " already exists"));
    }
    return;
  }
  if (store_->IsRemoved(name, gen)) {
    r.Reply(Status::FailedPrecondition("generation was removed"));
    return;
  }
  auto now = Clock::now();
  if (it != reservations_.end() && it->second.first != gen && it->second.second > now) {
    r.Reply(Status::FailedPrecondition("reserved by a concurrent create (gen " +
                                       Hex64(it->second.first) + ")"));
    return;
  }
  reservations_[name] = {gen, now + kReservationTtl};
  Log()->debug("event=reserved file={} gen={} client={}", name, Hex64(gen), client);
  r.Ok();
}

void HydfsService::OnPut(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "put");
  std::string phase = fr.StrOr("phase", "open", 16);
  uint64_t stream = fr.Uint("stream");
  if (!fr.ok()) {
    r.Reply(fr.status());
    return;
  }
  if (phase == "commit" || phase == "abort") {
    auto it = inbound_.find(stream);
    if (it == inbound_.end()) {
      r.Reply(Status::NotFound("no write in progress on stream " + Hex64(stream)));
      return;
    }
    Inbound& in = *it->second;
    if (phase == "abort") {
      if (in.committing) {
        r.Reply(Status::FailedPrecondition("the write is already committing"));
        return;
      }
      Log()->info("event=replica_done op={} file={} status=\"aborted by the client\"",
                  in.create ? "create" : "append", in.file.name);
      inbound_.erase(it);
      r.Ok();
      return;
    }
    if (!in.ready || in.committing) {
      r.Reply(Status::FailedPrecondition("the write is not ready to commit"));
      return;
    }
    in.committing = true;
    BlobWriter* writer = in.writer.get();
    FileMeta file = in.file;
    bool create = in.create;
    AppendMeta empty = in.empty_meta;
    Io(
        [this, writer, file, create, empty] {
          if (options_.test_commit_delay_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(options_.test_commit_delay_ms));
          }
          AppendMeta meta = empty;
          if (writer != nullptr) {
            auto finished = writer->Finish(options_.fsync_before_ack);
            if (!finished.ok()) return finished.status();
            meta = *finished;
          }
          Status st = create ? store_->CommitCreate(file, meta)
                             : store_->CommitAppend(file.name, file.gen, meta);
          if (st.ok() && writer != nullptr) SyncLater(meta.id);
          return st;
        },
        [this, stream, r](Status st) {
          auto it = inbound_.find(stream);
          if (it == inbound_.end()) {
            r.Reply(st);
            return;
          }
          Inbound& in = *it->second;
          if (st.ok()) {
            last_write_[in.file.name] = Clock::now();
            if (in.create) reservations_.erase(in.file.name);
          }
          Log()->log(in.quiet && st.ok() ? spdlog::level::debug : spdlog::level::info,
                     "event=replica_done op={} file={} append={} bytes={} ms={} status=\"{}\"",
                     in.create ? "create" : "append", in.file.name, Hex64(in.empty_meta.id),
                     in.empty_meta.size, ToMillis(Clock::now() - in.started), st.ToString());
          inbound_.erase(it);
          r.Reply(st);
        });
    return;
  }

  wire::FieldReader open(env.body, "put");
  bool create = open.Bool("create");
  const msgpack::object* file_obj = open.Map("file");
  const msgpack::object* meta_obj = open.Map("append");
  uint64_t lane = open.Uint("lane", 126);
  std::string sender = open.Str("sender", 256);
  bool quiet = open.BoolOr("quiet", false);
  auto level = quiet ? spdlog::level::debug : spdlog::level::info;
  if (!open.ok()) {
    r.Reply(open.status());
    return;
  }
  auto file = ReadFile(*file_obj);
  auto meta = ReadAppend(*meta_obj);
  if (!file.ok() || !meta.ok()) {
    r.Reply(!file.ok() ? file.status() : meta.status());
    return;
  }
  if (meta->id != AppendId(file->gen, meta->client, meta->seq)) {
    r.Reply(Status::InvalidArgument("append id does not match (gen, client, seq)"));
    return;
  }
  if (meta->chunk_size < 1 || meta->chunk_size > (16u << 20)) {
    r.Reply(Status::InvalidArgument("chunk size out of range"));
    return;
  }
  if (inbound_.count(stream)) {
    r.Reply(Status::AlreadyExists("stream already open"));
    return;
  }
  const std::string& name = file->name;
  Log()->log(level,
             "event=replica_received op={} file={} gen={} append={} client={} seq={} bytes={} "
             "from={}",
             create ? "create" : "append", name, Hex64(file->gen), Hex64(meta->id), meta->client,
             meta->seq, meta->size, sender);
  auto copy = store_->Summary(name);  // one record, however many appends the copy has
  Status refuse;
  if (create) {
    if (copy.ok() && copy->gen != file->gen) {
      refuse = Status::AlreadyExists(name + " already exists");
    } else if (store_->IsRemoved(name, file->gen)) {
      refuse = Status::FailedPrecondition(name + ": this generation was removed");
    }
  } else if (!copy.ok() || copy->gen != file->gen) {
    refuse = Status::NotFound("this replica holds no copy of " + name +
                              (copy.ok() ? " (it holds another generation)" : ""));
  }
  // A retried write (retry.h) whose append this copy already lists: answer "ready" at once, take
  // no data, and make the commit a no-op (CommitAppend/CommitCreate find it listed). Without this
  // the data was sent again and the blob rewritten in place, to the same effect but for nothing.
  std::optional<AppendMeta> found;
  if (refuse.ok() && copy.ok() && copy->gen == file->gen) {
    auto f = store_->FindAppend(name, file->gen, meta->id);
    if (f.ok()) {
      found = std::move(*f);
    } else if (f.status().code() != StatusCode::kNotFound) {  // NotFound: removed meanwhile
      refuse = f.status();
    }
  }
  const AppendMeta* listed = found ? &*found : nullptr;
  if (listed != nullptr) {
    if (listed->size != meta->size) {
      refuse = Status::InvalidArgument("append " + Hex64(meta->id) + " is listed here with " +
                                       std::to_string(listed->size) + " bytes, not " +
                                       std::to_string(meta->size));
    }
  }
  auto in = std::make_unique<Inbound>();
  if (refuse.ok() && listed == nullptr && meta->size > 0) {
    auto writer = store_->NewBlob(*meta);
    if (!writer.ok()) {
      refuse = writer.status();
    } else {
      in->writer = std::move(writer.value());
    }
  }
  if (!refuse.ok()) {
    Log()->info("event=replica_done op={} file={} append={} status=\"{}\"",
                create ? "create" : "append", name, Hex64(meta->id), refuse.ToString());
    r.Reply(refuse);
    return;
  }
  in->stream = stream;
  in->lane = static_cast<uint8_t>(lane);
  in->sender = sender;
  in->create = create;
  in->quiet = quiet;
  in->file = *file;
  in->empty_meta = *meta;
  in->empty_meta.crcs.clear();
  in->chunks = meta->chunk_count();
  in->ready = in->chunks == 0;
  if (listed != nullptr) {
    in->listed = in->ready = true;
    in->empty_meta = *listed;  // with its CRCs: the commit re-checks the listed append
    Log()->log(level, "event=replica_already_listed op={} file={} append={}",
               create ? "create" : "append", name, Hex64(meta->id));
  }
  in->last = in->started = Clock::now();
  bool ready = in->ready;
  inbound_[stream] = std::move(in);
  r.Ok([ready](wire::Packer& pk) {
    pk.pack_map(1);
    pk.pack("ready");
    pk.pack(ready);
  });
}

void HydfsService::OnServeFrame(transport::StreamMsg& msg) {
  using transport::StreamKind;
  if (msg.kind == StreamKind::kChunk) {
    auto it = inbound_.find(msg.stream);
    if (it != inbound_.end()) InboundChunk(*it->second, msg);
    return;
  }
  if (msg.kind == StreamKind::kAck) {
    auto it = outbound_.find({msg.stream, msg.lane});
    if (it == outbound_.end()) return;
    Outbound& out = *it->second;
    // Never past what was sent: a direct read that failed over relays acks of chunks the
    // previous source sent; this one then resends them and the reader drops the repeats.
    out.acked = std::max(out.acked, std::min(msg.seq + 1, out.next_seq));
    out.last = Clock::now();
    PumpOutbound(out);
    return;
  }
  // kEnd: the peer stopped (a client aborting its write, a reader giving up).
  auto in = inbound_.find(msg.stream);
  if (in != inbound_.end() && !in->second->committing && !in->second->ready) {
    Log()->info("event=replica_done op=put file={} status=\"aborted by the client: {}\"",
                in->second->file.name, msg.status.ToString());
    inbound_.erase(in);  // the BlobWriter deletes its temporary file
  }
  outbound_.erase({msg.stream, msg.lane});
}

void HydfsService::InboundChunk(Inbound& in, transport::StreamMsg& msg) {
  in.last = Clock::now();
  if (in.ready || in.committing) return;
  Status st;
  if (msg.seq != in.next_seq) {
    st = Status::Corruption("chunk " + std::to_string(msg.seq) + " arrived, expected " +
                            std::to_string(in.next_seq));
  } else {
    st = in.writer->WriteChunk(static_cast<uint32_t>(msg.seq), msg.data, msg.crc);
  }
  if (!st.ok()) {
    FinishInbound(in.stream, st);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.chunk_bytes_stored += msg.data.size();
  }
  ++in.next_seq;
  serve_->Send(in.sender, transport::AckFrame(in.stream, msg.seq, in.lane));
  if (in.next_seq < in.chunks) return;

  // Every chunk is written: tell the client, which decides commit or abort (see OnPut).
  in.ready = true;
  serve_->Send(in.sender, transport::EndFrame(in.stream, in.lane, Status::Ok()));
}

void HydfsService::FinishInbound(uint64_t stream, Status status) {
  auto it = inbound_.find(stream);
  if (it == inbound_.end()) return;
  Inbound& in = *it->second;
  Log()->info("event=replica_done op={} file={} append={} ms={} status=\"{}\"",
              in.create ? "create" : "append", in.file.name, Hex64(in.empty_meta.id),
              ToMillis(Clock::now() - in.started), status.ToString());
  serve_->Send(in.sender, transport::EndFrame(stream, in.lane, status));
  inbound_.erase(it);  // the BlobWriter deletes its temporary file
}

void HydfsService::OnRead(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "read");
  std::string name = fr.Str("name", 1024);
  uint64_t gen = fr.Uint("gen");
  uint64_t stream = fr.Uint("stream");
  uint64_t lane = fr.Uint("lane", 127);
  std::string reader = fr.Str("reader", 256);
  std::string control = fr.StrOr("control", reader, 256);  // a direct read (fetch.h)
  bool reader_client = fr.BoolOr("reader_client", false);
  uint64_t first_seq = fr.Uint("first_seq");
  uint64_t window = fr.UintOr("window", 8, 1024);
  const msgpack::object* items = fr.Array("items");
  if (Status st = fr.ok() ? ValidateName(name) : fr.status(); !st.ok()) {
    r.Reply(st);
    return;
  }
  // The live copy first; a legacy copy of the generation serves the appends it lacks (this node
  // is a hand-over source, legacy.h).
  std::optional<Manifest> live, old;
  if (auto m = store_->GetManifest(name); m.ok() && m->file.gen == gen) live = std::move(*m);
  if (auto m = legacy_->GetManifest(name); m.ok() && m->file.gen == gen) old = std::move(*m);
  if (!live && !old) {
    auto m = store_->GetManifest(name);
    r.Reply(m.ok() ? Status::NotFound("this replica holds another generation of " + name)
                   : m.status());
    return;
  }
  std::map<uint64_t, std::pair<const AppendMeta*, bool>> by_id;  // id -> (append, legacy)
  if (old) {
    for (const auto& a : old->appends) by_id[a.id] = {&a, true};
  }
  if (live) {
    for (const auto& a : live->appends) by_id[a.id] = {&a, false};
  }
  auto out = std::make_unique<Outbound>();
  uint64_t total = 0;
  for (uint32_t i = 0; i < items->via.array.size; ++i) {
    const msgpack::object& it = items->via.array.ptr[i];
    uint64_t id = 0, from = 0, to = 0;
    if (it.type != msgpack::type::ARRAY || it.via.array.size != 3 ||
        !wire::ReadUint(it.via.array.ptr[0], &id) || !wire::ReadUint(it.via.array.ptr[1], &from) ||
        !wire::ReadUint(it.via.array.ptr[2], &to)) {
      r.Reply(Status::Corruption("read: items must be [append id, from, to]"));
      return;
    }
    auto found = by_id.find(id);
    if (found == by_id.end()) {
      r.Reply(Status::NotFound("this replica lacks append " + Hex64(id) + " of " + name));
      return;
    }
    if (from > to || to > found->second.first->chunk_count()) {
      r.Reply(Status::InvalidArgument("read: chunk range out of bounds"));
      return;
    }
    out->ranges.push_back({*found->second.first, static_cast<uint32_t>(from),
                           static_cast<uint32_t>(to), found->second.second});
    total += to - from;
  }
  out->stream = stream;
  out->lane = static_cast<uint8_t>(lane);
  out->reader = reader;
  out->control = control;
  // Only a member can ask for a read, so only a member names a client process as the reader.
  if (reader_client && reader.rfind("tcp://", 0) == 0) serve_->MarkClient(reader);
  out->next_seq = out->acked = out->first_seq = first_seq;
  out->end_seq = first_seq + total;
  out->window = static_cast<uint32_t>(std::max<uint64_t>(1, window));
  out->chunk = out->ranges.empty() ? 0 : out->ranges[0].from;
  out->last = Clock::now();
  out->manifest = live ? std::move(*live) : std::move(*old);
  Log()->info("event=replica_received op=read file={} chunks={} first_seq={} reader={}", name,
              total, first_seq, reader);
  r.Ok();
  auto key = std::make_pair(stream, out->lane);
  Outbound* raw = out.get();
  outbound_[key] = std::move(out);
  PumpOutbound(*raw);
}

void HydfsService::PumpOutbound(Outbound& out) {
  auto key = std::make_pair(out.stream, out.lane);
  while (out.next_seq < out.end_seq && out.next_seq - out.acked < out.window) {
    while (out.range < out.ranges.size() && out.chunk >= out.ranges[out.range].to) {
      ++out.range;
      if (out.range < out.ranges.size()) out.chunk = out.ranges[out.range].from;
    }
    if (out.range >= out.ranges.size()) break;
    const AppendMeta& meta = out.ranges[out.range].meta;
    Store* from = out.ranges[out.range].legacy ? legacy_.get() : store_.get();
    bool from_legacy = out.ranges[out.range].legacy;
    uint32_t chunk = out.chunk;
    bool last = out.next_seq + 1 == out.end_seq;
    auto frame = transport::ChunkFrameFilled(
        out.stream, out.next_seq, out.lane, last, meta.ChunkBytes(chunk),
        [&](char* buf) { return from->ReadChunk(meta, chunk, buf); });
    if (!frame.ok()) {
      Log()->error("event=corruption file={} append={} chunk={} node={} error=\"{}\"",
                   out.manifest.file.name, Hex64(meta.id), chunk, self_id_,
                   frame.status().message());
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.corruptions_detected;
      }
      Manifest m = out.manifest;
      AppendMeta bad = meta;
      serve_->Send(out.control, transport::EndFrame(out.stream, out.lane, frame.status()));
      outbound_.erase(key);  // `out` is gone
      if (!from_legacy) RepairChunk(m, bad, chunk);  // a legacy copy is never repaired
      return;
    }
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.chunk_bytes_out += meta.ChunkBytes(chunk);
    }
    if (!serve_->Send(out.reader, std::move(frame.value()))) break;  // retried on the next ack
    ++out.next_seq;
    ++out.chunk;
  }
  if (out.next_seq >= out.end_seq && out.acked >= out.end_seq) {
    Log()->info("event=replica_done op=read file={} chunks={} reader={} status=ok",
                out.manifest.file.name, out.end_seq - out.first_seq, out.reader);
    serve_->Send(out.control, transport::EndFrame(out.stream, out.lane, Status::Ok()));
    outbound_.erase(key);
  }
}

void HydfsService::CheckServeIdle() {
  auto now = Clock::now();
  auto timeout = std::chrono::milliseconds(options_.transfer_timeout_ms);
  // Sockets to finished rainctl processes (every transfer ends well within this).
  auto client_idle = std::max<Clock::duration>(std::chrono::seconds(30), 3 * timeout);
  serve_->CloseIdleClients(client_idle);
  client_->CloseIdleClients(client_idle);
  for (auto it = inbound_.begin(); it != inbound_.end();) {
    auto limit = it->second->ready ? timeout * 6 : timeout;  // a ready write awaits its commit
    if (!it->second->committing && now - it->second->last > limit) {
      Log()->warn("event=replica_done op=put file={} status=\"abandoned: the client went silent\"",
                  it->second->file.name);
      it = inbound_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    it = it->second.second < now ? reservations_.erase(it) : std::next(it);
  }
  for (auto it = outbound_.begin(); it != outbound_.end();) {
    if (now - it->second->last > timeout) {
      Log()->info("event=read_abandoned file={} reader={}", it->second->manifest.file.name,
                  it->second->reader);
      it = outbound_.erase(it);
    } else {
      ++it;
    }
  }
}

void HydfsService::OnRemove(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "remove");
  std::string name = fr.Str("name", 1024);
  uint64_t gen = fr.Uint("gen");
  bool tombstone = fr.BoolOr("tombstone", true);
  if (Status st = fr.ok() ? ValidateName(name) : fr.status(); !st.ok()) {
    r.Reply(st);
    return;
  }
  Log()->info("event=replica_received op=rm file={} gen={}", name, Hex64(gen));
  cache_->Invalidate(name);
  reservations_.erase(name);
  Io([this, name, gen, tombstone] { return store_->Remove(name, gen, tombstone); },
     [r, name](Status st) {
       Log()->info("event=replica_done op=rm file={} status=\"{}\"", name, st.ToString());
       r.Reply(st);
     });
}

void HydfsService::OnList(const wire::Envelope& env, const transport::Responder& r) {
  wire::FieldReader fr(env.body, "list");
  std::string prefix = fr.StrOr("prefix", "", 1024);
  if (!fr.ok()) {
    r.Reply(fr.status());
    return;
  }
  auto files = store_->List(prefix);
  r.Ok([&](wire::Packer& pk) {
    pk.pack_array(static_cast<uint32_t>(files.size()));
    for (const auto& f : files) PackSummary(pk, f);
  });
}

}  // namespace rs::hydfs
