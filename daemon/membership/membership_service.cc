#include "daemon/membership/membership_service.h"

#include <algorithm>

#include "daemon/membership/codec.h"
#include "daemon/membership/config.h"
#include "shared/logging.h"

namespace rs::membership {
namespace {

constexpr auto kTickPeriod = milliseconds(5);
constexpr auto kJoinAttemptDeadline = milliseconds(1000);
constexpr size_t kJoinFanout = 2;  // introducers asked at once in one round of a join
constexpr size_t kHistoryMax = 10000;
constexpr int kMaxBatch = 256;
// Per ROUTER connection: after this many malformed frames in a window, the connection's frames
// are dropped undecoded until the window ends. A real member never sends a malformed frame.
constexpr uint32_t kMalformedPerWindow = 64;
constexpr Clock::duration kBudgetWindow = milliseconds(1000);
constexpr size_t kMaxBudgets = 4096;
// An expelled node retries its rejoin with exponential backoff up to every 30 s, for a day (as
// serf's reconnect_timeout): a partition that outlasts the first attempts still heals by itself.
constexpr Clock::duration kFirstRejoinBackoff = milliseconds(1000);
constexpr Clock::duration kMaxRejoinBackoff = milliseconds(30000);
constexpr Clock::duration kRejoinFor = std::chrono::hours(24);
// Earlier ids of this process remembered, so records of them are buried at once (Swim).
constexpr size_t kFormerIdsKept = 16;

std::shared_ptr<spdlog::logger> Log() { return Logger("membership"); }

}  // namespace

MembershipService::MembershipService(ServiceOptions options)
    : options_(std::move(options)), loop_("membership"), rng_(std::random_device{}()) {}

MembershipService::~MembershipService() { Stop(); }

Status MembershipService::Start(const Ports& extra_ports) {
  transport::SocketOptions datagram;
  datagram.max_message_bytes = 1 << 20;
  datagram.recv_hwm = 10000;
  auto router = transport::MakeSocket(zmq::socket_type::router, datagram);
  auto pub = transport::MakeSocket(zmq::socket_type::pub, datagram);
  auto sub = transport::MakeSocket(zmq::socket_type::sub, datagram);
  if (!router.ok()) return router.status();
  if (!pub.ok()) return pub.status();
  if (!sub.ok()) return sub.status();
  router_ = std::make_unique<zmq::socket_t>(std::move(router.value()));
  pub_ = std::make_unique<zmq::socket_t>(std::move(pub.value()));
  sub_ = std::make_unique<zmq::socket_t>(std::move(sub.value()));
  auto swim_port = transport::Bind(*router_, options_.host, options_.swim_port);
  if (!swim_port.ok()) return swim_port.status();
  auto gossip_port = transport::Bind(*pub_, options_.host, options_.gossip_port);
  if (!gossip_port.ok()) return gossip_port.status();
  ports_ = extra_ports;
  ports_["swim"] = *swim_port;
  ports_["gossip"] = *gossip_port;

  loop_.AddSocket(router_.get(), [this] { DrainRouter(); });
  loop_.AddSocket(sub_.get(), [this] { DrainSub(); });
  rpc_ = std::make_unique<transport::AsyncRpcClient>(&loop_);
  loop_.AddPeriodic(kTickPeriod, [this] { OnTick(); });
  self_id_ = NodeId(options_.host, options_.control_port, WallMillis());
  initial_id_ = self_id_;
  Publish(true);
  loop_.Start();
  Log()->info("event=started swim_port={} gossip_port={}", *swim_port, *gossip_port);
  return Status::Ok();
}

void MembershipService::Stop() {
  loop_.Stop();
  loop_.Join();
}

NodeId MembershipService::NextId() {
  if (!id_used_) {  // the first membership of this process keeps the id it started with
    id_used_ = true;
    return self_id_;
  }
  uint64_t ms = std::max(WallMillis(), self_id_.start_ms() + 1);
  return NodeId(options_.host, options_.control_port, ms);
}

void MembershipService::StartSwim(const NodeId& id, bool found) {
  self_id_ = id;
  MemberRecord self{id, MemberState::kAlive, 0, ports_};
  ClusterConfig config = options_.cluster;
  if (found) {
    StampAll(&config, id.str());
  } else {
    config.stamps.clear();  // a joiner takes every key from the cluster
    config.version = 0;
  }
  swim_ = std::make_unique<Swim>(self, config, rng_(), Clock::now());
  swim_->SetFormerIds(former_ids_);
  leaving_ = false;
  SyncPeers();
  Log()->info("event=self_up node={} founded={}", id.str(), found);
}

void MembershipService::Found() {
  loop_.Post([this] {
    if (swim_ || joining_) return;
    StartSwim(NextId(), true);
    Publish(true);
  });
}

void MembershipService::Join(const HostPort& introducer, std::function<void(Status)> done) {
  loop_.Post([this, introducer, done = std::move(done)]() mutable {
    if (swim_) {
      done(Status::AlreadyExists("already a member (" + self_id_.str() + "); leave first"));
      return;
    }
    if (joining_) {
      done(Status::FailedPrecondition("a join is already under way"));
      return;
    }
    joining_ = true;
    self_id_ = NextId();
    Publish(true);
    auto until = Clock::now() + milliseconds(options_.local.join_timeout_ms);
    DoJoin({introducer}, 0, until, ++join_attempt_, std::move(done));
  });
}

// One round asks up to kJoinFanout introducers at once, from `index` on; the first to admit us
// wins (being admitted twice under one id is harmless: both spread the same record). A round
// in which none did is followed by the next candidates after 100 ms, until `until`. Asking
// several at once matters after a heal: one candidate may still be expelled itself, or our
// connection to it may still wait out a TCP connect attempt made during the cut.
void MembershipService::DoJoin(const std::vector<HostPort>& introducers, size_t index,
                               TimePoint until, uint64_t attempt,
                               std::function<void(Status)> done) {
  auto left = until - Clock::now();
  auto deadline = std::min<Clock::duration>(kJoinAttemptDeadline, left);
  MemberRecord me{self_id_, MemberState::kAlive, 0, ports_};
  size_t fanout = std::min(kJoinFanout, introducers.size());
  struct Round {
    size_t pending = 0;
    std::function<void(Status)> done;
  };
  auto round = std::make_shared<Round>();
  round->pending = fanout;
  round->done = std::move(done);
  for (size_t k = 0; k < fanout; ++k) {
    const HostPort& target = introducers[(index + k) % introducers.size()];
    Log()->info("event=join_attempt node={} introducer={}", self_id_.str(), target.ToString());
    rpc_->Call(
        target.TcpEndpoint(), wire::MsgType::kJoinRequest,
        [me](wire::Packer& pk) { PackRecord(pk, me); }, deadline,
        [this, introducers, index, fanout, until, attempt, target,
         round](Result<wire::Envelope> reply) {
          // Superseded, or another introducer of this round admitted us already.
          if (attempt != join_attempt_ || !joining_) return;
          Status error;
          if (reply.ok()) {
            auto payload = wire::ReplyPayload(*reply);
            if (payload.ok()) {
              auto join = UnpackJoinReply(*payload);
              if (join.ok()) {
                joining_ = false;
                StartSwim(self_id_, false);
                swim_->ApplyJoin(join->members, join->config, Clock::now());
                Log()->info("event=joined node={} introducer={} members={}", self_id_.str(),
                            target.ToString(), join->members.size());
                Flush();
                Publish(true);
                round->done(Status::Ok());
                return;
              }
              error = join.status();
            } else {
              error = payload.status();
            }
            // The only introducer answered with a definite refusal: do not retry it.
            if (error.code() != StatusCode::kTimeout && introducers.size() == 1) {
              joining_ = false;
              Log()->error("event=join_failed introducer={} error=\"{}\"", target.ToString(),
                           error.ToString());
              round->done(Status(error.code(),
                                 "join via " + target.ToString() + " refused: " + error.message()));
              return;
            }
          } else {
            error = reply.status();
          }
          if (--round->pending > 0) return;
          if (Clock::now() + milliseconds(50) >= until) {
            joining_ = false;
            Log()->error("event=join_failed introducer={} error=\"{}\"", target.ToString(),
                         error.ToString());
            round->done(Status::Unavailable(
                "join failed: introducer " + target.ToString() + " did not admit us within " +
                std::to_string(options_.local.join_timeout_ms) + " ms (" + error.ToString() + ")"));
            return;
          }
          // Retry shortly with the next candidates (the same one when only one is known).
          loop_.AddTimer(
              milliseconds(100), [this, introducers, index, fanout, until, attempt, round] {
                DoJoin(introducers, index + fanout, until, attempt, std::move(round->done));
              });
        });
  }
}

void MembershipService::HandleJoinRequest(MemberRecord joiner,
                                          std::function<void(Result<JoinReply>)> done) {
  loop_.Post([this, joiner = std::move(joiner), done = std::move(done)] {
    if (!swim_ || leaving_) {
      done(Status::Unavailable("this node is not in a cluster; ask another member"));
      return;
    }
    Status st = swim_->AddMember(joiner, Clock::now());
    if (!st.ok()) {
      done(st);
      return;
    }
    Log()->info("event=introduced member={}", joiner.id.str());
    JoinReply reply{swim_->Records(), swim_->config()};
    Flush();
    done(std::move(reply));
  });
}

void MembershipService::Leave(std::function<void()> done) {
  loop_.Post([this, done = std::move(done)]() mutable {
    if (!swim_ || leaving_) {
      done();
      return;
    }
    leaving_ = true;
    swim_->Leave(Clock::now());
    Flush();
    Log()->info("event=leaving node={} linger_ms={}", self_id_.str(),
                options_.local.leave_linger_ms);
    loop_.AddTimer(milliseconds(options_.local.leave_linger_ms), [this, done = std::move(done)] {
      swim_.reset();
      leaving_ = false;
      SyncPeers();
      Publish(true);
      Log()->info("event=left node={}", self_id_.str());
      done();
    });
  });
}

Status MembershipService::ApplyConfigChange(
    const std::function<Status(ClusterConfig*, LocalOptions*)>& change) {
  ClusterConfig cluster = swim_ ? swim_->config() : options_.cluster;
  LocalOptions local = options_.local;
  RS_RETURN_IF_ERROR(change(&cluster, &local));
  RS_RETURN_IF_ERROR(ValidateConfig(cluster));
  options_.local = local;
  options_.cluster = cluster;
  if (swim_ && !leaving_) RS_RETURN_IF_ERROR(swim_->UpdateConfig(cluster, Clock::now()));
  Flush();
  Publish(true);
  return Status::Ok();
}

void MembershipService::SetConfig(std::string key, std::string value,
                                  std::function<void(Status)> done) {
  loop_.Post([this, key = std::move(key), value = std::move(value), done = std::move(done)] {
    Status st = ApplyConfigChange(
        [&](ClusterConfig* c, LocalOptions* l) { return SetConfigValue(c, l, key, value); });
    if (st.ok()) Log()->info("event=config_set key={} value={}", key, value);
    done(st);
  });
}

void MembershipService::Switch(Protocol protocol, bool suspicion,
                               std::function<void(Status)> done) {
  loop_.Post([this, protocol, suspicion, done = std::move(done)] {
    Status st = ApplyConfigChange([&](ClusterConfig* c, LocalOptions*) {
      c->protocol = protocol;
      c->suspicion = suspicion;
      return Status::Ok();
    });
    if (st.ok()) {
      Log()->info("event=switch protocol={} suspicion={}", ProtocolName(protocol), suspicion);
    }
    done(st);
  });
}

// Both inbound sockets deliver [routing id or topic, payload]; anything else is malformed. Each
// readiness callback handles at most kMaxBatch frames, so timers (probes, acks, suspicion
// deadlines) run between batches however fast frames arrive; ZeroMQ's fair queueing across
// connections puts a peer's ping within the first frames of a batch even during a flood.
void MembershipService::DrainRouter() {
  std::vector<zmq::message_t> parts;
  TimePoint now = Clock::now();
  uint64_t dropped = 0, malformed = 0;
  security::Role from = security::Role::kNone;
  for (int i = 0; i < kMaxBatch && transport::TryRecv(*router_, &parts, &from); ++i) {
    if (parts.empty() || from != security::Role::kMember) {  // a client key: not a member
      ++dropped;
      continue;
    }
    std::string sender = parts[0].to_string();
    if (budgets_.size() > kMaxBudgets && !budgets_.count(sender)) budgets_.clear();
    SenderBudget& budget = budgets_[sender];
    if (now - budget.window_start >= kBudgetWindow) budget = SenderBudget{now, 0};
    if (budget.malformed >= kMalformedPerWindow) {
      ++dropped;  // a flooder: not even decoded until its window ends
      continue;
    }
    if (parts.size() != 2 || !OnDatagram(parts[1].to_string_view())) {
      if (parts.size() != 2) ++malformed;
      ++budget.malformed;
    }
  }
  if (dropped + malformed > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    traffic_.flood_dropped += dropped;
    traffic_.malformed += malformed;
  }
  Flush();
}

void MembershipService::DrainSub() {
  // A SUB frame names no sender (only a topic), so only the batch bound applies here.
  std::vector<zmq::message_t> parts;
  security::Role from = security::Role::kNone;
  for (int i = 0; i < kMaxBatch && transport::TryRecv(*sub_, &parts, &from); ++i) {
    if (from != security::Role::kMember) continue;  // only members publish gossip
    if (parts.size() != 2) {
      std::lock_guard<std::mutex> lock(mu_);
      ++traffic_.malformed;
      continue;
    }
    OnDatagram(parts[1].to_string_view());
  }
  Flush();
}

bool MembershipService::OnDatagram(std::string_view payload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    traffic_.bytes_received += payload.size();
    ++traffic_.messages_received;
  }
  if (options_.local.drop_rate > 0 &&
      std::uniform_real_distribution<double>(0, 100)(rng_) < options_.local.drop_rate) {
    std::lock_guard<std::mutex> lock(mu_);
    ++traffic_.dropped_injected;
    return true;
  }
  // A datagram holds at most a few hundred member records and a heartbeat table per member:
  // far below the generic limits, so hostile length headers cost nothing to refuse.
  wire::DecodeLimits limits;
  limits.max_bytes = 1 << 20;
  limits.max_array = 1 << 14;
  limits.max_map = 1 << 10;
  limits.max_str = 1 << 16;
  limits.max_bin = 1 << 16;
  limits.max_depth = 12;
  auto env = wire::Decode(payload, limits);
  Result<Message> msg = env.ok() ? DecodeMessage(*env) : Result<Message>(env.status());
  if (!msg.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++traffic_.malformed;
    Log()->debug("event=malformed_datagram bytes={} error=\"{}\"", payload.size(),
                 msg.status().ToString());
    return false;
  }
  if (swim_) swim_->Step(*msg, Clock::now());
  return true;
}

