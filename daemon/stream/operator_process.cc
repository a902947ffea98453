#include "daemon/stream/operator_process.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "shared/wire/fields.h"

namespace rs::stream {
namespace {

constexpr size_t kReadBlock = 64u << 10;
constexpr size_t kTailLines = 20;
constexpr size_t kTailLineBytes = 512;
constexpr size_t kNameBytes = 60;
constexpr auto kExitSlice = std::chrono::milliseconds(10);

// Decoded strings point into the unpacker's buffer, which it keeps alive for their messages.
bool ReferenceInput(msgpack::type::object_type, std::size_t, void*) { return true; }

void SetNonBlocking(int fd) {
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int PollMillis(TimePoint deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, 1000));
}

std::string Millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// "2024-05-01T12:00:00.123Z "
std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ ", static_cast<int>(ms % 1000));
  return buf;
}

std::string ShortName(const std::vector<std::string>& argv) {
  std::string name;
  for (const auto& a : argv) {
    if (!name.empty()) name += ' ';
    name += a;
  }
  if (name.size() > kNameBytes) name = name.substr(0, kNameBytes) + "...";
  for (char& c : name) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';  // one-line status messages
  }
  return name;
}

}  // namespace

OperatorProcess::OperatorProcess(std::string name, OperatorProcessOptions options)
    : name_(std::move(name)), options_(std::move(options)) {}

OperatorProcess::~OperatorProcess() {
  child_.Kill();  // a no-op once it was reaped; the Child destructor reaps
  if (log_fd_ >= 0) ::close(log_fd_);
}

Result<std::unique_ptr<OperatorProcess>> OperatorProcess::Start(
    const std::vector<std::string>& argv, const OperatorContext& ctx,
    const OperatorProcessOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("no operator command");
  if (options.max_in_flight == 0) return Status::InvalidArgument("max_in_flight is 0");
  std::unique_ptr<OperatorProcess> p(new OperatorProcess(ShortName(argv), options));
  RS_RETURN_IF_ERROR(p->Launch(argv, ctx));
  return p;
}

Status OperatorProcess::Launch(const std::vector<std::string>& argv, const OperatorContext& ctx) {
  if (!options_.log_path.empty()) {
    log_fd_ = ::open(options_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) {
      return Status::IOError("cannot open operator log " + options_.log_path + ": " +
                             std::strerror(errno));
    }
  }
  msgpack::unpack_limit limit(/*array=*/1u << 24, /*map=*/1u << 24, /*str=*/64u << 20,
                              /*bin=*/64u << 20, /*ext=*/64u << 20, /*depth=*/32);
  unpacker_ = std::make_unique<msgpack::unpacker>(&ReferenceInput, nullptr, kReadBlock, limit);

  ChildOptions co;
  co.pipe_stdin = true;
  co.env = options_.env;
  co.cwd = options_.cwd;
  co.clear_env = options_.clear_env;
  co.credentials = options_.credentials;
  co.limits = options_.limits;
  Status s = child_.Start(argv, co);
  if (!s.ok()) return Status(s.code(), "cannot start operator " + name_ + ": " + s.message());
  SetNonBlocking(child_.stdin_fd());
  SetNonBlocking(child_.stdout_fd());
  SetNonBlocking(child_.stderr_fd());

  TimePoint deadline = Clock::now() + options_.hello_timeout;
  RS_RETURN_IF_ERROR(Write(PackHello(ctx), deadline, "the hello"));
  msgpack::object_handle oh;
  RS_RETURN_IF_ERROR(Receive(&oh, deadline, "the hello", options_.hello_timeout));
  Result<ReadyInfo> ready = ParseReady(oh.get());
  if (!ready.ok()) {
    return Fail(
        Status::Corruption(Describe("answered the hello with " + ready.status().message())));
  }
  ready_ = std::move(ready).value();
  return Status::Ok();
}

Status OperatorProcess::Usable() const {
  if (!failed_.ok()) return failed_;
  if (finished_) return Status::FailedPrecondition(Describe("has finished"));
  return Status::Ok();
}

Status OperatorProcess::SendBatch(const Tuples& tuples) {
  if (tuples.empty()) return Status::InvalidArgument("an empty batch");
  std::vector<TupleView> views(tuples.begin(), tuples.end());
  return SendPacked(PackBatch(views.data(), views.size(), nullptr), tuples.size());
}

