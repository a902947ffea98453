// The fixture of the Task tests (task_channel_test.cc: channels, dedup, resends, ends;
// task_state_test.cc: checkpoints, operator failures, the sink, exactly-once off).
//
// One Task driven directly, on real ZeroMQ sockets (127.0.0.1), real LMDB (a temp dir) and real
// operator processes (the built-in rainop-identity and rainop-count, found like
// operator_process_test.cc finds them, and a failing python3 operator written inline). HyDFS is
// an in-memory map whose callbacks run on a worker thread. The test plays the upstream tasks
// (PUSH to the task's inbox, one PULL per upstream for its acks) and the downstream task (a PULL
// the task pushes to; acks go back to the frame's ack_to).
//
// Determinism: the test waits on facts (a frame, an ack, a resend, a report state), each with a
// generous deadline, and never asserts on timing. Every message to the task goes through one PUSH
// socket, so the task sees them in the order the test sent them. Exact counters are read after
// Stop(), whose final report is complete.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <msgpack.hpp>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/stream/task.h"
#include "shared/clock.h"
#include "shared/stream/key_groups.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"
#include "shared/wire/message_types.h"
#include "tests/unit/stream/rainop_path.h"
#include "tests/unit/temp_dir.h"

namespace rs::stream::task_test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const char kJob[] = "job-t";
const char kPython[] = "/usr/bin/python3";
// Generous: the machine is shared and has two cores. Only reached when something is wrong.
constexpr auto kWait = 15s;

using test_util::TempDir;

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::string Tail(const std::string& s, size_t n = 3000) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// HyDFS in memory: create fails when the file exists, append when it does not. Every callback
// runs on the worker thread, as the real client's do.
class FakeHydfs {
 public:
  FakeHydfs() : worker_([this] { Run(); }) {}
  ~FakeHydfs() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Get(const std::string& name, std::function<void(Result<std::string>)> cb) {
    Post([this, name, cb] {
      std::optional<std::string> data = File(name);
      if (data) {
        cb(std::move(*data));
      } else {
        cb(Status::NotFound(name));
      }
    });
  }
  void Create(const std::string& name, std::string data, std::function<void(Status)> cb) {
    Post([this, name, data = std::move(data), cb] {
      Status s;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (files_.count(name)) {
          s = Status::AlreadyExists(name);
        } else {
          files_[name] = data;
          ++creates_;
        }
      }
      cb(s);
    });
  }
  void Append(const std::string& name, std::string data, std::function<void(Status)> cb) {
    Post([this, name, data = std::move(data), cb] {
      Status s;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = files_.find(name);
        append_calls_[name].push_back(data);
        if (fail_appends_ > 0) {
          --fail_appends_;
          s = Status::Unavailable("injected: only 1 replicas committed the write");
        } else if (it == files_.end()) {
          s = Status::NotFound(name);
        } else {
          it->second += data;
          ++appends_;
        }
      }
      cb(s);
    });
  }

  std::optional<std::string> File(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(name);
    if (it == files_.end()) return std::nullopt;
    return it->second;
  }
  size_t FileCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return files_.size();
  }
  uint64_t creates() {
    std::lock_guard<std::mutex> lock(mu_);
    return creates_;
  }
  uint64_t appends() {
    std::lock_guard<std::mutex> lock(mu_);
    return appends_;
  }
  // The next `n` appends fail (nothing is written).
  void FailAppends(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_appends_ = n;
  }
  // Every append to `name` asked for, failed ones included, in order.
  std::vector<std::string> AppendCalls(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return append_calls_[name];
  }

 private:
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_all();
  }
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, everything answered
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::vector<std::string>> append_calls_;
  int fail_appends_ = 0;
  uint64_t creates_ = 0, appends_ = 0;
  std::thread worker_;  // last: starts once the rest exists
};

inline zmq::socket_t MustSocket(zmq::socket_type type) {
  transport::SocketOptions o;
  o.send_hwm = 100000;
  o.recv_hwm = 100000;
  o.max_message_bytes = 64 << 20;
  auto s = transport::MakeSocket(type, o);
  REQUIRE(s.ok());
  return std::move(*s);
}

inline std::string BindLocal(zmq::socket_t& s) {
  auto port = transport::Bind(s, "127.0.0.1", 0);
  REQUIRE(port.ok());
  return "tcp://127.0.0.1:" + std::to_string(*port);
}

// The output id of the single output of input `id` (identity, count): id + big-endian 0.
inline std::string Derived(const std::string& id) { return id + std::string(4, '\0'); }

struct InTuple {
  uint64_t origin = 0;
  std::string id, key, value;
  // Its key group; unset: the first group the task under test owns.
  std::optional<uint32_t> group = std::nullopt;
};

