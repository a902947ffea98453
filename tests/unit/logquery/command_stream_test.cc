// CommandStream (real child processes, real ZeroMQ on 127.0.0.1) and QueryFiles (a temp dir).
#include "daemon/logquery/command_stream.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "daemon/logquery/logquery_service.h"
#include "shared/transport/data_stream.h"
#include "shared/transport/sockets.h"
#include "shared/wire/fields.h"

namespace rs::logquery {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The reader side of a stream: a PULL it owns and a PUSH to the stream's ack endpoint.
class Reader {
 public:
  Reader() {
    pull_ = std::move(transport::MakeSocket(zmq::socket_type::pull).value());
    auto port = transport::Bind(pull_, "127.0.0.1", 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(port.value());
    push_ = std::move(transport::MakeSocket(zmq::socket_type::push).value());
  }
  const std::string& endpoint() const { return endpoint_; }
  void ConnectAcks(const std::string& endpoint) {
    REQUIRE(transport::Connect(push_, endpoint).ok());
  }
  std::optional<transport::StreamMsg> Next(std::chrono::milliseconds wait) {
    zmq::pollitem_t item{static_cast<void*>(pull_), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, wait);
    std::vector<zmq::message_t> parts;
    if (!(item.revents & ZMQ_POLLIN) || !transport::TryRecv(pull_, &parts)) return std::nullopt;
    auto msg = transport::ParseStreamFrame(std::move(parts[0]));
    REQUIRE(msg.ok());
    return std::move(msg.value());
  }
  void Send(zmq::message_t frame) { REQUIRE(transport::TrySend(push_, &frame, 1)); }

 private:
  zmq::socket_t pull_, push_;
  std::string endpoint_;
};

struct Started {
  std::shared_ptr<CommandStream> stream;
  std::shared_ptr<std::promise<Status>> done = std::make_shared<std::promise<Status>>();
  std::future<Status> finished = done->get_future();
};

Started Start(Reader& reader, std::vector<std::string> argv, CommandStreamOptions o = {}) {
  Started s;
  o.peer = reader.endpoint();
  o.stream = 42;
  auto done = s.done;
  auto started =
      CommandStream::Start(argv, {}, o, [done](const Status& st) { done->set_value(st); });
  REQUIRE(started.ok());
  s.stream = *started;
  reader.ConnectAcks(s.stream->endpoint());
  return s;
}

// Reads until the end frame, acking every chunk; returns the data and the end payload's fields.
struct Collected {
  std::string data;
  uint64_t selected = 0;
  int64_t exit = -1;
  std::string stderr_text;
  size_t frames = 0;
};

Collected ReadAll(Reader& reader) {
  Collected c;
  for (int idle = 0; idle < 100;) {
    auto msg = reader.Next(100ms);
    if (!msg) {
      ++idle;
      continue;
    }
    if (msg->kind == transport::StreamKind::kChunk) {
      c.data.append(msg->data);
      ++c.frames;
      reader.Send(transport::AckFrame(42, msg->seq, 127));
    } else if (msg->kind == transport::StreamKind::kEnd) {
      REQUIRE(msg->status.ok());
      c.selected = 0;
      const msgpack::object* sel = wire::MapGet(msg->payload, "selected");
      REQUIRE(sel != nullptr);
      wire::ReadUint(*sel, &c.selected);
      wire::ReadInt(*wire::MapGet(msg->payload, "exit"), &c.exit);
      wire::ReadString(*wire::MapGet(msg->payload, "stderr"), &c.stderr_text);
      return c;
    }
  }
  FAIL("no end frame");
  return c;
}

TEST_CASE("a command's whole output arrives in order, in whole lines, with its exit code",
          "[logquery]") {
  Reader reader;
  auto s = Start(reader, {"sh", "-c", "seq 1 200000; echo oops >&2; exit 3"});
  Collected c = ReadAll(reader);
  std::string expected;
  for (int i = 1; i <= 200000; ++i) expected += std::to_string(i) + "\n";
  REQUIRE(c.data == expected);
  REQUIRE(c.selected == 200000);
  REQUIRE(c.exit == 3);
  REQUIRE(c.stderr_text == "oops\n");
  REQUIRE(c.frames > 1);  // ~1.3 MB in frames of at most 256 KB
  REQUIRE(s.finished.wait_for(2s) == std::future_status::ready);
}

TEST_CASE("a reader that acknowledges nothing receives at most the window", "[logquery]") {
  Reader reader;
  CommandStreamOptions o;
  o.window = 3;
  o.frame_bytes = 4096;
  auto s = Start(reader, {"sh", "-c", "seq 1 1000000"}, o);
  size_t frames = 0;
  while (auto msg = reader.Next(500ms)) {
    if (msg->kind == transport::StreamKind::kChunk) ++frames;
  }
  REQUIRE(frames == 3);
  reader.Send(transport::EndFrame(42, 127, Status::Unavailable("enough")));  // cancel
  REQUIRE(s.finished.wait_for(3s) == std::future_status::ready);
}

TEST_CASE("a cancelled stream kills its command", "[logquery]") {
  Reader reader;
  auto s = Start(reader, {"sh", "-c", "while true; do echo x; sleep 0.01; done"});
  auto first = reader.Next(2000ms);
  REQUIRE(first.has_value());
  reader.Send(transport::EndFrame(42, 127, Status::Unavailable("stop")));
  REQUIRE(s.finished.wait_for(3s) == std::future_status::ready);
  REQUIRE(s.finished.get().code() == StatusCode::kUnavailable);
}

TEST_CASE("a silent command sends keepalives, and a reader that stops acking is given up",
          "[logquery]") {
  Reader reader;
  CommandStreamOptions o;
  o.keepalive = 100ms;
  o.peer_timeout = 400ms;
  auto s = Start(reader, {"sleep", "30"}, o);
  auto keepalive = reader.Next(1000ms);
  REQUIRE(keepalive.has_value());
  REQUIRE(keepalive->kind == transport::StreamKind::kChunk);
  REQUIRE(keepalive->data.empty());
  // Never acknowledged: the stream gives the reader up and kills sleep.
  REQUIRE(s.finished.wait_for(5s) == std::future_status::ready);
  REQUIRE(s.finished.get().code() == StatusCode::kTimeout);
}

TEST_CASE("in count mode the selected total is the sum of grep -c's counts", "[logquery]") {
  Reader reader;
  CommandStreamOptions o;
  o.count_mode = true;
  auto s = Start(reader, {"printf", "a.log:3\\nb.log:4\\nweird:name:10\\n"}, o);
  Collected c = ReadAll(reader);
  REQUIRE(c.selected == 17);
}

TEST_CASE("a command that cannot start ends the stream with an error", "[logquery]") {
  Reader reader;
  auto s = Start(reader, {"/nonexistent/command"});
  std::optional<transport::StreamMsg> end;
  for (int idle = 0; idle < 100 && !end; ++idle) end = reader.Next(100ms);
  REQUIRE(end.has_value());
  REQUIRE(end->kind == transport::StreamKind::kEnd);
  INFO(end->status.ToString());
  CHECK(end->status.code() == StatusCode::kIOError);
  CHECK(end->status.message() == "cannot execute /nonexistent/command: No such file or directory");
  REQUIRE(s.finished.wait_for(5s) == std::future_status::ready);
  CHECK(s.finished.get().code() == StatusCode::kIOError);
}

TEST_CASE("query files: the log and its rotations oldest first, or a sorted glob", "[logquery]") {
  std::string dir = fs::temp_directory_path() / ("rs-lq-" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const char* name : {"raind.log", "raind.1.log", "raind.2.log", "raind.10.log", "raind.x.log",
                           "app.b.log", "app.a.log", "other.txt"}) {
    std::ofstream(dir + "/" + name) << "x\n";
  }
  auto def = QueryFiles(dir, "raind.log", "");
  REQUIRE(def.ok());
  REQUIRE(*def ==
          std::vector<std::string>{"raind.10.log", "raind.2.log", "raind.1.log", "raind.log"});
  auto glob = QueryFiles(dir, "raind.log", "app.*.log");
  REQUIRE(glob.ok());
  REQUIRE(*glob == std::vector<std::string>{"app.a.log", "app.b.log"});
  REQUIRE(QueryFiles(dir, "raind.log", "../etc/*").status().code() == StatusCode::kInvalidArgument);
  REQUIRE(QueryFiles(dir, "raind.log", "none*").status().code() == StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rs::logquery