Status OperatorProcess::SendBatchViews(const std::vector<TupleView>& tuples) {
  return SendBatchViews(tuples.data(), tuples.size(), nullptr);
}

Status OperatorProcess::SendBatchViews(const TupleView* tuples, size_t n, const uint32_t* groups) {
  if (n == 0) return Status::InvalidArgument("an empty batch");
  // Only an operator with keyed state gets the groups (PROTOCOL.md "Keyed state").
  return SendPacked(PackBatch(tuples, n, ready_.keyed_state ? groups : nullptr), n);
}

Status OperatorProcess::SendPacked(std::string bytes, size_t tuples) {
  RS_RETURN_IF_ERROR(Usable());
  if (in_flight_.size() >= options_.max_in_flight) {
    return Status::FailedPrecondition(std::to_string(in_flight_.size()) +
                                      " batches in flight already (max_in_flight)");
  }
  uint64_t seq = ++batches_;
  TimePoint deadline = Clock::now() + options_.batch_timeout;
  RS_RETURN_IF_ERROR(Write(std::move(bytes), deadline, "batch " + std::to_string(seq)));
  in_flight_.push_back({tuples, deadline, seq});
  batch_sent_ = true;
  return Status::Ok();
}

bool OperatorProcess::ResultReady() {
  if (in_flight_.empty()) return false;
  if (!failed_.ok() || !messages_.empty()) return true;
  if (!Pump(Clock::now()).ok()) return true;
  return !messages_.empty() || stdout_eof_ || Clock::now() >= in_flight_.front().deadline;
}

Status OperatorProcess::CheckIdle() {
  if (!failed_.ok()) return failed_;
  if (finished_ || !in_flight_.empty()) return Status::Ok();
  RS_RETURN_IF_ERROR(Pump(Clock::now()));  // a zero timeout: never blocks
  if (stdout_eof_) return Gone(Clock::now() + std::chrono::seconds(1), "between batches");
  return Status::Ok();
}

Result<std::vector<Tuples>> OperatorProcess::NextResult() {
  auto views = NextResultViews();
  if (!views.ok()) return views.status();
  std::vector<Tuples> result(views->offsets.size() - 1);
  for (size_t i = 0; i + 1 < views->offsets.size(); ++i) {
    for (uint32_t k = views->offsets[i]; k < views->offsets[i + 1]; ++k) {
      result[i].emplace_back(std::string(views->tuples[k].first),
                             std::string(views->tuples[k].second));
    }
  }
  return result;
}

Result<ResultViews> OperatorProcess::NextResultViews() {
  RS_RETURN_IF_ERROR(Usable());
  if (in_flight_.empty()) return Status::FailedPrecondition("no batch in flight");
  const InFlight front = in_flight_.front();
  std::string what = "batch " + std::to_string(front.seq);
  ResultViews r;
  RS_RETURN_IF_ERROR(Receive(&r.handle, front.deadline, what, options_.batch_timeout));
  Status parsed = ParseResultViews(r.handle.get(), front.tuples, &r);
  if (!parsed.ok()) {
    return Fail(Status::Corruption(Describe("answered " + what + " with " + parsed.message())));
  }
  in_flight_.pop_front();
  // Progress: the next batch's clock starts now if the operator could not have started it
  // before (it was answering this one). A slow operator that keeps answering is never hung.
  if (!in_flight_.empty()) {
    in_flight_.front().deadline =
        std::max(in_flight_.front().deadline, Clock::now() + options_.batch_timeout);
  }
  return r;
}