// Tuple n of a stream: origin `origin`, id SourceId(0, n), a key and value naming both.
inline InTuple T(uint64_t origin, uint64_t n) {
  return {origin, SourceId(0, n), "o" + std::to_string(origin) + ":" + std::to_string(n),
          "value " + std::to_string(origin) + "/" + std::to_string(n)};
}
inline std::vector<InTuple> Range(uint64_t origin, uint64_t first, uint64_t last) {
  std::vector<InTuple> v;
  for (uint64_t n = first; n <= last; ++n) v.push_back(T(origin, n));
  return v;
}

struct OutTuple {
  uint64_t origin = 0;
  std::string id, key, value;
  bool operator==(const OutTuple& o) const {
    return origin == o.origin && id == o.id && key == o.key && value == o.value;
  }
};

// What identity makes of an input tuple at stage 2 (origin unchanged).
inline OutTuple Passed(const InTuple& t, uint64_t origin) {
  return {origin, Derived(t.id), t.key, t.value};
}

struct OutFrame {
  uint64_t seq = 0;
  bool end = false;
  std::vector<OutTuple> tuples;
  std::string bytes;
  int copies = 1;  // how often it arrived (resends)
};

inline TaskConfig MiddleConfig(const std::string& downstream) {
  TaskConfig c;
  c.job = kJob;
  c.stage = 2;
  c.stages = 3;
  c.task = 0;
  c.tasks = 1;
  c.exactly_once = true;
  c.incarnation = 7;
  c.upstreams = 2;
  c.downstream = {downstream};
  c.window = 4;
  c.resend_ms = 200;
  c.checkpoint_ms = 50;
  return c;
}

// One task under test, its fake HyDFS, the upstream and downstream sockets the test plays.
class Harness {
 public:
  Harness() {
    ::signal(SIGPIPE, SIG_IGN);  // as raind does
    down_ = MustSocket(zmq::socket_type::pull);
    down_endpoint_ = BindLocal(down_);
    for (int i = 0; i < 2; ++i) {
      up_acks_.push_back(MustSocket(zmq::socket_type::pull));
      up_endpoints_.push_back(BindLocal(up_acks_.back()));
    }
    up_incarnation_ = {1, 1};
    up_acks_seen_.resize(2);
  }
  ~Harness() {
    if (task_) task_->Stop();
  }

  const std::string& down_endpoint() const { return down_endpoint_; }
  TaskConfig Config() const { return MiddleConfig(down_endpoint_); }

