// `rainctl job checkpoint`: a task's HyDFS checkpoint file, decoded (daemon/stream/README.md
// "HyDFS checkpoints"): per record its time, dedup-log position, input channels, watermarks per
// key group, pending output frames, state size and counters; --json for scripts.
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ctl/commands.h"
#include "ctl/output.h"
#include "ctl/transfer.h"
#include "shared/stream/checkpoint.h"
#include "shared/stream/task_frame.h"
#include "shared/wire/fields.h"

namespace rs::ctl {
namespace {

// Reads HyDFS file `name` whole, through a private temporary file.
Result<std::string> FetchFile(const Context& ctx, const std::string& name, int* exit_code) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir_template = std::string(tmp && *tmp ? tmp : "/tmp") + "/rainctl-ckpt-XXXXXX";
  std::vector<char> dir(dir_template.begin(), dir_template.end());
  dir.push_back('\0');
  *exit_code = kExitLocalFile;
  if (::mkdtemp(dir.data()) == nullptr) {
    return Status::IOError("a temporary directory: " + std::string(std::strerror(errno)));
  }
  std::string path = std::string(dir.data()) + "/checkpoint";
  Context quiet = ctx;
  quiet.json = false;
  TransferOutcome t = Download(quiet, name, path, false, {});
  Result<std::string> out = Status::Ok();
  if (t.local_error) {
    out = t.outcome.status;
  } else if (!t.outcome.ok()) {
    *exit_code = t.outcome.remote ? kExitRemoteError : kExitUnreachable;
    out = Status(t.outcome.status.code(), name + ": " + t.outcome.status.message());
  } else {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
      out = Status::IOError("reading " + path);
    } else {
      out = std::move(data);
    }
  }
  ::unlink(path.c_str());
  ::rmdir(dir.data());
  return out;
}

// One record as a MessagePack map (the --json form and the text form both read it).
void PackRecord(wire::Packer& pk, size_t index, const stream::CheckpointRecord& r) {
  pk.pack_map(14);
  pk.pack("record");
  pk.pack_uint64(index);
  pk.pack("time_ms");
  pk.pack_uint64(r.time_ms);
  pk.pack("commits");
  pk.pack_uint64(r.commits);
  pk.pack("in");
  pk.pack_array(static_cast<uint32_t>(r.in.size()));
  for (const auto& c : r.in) {
    pk.pack_map(5);
    pk.pack("from");
    pk.pack(std::to_string(c.stage) + "." + std::to_string(c.task));
    pk.pack("run");
    pk.pack_uint64(c.incarnation);
    pk.pack("processed");
    pk.pack_uint64(c.processed);
    pk.pack("ended");
    pk.pack(c.ended);
    pk.pack("kind");
    pk.pack(c.stage == 0 ? "source" : "task");
  }
  pk.pack("watermarks");
  pk.pack_array(static_cast<uint32_t>(r.wm.size()));
  for (const auto& w : r.wm) {
    pk.pack_map(4);
    pk.pack("group");
    pk.pack_uint32(w.group);
    pk.pack("from");
    pk.pack(std::to_string(w.stage) + "." + std::to_string(w.task));
    pk.pack("origin");
    pk.pack_uint64(w.origin);
    pk.pack("id");
    pk.pack(stream::FormatId(w.id));
  }
  pk.pack("pending");
  pk.pack_array(static_cast<uint32_t>(r.pending.size()));
  for (const auto& f : r.pending) {
    auto frame = stream::ParseTaskFrame(std::string(f.bytes));
    pk.pack_map(4);
    pk.pack("to");
    pk.pack_uint32(f.to);
    pk.pack("seq");
    pk.pack_uint64(f.seq);
    pk.pack("tuples");
    pk.pack_uint64(frame.ok() ? frame->tuples.size() : 0);
    pk.pack("bytes");
    pk.pack_uint64(f.bytes.size());
  }
  // Per next-stage task, the lowest seq still pending: the frames pending at this record are
  // those from there on, listed in this record or an earlier one of the file.
  pk.pack("pending_from");
  pk.pack_array(static_cast<uint32_t>(r.pending_from.size()));
  for (const auto& [to, seq] : r.pending_from) {
    pk.pack_map(2);
    pk.pack("to");
    pk.pack_uint32(to);
    pk.pack("seq");
    pk.pack_uint64(seq);
  }
  pk.pack("state_bytes");
  if (r.state) {
    pk.pack_uint64(r.state->size());
  } else {
    pk.pack_nil();
  }
  pk.pack("state_changes");
  pk.pack(r.state_changes);
  // A task that logs its input order: the runs its state covers (null: it logs none).
  pk.pack("order");
  if (r.order) {
    pk.pack_uint64(*r.order);
  } else {
    pk.pack_nil();
  }
  pk.pack("spool_bytes");
  pk.pack_uint64(r.spool_bytes);
  pk.pack("tuples_in");
  pk.pack_uint64(r.tuples_in);
  pk.pack("tuples_out");
  pk.pack_uint64(r.tuples_out);
  pk.pack("duplicates");
  pk.pack_uint64(r.duplicates);
}

