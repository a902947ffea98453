#include "daemon/stream/task_config.h"

#include "shared/wire/fields.h"

namespace rs::stream {

std::string TaskConfig::name() const {
  return job + "/" + std::to_string(stage) + "." + std::to_string(task);
}

void PackTaskConfig(wire::Packer& pk, const TaskConfig& c) {
  pk.pack_map(39);
  pk.pack("source_parts");
  pk.pack_uint32(c.source_parts);
  pk.pack("piece_epoch");
  pk.pack_uint64(c.piece_epoch);
  pk.pack("piece_giver");
  pk.pack_uint32(c.piece_giver);
  pk.pack("rescalable");
  pk.pack(c.rescalable);
  pk.pack("origin_radix");
  pk.pack_uint32(c.origin_radix);
  pk.pack("in_epoch");
  pk.pack_uint64(c.in_epoch);
  pk.pack("out_epoch");
  pk.pack_uint64(c.out_epoch);
  pk.pack("in_owners");
  pk.pack(c.in_owners);
  pk.pack("in_prev_owners");
  pk.pack(c.in_prev_owners);
  pk.pack("out_owners");
  pk.pack(c.out_owners);
  pk.pack("recover");
  pk.pack(c.recover);
  pk.pack("ckpt_gen_hint");
  pk.pack_uint64(c.ckpt_gen_hint);
  pk.pack("replay_order");
  {
    std::string runs = EncodeOrderRuns(c.replay_order);
    pk.pack_bin(static_cast<uint32_t>(runs.size()));
    pk.pack_bin_body(runs.data(), static_cast<uint32_t>(runs.size()));
  }
  pk.pack("job");
  pk.pack(c.job);
  pk.pack("stage");
  pk.pack_uint32(c.stage);
  pk.pack("stages");
  pk.pack_uint32(c.stages);
  pk.pack("task");
  pk.pack_uint32(c.task);
  pk.pack("tasks");
  pk.pack_uint32(c.tasks);
  pk.pack("argv");
  pk.pack(c.argv);
  pk.pack("csv_header");
  if (c.csv_header) {
    pk.pack(*c.csv_header);
  } else {
    pk.pack_nil();
  }
  pk.pack("exactly_once");
  pk.pack(c.exactly_once);
  pk.pack("incarnation");
  pk.pack_uint64(c.incarnation);
  pk.pack("src");
  pk.pack_array(static_cast<uint32_t>(c.src.size()));
  for (const auto& f : c.src) {
    pk.pack_array(6);
    pk.pack(f.name);
    pk.pack_uint64(f.gen);
    pk.pack_uint64(f.appends);
    pk.pack_uint64(f.size);
    pk.pack_uint64(f.digest);
    pk.pack(f.header);
  }
  pk.pack("live");
  pk.pack(c.live);
  pk.pack("upstreams");
  pk.pack_uint32(c.upstreams);
  pk.pack("rate");
  pk.pack_uint64(c.rate);
  pk.pack("downstream");
  pk.pack(c.downstream);
  pk.pack("key_groups");
  pk.pack_uint32(c.key_groups);
  pk.pack("partition_column");
  if (c.partition_column) {
    pk.pack_uint64(*c.partition_column);
  } else {
    pk.pack_nil();
  }
  pk.pack("dest");
  pk.pack(c.dest);
  pk.pack("leader");
  pk.pack(c.leader);
  pk.pack("window");
  pk.pack_uint32(c.window);
  pk.pack("batch_tuples");
  pk.pack_uint32(c.batch_tuples);
  pk.pack("resend_ms");
  pk.pack_uint32(c.resend_ms);
  pk.pack("checkpoint_ms");
  pk.pack_uint32(c.checkpoint_ms);
  pk.pack("sink_flush_ms");
  pk.pack_uint32(c.sink_flush_ms);
  pk.pack("ack_delay_ms");
  pk.pack_uint32(c.ack_delay_ms);
  pk.pack("test_duplicate_every");
  pk.pack_uint32(c.test_duplicate_every);
  pk.pack("v");
  pk.pack_uint32(1);
}

std::string EncodeTaskConfig(const TaskConfig& c) {
  msgpack::sbuffer buf;
  wire::Packer pk(buf);
  PackTaskConfig(pk, c);
  return std::string(buf.data(), buf.size());
}

namespace {

bool ReadStrings(const msgpack::object* o, std::vector<std::string>* out) {
  if (!o || o->type != msgpack::type::ARRAY) return false;
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    std::string s;
    if (!wire::ReadString(o->via.array.ptr[i], &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

// [[name, gen, appends, size, digest, header], ...]
// A group table: one owning task per group (absent: empty).
bool ReadOwners(const msgpack::object* o, std::vector<uint32_t>* out) {
  if (o == nullptr || o->type == msgpack::type::NIL) return true;
  if (o->type != msgpack::type::ARRAY || o->via.array.size > kMaxKeyGroups) return false;
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    uint64_t t = 0;
    if (!wire::ReadUint(o->via.array.ptr[i], &t) || t >= kMaxKeyGroups) return false;
    out->push_back(static_cast<uint32_t>(t));
  }
  return true;
}

bool ReadSources(const msgpack::object* o, std::vector<SourceFile>* out) {
  if (!o || o->type != msgpack::type::ARRAY) return false;
  for (uint32_t i = 0; i < o->via.array.size; ++i) {
    const msgpack::object& e = o->via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 6) return false;
    const msgpack::object* f = e.via.array.ptr;
    SourceFile s;
    if (!wire::ReadString(f[0], &s.name) || !wire::ReadUint(f[1], &s.gen) ||
        !wire::ReadUint(f[2], &s.appends) || !wire::ReadUint(f[3], &s.size) ||
        !wire::ReadUint(f[4], &s.digest) || f[5].type != msgpack::type::BOOLEAN) {
      return false;
    }
    s.header = f[5].via.boolean;
    out->push_back(std::move(s));
  }
  return true;
}

}  // namespace

Result<TaskConfig> DecodeTaskConfig(std::string_view bytes) {
  msgpack::object_handle oh;
  try {
    // Limits, so a few hostile bytes cannot claim a huge array (msgpack reserves it at once).
    oh = msgpack::unpack(bytes.data(), bytes.size(), nullptr, nullptr,
                         msgpack::unpack_limit(4096, 256, kMaxConfigString, 1u << 20, 0, 8));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("task config does not decode: ") + e.what());
  }
  return ReadTaskConfig(oh.get());
}

Result<TaskConfig> ReadTaskConfig(const msgpack::object& o) {
  wire::FieldReader r(o, "task config");
  TaskConfig c;
  c.job = r.Str("job", 128);
  c.stage = static_cast<uint32_t>(r.Uint("stage", 1000));
  c.stages = static_cast<uint32_t>(r.Uint("stages", 1000));
  c.task = static_cast<uint32_t>(r.Uint("task", 1000));
  c.tasks = static_cast<uint32_t>(r.Uint("tasks", 1000));
  if (!ReadStrings(r.Get("argv"), &c.argv)) r.Fail("task config: argv is not a list of strings");
  if (const msgpack::object* h = r.Get("csv_header"); h && h->type != msgpack::type::NIL) {
    std::string s;
    if (!wire::ReadString(*h, &s)) r.Fail("task config: csv_header is not a string");
    c.csv_header = s;
  }
  c.exactly_once = r.Bool("exactly_once");
  c.incarnation = r.Uint("incarnation");
  c.recover = r.BoolOr("recover", false);
  c.ckpt_gen_hint = r.UintOr("ckpt_gen_hint", 0);
  if (const msgpack::object* o = r.Get("replay_order"); o && o->type != msgpack::type::NIL) {
    if (o->type != msgpack::type::BIN) {
      r.Fail("task config: replay_order is not bytes");
    } else {
      auto runs = DecodeOrderRuns(std::string_view(o->via.bin.ptr, o->via.bin.size));
      if (!runs.ok()) {
        r.Fail("task config: replay_order: " + runs.status().message());
      } else {
        c.replay_order = std::move(*runs);
      }
    }
  }
  if (!ReadSources(r.Get("src"), &c.src)) {
    r.Fail("task config: src is not a list of [name, gen, appends, size, digest, header]");
  }
  c.live = r.Bool("live");
  c.upstreams = static_cast<uint32_t>(r.Uint("upstreams", 100000));
  c.rate = r.Uint("rate");
  if (!ReadStrings(r.Get("downstream"), &c.downstream)) {
    r.Fail("task config: downstream is not a list of strings");
  }
  if (const msgpack::object* p = r.Get("partition_column"); p && p->type != msgpack::type::NIL) {
    uint64_t col = 0;
    if (!wire::ReadUint(*p, &col)) r.Fail("task config: partition_column is not a uint");
    c.partition_column = col;
  }
  c.key_groups = static_cast<uint32_t>(r.Uint("key_groups", kMaxKeyGroups));
  c.rescalable = r.BoolOr("rescalable", false);
  c.origin_radix = static_cast<uint32_t>(r.UintOr("origin_radix", 0, kMaxKeyGroups));
  c.in_epoch = r.UintOr("in_epoch", 0);
  c.piece_epoch = r.UintOr("piece_epoch", 0);
  c.source_parts = static_cast<uint32_t>(r.UintOr("source_parts", 0, kMaxKeyGroups));
  c.piece_giver = static_cast<uint32_t>(r.UintOr("piece_giver", 0, kMaxKeyGroups));
  c.out_epoch = r.UintOr("out_epoch", 0);
  for (auto [key, table] :
       {std::pair{"in_owners", &c.in_owners}, std::pair{"in_prev_owners", &c.in_prev_owners},
        std::pair{"out_owners", &c.out_owners}}) {
    if (!ReadOwners(r.Get(key), table)) {
      r.Fail(std::string("task config: ") + key + " is not a list of at most " +
             std::to_string(kMaxKeyGroups) + " task numbers");
    }
  }
  c.dest = r.Str("dest");
  c.leader = r.Str("leader");
  c.window = static_cast<uint32_t>(r.Uint("window", 1u << 16));
  c.batch_tuples = static_cast<uint32_t>(r.Uint("batch_tuples", 1u << 20));
  c.resend_ms = static_cast<uint32_t>(r.Uint("resend_ms", 3600000));
  c.checkpoint_ms = static_cast<uint32_t>(r.Uint("checkpoint_ms", 3600000));
  c.sink_flush_ms = static_cast<uint32_t>(r.Uint("sink_flush_ms", 3600000));
  c.ack_delay_ms = static_cast<uint32_t>(r.UintOr("ack_delay_ms", 5));
  if (c.ack_delay_ms > 1000) r.Fail("task config: ack_delay_ms over 1000");
  c.test_duplicate_every = static_cast<uint32_t>(r.Uint("test_duplicate_every", UINT32_MAX));
  if (!r.ok()) return Status::InvalidArgument(r.status().message());
  if (c.stage < 1 || c.stage > c.stages + 1 || c.task >= c.tasks || c.window == 0 ||
      c.batch_tuples == 0) {
    return Status::InvalidArgument("task config: stage, task, window or batch out of range");
  }
  for (const auto* table : {&c.in_owners, &c.in_prev_owners, &c.out_owners}) {
    if (!table->empty() && table->size() != c.key_groups) {
      return Status::InvalidArgument("task config: a group table of " +
                                     std::to_string(table->size()) + " groups, not " +
                                     std::to_string(c.key_groups));
    }
  }
  if (c.key_groups == 0 || c.tasks > c.key_groups || c.downstream.size() > c.key_groups) {
    return Status::InvalidArgument("task config: " + std::to_string(c.key_groups) +
                                   " key groups for stages of " + std::to_string(c.tasks) +
                                   " and " + std::to_string(c.downstream.size()) + " tasks");
  }
  return c;
}

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kStarting:
      return "starting";
    case TaskState::kRunning:
      return "running";
    case TaskState::kDone:
      return "done";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kStopped:
      return "stopped";
  }
  return "unknown";
}

