// rainsource's input side (ctl/rainsource.cc): stdin's bytes cut into records (lines, or
// MessagePack [key, value] arrays with --msgpack), and the --rate token bucket. Pure: bytes and
// time come in as arguments.
#pragma once

#include <algorithm>
#include <cstring>
#include <msgpack.hpp>
#include <optional>
#include <string>

#include "shared/clock.h"
#include "shared/status.h"

namespace rs::source {

// One input record: the line (key "stdin:N"), or a [key, value] pair with --msgpack.
struct Record {
  std::string key, value;
};

// Cuts stdin's bytes into records. Feed() appends what read() returned; Next() returns the
// next complete record, or, once `eof`, the unterminated last line.
class InputReader {
 public:
  explicit InputReader(bool msgpack) : msgpack_(msgpack) {}

  void Feed(const char* data, size_t n) {
    if (msgpack_) {
      unpacker_.reserve_buffer(n);
      std::memcpy(unpacker_.buffer(), data, n);
      unpacker_.buffer_consumed(n);
      return;
    }
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > (1u << 20) && pos_ >= buf_.size() - pos_) {  // moves at most what it frees
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    buf_.append(data, n);
  }

  // nullopt: no complete record yet (or none left). A malformed --msgpack record sets error().
  std::optional<Record> Next(bool eof, uint64_t number) {
    if (msgpack_) return NextMsgpack(number);
    size_t nl = buf_.find('\n', pos_);
    std::string line;
    if (nl != std::string::npos) {
      size_t end = nl > pos_ && buf_[nl - 1] == '\r' ? nl - 1 : nl;
      line.assign(buf_, pos_, end - pos_);
      pos_ = nl + 1;
    } else if (eof && pos_ < buf_.size()) {  // the unterminated last line (its \r dropped too)
      size_t end = buf_.back() == '\r' ? buf_.size() - 1 : buf_.size();
      line.assign(buf_, pos_, end - pos_);
      pos_ = buf_.size();
    } else {
      return std::nullopt;
    }
    return Record{"stdin:" + std::to_string(number), std::move(line)};
  }

  // Bytes fed and not yet cut into records.
  size_t Buffered() const { return msgpack_ ? unpacker_.nonparsed_size() : buf_.size() - pos_; }

  // Bytes left at end of input that never made a whole record (--msgpack): the unpacker's
  // message_size() counts the bytes of the record under way.
  bool HasLeftover() const { return msgpack_ && unpacker_.message_size() > 0; }
  const Status& error() const { return error_; }

 private:
  // One [key, value] array; the unpacker keeps a record under way across reads.
  std::optional<Record> NextMsgpack(uint64_t number) {
    if (!error_.ok()) return std::nullopt;
    msgpack::object_handle oh;
    try {
      if (!unpacker_.next(oh)) return std::nullopt;
    } catch (const std::exception& e) {
      error_ = Status::InvalidArgument("record " + std::to_string(number) +
                                       " is not MessagePack: " + e.what());
      return std::nullopt;
    }
    const msgpack::object& o = oh.get();
    auto text = [](const msgpack::object& v, std::string* out) {
      if (v.type == msgpack::type::STR) {
        out->assign(v.via.str.ptr, v.via.str.size);
      } else if (v.type == msgpack::type::BIN) {
        out->assign(v.via.bin.ptr, v.via.bin.size);
      } else {
        return false;
      }
      return true;
    };
    Record r;
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 2 ||
        !text(o.via.array.ptr[0], &r.key) || !text(o.via.array.ptr[1], &r.value)) {
      error_ = Status::InvalidArgument("record " + std::to_string(number) +
                                       " is not a [key, value] array of strings");
      return std::nullopt;
    }
    return r;
  }

  bool msgpack_;
  std::string buf_;
  size_t pos_ = 0;
  msgpack::unpacker unpacker_{[](msgpack::type::object_type, std::size_t, void*) { return false; },
                              nullptr, MSGPACK_UNPACKER_INIT_BUFFER_SIZE,
                              msgpack::unpack_limit(16, 16, 64u << 20, 64u << 20, 0, 4)};
  Status error_;
};

// Lines per second, as a token bucket holding at most 10 ms of tokens (at least one): a
// steady pace, not a burst of a second's worth at start.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t rate)
      : rate_(static_cast<double>(rate)),
        capacity_(std::max(1.0, rate_ / 100)),
        tokens_(1),
        last_(Clock::now()) {}
  // Whether a line may go now; Spend() then takes its token.
  bool Ready(TimePoint now) {
    if (rate_ <= 0) return true;
    Refill(now);
    return tokens_ >= 1;
  }
  void Spend() {
    if (rate_ > 0) tokens_ -= 1;
  }
  // How long until a token is available (zero when unlimited or one is there).
  Clock::duration Wait(TimePoint now) {
    if (rate_ <= 0) return Clock::duration::zero();
    Refill(now);
    if (tokens_ >= 1) return Clock::duration::zero();
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>((1 - tokens_) / rate_));
  }

 private:
  void Refill(TimePoint now) {
    double secs = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(capacity_, tokens_ + secs * rate_);
  }
  double rate_, capacity_, tokens_;
  TimePoint last_;
};

// What the writer offers, for the target policy's demand on a live job's stage 1
// (daemon/stream/autoscaler.h; reported with job.source_load): the records per second read
// from stdin, counted in bytes at the mean size of the records cut so far, and the records
// read and not yet sent (the backlog). rainsource reads ahead of what it sends (kReadAhead), so
// both are seen while the job holds it back.
class LoadMeter {
 public:
  explicit LoadMeter(TimePoint now) : at_(now) {}
  void Read(size_t bytes) { read_ += bytes; }
  struct Load {
    uint64_t offered = 0, backlog = 0;  // records/s since the last Take; records
  };
  // `records`: cut so far; `buffered`: bytes read and not yet cut into records.
  Load Take(uint64_t records, size_t buffered, TimePoint now) {
    Load l;
    double secs = std::chrono::duration<double>(now - at_).count();
    uint64_t cut = read_ - std::min<uint64_t>(buffered, read_);
    if (records > 0 && cut > 0 && secs > 0) {
      double mean = static_cast<double>(cut) / static_cast<double>(records);
      l.offered = static_cast<uint64_t>(static_cast<double>(read_ - last_read_) / mean / secs);
      l.backlog = static_cast<uint64_t>(static_cast<double>(buffered) / mean);
    }
    last_read_ = read_;
    at_ = now;
    return l;
  }

 private:
  uint64_t read_ = 0, last_read_ = 0;
  TimePoint at_;
};

}  // namespace rs::source
