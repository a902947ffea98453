#include "daemon/stream/worker.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>

#include "daemon/stream/operator_resolver.h"
#include "shared/logging.h"
#include "shared/transport/rpc.h"
#include "shared/wire/envelope.h"
#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

std::shared_ptr<spdlog::logger> Log() { return Logger("stream"); }

bool Final(TaskState s) {
  return s == TaskState::kDone || s == TaskState::kFailed || s == TaskState::kStopped;
}

}  // namespace

void ListHydfs(hydfs::HydfsService* h, const std::string& prefix,
               std::function<void(Result<std::vector<std::string>>)> done) {
  h->ListAll(prefix, [done](Result<hydfs::Listing> r) {
    if (!r.ok()) {
      done(r.status());
      return;
    }
    std::vector<std::string> names;
    for (const auto& f : r->files) names.push_back(f.name);  // sorted by name
    done(std::move(names));
  });
}

Worker::Worker(WorkerOptions options, hydfs::HydfsService* hydfs,
               std::function<std::string()> node_id,
               std::function<void(std::vector<TaskReport>)> deliver_local)
    : options_(std::move(options)),
      hydfs_(hydfs),
      node_id_(std::move(node_id)),
      deliver_local_(std::move(deliver_local)) {
  reporter_ = std::thread([this] { ReporterLoop(); });
}

Worker::~Worker() { Stop(); }

void Worker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (reporter_.joinable()) reporter_.join();
  std::map<std::string, Hosted> tasks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks.swap(tasks_);
  }
  for (auto& [k, h] : tasks) h.task->Stop();
}

TaskEnv Worker::MakeEnv(const TaskConfig& config) {
  TaskEnv env;
  env.node_id = node_id_();
  env.host = options_.host;
  env.dir = options_.dir + "/" + config.job;
  env.sandbox = options_.sandbox;
  hydfs::HydfsService* h = hydfs_;
  env.hydfs_get = [h](const std::string& name, std::function<void(Result<std::string>)> done) {
    h->Get(name, std::move(done));
  };
  env.hydfs_get_source = [h](const SourceFile& f, std::function<void(Result<std::string>)> done) {
    h->GetSnapshot(f.name, hydfs::FileSnapshot{f.gen, f.appends, f.size, f.digest},
                   std::move(done));
  };
  env.hydfs_create = [h](const std::string& name, std::string data,
                         std::function<void(Status)> done) {
    h->Create(name, std::move(data), std::move(done), /*quiet=*/true);
  };
  env.hydfs_append = [h](const std::string& name, std::string data,
                         std::function<void(Status)> done) {
    h->Append(name, std::move(data), std::move(done), /*quiet=*/true);
  };
  env.hydfs_list = [h](const std::string& prefix,
                       std::function<void(Result<std::vector<std::string>>)> done) {
    ListHydfs(h, prefix, std::move(done));
  };
  env.hydfs_remove = [h](const std::string& name, std::function<void(Status)> done) {
    h->Remove(name, [done](Result<uint64_t> r) { done(r.status()); });
  };
  std::string leader = config.leader;
  env.report = [this, leader](const TaskReport& r) { OnReport(r, leader); };
  return env;
}

Result<std::vector<std::string>> Worker::ResolveArgv(const TaskConfig& config,
                                                     const std::string& dir) {
  std::vector<std::string> argv = config.argv;
  if (argv.empty()) return Status::InvalidArgument("no operator");
  const std::string& name = argv[0];
  if (name.rfind(kHydfsOperatorPrefix, 0) == 0) {
    std::string file = name.substr(std::string(kHydfsOperatorPrefix).size());
    std::promise<Result<std::string>> got;
    auto fut = got.get_future();
    hydfs_->Get(file, [&got](Result<std::string> r) { got.set_value(std::move(r)); });
    if (fut.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      return Status::Timeout("fetching operator " + name + " from HyDFS");
    }
    Result<std::string> r = fut.get();
    if (!r.ok()) return Status(r.status().code(), "operator " + name + ": " + r.status().message());
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string path = dir + "/op-" + std::to_string(config.stage) + "-" +
                       std::to_string(config.task) + "-" +
                       std::filesystem::path(file).filename().string();
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(r->data(), static_cast<std::streamsize>(r->size()));
      if (!f) return Status::IOError("writing " + path);
    }
    ::chmod(path.c_str(), 0755);
    argv[0] = path;
    return argv;
  }
  auto path = ResolveOperator(name, options_.sandbox.dirs);
  if (!path.ok()) return path.status();
  argv[0] = *path;
  return argv;
}

Result<std::shared_ptr<Task>> Worker::StartLocal(TaskConfig config,
                                                 const std::vector<std::string>& argv) {
  std::string key = config.name();
  std::string leader = config.leader;
  auto task = std::make_shared<Task>(config, MakeEnv(config));
  Status s = task->Prepare(argv);
  if (!s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return Status::Unavailable("the worker is stopping");
    auto old = tasks_.find(key);
    if (old != tasks_.end()) {
      return Status::AlreadyExists("task " + key + " already runs on this node");
    }
    tasks_[key] = Hosted{task, leader, {}, false, false};
  }
  task->Start();
  return task;
}

