// Merge and repair.
//
// Reconcile(name): collect the manifests of the file's replicas (plus, for an extra copy this
// node holds outside the replica set, its own; plus, for a legacy copy, that one), compute the
// merged order (merge.h), and send it to every replica whose copy differs: each fetches the
// appends it lacks from the holders and adopts the order atomically (Store::SetOrder never drops
// an append). Replicas already equal to the merge get nothing, so a repeated merge moves no data.
//
// The repair scan runs on every node every repair_interval_ms, and repair_settle_ms after each
// ring change (so a burst of membership changes causes one round of repairs, not one per change).
// For each copy the node stores (live or legacy) it asks the file's current replicas for their
// heads in one batched request per node; extra and legacy copies send their append ids, and each
// replica answers how many of them it lacks. repair_policy.h decides, per copy: nothing, wait,
// drop (removed, safe, superseded), repair (this node coordinates a merge of its replicas) or
// hand over (merge with this copy as a source). No copy outside the replica set is deleted before
// every replica of a full set holds every append of it. Limits against copy storms and busy
// loops: at most repair_parallel reconciles per node, a per-file bounded exponential backoff after
// a repair that failed or changed nothing, and repair fetches paced to repair_rate_bytes per
// second per node (acks are delayed, so senders slow down too).
#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/legacy.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

}  // namespace

Clock::duration HydfsService::RepairDelay(uint64_t bytes) {
  if (options_.repair_rate_bytes == 0) return Clock::duration::zero();
  auto now = Clock::now();
  double rate = static_cast<double>(options_.repair_rate_bytes);
  double elapsed = std::chrono::duration<double>(now - repair_budget_at_).count();
  repair_budget_at_ = now;
  repair_budget_ = std::min(rate / 4, repair_budget_ + elapsed * rate);  // 250 ms burst
  repair_budget_ -= static_cast<double>(bytes);
  if (repair_budget_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(-repair_budget_ / rate));
}

void HydfsService::Reconcile(const std::string& name, bool background, bool include_self_copy,
                             std::function<void(Status, uint64_t, uint32_t)> done, int attempt,
                             std::shared_ptr<const Manifest> legacy_source) {
  auto replicas = ReplicasOf(name);
  if (replicas.empty()) {
    done(Status::Unavailable("no HyDFS node is on the ring"), 0, 0);
    return;
  }
  std::vector<RingNode> nodes = replicas;
  auto self = SelfNode();
  if (include_self_copy) {
    bool in = false;
    for (const auto& r : replicas) in |= r.id.str() == self_id_;
    if (!in && self) nodes.push_back(*self);
  }
  if (legacy_source && !self) {
    done(Status::Unavailable("this node is not on the ring: it cannot serve its legacy copy"), 0,
         0);
    return;
  }
  CollectManifests(
      name, nodes,
      [this, name, background, include_self_copy, done, attempt, replicas, nodes, self,
       legacy_source](std::vector<std::optional<Manifest>> copies,
                      std::vector<bool> answered) mutable {
        if (legacy_source) {  // this node serves it (OnRead falls back to the legacy store)
          copies.push_back(*legacy_source);
          answered.push_back(true);
          nodes.push_back(*self);
        }
        auto plan = PlanMerge(copies);
        if (!plan.ok()) {
          done(plan.status().code() == StatusCode::kNotFound
                   ? Status::NotFound("no such file: " + name)
                   : plan.status(),
               0, 0);
          return;
        }
        struct Acc {
          size_t pending = 0;
          uint64_t moved = 0;
          uint32_t changed = 0;
          size_t unanswered = 0;
          bool retry = false;
          Status first_error;
        };
        auto acc = std::make_shared<Acc>();
        auto shared_plan = std::make_shared<MergePlan>(std::move(plan.value()));
        std::vector<size_t> targets;
        for (size_t i = 0; i < replicas.size(); ++i) {
          if (!answered[i]) {
            ++acc->unanswered;
            continue;
          }
          if (copies[i] && copies[i]->file.gen == shared_plan->file.gen &&
              OrderDigest(copies[i]->file.gen, copies[i]->appends) == shared_plan->digest) {
            continue;  // already holds the merged content
          }
          targets.push_back(i);
        }
        auto finish = [this, name, background, include_self_copy, done, attempt, acc,
                       legacy_source] {
          if (acc->retry && attempt < 3) {
            loop_.AddTimer(std::chrono::milliseconds(300), [=, this] {
              Reconcile(name, background, include_self_copy, done, attempt + 1, legacy_source);
            });
            return;
          }
          Status st = acc->first_error;
          if (st.ok() && acc->unanswered > 0) {
            st = Status::Unavailable(std::to_string(acc->unanswered) +
                                     " replica(s) did not answer; the others are merged");
          }
          done(st, acc->moved, acc->changed);
        };
        if (targets.empty()) {
          finish();
          return;
        }
        acc->pending = targets.size();
        for (size_t i : targets) {
          // What this replica lacks, and who holds it.
          std::set<uint64_t> has;
          if (copies[i] && copies[i]->file.gen == shared_plan->file.gen) {
            for (const auto& a : copies[i]->appends) has.insert(a.id);
          }
          uint64_t missing_bytes = 0;
          std::vector<std::pair<uint64_t, std::vector<std::string>>> sources;
          for (const auto& a : shared_plan->order) {
            if (has.count(a.id)) continue;
            missing_bytes += a.size;
            std::vector<std::string> holders;
            for (size_t h : shared_plan->holders[a.id]) holders.push_back(nodes[h].id.str());
            sources.emplace_back(a.id, std::move(holders));
          }
          auto deadline = std::chrono::milliseconds(10000 + missing_bytes / (20 << 10));
          RingNode target = replicas[i];
          rpc_->Call(
              target.rpc_endpoint(), wire::MsgType::kHydfsApplyOrder,
              [&](wire::Packer& pk) {
                pk.pack_map(5);
                pk.pack("file");
                PackFile(pk, shared_plan->file);
                pk.pack("order");
                pk.pack_array(static_cast<uint32_t>(shared_plan->order.size()));
                for (const auto& a : shared_plan->order) PackAppend(pk, a);
                pk.pack("merged");
                pk.pack_uint64(shared_plan->order.size());
                pk.pack("background");
                pk.pack(background);
                pk.pack("sources");
                pk.pack_array(static_cast<uint32_t>(sources.size()));
                for (const auto& [id, holders] : sources) {
                  pk.pack_array(2);
                  pk.pack_uint64(id);
                  pk.pack(holders);
                }
              },
              deadline,
              [acc, target, finish, missing_bytes, name](Result<wire::Envelope> reply) {
                Status st = reply.ok() ? wire::ReplyPayload(*reply).status() : reply.status();
                if (st.ok()) {
                  ++acc->changed;
                  acc->moved += missing_bytes;
                } else if (st.code() == StatusCode::kFailedPrecondition) {
                  acc->retry = true;  // a concurrent write or merge: try again shortly
                  if (acc->first_error.ok()) acc->first_error = st;
                } else if (acc->first_error.ok()) {
                  acc->first_error = Status(st.code(), target.id.str() + ": " + st.message());
                }
                if (!st.ok()) {
                  Log()->warn("event=merge_replica_failed file={} node={} error=\"{}\"", name,
                              target.id.str(), st.ToString());
                }
                if (--acc->pending == 0) finish();
              });
        }
      });
}