namespace {

// A histogram of shared/util/histogram.h as [sum_seconds, count per bucket...] (nil: empty).
void PackHistogram(wire::Packer& pk, const HistogramSnapshot& h) {
  if (h.counts.empty()) {
    pk.pack_nil();
    return;
  }
  pk.pack_array(static_cast<uint32_t>(h.counts.size() + 1));
  pk.pack(h.sum_seconds);
  for (uint64_t c : h.counts) pk.pack_uint64(c);
}

// Bounded: exactly the buckets of kLatencyBounds and +Inf, or nothing.
Result<HistogramSnapshot> ReadHistogram(const msgpack::object* o, const char* what) {
  HistogramSnapshot h;
  if (o == nullptr || o->type == msgpack::type::NIL) return h;
  const size_t buckets = kLatencyBounds.size() + 1;
  if (o->type != msgpack::type::ARRAY || o->via.array.size != buckets + 1) {
    return Status::InvalidArgument(std::string("task report: ") + what + " is not [sum, " +
                                   std::to_string(buckets) + " bucket counts]");
  }
  const msgpack::object* a = o->via.array.ptr;
  if (!wire::ReadDouble(a[0], &h.sum_seconds)) {
    return Status::InvalidArgument(std::string("task report: ") + what + "'s sum is no number");
  }
  h.counts.reserve(buckets);
  for (size_t i = 1; i <= buckets; ++i) {
    if (a[i].type != msgpack::type::POSITIVE_INTEGER) {
      return Status::InvalidArgument(std::string("task report: ") + what +
                                     " has a count that is no unsigned integer");
    }
    h.counts.push_back(a[i].via.u64);
  }
  return h;
}

}  // namespace

