// Merge and repair.
//
// Reconcile(name): collect the manifests of the file's replicas (plus, for an extra copy this
// node holds outside the replica set, its own), compute the merged order (merge.h), and send it
// to every replica whose copy differs: each fetches the appends it lacks from the holders and
// adopts the order atomically (Store::SetOrder never drops an append). Replicas already equal to
// the merge get nothing, so a repeated merge moves no data.
//
// The repair scan runs on every node every repair_interval_ms, and repair_settle_ms after each
// ring change (so a burst of membership changes causes one round of repairs, not one per change).
// For each file the node stores it asks the file's replicas for their digests, then:
//   - a replica reports the generation removed: drop the local copy (rm reached it late);
//   - this node is not a replica (the ring moved): if every replica holds exactly its copy, drop
//     it (rebalancing); otherwise reconcile with the local copy as a source first;
//   - this node is a replica and some replica differs (missing, behind, other order): the first
//     replica in ring order that holds a copy reconciles (re-replication and anti-entropy merge),
//     once the file has been quiet for quiet_ms.
// Replicas that do not answer are waited for: membership removes dead ones from the ring within
// seconds, and the next scan repairs onto the new successor. Limits against copy storms: at most
// repair_parallel reconciles per node, a per-file backoff after a failure, and repair fetches
// paced to repair_rate_bytes per second per node (acks are delayed, so senders slow down too).
#include "daemon/hydfs/codec.h"
#include "daemon/hydfs/hydfs_service.h"
#include "daemon/hydfs/ops.h"
#include "shared/logging.h"
#include "shared/wire/fields.h"

namespace rs::hydfs {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("hydfs"); }