void Worker::StartTask(TaskConfig config, std::function<void(Result<StartTaskReply>)> done) {
  pool_.Submit([this, config = std::move(config), done] {
    auto argv = ResolveArgv(config, options_.dir + "/" + config.job);
    if (!argv.ok()) {
      done(argv.status());
      return;
    }
    auto task = StartLocal(config, *argv);
    if (!task.ok()) {
      Log()->warn("event=task_start_failed task={} error=\"{}\"", config.name(),
                  task.status().message());
      done(task.status());
      return;
    }
    std::shared_ptr<Task> t = *task;
    StartTaskReply r;
    r.endpoint = t->endpoint();
    r.log = t->log_path();
    r.pid = t->pid();
    r.stateful = t->stateful();
    r.input_partition_column = t->input_partition_column();
    done(std::move(r));
  });
}

std::vector<TaskReport> Worker::StopJob(const std::string& job, bool remove) {
  std::vector<std::shared_ptr<Task>> stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (it->second.task->config().job == job) {
        stopping.push_back(it->second.task);
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& t : stopping) t->Stop();
  // The dedup logs of an ended job are dead weight; the rest goes too unless the job is kept.
  // The sink's spool stays for job.output (the leader removes it).
  std::error_code ec;
  uint64_t removed = 0;
  for (const auto& e : std::filesystem::directory_iterator(options_.dir + "/" + job, ec)) {
    bool spool = e.path().filename() == "output.spool";
    if ((remove && !spool) || e.path().extension() == ".mdb") {
      removed += std::filesystem::remove_all(e.path(), ec);
    }
  }
  if (remove) std::filesystem::remove(options_.dir + "/" + job, ec);  // only when empty
  if (removed > 0) Log()->info("event=job_files_removed job={} entries={}", job, removed);
  if (!stopping.empty()) {
    Log()->info("event=job_tasks_stopped job={} tasks={}", job, stopping.size());
  }
  std::vector<TaskReport> finals;
  for (auto& t : stopping) finals.push_back(t->Report());
  return finals;
}

Result<TaskReport> Worker::StopTask(const std::string& job, uint32_t stage, uint32_t task) {
  std::shared_ptr<Task> t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(job + "/" + std::to_string(stage) + "." + std::to_string(task));
    if (it == tasks_.end()) return Status::NotFound("no such task here");
    t = it->second.task;
    tasks_.erase(it);
  }
  t->Stop();
  return t->Report();
}

size_t Worker::Rewire(const std::string& job, uint32_t stage, uint32_t index,
                      const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& [k, h] : tasks_) {
    const TaskConfig& c = h.task->config();
    if (c.job == job && c.stage + 1 == stage) {
      h.task->Rewire(index, endpoint);
      ++n;
    }
  }
  return n;
}

size_t Worker::Regroup(const std::string& job, const RegroupOrder& order, bool stage_only) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& [k, h] : tasks_) {
    const TaskConfig& c = h.task->config();
    bool near = stage_only ? c.stage == order.stage
                           : c.stage + 1 >= order.stage && c.stage <= order.stage + 1;
    if (c.job == job && near) {
      h.task->Regroup(order);
      ++n;
    }
  }
  return n;
}

Result<std::string> Worker::KillTask(int64_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, h] : tasks_) {
    if (h.task->pid() != pid || h.task->config().is_sink()) continue;
    TaskState st = h.task->Report().state;
    if (st != TaskState::kRunning && st != TaskState::kStarting) {
      return Status::FailedPrecondition("task " + k + " is " + TaskStateName(st));
    }
    if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0) {
      return Status::IOError("kill " + std::to_string(pid) + ": " + std::strerror(errno));
    }
    Log()->warn("event=task_killed task={} pid={} by=kill_task", k, pid);
    return k;
  }
  return Status::NotFound("no task of this node has operator pid " + std::to_string(pid));
}

std::vector<TaskReport> Worker::Reports() const {
  std::vector<TaskReport> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, h] : tasks_) out.push_back(h.task->Report());
  return out;
}

void Worker::OnReport(const TaskReport& r, const std::string& leader) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tasks_.find(r.job + "/" + std::to_string(r.stage) + "." + std::to_string(r.task));
  if (it == tasks_.end()) return;
  bool changed = it->second.last.state != r.state || it->second.last.input_ended != r.input_ended ||
                 (it->second.last.backpressure >= kBackpressured) !=
                     (r.backpressure >= kBackpressured);
  it->second.last = r;
  it->second.dirty = true;
  (void)leader;
  if (changed) {
    urgent_ = true;
    cv_.notify_all();
  }
}

void Worker::ReporterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_ || urgent_; });
    if (stop_) break;
    urgent_ = false;
    std::map<std::string, std::vector<TaskReport>> by_leader;
    std::map<std::string, std::vector<std::string>> keys;
    for (auto& [k, h] : tasks_) {
      if (!h.dirty) continue;
      h.dirty = false;
      by_leader[h.leader].push_back(h.last);
      keys[h.leader].push_back(k);
      if (Final(h.last.state)) h.final_sent = true;
    }
    lock.unlock();
    std::vector<std::string> undelivered;
    for (auto& [leader, reports] : by_leader) {
      if (leader == options_.self_endpoint) {
        if (deliver_local_) deliver_local_(reports);
        continue;
      }
      Status reply = CallReport(leader, ReportMessage{reports}, std::chrono::seconds(2));
      if (!reply.ok()) {
        Log()->warn("event=report_failed leader={} error=\"{}\"", leader, reply.message());
        for (const auto& k : keys[leader]) undelivered.push_back(k);
      }
    }
    lock.lock();
    for (const auto& k : undelivered) {
      auto it = tasks_.find(k);
      if (it != tasks_.end()) it->second.dirty = true;  // sent again next round
    }
  }
}

}  // namespace rs::stream
