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
#include "daemon/stream/task.h"

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

#include "shared/clock.h"
#include "shared/stream/key_groups.h"
#include "shared/stream/task_frame.h"
#include "shared/transport/sockets.h"
#include "shared/wire/message_types.h"
#include "tests/unit/temp_dir.h"

namespace rs::stream {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const char kJob[] = "job-t";
const char kPython[] = "/usr/bin/python3";
// Generous: the machine is shared and has two cores. Only reached when something is wrong.
constexpr auto kWait = 15s;

std::string RainopPath(const std::string& name) {
  fs::path dir;
  if (const char* env = std::getenv("RAINOP_DIR")) {
    dir = env;
  } else {
    dir = fs::read_symlink("/proc/self/exe").parent_path().parent_path().parent_path() /
          "operators" / "builtin";
  }
  fs::path p = dir / ("rainop-" + name);
  INFO("looking for " << p.string());
  REQUIRE(fs::exists(p));
  return p.string();
}

using test_util::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n = 3000) {
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

zmq::socket_t MustSocket(zmq::socket_type type) {
  transport::SocketOptions o;
  o.send_hwm = 100000;
  o.recv_hwm = 100000;
  o.max_message_bytes = 64 << 20;
  auto s = transport::MakeSocket(type, o);
  REQUIRE(s.ok());
  return std::move(*s);
}

std::string BindLocal(zmq::socket_t& s) {
  auto port = transport::Bind(s, "127.0.0.1", 0);
  REQUIRE(port.ok());
  return "tcp://127.0.0.1:" + std::to_string(*port);
}

// The output id of the single output of input `id` (identity, count): id + big-endian 0.
std::string Derived(const std::string& id) { return id + std::string(4, '\0'); }

struct InTuple {
  uint64_t origin = 0;
  std::string id, key, value;
  // Its key group; unset: the first group the task under test owns.
  std::optional<uint32_t> group = std::nullopt;
};

// Tuple n of a stream: origin `origin`, id SourceId(0, n), a key and value naming both.
InTuple T(uint64_t origin, uint64_t n) {
  return {origin, SourceId(0, n), "o" + std::to_string(origin) + ":" + std::to_string(n),
          "value " + std::to_string(origin) + "/" + std::to_string(n)};
}
std::vector<InTuple> Range(uint64_t origin, uint64_t first, uint64_t last) {
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
OutTuple Passed(const InTuple& t, uint64_t origin) {
  return {origin, Derived(t.id), t.key, t.value};
}

struct OutFrame {
  uint64_t seq = 0;
  bool end = false;
  std::vector<OutTuple> tuples;
  std::string bytes;
  int copies = 1;  // how often it arrived (resends)
};

TaskConfig MiddleConfig(const std::string& downstream) {
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

std::vector<OutTuple> PassedAll(const std::vector<InTuple>& in) {
  std::vector<OutTuple> v;
  for (const auto& t : in) v.push_back(Passed(t, t.origin));
  return v;
}

std::vector<OutTuple> Concat(std::vector<std::vector<OutTuple>> parts) {
  std::vector<OutTuple> v;
  for (auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

bool ProcessGone(int64_t pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

std::string Describe(const std::vector<OutTuple>& v) {
  std::string s;
  for (const auto& t : v) s += "[" + std::to_string(t.origin) + " " + t.key + "] ";
  return s;
}

}  // namespace

TEST_CASE("a middle-stage task passes tuples through with derived ids and origins kept",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  CHECK_FALSE(h.task().stateful());
  CHECK_FALSE(h.task().input_partition_column().has_value());

  std::vector<InTuple> a = Range(0, 1, 3);
  a.push_back(T(5, 1));  // another origin, its own stream
  std::vector<InTuple> b = Range(1, 1, 2);
  h.Send(0, 1, a);
  h.Send(1, 1, b);
  h.WaitOutputs(6);
  h.WaitAck(0, 1);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == Concat({PassedAll(a), PassedAll(b)}));
  for (const auto& t : out) CHECK(t.id.size() == 16);  // 12-byte source id + 4-byte index
  CHECK(h.AcksTo(0).back().incarnation == 1);

  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 6);
  CHECK(r.tuples_out == 6);
  CHECK(r.duplicates == 0);
  CHECK(r.job == kJob);
  CHECK(r.stage == 2);
  CHECK(r.node == "test");
  CHECK(r.op.find("identity") != std::string::npos);
  CHECK(fs::exists(h.dir() + "/task-2-0.mdb"));
  CHECK(fs::exists(h.dir() + "/task-2-0.log"));
  h.Pump([&] { return ProcessGone(r.pid); }, "the operator process to be gone");
}

TEST_CASE("from stage 3 on, a task's output origin names the upstream task it came through",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.stage = 3;
  c.stages = 3;  // downstream is the sink (stage 4)
  c.task = 1;
  c.tasks = 2;
  h.Start(c);
  // Origins are stage-1 task indexes (< tasks); out = origin * tasks + upstream task.
  std::vector<InTuple> from0 = {T(0, 1), T(1, 1)};
  std::vector<InTuple> from1 = {T(0, 1), T(1, 1), T(1, 2)};
  h.Send(0, 1, from0);
  h.Send(1, 1, from1);
  h.WaitOutputs(5);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == std::vector<OutTuple>{Passed(from0[0], 0), Passed(from0[1], 2), Passed(from1[0], 1),
                                     Passed(from1[1], 3), Passed(from1[2], 3)});
  h.WaitAck(0, 1);
  h.WaitAck(1, 1);
  // The downstream (the sink, stage 4) acknowledged with stage 4: no resends needed, and the
  // task stays healthy.
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.stage == 3);
  CHECK(r.task == 1);
  CHECK(r.tuples_out == 5);
}

TEST_CASE("tuples at or below their (channel, origin) watermark are discarded and counted",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 5));
  h.Send(0, 2, Range(0, 3, 8));  // 3, 4, 5 were delivered by frame 1
  h.WaitOutputs(8);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 8)));
  h.WaitAck(0, 2);

  // The same ids on the other channel are another stream.
  h.Send(1, 1, Range(0, 1, 5));
  h.WaitOutputs(13);
  // On one channel, each origin is a stream of its own: origin 1 below origin 0's mark passes;
  // a mixed frame keeps the new ones of each origin.
  std::vector<InTuple> mixed = {T(1, 1), T(0, 8), T(1, 2), T(0, 9), T(1, 2), T(0, 2)};
  h.Send(0, 3, mixed);
  h.WaitOutputs(16);
  h.WaitAck(0, 3);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == Concat({PassedAll(Range(0, 1, 8)), PassedAll(Range(0, 1, 5)),
                       PassedAll({T(1, 1), T(1, 2), T(0, 9)})}));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3 + 3);  // 3, 4, 5 of frame 2; 8, the second 1:2 and 0:2 of frame 3
  CHECK(r.tuples_in == 8 + 5 + 3);
  CHECK(r.tuples_out == 16);
}