// One copy under scan: a live copy (replica or extra) or a legacy copy, with its replicas'
// heads as they arrive.
struct HydfsService::ScanEntry {
  FileSummary copy;
  CopyKind kind = CopyKind::kReplica;
  std::vector<RingNode> replicas;
  std::vector<uint64_t> ids;  // extra and legacy copies: their append ids, sent with the heads
  CopyFacts facts;
};

void HydfsService::RequestScan() {
  if (scanning_) {
    scan_pending_ = true;  // run again as soon as the current scan has decided
    return;
  }
  loop_.Post([this] { RepairScan(); });
}

void HydfsService::RepairScan() {
  if (stopped_) return;
  if (scanning_) {
    scan_pending_ = true;
    return;
  }
  auto now = Clock::now();
  if (now - ring_changed_at_ < std::chrono::milliseconds(options_.repair_settle_ms)) return;
  scan_pending_ = false;
  auto live = store_->List();
  auto legacy = legacy_->List();
  if ((live.empty() && legacy.empty()) || ring_->size() == 0) return;
  scanning_ = true;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.repair_scans;
  }
  auto entries = std::make_shared<std::vector<ScanEntry>>();
  size_t full = std::min<size_t>(options_.replicas, ring_->size());
  auto add = [&](const FileSummary& f, bool is_legacy) {
    ScanEntry e;
    e.copy = f;
    e.replicas = ReplicasOf(f.name);
    bool in = false;
    for (const auto& r : e.replicas) in |= r.id.str() == self_id_;
    e.kind = is_legacy ? CopyKind::kLegacy : in ? CopyKind::kReplica : CopyKind::kExtra;
    if (e.kind != CopyKind::kReplica) {
      auto m = (is_legacy ? legacy_ : store_)->GetManifest(f.name);
      if (!m.ok()) return;
      e.ids = AppendIds(*m);
    }
    e.facts.kind = e.kind;
    e.facts.gen = f.gen;
    e.facts.digest = f.digest;
    e.facts.full_count = full;
    e.facts.replicas.resize(e.replicas.size());
    for (size_t i = 0; i < e.replicas.size(); ++i) {
      ReplicaHead& h = e.facts.replicas[i];
      if (e.replicas[i].id.str() != self_id_) continue;
      // This node's own slot: its live copy (a legacy copy's replica set may include it).
      h.self = h.answered = true;
      if (e.kind == CopyKind::kLegacy) {
        auto m = store_->GetManifest(f.name);
        std::optional<Manifest> copy;
        if (m.ok()) copy = std::move(m.value());
        h.has_copy = copy.has_value();
        h.gen = copy ? copy->file.gen : 0;
        h.digest = copy ? OrderDigest(copy->file.gen, copy->appends) : 0;
        h.removed = store_->IsRemoved(f.name, f.gen);
        h.ids_checked = true;
        h.lacks = CountLacking(copy, f.gen, e.ids);
      }
    }
    auto lw = last_write_.find(f.name);
    e.facts.recently_written =
        lw != last_write_.end() && now - lw->second < std::chrono::milliseconds(options_.quiet_ms);
    entries->push_back(std::move(e));
  };
  for (const auto& f : live) add(f, false);
  for (const auto& f : legacy) add(f, true);
  // One batched head per node, for every copy whose replica set includes it.
  std::map<std::string, std::pair<RingNode, std::vector<std::pair<size_t, size_t>>>> per_node;
  for (size_t k = 0; k < entries->size(); ++k) {
    const auto& e = (*entries)[k];
    for (size_t i = 0; i < e.replicas.size(); ++i) {
      if (e.replicas[i].id.str() == self_id_) continue;
      auto& slot = per_node[e.replicas[i].id.str()];
      slot.first = e.replicas[i];
      slot.second.emplace_back(k, i);
    }
  }
  auto pending = std::make_shared<size_t>(per_node.size());
  uint64_t fingerprint = ring_->Fingerprint();
  auto decide = [this, entries, fingerprint] {
    scanning_ = false;
    // The ring moved during the scan: the heads describe the old replica sets. The scan that
    // follows the ring change decides instead.
    if (ring_->Fingerprint() == fingerprint) ScanDecide(*entries);
    if (scan_pending_) RequestScan();
  };
  if (per_node.empty()) {
    decide();
    return;
  }
  for (const auto& [id, slot] : per_node) {
    const RingNode& node = slot.first;
    auto items = slot.second;
    rpc_->Call(
        node.rpc_endpoint(), wire::MsgType::kHydfsHead,
        [&](wire::Packer& pk) {
          pk.pack_map(1);
          pk.pack("items");
          pk.pack_array(static_cast<uint32_t>(items.size()));
          for (const auto& [k, i] : items) {
            const ScanEntry& e = (*entries)[k];
            bool ids = e.kind != CopyKind::kReplica;
            pk.pack_array(ids ? 3 : 2);
            pk.pack(e.copy.name);
            pk.pack_uint64(e.copy.gen);
            if (ids) pk.pack(e.ids);
          }
        },
        // A dead node must not hold repairs up.
        std::chrono::milliseconds(options_.rpc_timeout_ms / 2),
        [entries, items, pending, decide](Result<wire::Envelope> reply) {
          Result<msgpack::object> payload =
              reply.ok() ? wire::ReplyPayload(*reply) : Result<msgpack::object>(reply.status());
          if (payload.ok() && payload->type == msgpack::type::ARRAY &&
              payload->via.array.size == items.size()) {
            for (uint32_t n = 0; n < items.size(); ++n) {
              ReplicaHead& h = (*entries)[items[n].first].facts.replicas[items[n].second];
              const msgpack::object& row = payload->via.array.ptr[n];
              h.answered = true;
              if (const auto* r = wire::MapGet(row, "removed")) wire::ReadBool(*r, &h.removed);
              if (const auto* l = wire::MapGet(row, "lacks")) {
                h.ids_checked = wire::ReadUint(*l, &h.lacks);
              }
              const msgpack::object* s = wire::MapGet(row, "summary");
              if (s && s->type != msgpack::type::NIL) {
                auto summary = ReadSummary(*s);
                if (summary.ok()) {
                  h.has_copy = true;
                  h.gen = summary->gen;
                  h.digest = summary->digest;
                }
              }
            }
          }
          if (--*pending == 0) decide();
        });
  }
}