void PrintRecord(const msgpack::object& r, size_t records) {
  std::printf("record %s of %zu, taken %s (after %s group commits)\n", Str(r, "record").c_str(),
              records, FormatTime(Uint(r, "time_ms")).c_str(), Str(r, "commits").c_str());
  std::printf("  counters: %s tuples in, %s out, %s duplicates dropped\n",
              Str(r, "tuples_in").c_str(), Str(r, "tuples_out").c_str(),
              Str(r, "duplicates").c_str());
  if (const msgpack::object* in = ArrayField(r, "in")) {
    for (uint32_t i = 0; i < in->via.array.size; ++i) {
      const msgpack::object& c = in->via.array.ptr[i];
      std::string run = Str(c, "run");
      if (Str(c, "kind") != "source") {
        std::printf("  input from task %s (run %s): frames 1..%s processed%s\n",
                    Str(c, "from").c_str(), run.c_str(), Str(c, "processed").c_str(),
                    Bool(c, "ended") ? ", ended" : "");
      } else if (Uint(c, "run") == 0) {  // the task reads its own partition of the input file
        std::printf("  input from its partition of the source file: batches 1..%s read%s\n",
                    Str(c, "processed").c_str(), Bool(c, "ended") ? ", ended" : "");
      } else {
        std::printf("  input from rainsource (run %s): frames 1..%s processed%s\n", run.c_str(),
                    Str(c, "processed").c_str(), Bool(c, "ended") ? ", ended" : "");
      }
    }
  }
  if (const msgpack::object* wm = ArrayField(r, "watermarks")) {
    for (uint32_t i = 0; i < wm->via.array.size; ++i) {
      const msgpack::object& w = wm->via.array.ptr[i];
      std::printf("  key group %s, watermark from %s origin %s: %s\n", Str(w, "group").c_str(),
                  Str(w, "from").c_str(), Str(w, "origin").c_str(), Str(w, "id").c_str());
    }
  }
  if (const msgpack::object* pend = ArrayField(r, "pending")) {
    for (uint32_t i = 0; i < pend->via.array.size; ++i) {
      const msgpack::object& f = pend->via.array.ptr[i];
      std::printf("  output to next-stage task %s, seq %s: %s tuples, %s (not durable there yet)\n",
                  Str(f, "to").c_str(), Str(f, "seq").c_str(), Str(f, "tuples").c_str(),
                  FormatBytes(Uint(f, "bytes")).c_str());
    }
  }
  if (const msgpack::object* from = ArrayField(r, "pending_from")) {
    for (uint32_t i = 0; i < from->via.array.size; ++i) {
      const msgpack::object& f = from->via.array.ptr[i];
      std::printf("  outputs to next-stage task %s pending from seq %s (listed here or earlier)\n",
                  Str(f, "to").c_str(), Str(f, "seq").c_str());
    }
  }
  const msgpack::object* st = wire::MapGet(r, "state_bytes");
  if (st != nullptr && st->type != msgpack::type::NIL) {
    const msgpack::object* ch = wire::MapGet(r, "state_changes");
    bool changes = ch != nullptr && ch->type == msgpack::type::BOOLEAN && ch->via.boolean;
    std::printf("  operator state: %s%s\n", FormatBytes(Uint(r, "state_bytes")).c_str(),
                changes ? " (the entries changed since the record before)" : "");
  }
  const msgpack::object* order = wire::MapGet(r, "order");
  if (order != nullptr && order->type != msgpack::type::NIL) {
    std::printf("  input order: the state covers the first %s logged runs\n",
                Str(r, "order").c_str());
  }
  if (Uint(r, "spool_bytes") != 0) {
    std::printf("  sink spool committed: %s\n", FormatBytes(Uint(r, "spool_bytes")).c_str());
  }
}

}  // namespace

