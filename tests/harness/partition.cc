#include "tests/harness/partition.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <sstream>

#include "tests/harness/checks.h"
#include "tests/harness/eventually.h"
#include "tests/harness/hydfs.h"

namespace rs::harness {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Pacing of a client: after an acknowledged append, after a failed one (a cut-off node may
// refuse at once; this keeps such a client from spinning).
constexpr auto kPauseAfterAck = 20ms;
constexpr auto kPauseAfterFailure = 200ms;
constexpr auto kMergeDeadline = 15s;
// The heal should give one membership within this (the benchmark's target); a slower heal gets
// a note saying what was still missing then.
constexpr auto kConvergeTarget = 5s;
constexpr size_t kListedViolations = 8;

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// A scratch path for reading `file` (names with slashes flattened; the dir made).
std::string ReadPath(const std::string& dir, const std::string& file, const std::string& what) {
  std::string flat = file;
  std::replace(flat.begin(), flat.end(), '/', '_');
  std::error_code ec;
  fs::create_directories(dir + "/reads", ec);
  return dir + "/reads/" + flat + "." + what;
}

// "2026-12-02T20:32:14.916", UTC, as the nodes' log lines stamp time.
std::string WallText(uint64_t wall_ms) {
  std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(wall_ms % 1000));
  return buf;
}

double SecondsSince(TimePoint t) { return ToMillis(Clock::now() - t) / 1000.0; }

std::string SetToString(const std::set<std::string>& s) {
  std::string out = "{";
  out += Join(std::vector<std::string>(s.begin(), s.end()), ", ");
  out += "}";
  return out;
}

std::string Fixed(double v) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << v;
  return s.str();
}

}  // namespace

// ---------------------------------------------------------------- AppendWorkload

AppendWorkload::AppendWorkload(std::string scratch_dir, std::vector<std::string> via,
                               std::vector<std::string> files)
    : dir_(std::move(scratch_dir)), via_(std::move(via)), files_(std::move(files)) {}

AppendWorkload::~AppendWorkload() { Stop(); }

