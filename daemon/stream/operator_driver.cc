#include "daemon/stream/operator_driver.h"

#include <algorithm>

namespace rs::stream {

void BatchSizer::Answered(size_t tuples, Clock::duration took) {
  if (tuples == 0) return;
  double per = std::chrono::duration<double>(took).count() / static_cast<double>(tuples);
  // Half the weight on the newest answer: adapts within a few batches, one odd batch does not
  // swing the size.
  per_tuple_ = per_tuple_ < 0 ? per : 0.5 * per_tuple_ + 0.5 * per;
  double target = std::chrono::duration<double>(target_).count();
  double fits = per_tuple_ > 0 ? target / per_tuple_ : static_cast<double>(max_);
  double grown = static_cast<double>(std::max(next_, tuples)) * 4;
  next_ = static_cast<size_t>(std::clamp(std::min(grown, fits), 1.0, static_cast<double>(max_)));
}

OperatorDriver::OperatorDriver(OperatorProcess* op, size_t max_tuples, size_t max_in_flight)
    : op_(op), max_in_flight_(max_in_flight), sizer_(max_tuples, std::chrono::milliseconds(50)) {}

void OperatorDriver::Add(std::vector<TupleView> tuples, std::vector<uint32_t> groups) {
  Unit u;
  u.tuples = std::move(tuples);
  u.groups = std::move(groups);
  units_.push_back(std::move(u));
}

Result<bool> OperatorDriver::Send() {
  bool sent = false;
  for (auto& u : units_) {
    while (u.sent < u.tuples.size()) {
      if (op_->in_flight() >= max_in_flight_) return sent;
      size_t n = std::min(sizer_.Next(), u.tuples.size() - u.sent);
      RS_RETURN_IF_ERROR(op_->SendBatchViews(
          u.tuples.data() + u.sent, n, u.groups.empty() ? nullptr : u.groups.data() + u.sent));
      in_flight_.push_back({n, Clock::now()});
      ++batches_sent_;
      u.sent += n;
      sent = true;
    }
  }
  return sent;
}

Result<bool> OperatorDriver::Collect(const OnBatch& on_batch,
                                     const std::function<void()>& on_unit) {
  bool any = false;
  auto finish_front = [&] {
    while (!units_.empty() && units_.front().answered == units_.front().tuples.size()) {
      units_.pop_front();
      on_unit();
      any = true;
    }
  };
  finish_front();
  while (!in_flight_.empty() && op_->ResultReady()) {
    auto results = op_->NextResultViews();
    if (!results.ok()) return results.status();
    TimePoint now = Clock::now();
    Batch b = in_flight_.front();
    in_flight_.pop_front();
    Clock::duration took = now - std::max(b.sent_at, last_answer_);
    last_answer_ = now;
    busy_ += took;
    answered_ += b.tuples;
    slowest_ = std::max(slowest_, now - b.sent_at);
    sizer_.Answered(b.tuples, took);
    Unit& u = units_.front();  // batches are answered in order, units too
    on_batch(u.answered, *results);
    u.answered += b.tuples;
    any = true;
    finish_front();
  }
  return any;
}

Clock::duration OperatorDriver::TakeBusy() {
  Clock::duration b = busy_;
  busy_ = {};
  return b;
}

uint64_t OperatorDriver::TakeAnswered() {
  uint64_t n = answered_;
  answered_ = 0;
  return n;
}

Clock::duration OperatorDriver::TakeSlowest() {
  Clock::duration s = slowest_;
  slowest_ = {};
  return s;
}

}  // namespace rs::stream