// `job checkpoint JOB TASK` (the file the task writes now, from job.tasks) or `--file NAME`:
// the checkpoint records decoded; the last one (what a rebuild restores) or all of them.
int JobCheckpoint(Context& ctx, const std::string& job, const std::string& task,
                  const std::string& file, bool all) {
  std::string name = file;
  if (name.empty()) {
    uint32_t stage = 0, index = 0;
    size_t dot = task.find('.');
    auto parse = [](std::string_view text, uint32_t* out) {
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
      return ec == std::errc() && p == text.data() + text.size() && !text.empty();
    };
    if (job.empty() || dot == std::string::npos ||
        !parse(std::string_view(task).substr(0, dot), &stage) ||
        !parse(std::string_view(task).substr(dot + 1), &index)) {
      return Fail(ctx,
                  Status::InvalidArgument("give JOB and TASK as STAGE.INDEX (list_tasks shows "
                                          "them, e.g. 2.0), or --file NAME"),
                  kExitUsage);
    }
    Outcome out = Command(ctx, "job.tasks", {{"job", job}});
    if (!out.ok()) return Fail(ctx, out);
    const msgpack::object* tasks = ArrayField(out.reply.payload, "tasks");
    bool found = false;
    for (uint32_t i = 0; tasks != nullptr && i < tasks->via.array.size; ++i) {
      const msgpack::object& e = tasks->via.array.ptr[i];
      if (Uint(e, "stage") != stage || Uint(e, "task") != index) continue;
      found = true;
      name = Str(e, "checkpoint");
    }
    if (!found) {
      return Fail(ctx, Status::NotFound("job " + job + " has no task " + task), kExitRemoteError);
    }
    if (name.empty()) {
      return Fail(ctx,
                  Status::FailedPrecondition("task " + task + " of job " + job +
                                             " has no checkpoint (exactly-once is off, or the "
                                             "task has not reported yet)"),
                  kExitRemoteError);
    }
  }
  int code = kExitOk;
  auto data = FetchFile(ctx, name, &code);
  if (!data.ok()) return Fail(ctx, data.status(), code);
  stream::CheckpointRecords split = stream::SplitCheckpointFile(*data);
  size_t first = all || split.records.empty() ? 0 : split.records.size() - 1;
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  pk.pack_map(5);
  pk.pack("file");
  pk.pack(name);
  pk.pack("bytes");
  pk.pack_uint64(data->size());
  pk.pack("records");
  pk.pack_uint64(split.records.size());
  pk.pack("torn_bytes");
  pk.pack_uint64(split.torn_bytes);
  pk.pack("shown");
  pk.pack_array(static_cast<uint32_t>(split.records.size() - first));
  for (size_t i = first; i < split.records.size(); ++i) {
    auto rec = stream::DecodeCheckpointRecord(split.records[i]);
    if (!rec.ok()) {
      return Fail(ctx,
                  Status::Corruption(name + ": record " + std::to_string(i + 1) + ": " +
                                     rec.status().message()),
                  kExitRemoteError);
    }
    PackRecord(pk, i + 1, *rec);
  }
  msgpack::object_handle oh = msgpack::unpack(buf.data(), buf.size());
  const msgpack::object& p = oh.get();
  if (ctx.json) {
    PrintJson(p);
    return kExitOk;
  }
  std::printf("%s: %zu record(s), %s", name.c_str(), split.records.size(),
              FormatBytes(data->size()).c_str());
  if (split.torn_bytes != 0) {
    std::printf(" (a torn last append of %s is ignored)", FormatBytes(split.torn_bytes).c_str());
  }
  std::printf("\n");
  const msgpack::object* shown = ArrayField(p, "shown");
  for (uint32_t i = 0; shown != nullptr && i < shown->via.array.size; ++i) {
    PrintRecord(shown->via.array.ptr[i], split.records.size());
  }
  return kExitOk;
}

}  // namespace rs::ctl