  // Creates, prepares and starts the task.
  void Start(TaskConfig c, std::vector<std::string> argv = {}) {
    if (argv.empty()) argv = {RainopPath("identity")};
    if (c.argv.empty()) c.argv = argv;
    cfg_ = c;
    TaskEnv env;
    env.node_id = "test";
    env.host = "127.0.0.1";
    env.dir = dir_.path() + "/job";
    env.hydfs_get = [this](const std::string& n, std::function<void(Result<std::string>)> cb) {
      hydfs_.Get(n, std::move(cb));
    };
    env.hydfs_create = [this](const std::string& n, std::string d, std::function<void(Status)> cb) {
      hydfs_.Create(n, std::move(d), std::move(cb));
    };
    env.hydfs_append = [this](const std::string& n, std::string d, std::function<void(Status)> cb) {
      hydfs_.Append(n, std::move(d), std::move(cb));
    };
    env.report = [this](const TaskReport& r) {
      std::lock_guard<std::mutex> lock(reports_mu_);
      reports_.push_back(r);
    };
    task_ = std::make_unique<Task>(c, env);
    Status s = task_->Prepare(argv);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(task_->endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
    push_ = MustSocket(zmq::socket_type::push);
    REQUIRE(transport::Connect(push_, task_->endpoint()).ok());
    task_->Start();
  }

  Task& task() { return *task_; }
  FakeHydfs& hydfs() { return hydfs_; }
  const TaskConfig& cfg() const { return cfg_; }
  std::string dir() const { return dir_.path() + "/job"; }
  std::string LogTail() { return task_ ? Tail(ReadFile(task_->log_path())) : ""; }

  // ---- playing the upstream tasks ----
  std::string DataFrame(uint32_t from_task, uint64_t seq, const std::vector<InTuple>& tuples,
                        bool end = false, std::optional<uint64_t> incarnation = std::nullopt,
                        std::string job = kJob, int from_stage = -1) {
    DataHeader h;
    h.job = std::move(job);
    h.from_stage = from_stage >= 0 ? static_cast<uint32_t>(from_stage) : cfg_.stage - 1;
    h.from_task = from_task;
    // Task indexes past the test's two upstreams (junk) borrow the last one's ack socket.
    uint32_t i = std::min<uint32_t>(from_task, 1);
    h.incarnation = incarnation ? *incarnation : up_incarnation_[i];
    h.ack_to = up_endpoints_[i];
    DataFrameBuilder b;
    b.Begin(h);
    uint32_t own = 0;  // into a keyed stage: a group the task owns
    if (cfg_.stage >= 2 && !cfg_.is_sink()) {
      own = KeyGroupMap::Even(cfg_.key_groups, cfg_.tasks).GroupsOf(cfg_.task).front();
    }
    for (const auto& t : tuples) b.Add(t.origin, t.group.value_or(own), t.id, t.key, t.value);
    return b.Finish(seq, 1, end);
  }
  void Send(uint32_t from_task, uint64_t seq, const std::vector<InTuple>& tuples,
            bool end = false) {
    SendRaw(DataFrame(from_task, seq, tuples, end));
  }
  void SendRaw(const std::string& bytes) { REQUIRE(transport::TrySend(push_, bytes)); }
  void SendMultipart(const std::string& a, const std::string& b) {
    zmq::message_t parts[2] = {zmq::message_t(a.data(), a.size()),
                               zmq::message_t(b.data(), b.size())};
    REQUIRE(transport::TrySend(push_, parts, 2));
  }
  // Upstream `i` is now run `incarnation` (its frames number from 1 again).
  void SetIncarnation(uint32_t i, uint64_t incarnation) { up_incarnation_[i] = incarnation; }

  // Acks the task sent to upstream `i` (all of them, in order).
  const std::vector<AckFrame>& AcksTo(uint32_t i) const { return up_acks_seen_[i]; }
  uint64_t AckedTo(uint32_t i) const {
    const auto& v = up_acks_seen_[i];
    if (v.empty() || v.back().incarnation != up_incarnation_[i]) return 0;
    return v.back().seq;
  }
  void WaitAck(uint32_t i, uint64_t seq) {
    Pump([&] { return AckedTo(i) >= seq; },
         "ack " + std::to_string(seq) + " to upstream " + std::to_string(i));
  }

  // ---- playing the downstream task ----
  void set_auto_ack(bool on) { auto_ack_ = on; }
  void Ack(uint64_t seq, uint64_t incarnation = 0, std::string job = kJob, int stage = -1,
           uint32_t task = 0) {
    AckFrame a;
    a.job = std::move(job);
    a.stage = stage >= 0 ? static_cast<uint32_t>(stage) : cfg_.stage + 1;
    a.task = task;
    a.incarnation = incarnation ? incarnation : cfg_.incarnation;
    a.seq = seq;
    a.durable = seq;  // as the sink does (a real task says so after its checkpoint)
    SendRaw(EncodeAck(a));
  }
  // As a real task acks before its checkpoint covers the frames: processed, durable below.
  void AckProcessed(uint64_t seq, uint64_t durable) {
    AckFrame a;
    a.job = kJob;
    a.stage = cfg_.stage + 1;
    a.incarnation = cfg_.incarnation;
    a.seq = seq;
    a.durable = durable;
    SendRaw(EncodeAck(a));
  }
  const std::map<uint64_t, OutFrame>& frames() const { return frames_; }
  uint64_t high() const { return high_; }
  // Every distinct output tuple, in seq order.
  std::vector<OutTuple> Outputs() const {
    std::vector<OutTuple> v;
    for (const auto& [seq, f] : frames_) v.insert(v.end(), f.tuples.begin(), f.tuples.end());
    return v;
  }
  void WaitOutputs(size_t n) {
    Pump([&] { return Outputs().size() >= n; }, std::to_string(n) + " output tuples");
  }
  void WaitFrame(uint64_t seq) {
    Pump([&] { return high_ >= seq; }, "output frame " + std::to_string(seq));
  }
  // Waits until frame `seq` arrived `copies` times (resent copies - 1 times).
  void WaitCopies(uint64_t seq, int copies) {
    Pump(
        [&] {
          auto it = frames_.find(seq);
          return it != frames_.end() && it->second.copies >= copies;
        },
        std::to_string(copies) + " copies of output frame " + std::to_string(seq));
  }

  // Receives from every socket the test owns until `done` holds (REQUIRE'd, within kWait).
  void Pump(const std::function<bool()>& done, const std::string& what) {
    TimePoint deadline = Clock::now() + kWait;
    while (!done()) {
      if (Clock::now() > deadline) {
        TaskReport r = task_->Report();
        FAIL("timed out waiting for " << what << "; task state " << TaskStateName(r.state)
                                      << " reason '" << r.reason << "'; task log:\n"
                                      << LogTail());
      }
      PollOnce(50ms);
    }
  }
  // Receives whatever arrives within `d` (for checks that something does not happen).
  void Idle(std::chrono::milliseconds d) {
    TimePoint until = Clock::now() + d;
    while (Clock::now() < until) PollOnce(20ms);
  }

  TaskReport WaitState(TaskState s) {
    Pump([&] { return task_->Report().state == s; }, std::string("state ") + TaskStateName(s));
    return task_->Report();
  }
  // Stops the task; its final report has every counter.
  TaskReport StopAndReport() {
    task_->Stop();
    return task_->Report();
  }
  std::vector<TaskReport> Reports() {
    std::lock_guard<std::mutex> lock(reports_mu_);
    return reports_;
  }

 private:
  void PollOnce(std::chrono::milliseconds timeout) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({static_cast<void*>(down_), 0, ZMQ_POLLIN, 0});
    for (auto& s : up_acks_) items.push_back({static_cast<void*>(s), 0, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items.data(), items.size(), timeout);
    } catch (const zmq::error_t&) {
      return;  // EINTR
    }
    std::vector<zmq::message_t> parts;
    while (transport::TryRecv(down_, &parts)) {
      REQUIRE(parts.size() == 1);
      OnDown(parts[0].to_string());
    }
    for (uint32_t i = 0; i < up_acks_.size(); ++i) {
      while (transport::TryRecv(up_acks_[i], &parts)) {
        REQUIRE(parts.size() == 1);
        OnUpAck(i, parts[0].to_string());
      }
    }
  }

