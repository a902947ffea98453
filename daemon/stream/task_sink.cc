#include "daemon/stream/task_sink.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace rs::stream {

constexpr uint64_t kFlushBytes = 4u << 20;                // an append at least this often
constexpr auto kRetryEvery = std::chrono::milliseconds(500);  // a failed append, again
constexpr auto kGiveUpAfter = std::chrono::seconds(30);       // appends failing: the job fails

void LatencyHistogram::Add(uint64_t us, uint64_t weight) {
  size_t b = us <= 1 ? 0 : static_cast<size_t>(std::log2(static_cast<double>(us)) * 8);
  b = std::min(b, buckets.size() - 1);
  buckets[b] += weight;
  samples += weight;
}

uint64_t LatencyHistogram::Percentile(double p) const {
  if (samples == 0) return 0;
  uint64_t want = static_cast<uint64_t>(std::ceil(p * static_cast<double>(samples)));
  uint64_t seen = 0;
  for (size_t b = 0; b < buckets.size(); ++b) {
    seen += buckets[b];
    if (seen >= want) return static_cast<uint64_t>(std::exp2((static_cast<double>(b) + 1) / 8));
  }
  return 0;
}

SinkOutput::SinkOutput(int spool_fd, std::string dest, Clock::duration flush_every, Append append,
                       Log log)
    : fd_(spool_fd),
      dest_(std::move(dest)),
      flush_every_(flush_every),
      append_(std::move(append)),
      log_(std::move(log)) {}

SinkOutput::~SinkOutput() {
  if (fd_ >= 0) ::close(fd_);
}

size_t SinkOutput::Consume(const std::vector<InFrame>& frames, uint64_t now_us) {
  size_t n = 0;
  for (const auto& fr : frames) {
    for (const auto& r : fr.tuples) {
      pending_.append(r.value.data(), r.value.size());
      pending_.push_back('\n');
      bytes_ += r.value.size() + 1;
    }
    n += fr.tuples.size();
    if (!fr.tuples.empty() && fr.emit_us > 0) {
      uint64_t us = now_us > fr.emit_us ? now_us - fr.emit_us : 0;
      latency_.Add(us, fr.tuples.size());
      exported_.ObserveMicros(us, fr.tuples.size());
    }
  }
  lines_ += n;
  return n;
}

Status SinkOutput::WriteSpool() {
  const char* p = pending_.data();
  size_t left = pending_.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("writing the output spool: ") + std::strerror(errno));
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

size_t SinkOutput::Committed() {
  size_t n = pending_.size();
  unflushed_ += pending_;
  pending_.clear();
  return n;
}

void SinkOutput::Start(TimePoint now) {
  call_ = AsyncCall::Make();
  append_(flushing_, AsyncCall::Callback(call_));
  last_flush_ = now;
}

Status SinkOutput::Flush(bool force, TimePoint now) {
  if (last_flush_ == TimePoint{}) last_flush_ = now;
  if (call_) {
    Status s;
    if (!call_->Done(&s)) return Status::Ok();
    call_.reset();
    if (!s.ok()) {
      if (!failing_) failing_since_ = now;
      failing_ = true;
      log_("event=sink_append_failed error=\"" + s.message() + "\"");
      if (now - failing_since_ > kGiveUpAfter) {
        return Status(s.code(), "appending the output to " + dest_ + ": " + s.message());
      }
      // Retried alone with the same bytes: HyDFS then resumes the failed append's id, so a
      // copy that reached some replicas is not appended twice (daemon/hydfs/retry.h).
      last_flush_ = now;
    } else {
      failing_ = false;
      flushing_.clear();
    }
  }
  if (failing_) {
    if (now - last_flush_ >= kRetryEvery) Start(now);
    return Status::Ok();
  }
  if (unflushed_.empty()) return Status::Ok();
  if (!force && unflushed_.size() < kFlushBytes && now - last_flush_ < flush_every_) {
    return Status::Ok();
  }
  flushing_ = std::move(unflushed_);
  unflushed_.clear();
  Start(now);
  return Status::Ok();
}

}  // namespace rs::stream