TEST_CASE("a frame holding a tuple of a key group the task does not own is refused whole",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.tasks = 2;  // task 0 owns groups 0-63 of 128
  c.key_groups = 128;
  h.Start(c);
  std::vector<InTuple> bad = {T(0, 1), T(0, 2)};
  bad[1].group = 64;  // task 1's
  h.Send(0, 1, bad);
  // Refused before the channel took it: not processed, not acknowledged. The sender's resend
  // with the right groups is then the frame 1 it expects.
  std::vector<InTuple> good = {T(0, 1), T(0, 2)};
  good[1].group = 63;
  h.Send(0, 1, good);
  h.WaitOutputs(2);
  CHECK(h.Outputs() == PassedAll(good));
  h.WaitAck(0, 1);
  CHECK(h.LogTail().find("key group 64") != std::string::npos);
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 2);
}

TEST_CASE("a resent input frame is discarded as a whole and acknowledged again", "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  std::string frame1 = h.DataFrame(0, 1, Range(0, 1, 3));
  h.SendRaw(frame1);
  h.WaitOutputs(3);
  h.WaitAck(0, 1);
  size_t acks = h.AcksTo(0).size();
  h.SendRaw(frame1);
  h.Pump([&] { return h.AcksTo(0).size() > acks; }, "the ack of a resent frame");
  CHECK(h.AcksTo(0).back().seq == 1);
  // The next frame's outputs come right after frame 1's: the resend produced none.
  h.Send(0, 2, Range(0, 4, 4));
  h.WaitOutputs(4);
  h.WaitAck(0, 2);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 4)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3);
  CHECK(r.tuples_in == 4);
  CHECK(r.tuples_out == 4);
}

