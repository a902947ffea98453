// The task's inbox and its sends (README.md "Channels"): a PULL socket, and a LocalInbox for
// tasks of the same raind, which hand frames over in memory; PUSH sockets to other processes.
#include "daemon/stream/task_impl.h"

namespace rs::stream {

zmq::socket_t* Task::Impl::Push(const std::string& endpoint) {
  auto it = pushes.find(endpoint);
  if (it != pushes.end()) return it->second.get();
  transport::SocketOptions o;
  o.to_client = client_endpoints.count(endpoint) > 0;
  o.send_hwm = o.to_client ? 1000 : 100000;  // to a client: acks only, resent until answered
  o.max_message_bytes = 64 << 20;
  auto s = transport::MakeSocket(zmq::socket_type::push, o);
  if (!s.ok()) return nullptr;
  auto sock = std::make_unique<zmq::socket_t>(std::move(*s));
  if (!transport::Connect(*sock, endpoint).ok()) return nullptr;
  return pushes.emplace(endpoint, std::move(sock)).first->second.get();
}

// False when the frame could not be queued (no socket, or its queue is full): a data frame
// then waits in its channel for the next Flush; a lost ack is sent again on the next repeat.
// A socket to a client that refuses a frame is closed, the next send dials afresh: it never
// redials by itself (SocketOptions::to_client), and what it held were acks, which are resent.
bool Task::Impl::Send(const std::string& endpoint, const std::string& bytes) {
  if (auto local = LocalInbox::Find(endpoint)) {
    ++local_sent;
    return local->Push(bytes);
  }
  zmq::socket_t* s = Push(endpoint);
  if (!s) return false;
  zmq::message_t m(bytes.data(), bytes.size());
  if (transport::TrySend(*s, &m, 1)) return true;
  if (client_endpoints.count(endpoint)) pushes.erase(endpoint);
  return false;
}

// Hands channel d's unsent frames to its socket.
void Task::Impl::Flush(uint32_t d) {
  OutChannel& o = out[d];
  if (o.tx.Unsent()) o.tx.Flush([&](const std::string& b) { return Send(o.endpoint, b); });
}

// At most 256 frames from each of the local inbox and the socket per call, so the loop stays
// responsive. Frames of the local inbox come from tasks of this process (role kMember).
bool Task::Impl::DrainInbox() {
  bool any = false;
  if (local_inbox) {
    std::deque<std::string> frames;
    local_inbox->Take(&frames, 256);
    for (auto& bytes : frames) {
      any = true;
      ++local_received;
      Received(std::move(bytes), security::Role::kMember);
    }
  }
  std::vector<zmq::message_t> parts;
  security::Role from = security::Role::kNone;
  for (int n = 0; n < 256 && transport::TryRecv(*inbox, &parts, &from); ++n) {
    any = true;
    if (from < security::Role::kAdmin) {  // a read-only client may not feed a job
      Malformed("a frame from a key without the admin role");
      continue;
    }
    if (parts.size() != 1) {
      Malformed("a multipart message");
      continue;
    }
    Received(parts[0].to_string(), from);
  }
  return any;
}

void Task::Impl::Received(std::string bytes, security::Role from) {
  auto f = ParseTaskFrame(std::move(bytes));
  if (!f.ok()) {
    Malformed(f.status().message());
    return;
  }
  if (f->type == static_cast<uint16_t>(wire::MsgType::kTaskAck)) {
    OnAck(f->ack);
    return;
  }
  if (from != security::Role::kMember) {  // rainsource: acks go back to a client
    if (client_endpoints.size() >= 1024) client_endpoints.clear();  // forgotten: afresh
    client_endpoints.insert(f->data.ack_to);
  }
  OnData(std::move(*f));
}

void Task::Impl::Malformed(const std::string& what) {
  ++malformed;
  if (Clock::now() - malformed_logged < std::chrono::seconds(1)) return;
  malformed_logged = Clock::now();
  TaskLog("event=bad_frame count=" + std::to_string(malformed) + " last=\"" + what + "\"");
}

void Task::Impl::Wait(int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  items.push_back({static_cast<void*>(*inbox), 0, ZMQ_POLLIN, 0});
  if (local_inbox) items.push_back({nullptr, local_inbox->fd(), ZMQ_POLLIN, 0});
  if (op) {
    if (op->in_flight() > 0) items.push_back({nullptr, op->stdout_fd(), ZMQ_POLLIN, 0});
    items.push_back({nullptr, op->stderr_fd(), ZMQ_POLLIN, 0});
  }
  try {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t&) {
  }
}

}  // namespace rs::stream