void MembershipService::OnTick() {
  if (swim_) swim_->Tick(Clock::now());
  Flush();
}

void MembershipService::Flush() {
  if (!swim_) {
    Publish(false);
    return;
  }
  uint64_t sent_bytes = 0, sent_msgs = 0;
  for (Outgoing& out : swim_->TakeOutbox()) {
    std::string bytes = EncodeMessage(out.message);
    bool ok = false;
    if (out.message.kind == MsgKind::kGossip) {
      zmq::message_t parts[2] = {zmq::message_t(out.to.str().data(), out.to.str().size()),
                                 zmq::message_t(bytes.data(), bytes.size())};
      ok = transport::TrySend(*pub_, parts, 2);
    } else {
      zmq::socket_t* dealer = DealerFor(out.to, out.ports);
      if (dealer == nullptr) continue;
      ok = transport::TrySend(*dealer, bytes);
    }
    if (ok) {
      sent_bytes += bytes.size();
      ++sent_msgs;
    }
  }
  std::vector<Event> events = swim_->TakeEvents();
  bool expelled = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    traffic_.bytes_sent += sent_bytes;
    traffic_.messages_sent += sent_msgs;
    uint64_t now_ms = WallMillis();
    for (Event& e : events) {
      e.wall_ms = now_ms;
      e.seq = next_event_seq_++;
      history_.push_back(e);
      if (history_.size() > kHistoryMax) history_.pop_front();
    }
  }
  for (const Event& e : events) {
    auto level = (e.kind == EventKind::kFail || e.kind == EventKind::kExpelled)
                     ? spdlog::level::warn
                     : spdlog::level::info;
    Log()->log(level, "event={} member={} inc={} self={} detail=\"{}\"", EventName(e.kind),
               e.member.str(), e.incarnation, self_id_.str(), e.detail);
    expelled = expelled || e.kind == EventKind::kExpelled;
  }
  if (!events.empty()) SyncPeers();
  Publish(!events.empty());
  if (expelled && swim_) {
    // Crash-stop: our old id is dead to the cluster. Rejoin under a new id through the members
    // we last knew, so a false failure costs a rejoin, not a node.
    // The member that told us first: it is on the side that convicted us, and it just reached
    // us. Then the members we suspected or convicted ourselves (cut off, we could not hear
    // them: most likely that same side), then the ones we still believed alive (most likely
    // cut off with us). The order matters: the introducer's view becomes ours, and a view from
    // our side of a cut still holds the suspicions and verdicts we made there. Joined through
    // it, we would hand them to the majority as news, and could expel members of the majority
    // (seen in bench-partition's logs before this order; the README's partition section).
    std::vector<HostPort> introducers, unheard;
    const NodeId& by = swim_->expelled_by();
    for (const auto& r : swim_->Records()) {
      if (r.id == self_id_ || r.id == by || r.state == MemberState::kLeft) continue;
      (r.state == MemberState::kAlive ? introducers : unheard).push_back(r.id.address());
    }
    std::shuffle(introducers.begin(), introducers.end(), rng_);
    std::shuffle(unheard.begin(), unheard.end(), rng_);
    introducers.insert(introducers.begin(), unheard.begin(), unheard.end());
    if (!by.empty() && by != self_id_) introducers.insert(introducers.begin(), by.address());
    former_ids_[self_id_] = swim_->self().incarnation;
    while (former_ids_.size() > kFormerIdsKept) {  // the oldest are long forgotten by now
      auto oldest = std::min_element(former_ids_.begin(), former_ids_.end(), [](auto& a, auto& b) {
        return a.first.start_ms() < b.first.start_ms();
      });
      former_ids_.erase(oldest);
    }
    swim_.reset();
    SyncPeers();
    Publish(true);
    Log()->error("event=expelled node={} rejoin_candidates={}", self_id_.str(), introducers.size());
    if (introducers.empty()) return;
    Rejoin(std::move(introducers), Clock::now() + kRejoinFor, kFirstRejoinBackoff);
  }
}