TEST_CASE("a frame after a gap is dropped unacknowledged until the gap is filled",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitAck(0, 1);
  std::string frame3 = h.DataFrame(0, 3, Range(0, 5, 6));
  h.SendRaw(frame3);             // seq 2 is missing: dropped
  h.Send(0, 2, Range(0, 3, 4));  // fills the gap
  h.WaitAck(0, 2);
  // The ack after 1 is 2, not 3: frame 3 was not taken.
  REQUIRE(h.AcksTo(0).size() >= 2);
  CHECK(h.AcksTo(0)[1].seq == 2);
  h.WaitOutputs(4);
  h.SendRaw(frame3);  // the resend of 3 is taken now
  h.WaitAck(0, 3);
  h.WaitOutputs(6);
  // Acks are cumulative: two frames sent back to back are covered by an ack of the later one.
  h.Send(0, 4, Range(0, 7, 8));
  h.Send(0, 5, Range(0, 9, 10));
  h.WaitAck(0, 5);
  h.WaitOutputs(10);
  for (const auto& a : h.AcksTo(0)) CHECK(a.seq <= 5);
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == PassedAll(Range(0, 1, 10)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 0);
  CHECK(r.tuples_out == 10);
}

TEST_CASE("a new incarnation of an upstream starts at seq 1 and is still deduplicated by id",
          "[stream][task]") {
  Harness h;
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 5));
  h.WaitAck(0, 1);
  h.WaitOutputs(5);

  h.SetIncarnation(0, 2);
  h.Send(0, 1, Range(0, 3, 8));  // the new run resends what it cannot know was delivered
  h.WaitAck(0, 1);               // an ack of run 2 (AckedTo looks at the current run)
  CHECK(h.AcksTo(0).back().incarnation == 2);
  h.WaitOutputs(8);

  // A late frame of the old run is ignored: no ack, no output.
  h.SendRaw(h.DataFrame(0, 2, Range(0, 100, 100), false, /*incarnation=*/1));
  h.Send(0, 2, Range(0, 9, 9));
  h.WaitAck(0, 2);
  h.WaitOutputs(9);
  for (const auto& a : h.AcksTo(0)) CHECK((a.incarnation == 2 || a.seq == 1));
  auto out = h.Outputs();
  INFO(Describe(out));
  CHECK(out == PassedAll(Range(0, 1, 9)));
  TaskReport r = h.StopAndReport();
  CHECK(r.duplicates == 3);
  CHECK(r.tuples_out == 9);
}

