// Direct reads (fetch.h): the sources send the chunks straight to the reader (rainctl, here the
// rig's tool port), whose acks, relayed through AckThrough(), are the fetch's progress.
#include <catch2/catch.hpp>

#include "daemon/hydfs/fetch.h"
#include "tests/unit/hydfs/fetch_rig.h"

namespace rs::hydfs {
namespace {

using namespace fetch_testing;  // NOLINT(build/namespaces)

TEST_CASE("a direct fetch sends every chunk straight to the reader and ends on its last ack",
          "[hydfs][fetch][direct]") {
  Rig rig;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .direct = true});
  rig.RequireDeliveredInOrder(items);  // each chunk once, in order
  CHECK(rig.delivered.empty());        // nothing came through the fetch's own port
  CHECK(rig.tool_ends == 0);           // the source's end frame goes to the fetch, not the reader
  CHECK(rig.fetch->bytes() == rig.Expected(items).size());
  REQUIRE(rig.s1.reads.size() == 1);
  CHECK(rig.s1.reads[0].reader == rig.tool.endpoint());
  CHECK(rig.s1.reads[0].control == rig.reader.endpoint());
  CHECK(rig.s1.reads[0].reader_client);
  CHECK(rig.s2.reads.empty());
}

TEST_CASE("a direct fetch whose source goes silent resumes at the reader's last ack",
          "[hydfs][fetch][direct]") {
  Rig rig;
  rig.s1.silent_from_seq = 3;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .idle_timeout = std::chrono::milliseconds(300), .direct = true});
  rig.RequireDeliveredInOrder(items);  // each chunk once, in order
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 3);
  CHECK(rig.s2.reads[0].reader == rig.tool.endpoint());
  CHECK(rig.s1.ends_from_reader.size() == 1);  // the silent source was told to stop
}

TEST_CASE("a source that reports a corrupt chunk in a direct fetch is replaced at that chunk",
          "[hydfs][fetch][direct]") {
  Rig rig;
  rig.s1.end_corrupt_seq = 4;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .direct = true});
  rig.RequireDeliveredInOrder(items);  // each chunk once, in order
  REQUIRE(rig.corrupt.size() == 1);
  CHECK(rig.corrupt[0].source == rig.s1.node().id);
  CHECK(rig.corrupt[0].append == rig.file[0].meta.id);
  CHECK(rig.corrupt[0].chunk == 4);
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 4);
}

TEST_CASE("after a failover the reader drops the chunks it already holds and acks them again",
          "[hydfs][fetch][direct]") {
  Rig rig;
  rig.tool_holds_acks = true;  // the reader's acks are late: the fetch believes it has nothing
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 2, .direct = true});
  REQUIRE(rig.Eventually([&] { return rig.tool_expected == 2; }));
  rig.OnLoop([&] {
    CHECK(rig.fetch->next_seq() == 0);
    rig.tool_holds_acks = false;
    rig.fetch->SourceFailed(rig.s1.node().id);  // s2 starts again at chunk 0
    return true;
  });
  rig.RequireDeliveredInOrder(items);  // each chunk once, in order
  CHECK(rig.tool_repeats == 2);
  REQUIRE(rig.s2.reads.size() == 1);
  CHECK(rig.s2.reads[0].first_seq == 0);
}

TEST_CASE("a direct fetch keeps its source no more than a window ahead of the reader's acks",
          "[hydfs][fetch][direct]") {
  Rig rig;
  rig.tool_holds_acks = true;
  auto items = rig.WholeFile({rig.s1.node(), rig.s2.node()});
  rig.Start(items, {.window = 3, .direct = true});
  REQUIRE(rig.Eventually([&] { return rig.tool_expected == 3; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  rig.OnLoop([&] {
    CHECK(rig.s1.sent.size() == 3);
    CHECK(rig.done_calls == 0);
    rig.tool_holds_acks = false;
    rig.fetch->AckThrough(rig.tool_expected - 1);
    return true;
  });
  rig.RequireDeliveredInOrder(items);  // each chunk once, in order
}

}  // namespace
}  // namespace rs::hydfs