zmq::socket_t* MembershipService::DealerFor(const NodeId& id, const Ports& ports) {
  auto it = dealers_.find(id);
  if (it != dealers_.end()) return it->second.get();
  auto swim_port = ports.find("swim");
  if (swim_port == ports.end()) return nullptr;
  transport::SocketOptions opts;
  opts.send_hwm = 64;  // datagrams to a dead or slow peer are dropped beyond this
  auto dealer = transport::MakeSocket(zmq::socket_type::dealer, opts);
  if (!dealer.ok()) return nullptr;
  auto owned = std::make_unique<zmq::socket_t>(std::move(dealer.value()));
  std::string endpoint = "tcp://" + id.host() + ":" + std::to_string(swim_port->second);
  if (!transport::Connect(*owned, endpoint).ok()) return nullptr;
  return dealers_.emplace(id, std::move(owned)).first->second.get();
}

void MembershipService::Rejoin(std::vector<HostPort> introducers, TimePoint give_up,
                               Clock::duration backoff) {
  if (swim_ || joining_) return;  // back in (or a `rainctl join` is under way)
  joining_ = true;
  self_id_ = NextId();
  auto until = Clock::now() + milliseconds(options_.local.join_timeout_ms);
  DoJoin(introducers, 0, until, ++join_attempt_,
         [this, introducers, give_up, backoff](Status st) mutable {
           if (st.ok()) return;
           if (Clock::now() + backoff >= give_up) {
             Log()->error("event=rejoin_gave_up error=\"{}\" hint=\"rainctl join HOST:PORT\"",
                          st.ToString());
             return;
           }
           Log()->warn("event=rejoin_failed error=\"{}\" retry_in_ms={}", st.ToString(),
                       ToMillis(backoff));
           loop_.AddTimer(backoff, [this, introducers = std::move(introducers), give_up, backoff] {
             Rejoin(introducers, give_up,
                    std::min<Clock::duration>(2 * backoff, kMaxRejoinBackoff));
           });
         });
}