void PackTaskReport(wire::Packer& pk, const TaskReport& r) {
  pk.pack_map(37);
  pk.pack("backpressure");
  pk.pack(r.backpressure);
  pk.pack("backpressure_us");
  pk.pack_uint64(r.backpressure_us);
  pk.pack("checkpoints");
  pk.pack_uint64(r.checkpoints);
  pk.pack("checkpoint_bytes");
  pk.pack_uint64(r.checkpoint_bytes);
  pk.pack("checkpoint_last_bytes");
  pk.pack_uint64(r.checkpoint_last_bytes);
  pk.pack("checkpoint_last_us");
  pk.pack_uint64(r.checkpoint_last_us);
  pk.pack("checkpoint_seconds");
  PackHistogram(pk, r.checkpoint_seconds);
  pk.pack("latency_seconds");
  PackHistogram(pk, r.latency_seconds);
  pk.pack("source_left");
  pk.pack_uint64(r.source_left);
  pk.pack("epoch");
  pk.pack_uint64(r.epoch);
  pk.pack("input_ended");
  pk.pack(r.input_ended);
  pk.pack("ckpt_gen");
  pk.pack_uint64(r.ckpt_gen);
  pk.pack("incarnation");
  pk.pack_uint64(r.incarnation);
  pk.pack("injected");
  pk.pack_uint64(r.injected);
  pk.pack("resent_frames");
  pk.pack_uint64(r.resent_frames);
  pk.pack("job");
  pk.pack(r.job);
  pk.pack("stage");
  pk.pack_uint32(r.stage);
  pk.pack("task");
  pk.pack_uint32(r.task);
  pk.pack("node");
  pk.pack(r.node);
  pk.pack("pid");
  pk.pack_int64(r.pid);
  pk.pack("op");
  pk.pack(r.op);
  pk.pack("log");
  pk.pack(r.log);
  pk.pack("state");
  pk.pack(std::string(TaskStateName(r.state)));
  pk.pack("reason");
  pk.pack(r.reason);
  pk.pack("permanent");
  pk.pack(r.permanent);
  pk.pack("tuples_in");
  pk.pack_uint64(r.tuples_in);
  pk.pack("tuples_out");
  pk.pack_uint64(r.tuples_out);
  pk.pack("duplicates");
  pk.pack_uint64(r.duplicates);
  pk.pack("rate_in");
  pk.pack(r.rate_in);
  pk.pack("rate_out");
  pk.pack(r.rate_out);
  pk.pack("busy");
  pk.pack(r.busy);
  pk.pack("rate_done");
  pk.pack(r.rate_done);
  pk.pack("output_lines");
  pk.pack_uint64(r.output_lines);
  pk.pack("output_bytes");
  pk.pack_uint64(r.output_bytes);
  pk.pack("latency_p50_us");
  pk.pack_uint64(r.latency_p50_us);
  pk.pack("latency_p99_us");
  pk.pack_uint64(r.latency_p99_us);
  pk.pack("latency_samples");
  pk.pack_uint64(r.latency_samples);
}