Result<std::string> OperatorProcess::Snapshot(bool changes) {
  RS_RETURN_IF_ERROR(Usable());
  if (!ready_.stateful) return Status::FailedPrecondition(Describe("is not stateful"));
  if (changes && !ready_.state_changes) {
    return Status::FailedPrecondition(Describe("did not offer state changes"));
  }
  if (!in_flight_.empty()) {
    return Status::FailedPrecondition("snapshot with " + std::to_string(in_flight_.size()) +
                                      " batches in flight");
  }
  TimePoint deadline = Clock::now() + options_.batch_timeout;
  RS_RETURN_IF_ERROR(Write(PackSnapshotRequest(changes), deadline, "the snapshot request"));
  msgpack::object_handle oh;
  RS_RETURN_IF_ERROR(Receive(&oh, deadline, "the snapshot request", options_.batch_timeout));
  std::string shape = CheckShape(oh.get(), operator_protocol::kState, "state");
  if (!shape.empty()) {
    return Fail(Status::Corruption(Describe("answered the snapshot request with " + shape)));
  }
  msgpack::sbuffer b;
  msgpack::pack(b, oh.get().via.array.ptr[1]);
  return std::string(b.data(), b.size());
}

Status OperatorProcess::Restore(std::string_view state) {
  RS_RETURN_IF_ERROR(Usable());
  if (!ready_.stateful) return Status::FailedPrecondition(Describe("is not stateful"));
  if (batch_sent_ || restored_) {
    return Status::FailedPrecondition("restore after a batch or a restore");
  }
  try {
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(state.data(), state.size(), off);
    if (off != state.size()) {
      return Status::InvalidArgument("state has " + std::to_string(state.size() - off) +
                                     " bytes after its value");
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("state is not one MessagePack value: ") + e.what());
  }
  RS_RETURN_IF_ERROR(
      Write(PackRestore(state), Clock::now() + options_.batch_timeout, "the restore"));
  restored_ = true;
  return Status::Ok();
}

Status OperatorProcess::Regroup(std::string_view groups) {
  RS_RETURN_IF_ERROR(Usable());
  if (!ready_.regroup) return Status::FailedPrecondition(Describe("does not take regroup"));
  if (!in_flight_.empty()) {
    return Status::FailedPrecondition("regroup with " + std::to_string(in_flight_.size()) +
                                      " batches in flight");
  }
  try {
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(groups.data(), groups.size(), off);
    if (off != groups.size() || oh.get().type != msgpack::type::MAP) {
      return Status::InvalidArgument("a regroup is not one MessagePack map");
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("a regroup is not one MessagePack map: ") +
                                   e.what());
  }
  return Write(PackRegroup(groups), Clock::now() + options_.batch_timeout, "the regroup");
}

Status OperatorProcess::Finish() {
  RS_RETURN_IF_ERROR(Usable());
  if (!in_flight_.empty()) {
    return Status::FailedPrecondition("finish with " + std::to_string(in_flight_.size()) +
                                      " batches in flight");
  }
  TimePoint deadline = Clock::now() + options_.finish_timeout;
  child_.CloseStdin();
  while (!stdout_eof_) {
    if (!messages_.empty()) break;
    if (Clock::now() >= deadline) {
      return Fail(Status::Timeout(Describe(
          "did not exit within " + Millis(options_.finish_timeout) + " after its input ended")));
    }
    RS_RETURN_IF_ERROR(Pump(deadline));
  }
  if (!messages_.empty()) {
    return Fail(Status::Corruption(Describe("wrote a message nobody asked for")));
  }
  std::optional<ChildExit> exit = WaitExit(deadline);
  if (!exit) {
    return Fail(Status::Timeout(
        Describe("closed its output but did not exit within " + Millis(options_.finish_timeout))));
  }
  while (!stderr_eof_ && ReadStderr()) {
  }
  FlushStderrPartial();
  if (exit->signaled || exit->code != 0) {
    return Fail(Status::Unavailable(
        Describe("exited with " + exit->ToString() + " at the end of its input")));
  }
  finished_ = true;
  return Status::Ok();
}

Status OperatorProcess::Write(std::string bytes, TimePoint deadline, std::string_view what) {
  out_ = std::move(bytes);
  out_off_ = 0;
  while (out_off_ < out_.size()) {
    if (stdin_broken_ || stdout_eof_) {
      return Gone(deadline, "while being sent " + std::string(what));
    }
    if (Clock::now() >= deadline) {
      return Fail(Status::Timeout(Describe("did not read " + std::string(what) + " within " +
                                           Millis(options_.batch_timeout))));
    }
    RS_RETURN_IF_ERROR(Pump(deadline));
  }
  out_.clear();
  out_off_ = 0;
  return Status::Ok();
}