void MembershipService::SyncPeers() {
  std::set<std::string> want_sub;
  std::set<NodeId> keep_dealers;
  if (swim_) {
    for (const auto& r : swim_->Records()) {
      if (r.id == self_id_ || r.state == MemberState::kLeft) continue;
      keep_dealers.insert(r.id);  // failed members too: they are sent their verdict now and then
      if (r.state == MemberState::kFailed) continue;
      (void)DealerFor(r.id, r.ports);  // connect early: the first probe must not wait on TCP
      auto g = r.ports.find("gossip");
      if (g != r.ports.end())
        want_sub.insert("tcp://" + r.id.host() + ":" + std::to_string(g->second));
    }
  }
  for (auto it = dealers_.begin(); it != dealers_.end();) {
    it = keep_dealers.count(it->first) ? std::next(it) : dealers_.erase(it);
  }
  bool dropping = subscribed_topic_ != self_id_.str();
  for (const auto& ep : sub_connected_) dropping = dropping || !want_sub.count(ep);
  // libzmq (4.3.x) aborts on `!_more` in fq.cpp if a SUB pipe is disconnected locally while
  // zmq_poll has prefetched the first frame of a message from it: local disconnects terminate
  // the pipe at once. So read everything waiting before any disconnect or resubscription, and
  // handle it once the links are changed.
  std::vector<std::string> waiting;
  if (dropping) {
    std::vector<zmq::message_t> parts;
    security::Role from = security::Role::kNone;
    while (transport::TryRecv(*sub_, &parts, &from)) {
      if (parts.size() == 2 && from == security::Role::kMember) {
        waiting.push_back(parts[1].to_string());
      }
    }
  }
  for (const auto& ep : sub_connected_) {
    if (!want_sub.count(ep)) (void)transport::Disconnect(*sub_, ep);
  }
  for (const auto& ep : want_sub) {
    if (!sub_connected_.count(ep)) {
      Status st = transport::Connect(*sub_, ep);
      if (!st.ok())
        Log()->warn("event=sub_connect_failed endpoint={} error=\"{}\"", ep, st.ToString());
    }
  }
  sub_connected_ = want_sub;
  // Our own id is the topic peers publish to us; re-subscribe when it changes.
  if (subscribed_topic_ != self_id_.str()) {
    if (!subscribed_topic_.empty()) {
      try {
        sub_->set(zmq::sockopt::unsubscribe, subscribed_topic_);
      } catch (const zmq::error_t&) {
      }
    }
    (void)transport::Subscribe(*sub_, self_id_.str());
    subscribed_topic_ = self_id_.str();
  }
  for (const auto& payload : waiting) OnDatagram(payload);
}

