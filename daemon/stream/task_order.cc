// The task's input order (README.md "Order log"): logging the order a stateful last-stage task
// takes its inputs in, replaying it after a rebuild, and the sink's keepers of it.
#include "daemon/stream/task_impl.h"

namespace rs::stream {

// An input frame joins the queue; while a rebuilt task replays its logged order, it goes to the
// replay, which hands on pieces of what came in that order.
void Task::Impl::TakeInput(InFrame fr) {
  std::deque<InFrame> ready;
  if (replay && replay->replaying()) {
    replay->Offer(std::move(fr));
    replay->Take(&ready, &order_log);
    if (!replay->replaying()) {
      TaskLog("event=order_replayed runs_to=" + std::to_string(order_log.next()) +
              " mismatched=" + std::to_string(replay->mismatched()));
    }
  } else {
    ready.push_back(std::move(fr));
  }
  for (auto& f : ready) {
    queued_tuples += f.tuples.size();
    queue.push_back(std::move(f));
  }
}

// The operator has taken `fr` and its outputs are out: its channel counts it as processed (a
// replayed piece: once every piece of its frame is).
void Task::Impl::Completed(const InFrame& fr) {
  if (!fr.piece) {
    in[fr.from].rx.Processed(fr.incarnation, fr.seq, fr.end);
    return;
  }
  if (!replay) return;
  if (auto whole = replay->Done(fr)) {
    in[whole->from].rx.Processed(whole->incarnation, whole->seq, whole->end);
  }
  if (replay->finished()) {
    TaskLog("event=order_replay_done");
    replay.reset();
  }
}

// What a frame to downstream `d` carries of the order log: the runs recorded since the last
// frame and what the durable checkpoint covers, when either is news (else nullptr).
const OrderNote* Task::Impl::NoteFor(uint32_t d, OrderNote* note) {
  if (!logs_order || d != 0) return nullptr;
  if (!order_log.HasUnsent() && order_durable == order_durable_sent) return nullptr;
  note->runs = order_log.TakeUnsent();
  note->durable = order_durable;
  order_durable_sent = order_durable;
  return note;
}

// After Recover: the runs the sink kept beyond what the checkpoint covers are taken again first.
Status Task::Impl::StartReplay() {
  uint64_t from = order_log.next();
  order_durable = from;
  const OrderRuns& given = cfg.replay_order;
  uint64_t end = given.first + given.runs.size();
  if (given.runs.empty() || end <= from) {
    TaskLog("event=order_replay runs=0 from=" + std::to_string(from));
    return Status::Ok();
  }
  if (given.first > from) {
    return Status::Corruption("the sink holds this task's input order from run " +
                              std::to_string(given.first) + " on, but its checkpoint covers only " +
                              "the runs before " + std::to_string(from));
  }
  std::vector<OrderRun> runs(given.runs.begin() + static_cast<std::ptrdiff_t>(from - given.first),
                             given.runs.end());
  TaskLog("event=order_replay runs=" + std::to_string(runs.size()) +
          " from=" + std::to_string(from));
  replay.emplace(std::move(runs), cfg.upstreams);
  return Status::Ok();
}

// The sink: false for a frame of a last-stage task's run that a rebuild replaced (its runs and
// outputs come again from the new run).
bool Task::Impl::SinkFences(const DataHeader& h) {
  std::lock_guard<std::mutex> lock(t->order_mu_);
  auto it = t->order_fence_.find(h.from_task);
  return it == t->order_fence_.end() || h.incarnation >= it->second;
}

// The sink: keeps the runs a frame taken in order carries, and forgets what its sender's durable
// checkpoint covers.
void Task::Impl::SinkKeepsOrder(const DataHeader& h) {
  std::lock_guard<std::mutex> lock(t->order_mu_);
  OrderKeeper& k = t->order_keepers_[h.from_task];
  if (!k.Add(h.order->runs)) {
    TaskLog("event=order_gap from=" + std::to_string(h.from_stage) + "." +
            std::to_string(h.from_task) + " first=" + std::to_string(h.order->runs.first));
  }
  k.Trim(h.order->durable);
}

void Task::ForgetOrder(uint32_t task, uint64_t incarnation) {
  std::lock_guard<std::mutex> lock(order_mu_);
  order_keepers_.erase(task);
  uint64_t& fence = order_fence_[task];
  fence = std::max(fence, incarnation);
}

OrderRuns Task::OrderForRebuild(uint32_t task, uint64_t incarnation) {
  std::lock_guard<std::mutex> lock(order_mu_);
  uint64_t& fence = order_fence_[task];
  fence = std::max(fence, incarnation);
  auto it = order_keepers_.find(task);
  return it == order_keepers_.end() ? OrderRuns{} : it->second.All();
}

}  // namespace rs::stream