void HydfsService::ScanDecide(std::vector<ScanEntry>& entries) {
  auto now = Clock::now();
  for (const auto& e : entries) {
    if (repairing_.count(e.copy.name)) continue;
    ScanDecision d = DecideCopy(e.facts);
    bool is_legacy = e.kind == CopyKind::kLegacy;
    switch (d.action) {
      case ScanAction::kNone:
      case ScanAction::kWait:
        break;
      case ScanAction::kDropRemoved:
        if (is_legacy) {
          DropLegacyCopy(e.copy, d.reason);
        } else {
          DropLocalCopy(e.copy, /*tombstone=*/true, d.reason);
        }
        break;
      case ScanAction::kDropSafe:
      case ScanAction::kDropSuperseded:
        if (is_legacy) {
          DropLegacyCopy(e.copy, d.reason);
        } else if (e.kind == CopyKind::kExtra) {
          DropLocalCopy(e.copy, /*tombstone=*/false,
                        std::string("rebalanced: this node is no longer a replica; ") + d.reason);
        }
        break;
      case ScanAction::kRepair:
      case ScanAction::kHandOver:
        if (!backoff_.Ready(e.copy.name, now)) break;  // its last repair changed nothing
        if (repairing_.size() >= options_.repair_parallel) {
          scan_pending_ = true;  // more to do: scan again as soon as a repair finishes
          return;
        }
        StartRepair(e, d);
        break;
    }
  }
}