constexpr auto kRepairBackoff = std::chrono::seconds(3);

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
                             std::function<void(Status, uint64_t, uint32_t)> done, int attempt) {
  auto replicas = ReplicasOf(name);
  if (replicas.empty()) {
    done(Status::Unavailable("no HyDFS node is on the ring"), 0, 0);
    return;
  }
  std::vector<RingNode> nodes = replicas;
  if (include_self_copy) {
    bool in = false;
    for (const auto& r : replicas) in |= r.id.str() == self_id_;
    auto self = SelfNode();
    if (!in && self) nodes.push_back(*self);
  }
  CollectManifests(
      name, nodes,
      [this, name, background, include_self_copy, done, attempt, replicas, nodes](
          std::vector<std::optional<Manifest>> copies, std::vector<bool> answered) {
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
        auto finish = [this, name, background, include_self_copy, done, attempt, acc] {
          if (acc->retry && attempt < 3) {
            loop_.AddTimer(std::chrono::milliseconds(300), [=, this] {
              Reconcile(name, background, include_self_copy, done, attempt + 1);
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
  auto local = store_->List();
  if (local.empty() || ring_->size() == 0) return;
  scanning_ = true;
  // One batched head per node, for every file both it and this node should know about.
  std::map<std::string, std::pair<RingNode, std::vector<FileSummary>>> per_node;
  for (const auto& f : local) {
    for (const auto& r : ReplicasOf(f.name)) {
      if (r.id.str() == self_id_) continue;
      auto& entry = per_node[r.id.str()];
      entry.first = r;
      entry.second.push_back(f);
    }
  }
  struct Acc {
    size_t pending = 0;
    std::map<std::string, std::vector<std::optional<FileSummary>>> heads;  // by file, per node
    std::map<std::string, std::vector<bool>> removed, answered;
    std::map<std::string, std::map<std::string, size_t>> slot;  // file -> node -> index
  };
  auto acc = std::make_shared<Acc>();
  for (const auto& f : local) {
    auto replicas = ReplicasOf(f.name);
    acc->heads[f.name].resize(replicas.size());
    acc->removed[f.name].resize(replicas.size(), false);
    acc->answered[f.name].resize(replicas.size(), false);
    for (size_t i = 0; i < replicas.size(); ++i) acc->slot[f.name][replicas[i].id.str()] = i;
  }
  acc->pending = per_node.size();
  auto decide = [this, local, acc] {
    scanning_ = false;
    ScanDecide(local, acc->heads, acc->removed, acc->answered);
    if (scan_pending_) RequestScan();
  };
  if (per_node.empty()) {
    decide();
    return;
  }
  for (const auto& [id, entry] : per_node) {
    const RingNode& node = entry.first;
    std::vector<FileSummary> files = entry.second;
    rpc_->Call(
        node.rpc_endpoint(), wire::MsgType::kHydfsHead,
        [&](wire::Packer& pk) {
          pk.pack_map(1);
          pk.pack("items");
          pk.pack_array(static_cast<uint32_t>(files.size()));
          for (const auto& f : files) {
            pk.pack_array(2);
            pk.pack(f.name);
            pk.pack_uint64(f.gen);
          }
        },
        std::chrono::milliseconds(options_.rpc_timeout_ms /
                                  2),  // a dead node must not hold repairs up
        [acc, files, node, decide](Result<wire::Envelope> reply) {
          Result<msgpack::object> payload =
              reply.ok() ? wire::ReplyPayload(*reply) : Result<msgpack::object>(reply.status());
          if (payload.ok() && payload->type == msgpack::type::ARRAY &&
              payload->via.array.size == files.size()) {
            for (uint32_t k = 0; k < files.size(); ++k) {
              const std::string& name = files[k].name;
              auto slot = acc->slot[name].find(node.id.str());
              if (slot == acc->slot[name].end()) continue;
              size_t i = slot->second;
              const msgpack::object& row = payload->via.array.ptr[k];
              acc->answered[name][i] = true;
              if (const auto* r = wire::MapGet(row, "removed")) {
                bool removed = false;
                wire::ReadBool(*r, &removed);
                acc->removed[name][i] = removed;
              }
              const msgpack::object* s = wire::MapGet(row, "summary");
              if (s && s->type != msgpack::type::NIL) {
                auto summary = ReadSummary(*s);
                if (summary.ok()) acc->heads[name][i] = *summary;
              }
            }
          }
          if (--acc->pending == 0) decide();
        });
  }
}

void HydfsService::ScanDecide(
    const std::vector<FileSummary>& local,
    const std::map<std::string, std::vector<std::optional<FileSummary>>>& heads,
    const std::map<std::string, std::vector<bool>>& removed,
    const std::map<std::string, std::vector<bool>>& answered) {
  auto now = Clock::now();
  for (const auto& f : local) {
    if (repairing_.count(f.name)) continue;
    auto backoff = repair_backoff_.find(f.name);
    if (backoff != repair_backoff_.end() && backoff->second > now) continue;
    auto replicas = ReplicasOf(f.name);
    const auto& h = heads.at(f.name);
    const auto& rm = removed.at(f.name);
    const auto& ans = answered.at(f.name);
    if (h.size() != replicas.size()) continue;  // the ring moved during the scan: next time
    int self_rank = -1;
    bool any_removed = false, all_answered = true, equal = true;
    for (size_t i = 0; i < replicas.size(); ++i) {
      if (replicas[i].id.str() == self_id_) {
        self_rank = static_cast<int>(i);
        continue;
      }
      any_removed |= rm[i];
      all_answered &= ans[i];
      equal &= h[i].has_value() && h[i]->gen == f.gen && h[i]->digest == f.digest;
    }
    if (any_removed) {
      DropLocalCopy(f, /*tombstone=*/true, "the file was removed");
      continue;
    }
    if (!all_answered) continue;  // wait until membership settles who is alive
    if (self_rank < 0 && equal) {
      DropLocalCopy(f, /*tombstone=*/false, "rebalanced: this node is no longer a replica");
      continue;
    }
    if (equal) continue;
    if (self_rank >= 0) {
      auto lw = last_write_.find(f.name);
      if (lw != last_write_.end() &&
          now - lw->second < std::chrono::milliseconds(options_.quiet_ms)) {
        continue;  // still being written: merge once quiet
      }
      bool earlier_holder = false;
      for (int i = 0; i < self_rank; ++i) {
        earlier_holder |= h[i].has_value() && h[i]->gen == f.gen;
      }
      if (earlier_holder) continue;  // that replica coordinates the repair
    }
    if (repairing_.size() >= options_.repair_parallel) {
      scan_pending_ = true;  // more to do: scan again as soon as a repair finishes
      break;
    }
    repairing_.insert(f.name);
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.repairs_started;
    }
    bool extra = self_rank < 0;
    Log()->info("event=repair_start file={} reason={} replicas={}", f.name,
                extra ? "copy_outside_replica_set" : "replicas_differ", replicas.size());
    auto start = Clock::now();
    FileSummary summary = f;
    Reconcile(f.name, /*background=*/true, /*include_self_copy=*/extra,
              [this, summary, extra, start](Status st, uint64_t moved, uint32_t changed) {
                repairing_.erase(summary.name);
                if (scan_pending_ || extra) RequestScan();
                Log()->info(
                    "event=repair_done file={} moved_bytes={} replicas_changed={} ms={} "
                    "status=\"{}\"",
                    summary.name, moved, changed, ToMillis(Clock::now() - start), st.ToString());
                if (!st.ok()) {
                  repair_backoff_[summary.name] = Clock::now() + kRepairBackoff;
                  return;
                }
                repair_backoff_.erase(summary.name);
                {
                  std::lock_guard<std::mutex> lock(stats_mu_);
                  ++stats_.repairs_done;
                }
                // The replicas now hold everything this copy had: the scan requested above
                // drops the extra copy once it sees them equal.
              });
  }
}

void HydfsService::DropLocalCopy(const FileSummary& s, bool tombstone, const std::string& why) {
  if (repairing_.count(s.name)) return;
  repairing_.insert(s.name);
  std::string name = s.name;
  uint64_t gen = s.gen;
  Io([this, name, gen, tombstone] { return store_->Remove(name, gen, tombstone); },
     [this, name, why](Status st) {
       repairing_.erase(name);
       Log()->info("event=replica_dropped file={} reason=\"{}\" status=\"{}\"", name, why,
                   st.ToString());
       if (st.ok()) {
         std::lock_guard<std::mutex> lock(stats_mu_);
         ++stats_.extras_dropped;
       }
     });
}

}  // namespace rs::hydfs