Status OperatorProcess::Receive(msgpack::object_handle* oh, TimePoint deadline,
                                std::string_view what, std::chrono::milliseconds timeout) {
  while (messages_.empty()) {
    if (stdout_eof_) return Gone(deadline, "before answering " + std::string(what));
    if (Clock::now() >= deadline) {
      return Fail(Status::Timeout(
          Describe("did not answer " + std::string(what) + " within " + Millis(timeout))));
    }
    RS_RETURN_IF_ERROR(Pump(deadline));
  }
  *oh = std::move(messages_.front());
  messages_.pop_front();
  return Status::Ok();
}

Status OperatorProcess::Pump(TimePoint deadline) {
  pollfd fds[3];
  int n = 0, in_i = -1, out_i = -1, err_i = -1;
  if (out_off_ < out_.size() && child_.stdin_fd() >= 0 && !stdin_broken_) {
    in_i = n;
    fds[n++] = {child_.stdin_fd(), POLLOUT, 0};
  }
  if (!stdout_eof_) {
    out_i = n;
    fds[n++] = {child_.stdout_fd(), POLLIN, 0};
  }
  if (!stderr_eof_) {
    err_i = n;
    fds[n++] = {child_.stderr_fd(), POLLIN, 0};
  }
  int timeout = PollMillis(deadline);
  if (n == 0) {
    ::usleep(static_cast<useconds_t>(std::min(timeout, 10)) * 1000);
    return Status::Ok();
  }
  int r = ::poll(fds, n, timeout);
  if (r < 0) {
    if (errno == EINTR) return Status::Ok();
    return Fail(Status::IOError(std::string("poll: ") + std::strerror(errno)));
  }
  if (r == 0) return Status::Ok();
  if (in_i >= 0 && fds[in_i].revents != 0) {
    ssize_t w = ::write(child_.stdin_fd(), out_.data() + out_off_, out_.size() - out_off_);
    if (w > 0) {
      out_off_ += static_cast<size_t>(w);
    } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
      stdin_broken_ = true;  // EPIPE: it closed its input, most likely by exiting
    }
  }
  if (out_i >= 0 && fds[out_i].revents != 0) RS_RETURN_IF_ERROR(ReadStdout());
  if (err_i >= 0 && fds[err_i].revents != 0) ReadStderr();
  return Status::Ok();
}

Status OperatorProcess::ReadStdout() {
  try {
    unpacker_->reserve_buffer(kReadBlock);
  } catch (const std::bad_alloc&) {
    return Fail(Status::Internal(Describe("output: out of memory")));
  }
  ssize_t r = ::read(child_.stdout_fd(), unpacker_->buffer(), unpacker_->buffer_capacity());
  if (r < 0) {
    if (errno == EAGAIN || errno == EINTR) return Status::Ok();
    stdout_eof_ = true;
    return Status::Ok();
  }
  if (r == 0) {
    stdout_eof_ = true;
    if (unpacker_->message_size() > 0) {
      return Fail(Status::Corruption(Describe("ended its output inside a message")));
    }
    return Status::Ok();
  }
  unpacker_->buffer_consumed(static_cast<size_t>(r));
  try {
    while (true) {
      msgpack::object_handle oh;
      if (!unpacker_->next(oh)) break;
      messages_.push_back(std::move(oh));
    }
  } catch (const msgpack::size_overflow& e) {
    return Fail(Status::Corruption(
        Describe(std::string("wrote output beyond a size limit (") + e.what() + ")")));
  } catch (const std::bad_alloc&) {
    return Fail(Status::Corruption(Describe("wrote output that exhausts memory")));
  } catch (const std::exception& e) {
    return Fail(Status::Corruption(Describe(std::string("wrote undecodable output: ") + e.what())));
  }
  if (unpacker_->message_size() > options_.max_message_bytes) {
    over_limit_ = true;
    return Fail(Status::Corruption(
        Describe("wrote a message over " + std::to_string(options_.max_message_bytes) + " bytes")));
  }
  // At most one answer is owed per batch in flight (plus one snapshot, or the ready): more is
  // output nobody asked for, and would otherwise pile up here without bound.
  if (messages_.size() > options_.max_in_flight + 1) {
    return Fail(Status::Corruption(
        Describe("wrote " + std::to_string(messages_.size()) + " messages nobody asked for")));
  }
  return Status::Ok();
}