void HydfsService::StartRepair(const ScanEntry& e, const ScanDecision& d) {
  const std::string name = e.copy.name;
  std::shared_ptr<const Manifest> legacy_source;
  if (e.kind == CopyKind::kLegacy) {
    auto m = legacy_->GetManifest(name);
    if (!m.ok()) return;  // dropped meanwhile
    legacy_source = std::make_shared<const Manifest>(std::move(m.value()));
  }
  repairing_.insert(name);
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.repairs_started;
  }
  Log()->info("event=repair_start file={} reason={} replicas={} backoff_ms={}", name, d.reason,
              e.replicas.size(), ToMillis(backoff_.Delay(name)));
  auto start = Clock::now();
  bool is_legacy = e.kind == CopyKind::kLegacy;
  Reconcile(
      name, /*background=*/true, /*include_self_copy=*/e.kind == CopyKind::kExtra,
      [this, name, is_legacy, start](Status st, uint64_t moved, uint32_t changed) {
        repairing_.erase(name);
        bool useful = st.ok() && (moved > 0 || changed > 0);
        backoff_.Record(name, Clock::now(), useful);
        {
          std::lock_guard<std::mutex> lock(stats_mu_);
          stats_.repair_bytes_moved += moved;
          if (st.ok()) ++stats_.repairs_done;
          if (!useful) ++stats_.repairs_empty;
          if (useful && is_legacy) ++stats_.legacy_handed_over;
        }
        Log()->info(
            "event=repair_done file={} moved_bytes={} replicas_changed={} ms={} next_backoff_ms={} "
            "status=\"{}\"",
            name, moved, changed, ToMillis(Clock::now() - start), ToMillis(backoff_.Delay(name)),
            st.ToString());
        // A repair that changed the replicas: the next scan can drop an extra or legacy copy
        // now. One that changed nothing never asks for a scan (no busy loop): its backoff runs.
        if (scan_pending_ || useful) RequestScan();
      },
      0, legacy_source);
}

void HydfsService::DropLocalCopy(const FileSummary& s, bool tombstone, const std::string& why) {
  if (repairing_.count(s.name)) return;
  repairing_.insert(s.name);
  std::string name = s.name;
  uint64_t gen = s.gen;
  Io(
      [this, name, gen, tombstone] {
        // A scan that started before an earlier drop may decide it again: count it once.
        auto held = store_->Summary(name);
        if (!held.ok() || held->gen != gen) return Status::NotFound("already dropped");
        return store_->Remove(name, gen, tombstone);
      },
      [this, name, why](Status st) {
        repairing_.erase(name);
        backoff_.Forget(name);
        if (st.code() == StatusCode::kNotFound) return;  // dropped by an earlier scan
        Log()->info("event=replica_dropped file={} reason=\"{}\" status=\"{}\"", name, why,
                    st.ToString());
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(stats_mu_);
          ++stats_.extras_dropped;
        }
      });
}

void HydfsService::DropLegacyCopy(const FileSummary& s, const std::string& why) {
  if (repairing_.count(s.name)) return;
  repairing_.insert(s.name);
  std::string name = s.name;
  uint64_t gen = s.gen;
  Io(
      [this, name, gen] {
        auto held = legacy_->Summary(name);
        if (!held.ok() || held->gen != gen) return Status::NotFound("already dropped");
        return legacy_->Remove(name, gen, /*tombstone=*/false);
      },
      [this, name, why, size = s.size](Status st) {
        repairing_.erase(name);
        backoff_.Forget(name);
        if (st.code() == StatusCode::kNotFound) return;  // dropped by an earlier scan
        Log()->info("event=legacy_dropped file={} bytes={} reason=\"{}\" status=\"{}\"", name, size,
                    why, st.ToString());
        if (st.ok()) {
          std::lock_guard<std::mutex> lock(stats_mu_);
          ++stats_.legacy_dropped;
        }
      });
}

}  // namespace rs::hydfs
