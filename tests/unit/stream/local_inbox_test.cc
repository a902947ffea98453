// LocalInbox (daemon/stream/local_inbox.h): the in-memory hand-over between tasks of one raind.
#include "daemon/stream/local_inbox.h"

#include <poll.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <deque>
#include <string>
#include <thread>
#include <vector>

namespace rs::stream {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST_CASE("a local inbox hands frames over in order, bounded, and is found by its endpoint",
          "[stream]") {
  auto inbox = LocalInbox::Register("tcp://127.0.0.1:1", 3);
  REQUIRE(inbox);
  CHECK(LocalInbox::Find("tcp://127.0.0.1:1") == inbox);
  CHECK(LocalInbox::Find("tcp://127.0.0.1:2") == nullptr);
  CHECK_FALSE(Readable(inbox->fd()));
  CHECK(inbox->Push("a"));
  CHECK(Readable(inbox->fd()));
  CHECK(inbox->Push("b"));
  CHECK(inbox->Push("c"));
  CHECK_FALSE(inbox->Push("d"));  // full: the sender keeps the frame and sends it again

  std::deque<std::string> got;
  CHECK(inbox->Take(&got, 2) == 2);
  CHECK(Readable(inbox->fd()));  // one more waits
  CHECK(inbox->Take(&got, 2) == 1);
  CHECK_FALSE(Readable(inbox->fd()));
  CHECK(got == std::deque<std::string>{"a", "b", "c"});
  CHECK(inbox->Take(&got, 2) == 0);

  inbox->Close();
  CHECK(LocalInbox::Find("tcp://127.0.0.1:1") == nullptr);
  CHECK_FALSE(inbox->Push("e"));
}

TEST_CASE("a closed or destroyed inbox unregisters only itself", "[stream]") {
  auto first = LocalInbox::Register("tcp://127.0.0.1:3", 10);
  auto second = LocalInbox::Register("tcp://127.0.0.1:3", 10);  // the port reused
  first->Close();
  CHECK(LocalInbox::Find("tcp://127.0.0.1:3") == second);
  second.reset();
  CHECK(LocalInbox::Find("tcp://127.0.0.1:3") == nullptr);
}

// Senders on other threads: every frame arrives once, each sender's in order, and frames never
// wait while the fd is not readable (the reader, which polls it, would sleep through them).
TEST_CASE("frames from concurrent senders all arrive, none missed by the poll", "[stream]") {
  auto inbox = LocalInbox::Register("tcp://127.0.0.1:4", 100000);
  constexpr int kSenders = 4, kFrames = 20000;
  std::vector<std::thread> senders;
  std::atomic<int> done{0};
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      for (int i = 0; i < kFrames; ++i) {
        while (!inbox->Push(std::to_string(s) + ":" + std::to_string(i))) std::this_thread::yield();
      }
      ++done;
    });
  }
  std::vector<int> next(kSenders, 0);
  int total = 0, missed = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (total < kSenders * kFrames && std::chrono::steady_clock::now() < deadline) {
    pollfd p{inbox->fd(), POLLIN, 0};
    bool signalled = ::poll(&p, 1, 100) == 1;
    std::deque<std::string> got;
    inbox->Take(&got, 256);
    // Once every sender is done nothing can push between the poll and the Take: frames found
    // after a silent poll then waited with the fd not readable.
    if (!signalled && !got.empty() && done.load() == kSenders) ++missed;
    for (const auto& f : got) {
      size_t colon = f.find(':');
      int s = std::stoi(f.substr(0, colon)), i = std::stoi(f.substr(colon + 1));
      CHECK(i == next[s]);
      next[s] = i + 1;
      ++total;
    }
  }
  for (auto& t : senders) t.join();
  CHECK(total == kSenders * kFrames);
  CHECK(missed == 0);
}

}  // namespace
}  // namespace rs::stream