TEST_CASE("frames of an upstream's earlier run still queued never advance its new run's acks",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());  // window 4
  // Fill the window so that later inputs wait in the task's queue.
  for (uint64_t s = 1; s <= 4; ++s) {
    h.Send(0, s, {T(0, s)});
    h.WaitFrame(s);
  }
  h.WaitAck(0, 4);
  h.Send(0, 5, {T(0, 5)});
  h.Send(0, 6, {T(0, 6)}, /*end=*/true);
  // The upstream restarts: run 2 sends its frame 1, queued behind the old run's 5 and 6.
  h.SetIncarnation(0, 2);
  h.Send(0, 1, {T(0, 7)});
  h.Ack(4);
  h.WaitOutputs(7);
  h.WaitAck(0, 1);
  for (const auto& a : h.AcksTo(0)) {
    INFO("ack of run " << a.incarnation << " seq " << a.seq);
    CHECK((a.incarnation == 1 ? a.seq <= 6 : a.seq <= 1));
  }
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 7)));
  // The old run's end does not end the new run: upstream 1 ending is not enough to finish.
  h.Send(1, 1, {}, /*end=*/true);
  h.WaitAck(1, 1);
  h.Ack(h.high());
  h.Send(0, 2, {T(0, 8)});
  h.WaitAck(0, 2);
  h.WaitOutputs(8);
  h.WaitCopies(h.high(), 2);  // time enough for a wrong end frame to follow
  for (const auto& [seq, f] : h.frames()) CHECK_FALSE(f.end);
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_out == 8);
}

TEST_CASE("unacknowledged output frames are resent as they were; the window bounds them",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());  // window 4, resend_ms 200

  // Frame 1 unacknowledged: resent, byte for byte (the harness compares every copy).
  h.Send(0, 1, {T(0, 1)});
  h.WaitFrame(1);
  h.WaitCopies(1, 2);
  h.Ack(1);
  // The ack reaches the task before the next input (one FIFO connection), so from frame 2's
  // arrival on, frame 1 is never sent again; frame 2 is, until acknowledged.
  h.Send(0, 2, {T(0, 2)});
  h.WaitFrame(2);
  int copies1 = h.frames().at(1).copies;
  h.WaitCopies(2, 3);
  CHECK(h.frames().at(1).copies == copies1);
  h.Ack(2);

  // Fill the window: 4 frames of one tuple each, none acknowledged.
  for (uint64_t s = 3; s <= 6; ++s) {
    h.Send(0, s, {T(0, s)});
    h.WaitFrame(s);
  }
  h.WaitAck(0, 6);
  // A fifth input is accepted into the queue but not processed: no frame 7, no ack of input 7,
  // for as long as it takes every unacknowledged frame to be resent twice.
  h.Send(0, 7, {T(0, 7)});
  for (uint64_t s = 3; s <= 6; ++s) h.WaitCopies(s, 3);
  CHECK(h.high() == 6);
  CHECK(h.AckedTo(0) == 6);
  // One ack opens the window by one frame.
  h.Ack(3);
  h.WaitFrame(7);
  h.WaitAck(0, 7);
  CHECK(h.frames().at(7).tuples == std::vector<OutTuple>{Passed(T(0, 7), 0)});
  h.Ack(7);
  auto out = h.Outputs();
  CHECK(out == PassedAll(Range(0, 1, 7)));
  TaskReport r = h.StopAndReport();
  CHECK(r.resent_frames >= 1 + 2 + 4 * 2);
  CHECK(r.state == TaskState::kStopped);  // not failed: the stall timeout is far away
}