void MembershipService::Publish(bool force) {
  TimePoint now = Clock::now();
  if (!force && now - last_publish_ < milliseconds(200)) return;
  last_publish_ = now;
  auto view = std::make_shared<View>();
  view->self = self_id_;
  view->local = options_.local;
  uint64_t wall = WallMillis();
  auto since_wall = [&](TimePoint t) {
    return wall - static_cast<uint64_t>(std::max<int64_t>(0, ToMillis(now - t)));
  };
  if (swim_) {
    view->in_cluster = !leaving_;
    view->self_state = swim_->self().state;
    view->config = swim_->config();
    auto since = swim_->StateSince();
    for (const auto& r : swim_->Records()) {
      MemberView mv{r, Swim::RingId(r.id), 0};
      auto s = since.find(r.id);
      mv.since_ms = s != since.end() ? since_wall(s->second) : r.id.start_ms();
      view->members.push_back(std::move(mv));
    }
    std::lock_guard<std::mutex> lock(mu_);
    swim_stats_ = swim_->stats();
  } else {
    view->in_cluster = false;
    view->self_state = MemberState::kLeft;
    view->config = options_.cluster;
    view->members.push_back(MemberView{MemberRecord{self_id_, MemberState::kLeft, 0, ports_},
                                       Swim::RingId(self_id_), wall});
  }
  std::sort(view->members.begin(), view->members.end(),
            [](const MemberView& a, const MemberView& b) { return a.record.id < b.record.id; });
  std::lock_guard<std::mutex> lock(mu_);
  view_ = std::move(view);
}

ViewPtr MembershipService::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

std::vector<Event> MembershipService::EventsSince(uint64_t seq, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> out;
  for (const Event& e : history_) {
    if (e.seq > seq) out.push_back(e);
    if (out.size() >= max) break;
  }
  return out;
}

TrafficStats MembershipService::traffic() const {
  std::lock_guard<std::mutex> lock(mu_);
  return traffic_;
}

Stats MembershipService::swim_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return swim_stats_;
}

}  // namespace rs::membership