  void OnDown(std::string bytes) {
    auto f = ParseTaskFrame(bytes);
    INFO(f.status().ToString());
    REQUIRE(f.ok());
    REQUIRE(f->type == static_cast<uint16_t>(wire::MsgType::kTaskData));
    const DataHeader& h = f->data;
    CHECK(h.job == kJob);
    CHECK(h.from_stage == cfg_.stage);
    CHECK(h.from_task == cfg_.task);
    CHECK(h.incarnation == cfg_.incarnation);
    CHECK(h.ack_to == task_->endpoint());
    if (h.seq <= high_) {
      // A resend: the same frame, byte for byte.
      auto it = frames_.find(h.seq);
      REQUIRE(it != frames_.end());
      CHECK(it->second.bytes == bytes);
      ++it->second.copies;
      return;
    }
    // New frames come in seq order (one PUSH connection is FIFO).
    REQUIRE(h.seq == high_ + 1);
    high_ = h.seq;
    OutFrame of;
    of.seq = h.seq;
    of.end = h.end;
    of.bytes = bytes;
    for (const auto& t : f->tuples) {
      of.tuples.push_back({t.origin, std::string(t.id), std::string(t.key), std::string(t.value)});
    }
    frames_[h.seq] = std::move(of);
    if (auto_ack_) Ack(h.seq);
  }

  void OnUpAck(uint32_t i, std::string bytes) {
    auto f = ParseTaskFrame(bytes);
    INFO(f.status().ToString());
    REQUIRE(f.ok());
    REQUIRE(f->type == static_cast<uint16_t>(wire::MsgType::kTaskAck));
    const AckFrame& a = f->ack;
    CHECK(a.job == kJob);
    CHECK(a.stage == cfg_.stage);
    CHECK(a.task == cfg_.task);
    auto& seen = up_acks_seen_[i];
    // Cumulative: within one run of the sender, acks never go back.
    if (!seen.empty() && seen.back().incarnation == a.incarnation) CHECK(a.seq >= seen.back().seq);
    seen.push_back(a);
  }

  TempDir dir_;
  FakeHydfs hydfs_;
  TaskConfig cfg_;
  zmq::socket_t down_;
  std::string down_endpoint_;
  std::vector<zmq::socket_t> up_acks_;
  std::vector<std::string> up_endpoints_;
  std::vector<uint64_t> up_incarnation_;
  std::vector<std::vector<AckFrame>> up_acks_seen_;
  zmq::socket_t push_;
  std::map<uint64_t, OutFrame> frames_;
  uint64_t high_ = 0;
  bool auto_ack_ = true;
  std::mutex reports_mu_;
  std::vector<TaskReport> reports_;
  std::unique_ptr<Task> task_;  // last: stopped first
};

inline std::vector<OutTuple> PassedAll(const std::vector<InTuple>& in) {
  std::vector<OutTuple> v;
  for (const auto& t : in) v.push_back(Passed(t, t.origin));
  return v;
}

inline std::vector<OutTuple> Concat(std::vector<std::vector<OutTuple>> parts) {
  std::vector<OutTuple> v;
  for (auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

inline bool ProcessGone(int64_t pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

inline std::string Describe(const std::vector<OutTuple>& v) {
  std::string s;
  for (const auto& t : v) s += "[" + std::to_string(t.origin) + " " + t.key + "] ";
  return s;
}

}  // namespace rs::stream::task_test