TEST_CASE("a task ends its output once every upstream ended and everything is acknowledged",
          "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());
  h.Send(0, 1, Range(0, 1, 3));
  h.Send(0, 2, Range(0, 4, 4), /*end=*/true);
  h.WaitAck(0, 2);
  h.WaitOutputs(4);
  // One upstream still runs: no end frame (checked on every frame that arrives).
  for (const auto& [seq, f] : h.frames()) CHECK_FALSE(f.end);
  h.Ack(h.high());
  h.Send(1, 1, {}, /*end=*/true);  // an empty end frame
  h.WaitAck(1, 1);
  h.Pump([&] { return h.high() > 0 && h.frames().at(h.high()).end; }, "the end frame");
  const OutFrame& end = h.frames().at(h.high());
  CHECK(end.tuples.empty());
  // Until the end frame is acknowledged, the task is not done: it resends it.
  h.WaitCopies(end.seq, 2);
  CHECK(h.task().Report().state == TaskState::kRunning);
  h.Ack(end.seq);
  TaskReport r = h.WaitState(TaskState::kDone);
  CHECK(r.reason.empty());
  CHECK(r.tuples_in == 4);
  CHECK(r.tuples_out == 4);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 4)));
  CHECK(h.AckedTo(0) == 2);
  CHECK(h.AckedTo(1) == 1);
  // The operator finished and is gone.
  h.Pump([&] { return ProcessGone(r.pid); }, "the operator process to be gone");
  auto reports = h.Reports();
  REQUIRE_FALSE(reports.empty());
  CHECK(reports.back().state == TaskState::kDone);
  CHECK(ReadFile(h.task().log_path()).find("event=task_done") != std::string::npos);
}

TEST_CASE("junk on a task's inbox is ignored and the task keeps working", "[stream][task]") {
  Harness h;
  h.set_auto_ack(false);
  h.Start(h.Config());
  std::mt19937 rng(5);
  for (int i = 0; i < 20; ++i) {
    std::string junk(1 + rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    h.SendRaw(junk);
  }
  h.SendRaw("");
  h.SendMultipart(h.DataFrame(0, 1, Range(0, 50, 50)), "second part");
  h.SendRaw(h.DataFrame(0, 1, Range(0, 60, 60), false, std::nullopt, "another-job"));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 70, 70), false, std::nullopt, kJob, /*from_stage=*/2));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 80, 80), false, std::nullopt, kJob, /*from_stage=*/0));
  h.SendRaw(h.DataFrame(0, 1, Range(0, 90, 90), false, /*incarnation=*/0));
  h.SendRaw(h.DataFrame(/*from_task=*/1, 1, Range(0, 95, 95)).substr(0, 20));  // truncated
  // A task index past the upstream stage's tasks (2 here).
  h.SendRaw(h.DataFrame(/*from_task=*/2, 1, Range(0, 96, 96), /*end=*/true));
  // Acks for frames that do not exist, from tasks that are not downstream.
  h.Ack(1, 0, kJob, /*stage=*/3, /*task=*/5);
  h.Ack(1, 0, kJob, /*stage=*/9, 0);
  h.Ack(1, 0, "another-job");
  h.Ack(1, /*incarnation=*/99);
  // A well-formed frame is taken as seq 1: none of the above counted as a frame of (1, 0).
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitAck(0, 1);
  h.WaitFrame(1);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 2)));
  // Bogus acks of the frame that now exists do not acknowledge it: it is resent after them.
  h.Ack(1, 0, kJob, 3, 5);
  h.Ack(1, 0, kJob, 2, 0);
  h.Ack(1, 0, "another-job");
  h.Ack(1, 99);
  h.Send(0, 2, Range(0, 3, 3));
  h.WaitFrame(2);  // the bogus acks were handled before this
  int copies = h.frames().at(1).copies;
  h.WaitCopies(1, copies + 1);
  h.Ack(2);
  CHECK(h.Outputs() == PassedAll(Range(0, 1, 3)));
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
  CHECK(r.tuples_in == 3);
  CHECK(r.duplicates == 0);
  CHECK(ReadFile(h.task().log_path()).find("event=bad_frame") != std::string::npos);
}