void AppendWorkload::Start() {
  if (running() || files_.empty()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  stop_ = false;
  started_ = Clock::now();
  for (uint32_t k = 0; k < via_.size(); ++k) threads_.emplace_back([this, k] { Run(k); });
}

void AppendWorkload::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void AppendWorkload::Run(uint32_t client) {
  for (uint64_t seq = 1; !stop_; ++seq) {
    AppendAttempt a;
    a.client = client;
    a.seq = seq;
    a.file = files_[(seq - 1) % files_.size()];
    std::string local = dir_ + "/c" + std::to_string(client) + "-" + std::to_string(seq);
    if (!WriteLocal(local, RecordLine(client, seq)).ok()) {
      a.outcome = AppendOutcome::kFailed;
      a.error = "harness: cannot write " + local;
    } else {
      TimePoint start = Clock::now();
      a.start_ms = ToMillis(start - started_);
      CommandResult r = RunCtl({"--node", via_[client], "--timeout",
                                std::to_string(kAppendRequestTimeoutMs), "append", local, a.file},
                               kAppendDeadline);
      a.took_ms = ToMillis(Clock::now() - start);
      a.exit_code = r.code();
      a.outcome = r.timed_out     ? AppendOutcome::kHung
                  : r.code() == 0 ? AppendOutcome::kAcked
                                  : AppendOutcome::kFailed;
      if (a.outcome != AppendOutcome::kAcked) a.error = FirstLine(r.err);
      std::error_code ec;
      fs::remove(local, ec);
    }
    bool acked = a.outcome == AppendOutcome::kAcked;
    {
      std::lock_guard lock(mu_);
      history_.push_back(std::move(a));
    }
    if (!stop_) std::this_thread::sleep_for(acked ? kPauseAfterAck : kPauseAfterFailure);
  }
}

std::vector<AppendAttempt> AppendWorkload::History() const {
  std::lock_guard lock(mu_);
  return history_;
}

size_t AppendWorkload::Count(AppendOutcome outcome) const {
  std::lock_guard lock(mu_);
  return std::count_if(history_.begin(), history_.end(),
                       [&](const AppendAttempt& a) { return a.outcome == outcome; });
}

// ---------------------------------------------------------------- PartitionReport

std::string PartitionReport::ToString() const {
  std::ostringstream s;
  s << "fault: " << fault;
  if (healed_ms > 0) s << " (healed at +" << healed_ms << " ms on the workload's clock)";
  if (healed_wall_ms > 0) s << " (healed at " << WallText(healed_wall_ms) << ")";
  s << "\n"
    << "appends: " << acked << " acknowledged, " << failed << " failed, " << hung << " hung; "
    << "lost " << lost << ", duplicated " << duplicated << ", reordered " << reordered
    << ", garbage " << garbage << ", unacknowledged present " << unacked_present << "\n"
    << "members falsely expelled: " << false_expelled << "; heal -> one membership: "
    << (converge_s < 0 ? std::string("not reached") : Fixed(converge_s) + " s")
    << "; heal -> full replication: "
    << (replicate_s < 0 ? std::string("not reached") : Fixed(replicate_s) + " s")
    << " (appends stopped " << Fixed(stopped_s) << " s after the heal)\n";
  for (const auto& v : violations) s << "VIOLATION " << v << "\n";
  for (const auto& n : notes) s << "note: " << n << "\n";
  return s.str();
}

// ---------------------------------------------------------------- PartitionHarness

Result<std::unique_ptr<PartitionHarness>> PartitionHarness::Create(PartitionOptions options) {
  std::unique_ptr<PartitionHarness> h(new PartitionHarness());
  h->options_ = options;
  auto net = Network::Create(options.hosts);
  if (!net.ok()) return net.status();
  h->net_ = std::move(*net);
  h->cluster_ = std::make_unique<Cluster>(options.hosts, HydfsArgs(options.extra_args));
  h->cluster_->set_placement(h->net_->Placement());
  RS_RETURN_IF_ERROR(StartHydfs(*h->cluster_));
  Cluster& c = *h->cluster_;
  for (size_t i = 0; i < options.files; ++i) {
    std::string name = "part/f" + std::to_string(i);
    std::string local = c.dir() + "/files/" + name;
    RS_RETURN_IF_ERROR(WriteLocal(local, HeaderLine(name)));
    auto created = HydfsCreate(c.node(i % c.size()), local, name);
    if (!created.ok()) return created.status();
    h->files_.push_back(name);
  }
  std::vector<std::string> via;
  for (size_t i = 0; i < c.size(); ++i) {
    h->ids_before_.push_back(c.node(i).Id());
    via.push_back(c.node(i).ControlAddress());
  }
  h->workload_ = std::make_unique<AppendWorkload>(c.dir() + "/appends", via, h->files_);
  return h;
}

PartitionHarness::~PartitionHarness() {
  workload_.reset();  // its rainctl runs end first
  cluster_.reset();   // then every raind, so the namespaces hold no process
  net_.reset();
}

RaindProcess& PartitionHarness::Reader(const std::set<size_t>& cut) {
  for (size_t i = 0; i < cluster_->size(); ++i) {
    if (!cut.count(i) && cluster_->node(i).Running()) return cluster_->node(i);
  }
  return cluster_->node(0);
}

bool PartitionHarness::OneMembership(std::string* why) {
  std::vector<RaindProcess*> nodes = cluster_->Running();
  // Every node at once, so one look is one moment (a rainctl run in a namespace takes ~100 ms).
  std::vector<std::future<Result<MemberList>>> asked;
  for (RaindProcess* n : nodes) {
    asked.push_back(std::async(std::launch::async, ListMem, n->ControlAddress()));
  }
  std::set<std::string> selves;
  std::vector<std::pair<RaindProcess*, MemberList>> lists;
  for (size_t i = 0; i < nodes.size(); ++i) {
    RaindProcess* n = nodes[i];
    auto list = asked[i].get();
    if (!list.ok()) return (*why = n->name() + ": " + list.status().ToString()), false;
    if (!list->in_cluster) return (*why = n->name() + " is in no cluster"), false;
    selves.insert(list->self);
    lists.emplace_back(n, *list);
  }
  for (const auto& [n, list] : lists) {
    std::set<std::string> alive;
    for (const auto& [id, m] : list.members) {
      if (m.state == "alive") alive.insert(id);
    }
    if (alive != selves) {
      *why = n->name() + " lists alive " + SetToString(alive) + " but the running nodes are " +
             SetToString(selves) + " " + list.ToString();
      return false;
    }
  }
  why->clear();
  return true;
}

bool PartitionHarness::FullyReplicated(const std::vector<AppendAttempt>& history,
                                       std::string* why) {
  RaindProcess& via = Reader({});
  // What one file lacks ("" when it is on every replica with every acknowledged record). The
  // files are looked at all at once, so one look is close to one moment.
  auto lacks = [&](const std::string& file) -> std::string {
    auto ls = HydfsLs(via, file);
    if (!ls.ok()) return file + ": " + ls.status().ToString();
    const auto& replicas = (*ls)["replicas"].items();
    if (replicas.size() != kHydfsReplicas) {
      return file + " has " + std::to_string(replicas.size()) + " replicas";
    }
    for (const Json& r : replicas) {
      if (!r["answered"].Bool() || !r["has_copy"].Bool()) {
        return file + ": replica " + r["node"].Str() + " answered=" + r["answered"].Str() +
               " has_copy=" + r["has_copy"].Str();
      }
      std::string local = ReadPath(cluster_->dir(), file, "poll");
      auto got = HydfsGetFromReplica(r["node"].Str(), file, local);
      if (!got.ok()) return file + ": " + got.status().ToString();
      size_t missing = MissingAcked(file, got->data, history);
      if (missing > 0) {
        return file + ": replica " + r["node"].Str() + " lacks " + std::to_string(missing) +
               " acknowledged records";
      }
    }
    return "";
  };
  std::vector<std::future<std::string>> looks;
  for (const auto& file : files_) looks.push_back(std::async(std::launch::async, lacks, file));
  why->clear();
  for (auto& look : looks) {
    std::string lack = look.get();
    if (!lack.empty() && why->empty()) *why = lack;
  }
  return why->empty();
}

PartitionReport PartitionHarness::AfterHeal(const std::set<size_t>& cut, TimePoint healed_at,
                                            std::string fault) {
  PartitionReport r;
  r.fault = std::move(fault);
  r.healed_ms = workload_->MsSinceStart(healed_at);
  r.healed_wall_ms = WallMillis() - static_cast<uint64_t>(ToMillis(Clock::now() - healed_at));
  // In two steps, so a slow heal leaves evidence of what it waited for at the target.
  auto converged =
      Eventually([&](std::string* why) { return OneMembership(why); },
                 std::min<Clock::duration>(kConvergeTarget, options_.converge_deadline), 100ms);
  if (!converged.ok) {
    r.notes.push_back("not one membership " + std::to_string(ToMillis(kConvergeTarget) / 1000) +
                      " s after the heal: " + converged.last);
    converged = Eventually([&](std::string* why) { return OneMembership(why); },
                           options_.converge_deadline - kConvergeTarget, 100ms);
  }
  if (converged.ok) {
    r.converge_s = SecondsSince(healed_at);
  } else {
    r.violations.push_back("no single membership " +
                           std::to_string(ToMillis(options_.converge_deadline) / 1000) +
                           " s after the heal: " + converged.last);
  }
  workload_->Stop();
  r.stopped_s = SecondsSince(healed_at);
  std::vector<AppendAttempt> history = workload_->History();
  std::vector<std::string> hung;
  for (const auto& a : history) {
    if (a.outcome == AppendOutcome::kAcked) ++r.acked;
    if (a.outcome == AppendOutcome::kFailed) ++r.failed;
    if (a.outcome == AppendOutcome::kHung) {
      ++r.hung;
      if (hung.size() < kListedViolations) {
        hung.push_back("client-" + std::to_string(a.client) + " seq-" + std::to_string(a.seq) +
                       " started at " + std::to_string(a.start_ms) + " ms");
      }
    }
  }
  if (r.hung > 0) {
    r.violations.push_back(std::to_string(r.hung) + " appends gave no answer within " +
                           std::to_string(ToMillis(kAppendDeadline) / 1000) +
                           " s (killed): " + Join(hung, "; "));
  }
  std::map<std::string, size_t> errors;  // the distinct failure messages, counted
  for (const auto& a : history) {
    if (a.outcome == AppendOutcome::kFailed) ++errors[a.error.substr(0, 120)];
  }
  for (const auto& [e, n] : errors) {
    r.notes.push_back(std::to_string(n) + " failed appends: " + (e.empty() ? "(no message)" : e));
    if (e.empty()) r.violations.push_back(std::to_string(n) + " appends failed without a message");
  }

  auto replicated = Eventually([&](std::string* why) { return FullyReplicated(history, why); },
                               options_.replicate_deadline, 250ms);
  if (replicated.ok) {
    r.replicate_s = SecondsSince(healed_at);
  } else {
    r.violations.push_back("not fully replicated " +
                           std::to_string(ToMillis(options_.replicate_deadline) / 1000) +
                           " s after the heal: " + replicated.last);
  }
  CheckFiles(cut, history, &r);
  CheckMembership(cut, &r);
  return r;
}

void PartitionHarness::CheckFiles(const std::set<size_t>& cut,
                                  const std::vector<AppendAttempt>& history, PartitionReport* r) {
  RaindProcess& via = Reader(cut);
  for (const auto& file : files_) {
    std::string merge_error;
    auto merged = Eventually(
        [&](std::string* why) {
          CommandResult m =
              RunCtl({"--node", via.ControlAddress(), "--timeout", "10000", "merge", file},
                     kTransferTimeout);
          *why = m.code() == 0 ? ""
                               : "merge exit " + std::to_string(m.code()) + ": " + FirstLine(m.err);
          return m.code() == 0;
        },
        kMergeDeadline, 500ms);
    if (!merged.ok) r->violations.push_back(file + ": merge never succeeded: " + merged.last);

    // A file no copy of which can be read has lost every acknowledged record, as clients see.
    auto unreadable = [&](const std::string& why) {
      size_t acked = CheckFileContent(file, "", history).acked;
      r->lost += acked;
      r->violations.push_back(file + ": unreadable after the merge (" + why + "): its " +
                              std::to_string(acked) + " acknowledged records count as lost");
    };
    auto ls = HydfsLs(via, file);
    if (!ls.ok()) {
      unreadable("ls: " + ls.status().ToString());
      continue;
    }
    // The merged view (get) and every replica's own copy.
    std::vector<std::pair<std::string, std::string>> copies;  // (who, content)
    auto got = HydfsGet(via, file, ReadPath(cluster_->dir(), file, "get"));
    if (got.ok()) {
      copies.emplace_back("get via " + via.name(), got->data);
    } else {
      r->violations.push_back(file + ": get failed: " + got.status().ToString());
    }
    for (const std::string& replica : ReplicaIds(*ls)) {
      auto copy = HydfsGetFromReplica(replica, file, ReadPath(cluster_->dir(), file, "replica"));
      if (!copy.ok()) {
        r->violations.push_back(file + ": replica " + replica +
                                " unreadable: " + copy.status().ToString());
        continue;
      }
      copies.emplace_back("replica " + replica, copy->data);
    }
    if (ReplicaIds(*ls).size() != kHydfsReplicas) {
      r->violations.push_back(file + " has " + std::to_string(ReplicaIds(*ls).size()) +
                              " replicas after the merge");
    }
    if (copies.empty()) {
      unreadable("no copy could be read");
      continue;
    }
    // Count the violations of the worst copy; list each distinct copy's problems.
    FileVerdict worst;
    std::set<std::string> listed;
    for (const auto& [who, content] : copies) {
      FileVerdict v = CheckFileContent(file, content, history);
      if (v.problems.size() >= worst.problems.size()) worst = v;
      if (content != copies.front().second) {
        r->violations.push_back(file + ": " + who + " (" + std::to_string(content.size()) +
                                " bytes) differs from " + copies.front().first + " (" +
                                std::to_string(copies.front().second.size()) +
                                " bytes) after the merge");
      }
      if (!listed.insert(content).second) continue;
      for (const auto& p : v.problems) r->violations.push_back(who + ": " + p);
    }
    r->lost += worst.lost;
    r->duplicated += worst.duplicated;
    r->reordered += worst.reordered;
    r->garbage += worst.garbage;
    r->unacked_present += worst.unacked_present;
  }
}

void PartitionHarness::CheckMembership(const std::set<size_t>& cut, PartitionReport* r) {
  std::string why;
  if (!OneMembership(&why)) r->violations.push_back("membership is not one cluster: " + why);
  std::vector<RaindProcess*> majority, minority;
  std::vector<std::string> majority_ids;
  for (size_t i = 0; i < cluster_->size(); ++i) {
    RaindProcess& n = cluster_->node(i);
    if (!n.Running()) {
      r->violations.push_back(n.name() + " (" + ids_before_[i] + ") is no longer running");
      continue;
    }
    std::string self = SelfId(n);
    if (cut.count(i)) {
      minority.push_back(&n);
      if (self != ids_before_[i]) {
        r->notes.push_back(n.name() + " (cut off) rejoined as " + self + " (was " + ids_before_[i] +
                           ")");
      }
      continue;
    }
    majority.push_back(&n);
    majority_ids.push_back(ids_before_[i]);
    if (self != ids_before_[i]) {
      ++r->false_expelled;
      r->violations.push_back(n.name() + " on the majority side now runs as " +
                              (self.empty() ? "?" : self) + " (was " + ids_before_[i] +
                              "): it was expelled and rejoined");
    }
  }
  // Fail or expelled events about majority members, as the majority saw them: none allowed.
  std::set<std::string> blamed;
  for (const auto& e : EventsAbout(majority, majority_ids, {"fail", "expelled"})) {
    r->violations.push_back("majority history: " + e);
    for (const auto& id : majority_ids) {
      if (e.find(" " + id + " ") != std::string::npos) blamed.insert(id);
    }
  }
  // Members blamed in events but still under their id count once.
  for (size_t i = 0; i < cluster_->size(); ++i) {
    if (!cut.count(i) && blamed.count(ids_before_[i]) &&
        SelfId(cluster_->node(i)) == ids_before_[i]) {
      ++r->false_expelled;
    }
  }
  // What the cut-off side believed about the majority while cut off: worth knowing only.
  for (const auto& e : EventsAbout(minority, majority_ids, {"fail", "expelled"})) {
    r->notes.push_back("cut-off history: " + e);
  }
}

void HoldFor(Clock::duration d) { std::this_thread::sleep_for(d); }

}  // namespace rs::harness