Result<TaskReport> ReadTaskReport(const msgpack::object& o) {
  wire::FieldReader f(o, "task report");
  TaskReport r;
  r.job = f.Str("job", 128);
  r.stage = static_cast<uint32_t>(f.Uint("stage", 1000));
  r.task = static_cast<uint32_t>(f.Uint("task", 1000));
  r.node = f.StrOr("node", "");
  r.pid = f.Int("pid");
  r.op = f.StrOr("op", "");
  r.log = f.StrOr("log", "");
  std::string state = f.Str("state", 32);
  r.reason = f.StrOr("reason", "", 64 << 10);
  r.permanent = f.BoolOr("permanent", false);
  r.tuples_in = f.UintOr("tuples_in", 0);
  r.tuples_out = f.UintOr("tuples_out", 0);
  r.duplicates = f.UintOr("duplicates", 0);
  r.injected = f.UintOr("injected", 0);
  r.incarnation = f.UintOr("incarnation", 0);
  r.ckpt_gen = f.UintOr("ckpt_gen", 0);
  r.resent_frames = f.UintOr("resent_frames", 0);
  r.rate_in = f.Get("rate_in") ? f.Double("rate_in") : 0;
  r.rate_out = f.Get("rate_out") ? f.Double("rate_out") : 0;
  r.busy = f.Get("busy") ? f.Double("busy") : 0;
  r.rate_done = f.Get("rate_done") ? f.Double("rate_done") : 0;
  r.source_left = f.UintOr("source_left", 0);
  r.epoch = f.UintOr("epoch", 0);
  r.input_ended = f.BoolOr("input_ended", false);
  r.output_lines = f.UintOr("output_lines", 0);
  r.output_bytes = f.UintOr("output_bytes", 0);
  r.latency_p50_us = f.UintOr("latency_p50_us", 0);
  r.latency_p99_us = f.UintOr("latency_p99_us", 0);
  r.latency_samples = f.UintOr("latency_samples", 0);
  r.backpressure = f.Get("backpressure") ? f.Double("backpressure") : 0;
  r.backpressure_us = f.UintOr("backpressure_us", 0);
  r.checkpoints = f.UintOr("checkpoints", 0);
  r.checkpoint_bytes = f.UintOr("checkpoint_bytes", 0);
  r.checkpoint_last_bytes = f.UintOr("checkpoint_last_bytes", 0);
  r.checkpoint_last_us = f.UintOr("checkpoint_last_us", 0);
  if (!f.ok()) return f.status();
  auto ckpt_hist = ReadHistogram(f.Get("checkpoint_seconds"), "checkpoint_seconds");
  if (!ckpt_hist.ok()) return ckpt_hist.status();
  r.checkpoint_seconds = std::move(*ckpt_hist);
  auto latency_hist = ReadHistogram(f.Get("latency_seconds"), "latency_seconds");
  if (!latency_hist.ok()) return latency_hist.status();
  r.latency_seconds = std::move(*latency_hist);
  static const TaskState kAll[] = {TaskState::kStarting, TaskState::kRunning, TaskState::kDone,
                                   TaskState::kFailed, TaskState::kStopped};
  bool known = false;
  for (TaskState s : kAll) {
    if (state == TaskStateName(s)) {
      r.state = s;
      known = true;
    }
  }
  if (!known) return Status::InvalidArgument("task report: unknown state '" + state + "'");
  return r;
}

}  // namespace rs::stream