TEST_CASE("the duplicate test knob resends every N-th frame's tuples under the next seq",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.test_duplicate_every = 2;
  h.Start(c);
  // One input frame at a time, so that each makes exactly one output frame.
  for (uint64_t k = 0; k < 6; ++k) {
    h.Send(0, k + 1, Range(0, 2 * k + 1, 2 * k + 2));
    h.WaitOutputs(2 * k + 2 + (k + 1) / 2 * 2);  // plus the copies so far
  }
  h.WaitAck(0, 6);
  // Frames: 1 A, 2 B, 3 B', 4 C, 5 D, 6 D', 7 E, 8 F, 9 F'.
  REQUIRE(h.high() == 9);
  uint64_t injected = 0;
  uint64_t n = 1;
  for (uint64_t seq = 1; seq <= 9; ++seq) {
    const OutFrame& f = h.frames().at(seq);
    INFO("frame " << seq);
    CHECK_FALSE(f.end);
    REQUIRE(f.tuples.size() == 2);
    bool copy = seq % 3 == 0;
    if (copy) {
      CHECK(f.tuples == h.frames().at(seq - 1).tuples);  // same tuples, same ids
      CHECK(f.bytes != h.frames().at(seq - 1).bytes);    // another seq
      injected += f.tuples.size();
    } else {
      CHECK(f.tuples == PassedAll(Range(0, n, n + 1)));
      n += 2;
    }
  }
  TaskReport r = h.StopAndReport();
  CHECK(r.injected == injected);
  CHECK(r.injected == 6);
  CHECK(r.tuples_out == 12);
  CHECK(r.duplicates == 0);
}