bool OperatorProcess::ReadStderr() {
  char buf[kReadBlock];
  ssize_t r = ::read(child_.stderr_fd(), buf, sizeof(buf));
  if (r < 0) {
    if (errno == EINTR) return true;
    if (errno == EAGAIN) return false;
    r = 0;
  }
  if (r == 0) {
    stderr_eof_ = true;
    FlushStderrPartial();
    return false;
  }
  std::string_view data(buf, static_cast<size_t>(r));
  std::string log;
  while (!data.empty()) {
    size_t nl = data.find('\n');
    size_t take = nl == std::string_view::npos ? data.size() : nl;
    size_t room =
        options_.max_stderr_line - std::min(options_.max_stderr_line, stderr_partial_.size());
    if (take > room) take = room;
    stderr_partial_.append(data.substr(0, take));
    data.remove_prefix(take);
    bool line_end = !data.empty() && data.front() == '\n';
    if (line_end) data.remove_prefix(1);
    if (line_end || stderr_partial_.size() >= options_.max_stderr_line) {
      AddStderrLine(stderr_partial_, &log);
      stderr_partial_.clear();
    }
  }
  WriteLog(log);
  return true;
}

void OperatorProcess::FlushStderrPartial() {
  if (stderr_partial_.empty()) return;
  std::string log;
  AddStderrLine(stderr_partial_, &log);
  stderr_partial_.clear();
  WriteLog(log);
}

void OperatorProcess::AddStderrLine(std::string_view line, std::string* log) {
  if (log_fd_ >= 0) {
    *log += Timestamp();
    *log += line;
    *log += '\n';
  }
  stderr_tail_.emplace_back(line.substr(0, kTailLineBytes));
  if (stderr_tail_.size() > kTailLines) stderr_tail_.pop_front();
}

void OperatorProcess::WriteLog(std::string_view bytes) {
  while (log_fd_ >= 0 && !bytes.empty()) {
    ssize_t w = ::write(log_fd_, bytes.data(), bytes.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // a full disk loses log lines, never the task
    bytes.remove_prefix(static_cast<size_t>(w));
  }
}

std::optional<ChildExit> OperatorProcess::WaitExit(TimePoint deadline) {
  while (true) {
    while (!stderr_eof_ && ReadStderr()) {
    }
    if (auto exit = child_.Poll()) return exit;
    if (Clock::now() >= deadline) return std::nullopt;
    if (!stderr_eof_) {
      pollfd fd{child_.stderr_fd(), POLLIN, 0};
      ::poll(&fd, 1, std::min(PollMillis(deadline), static_cast<int>(kExitSlice.count())));
    } else {
      ::usleep(static_cast<useconds_t>(
                   std::min(PollMillis(deadline), static_cast<int>(kExitSlice.count()))) *
               1000);
    }
  }
}

Status OperatorProcess::Gone(TimePoint deadline, std::string_view what) {
  std::optional<ChildExit> exit = WaitExit(deadline);
  if (!exit) {
    return Fail(Status::Timeout(
        Describe("closed its input or output but did not exit " + std::string(what))));
  }
  while (!stderr_eof_ && ReadStderr()) {
  }
  FlushStderrPartial();
  return Fail(
      Status::Unavailable(Describe("exited with " + exit->ToString() + " " + std::string(what))));
}

Status OperatorProcess::Fail(Status s) {
  if (!failed_.ok()) return failed_;
  child_.Kill();
  child_.Wait();
  while (!stderr_eof_ && ReadStderr()) {
  }
  FlushStderrPartial();
  std::string tail;
  for (const auto& line : stderr_tail_) {
    if (!tail.empty()) tail += " | ";
    tail += line;
  }
  failed_ = Status(s.code(), s.message() + "; stderr: " + (tail.empty() ? "(empty)" : tail));
  out_.clear();
  out_off_ = 0;
  messages_.clear();
  return failed_;
}

std::string OperatorProcess::Describe(std::string_view what) const {
  return "operator '" + name_ + "' (pid " + std::to_string(child_.pid()) + ") " + std::string(what);
}

}  // namespace rs::stream