namespace {

// The records of a checkpoint file: each a 4-byte big-endian length, then a MessagePack map.
std::vector<msgpack::object_handle> CheckpointRecords(const std::string& file) {
  std::vector<msgpack::object_handle> out;
  size_t off = 0;
  while (off + 4 <= file.size()) {
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(file[off + i]);
    off += 4;
    REQUIRE(off + len <= file.size());
    out.push_back(msgpack::unpack(file.data() + off, len));
    off += len;
  }
  CHECK(off == file.size());
  return out;
}

const msgpack::object* Field(const msgpack::object& map, const std::string& key) {
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    if (map.via.map.ptr[i].key.as<std::string>() == key) return &map.via.map.ptr[i].val;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a stateful operator's state is checkpointed to HyDFS with the watermarks",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  std::vector<std::string> argv = {RainopPath("count"), "0"};
  c.argv = argv;
  h.Start(c, argv);
  CHECK(h.task().stateful());
  REQUIRE(h.task().input_partition_column().has_value());
  CHECK(*h.task().input_partition_column() == 0);

  std::vector<std::string> values = {"a,x", "b,y", "a,z", "c,x", "a,y", "b,z"};
  // Key groups as an upstream would give them: "a" and "c" in group 3, "b" in group 7.
  std::map<char, uint32_t> group_of = {{'a', 3}, {'b', 7}, {'c', 3}};
  std::vector<InTuple> in;
  for (size_t i = 0; i < values.size(); ++i) {
    in.push_back({0, SourceId(0, i + 1), "f:" + std::to_string(i + 1), values[i],
                  group_of[values[i][0]]});
  }
  h.Send(0, 1, {in.begin(), in.begin() + 3});
  h.Send(0, 2, {in.begin() + 3, in.end()});
  h.WaitOutputs(6);
  auto out = h.Outputs();
  std::vector<std::string> want = {"a,1", "b,1", "a,2", "c,1", "a,3", "b,2"};
  REQUIRE(out.size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(out[i].id == Derived(in[i].id));
    CHECK(out[i].key == values[i].substr(0, 1));
    CHECK(out[i].value == want[i]);
  }

  const std::string name = std::string("rainstorm/") + kJob + "/task-2-0.ckpt.1";
  // Keyed state: the operator's counts per group, and the watermarks per group.
  std::map<uint32_t, std::map<std::string, uint64_t>> expected = {{3, {{"a", 3}, {"c", 1}}},
                                                                  {7, {{"b", 2}}}};
  std::map<uint32_t, std::map<std::string, uint64_t>> state;
  std::map<uint32_t, std::string> wm_id;
  const std::map<uint32_t, std::string> want_wm = {{3, SourceId(0, 5)}, {7, SourceId(0, 6)}};
  uint64_t log_index = 0;
  h.Pump(
      [&] {
        auto file = h.hydfs().File(name);
        if (!file) return false;
        auto records = CheckpointRecords(*file);
        if (records.empty()) return false;
        const msgpack::object& m = records.back().get();
        REQUIRE(m.type == msgpack::type::MAP);
        std::set<std::string> keys;
        for (uint32_t i = 0; i < m.via.map.size; ++i)
          keys.insert(m.via.map.ptr[i].key.as<std::string>());
        CHECK(keys == std::set<std::string>{"time_ms", "log_index", "wm", "in", "pending",
                                            "pending_from", "state", "spool_bytes", "counters"});
        const msgpack::object* st = Field(m, "state");
        REQUIRE(st != nullptr);
        REQUIRE(st->type == msgpack::type::BIN);  // a stateful operator always has a state
        auto sh = msgpack::unpack(st->via.bin.ptr, st->via.bin.size);
        state = sh.get().as<std::map<uint32_t, std::map<std::string, uint64_t>>>();
        const msgpack::object* wm = Field(m, "wm");
        REQUIRE(wm != nullptr);
        REQUIRE(wm->type == msgpack::type::ARRAY);
        wm_id.clear();
        for (uint32_t i = 0; i < wm->via.array.size; ++i) {
          const msgpack::object& e = wm->via.array.ptr[i];
          REQUIRE(e.type == msgpack::type::ARRAY);
          REQUIRE(e.via.array.size == 5);  // [group, stage, task, origin, id]
          if (e.via.array.ptr[1].as<uint32_t>() == 1 && e.via.array.ptr[2].as<uint32_t>() == 0 &&
              e.via.array.ptr[3].as<uint64_t>() == 0) {
            wm_id[e.via.array.ptr[0].as<uint32_t>()] = e.via.array.ptr[4].as<std::string>();
          }
        }
        CHECK(Field(m, "time_ms")->as<uint64_t>() > 1600000000000ull);
        log_index = Field(m, "log_index")->as<uint64_t>();  // 0 before the first commit
        CHECK(Field(m, "pending")->type == msgpack::type::ARRAY);
        CHECK(Field(m, "in")->type == msgpack::type::ARRAY);
        CHECK(Field(m, "spool_bytes")->as<uint64_t>() == 0);
        return state == expected && wm_id == want_wm;
      },
      "a checkpoint with the full state");
  CHECK(state == expected);
  CHECK(wm_id == want_wm);
  CHECK(log_index >= 1);  // the record of the commit that processed tuple 6, or a later one
  // The first record created the file, the later ones were appended.
  CHECK(h.hydfs().creates() == 1);
  TaskReport r = h.StopAndReport();
  CHECK(r.state == TaskState::kStopped);
}

TEST_CASE("an operator that dies mid-run fails the task with its exit code and stderr",
          "[stream][task]") {
  Harness h;
  // A python operator that raises on its 4th tuple (exit 1, traceback on stderr).
  std::string script = h.dir() + "/dies.py";
  fs::create_directories(h.dir());
  {
    std::ofstream f(script);
    f << "import sys\n"
         "sys.path.insert(0, '" RS_SOURCE_ROOT
         "/operators/python')\n"
         "from rainstorm_op import run\n"
         "seen = 0\n"
         "def process(key, value):\n"
         "    global seen\n"
         "    seen += 1\n"
         "    if seen > 3:\n"
         "        raise RuntimeError('boom after 3 tuples')\n"
         "    return ((key, value),)\n"
         "run(process)\n";
  }
  TaskConfig c = h.Config();
  c.argv = {script};
  h.Start(c, {kPython, script});
  int64_t pid = h.task().pid();
  h.Send(0, 1, Range(0, 1, 2));
  h.WaitOutputs(2);
  h.Send(0, 2, Range(0, 3, 5));
  TaskReport r = h.WaitState(TaskState::kFailed);
  INFO(r.reason);
  CHECK_THAT(r.reason, Catch::Contains("exit code 1"));
  CHECK_THAT(r.reason, Catch::Contains("boom after 3 tuples"));
  // Frame 2 was never processed: not acknowledged.
  CHECK(h.AckedTo(0) <= 1);
  h.Pump([&] { return ProcessGone(pid); }, "the operator process to be gone");
  CHECK(ReadFile(h.task().log_path()).find("event=task_failed") != std::string::npos);
}

TEST_CASE("a sink retries a failed destination append with exactly the same bytes",
          "[stream][task]") {
  // HyDFS resumes a failed append's id only for the same bytes (daemon/hydfs/retry.h): output
  // committed after the failure must wait for the next append, not join the retry.
  Harness h;
  TaskConfig c = h.Config();
  c.stage = c.stages + 1;
  c.downstream.clear();
  c.dest = "out/sink.txt";
  c.sink_flush_ms = 10;
  h.hydfs().Create(c.dest, "", [](Status) {});
  h.hydfs().FailAppends(1);
  h.Start(c);
  h.Send(0, 1, Range(0, 1, 30));
  h.Pump([&] { return !h.hydfs().AppendCalls(c.dest).empty(); }, "the first (failing) append");
  h.Send(1, 1, Range(1, 1, 20), /*end=*/true);
  h.Send(0, 2, {}, /*end=*/true);
  TaskReport r = h.WaitState(TaskState::kDone);
  CHECK(r.reason.empty());
  std::vector<std::string> calls = h.hydfs().AppendCalls(c.dest);
  REQUIRE(calls.size() >= 3);
  CHECK(calls[1] == calls[0]);
  std::string want;
  for (const auto& t : Range(0, 1, 30)) want += t.value + "\n";
  CHECK(calls[0] == want);
  for (const auto& t : Range(1, 1, 20)) want += t.value + "\n";
  auto file = h.hydfs().File(c.dest);
  REQUIRE(file.has_value());
  CHECK(*file == want);
  CHECK(ReadFile(h.task().log_path()).find("event=sink_append_failed") != std::string::npos);
}

TEST_CASE("without exactly-once a task passes everything, with empty ids, and still acks",
          "[stream][task]") {
  Harness h;
  TaskConfig c = h.Config();
  c.exactly_once = false;
  h.Start(c);
  std::vector<InTuple> a = {{0, "", "k1", "v1"}, {0, "", "k2", "v2"}};
  h.Send(0, 1, a);
  h.Send(0, 2, a);  // the same tuples again: no dedup
  h.Send(1, 1, a);
  h.WaitOutputs(6);
  h.WaitAck(0, 2);
  h.WaitAck(1, 1);
  auto out = h.Outputs();
  std::vector<OutTuple> once = {{0, "", "k1", "v1"}, {0, "", "k2", "v2"}};
  CHECK(out == Concat({once, once, once}));
  // A resent frame (same seq) is still discarded: seqs number frames for flow control.
  size_t acks = h.AcksTo(0).size();
  h.Send(0, 2, a);
  h.Pump([&] { return h.AcksTo(0).size() > acks; }, "the ack of a resent frame");
  h.Send(0, 3, {{0, "", "k3", "v3"}});
  h.WaitOutputs(7);
  CHECK(h.Outputs().back() == OutTuple{0, "", "k3", "v3"});
  // Every output frame is acknowledged (auto-ack): none stays unacknowledged to be resent.
  TaskReport r = h.StopAndReport();
  CHECK(r.tuples_out == 7);
  CHECK_FALSE(fs::exists(h.dir() + "/task-2-0.mdb"));
  CHECK(h.hydfs().FileCount() == 0);  // no checkpoints
}

}  // namespace rs::stream
