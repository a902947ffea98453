// rainpipe: adapters that chain operator executables (operators/PROTOCOL.md) with plain Unix
// pipes, without a worker: the reference that scripts/bench_stream.py sets the engine against.
//
//   cat events.csv | rainpipe lines | rainop-grep --column 2 -E '^click$' | rainpipe relay
//     | rainop-select 1 | rainpipe relay | rainop-count 0 | rainpipe values > out
//   (one shell line)
//
//   lines   text lines on stdin -> hello, then batches of [FILE:LINE, line] (lines from 1;
//           the newline, and a CR before it, are not part of the value)
//   relay   an operator's messages on stdin (ready, results, states) -> hello, then the
//           results' output tuples, in order, as batches for the next operator
//   values  an operator's messages on stdin -> the value of every output tuple, one per line
//
// Streaming: nothing waits for the end of input or for a full batch. Each adapter decodes all
// it has read, and writes a partial batch (and its buffered output) only when no more input is
// ready right now (poll with timeout 0); input that arrives faster is cut into full batches.
// The hello context is minimal (the operators take their real arguments on their command line):
// {version 1, job, stage, stages, task 0, tasks 1, args [], csv_header}. Exit 0 at end of input,
// 2 with one line on stderr for bad arguments or bad input, 1 when stdout fails.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace {

constexpr char kUsage[] =
    "usage: rainpipe lines  [--batch N] [--file NAME] [HELLO OPTIONS]\n"
    "       rainpipe relay  [--batch N] [HELLO OPTIONS]\n"
    "       rainpipe values\n"
    "Chains RainStorm operator executables (operators/PROTOCOL.md) with Unix pipes:\n"
    "  lines   stdin text lines -> hello + batches of [FILE:LINE, line] (FILE default 'stdin')\n"
    "  relay   an operator's results -> hello + batches of their output tuples, in order\n"
    "  values  an operator's results -> each output value on its own line\n"
    "  --batch N  at most N tuples per batch (default 1000)\n"
    "HELLO OPTIONS (the context sent to the next operator):\n"
    "  --job J (default pipe)  --stage K (default 0)  --stages N (default 1)\n"
    "  --header LINE  csv_header (default nil)\n"
    "Example: cat f.csv | rainpipe lines | rainop-grep x | rainpipe relay --stage 1 --stages 2\n"
    "         | rainop-count 0 | rainpipe values\n";

constexpr size_t kReadBlock = 1 << 20;    // bytes per read(2)
constexpr size_t kWriteHigh = 1 << 20;    // buffered output written once it reaches this
constexpr size_t kMaxMessage = 1u << 30;  // one operator message at most (a sanity bound)

enum Type : uint64_t { kHello = 0, kReady = 1, kBatch = 2, kResult = 3, kState = 5 };

struct Options {
  std::string mode;
  size_t batch = 1000;
  std::string file = "stdin";
  std::string job = "pipe";
  uint64_t stage = 0, stages = 1;
  std::optional<std::string> header;
};

[[noreturn]] void Die(const std::string& what, int code = 2) {
  std::fprintf(stderr, "rainpipe: %s\n", what.c_str());
  std::exit(code);
}

uint64_t ParseUint(const char* text, const char* flag) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-') {
    Die(std::string(flag) + " wants a non-negative integer, got '" + text + "'");
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  if (argc >= 2 && (std::string_view(argv[1]) == "-h" || std::string_view(argv[1]) == "--help")) {
    std::fputs(kUsage, stdout);
    std::exit(0);
  }
  if (argc < 2) Die(std::string("which mode?\n") + kUsage);
  Options o;
  o.mode = argv[1];
  if (o.mode != "lines" && o.mode != "relay" && o.mode != "values") {
    Die("unknown mode '" + o.mode + "' (lines, relay, values)");
  }
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    bool hello_option = a == "--job" || a == "--stage" || a == "--stages" || a == "--header";
    bool known = a == "--batch" || (a == "--file" && o.mode == "lines") ||
                 (hello_option && o.mode != "values");
    if (!known) Die("unknown option '" + std::string(a) + "' for " + o.mode + " (see --help)");
    if (i + 1 >= argc) Die(std::string(a) + " wants a value");
    const char* v = argv[++i];
    if (a == "--batch") {
      o.batch = ParseUint(v, "--batch");
      if (o.batch == 0) Die("--batch must be at least 1");
    } else if (a == "--file") {
      o.file = v;
    } else if (a == "--job") {
      o.job = v;
    } else if (a == "--stage") {
      o.stage = ParseUint(v, "--stage");
    } else if (a == "--stages") {
      o.stages = ParseUint(v, "--stages");
    } else {
      o.header = std::string(v);
    }
  }
  return o;
}

// True when fd has input (or end of input) ready right now.
bool InputReady(int fd) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

// Buffered stdout; Flush writes everything.
class Output {
 public:
  msgpack::sbuffer& buffer() { return buffer_; }
  void MaybeFlush() {
    if (buffer_.size() >= kWriteHigh) Flush();
  }
  void Flush() {
    const char* p = buffer_.data();
    size_t left = buffer_.size();
    while (left > 0) {
      ssize_t w = ::write(1, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        Die(std::string("cannot write to stdout: ") + std::strerror(errno), 1);
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
    buffer_.clear();
  }

 private:
  msgpack::sbuffer buffer_{kWriteHigh + (64 << 10)};
};

void PackStr(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void WriteHello(const Options& o, Output& out) {
  msgpack::packer<msgpack::sbuffer> pk(&out.buffer());
  pk.pack_array(2);
  pk.pack_uint64(kHello);
  pk.pack_map(8);
  PackStr(pk, "version");
  pk.pack_uint64(1);
  PackStr(pk, "job");
  PackStr(pk, o.job);
  PackStr(pk, "stage");
  pk.pack_uint64(o.stage);
  PackStr(pk, "stages");
  pk.pack_uint64(o.stages);
  PackStr(pk, "task");
  pk.pack_uint64(0);
  PackStr(pk, "tasks");
  pk.pack_uint64(1);
  PackStr(pk, "args");
  pk.pack_array(0);
  PackStr(pk, "csv_header");
  if (o.header) {
    PackStr(pk, *o.header);
  } else {
    pk.pack_nil();
  }
  out.Flush();  // the operator answers hello before anything else
}

// Tuples packed as [key, value] pairs, not yet framed as a batch.
class PendingBatch {
 public:
  explicit PendingBatch(size_t limit) : limit_(limit) {}
  void Add(std::string_view key, std::string_view value) {
    pk_.pack_array(2);
    PackStr(pk_, key);
    PackStr(pk_, value);
    ++count_;
  }
  bool full() const { return count_ >= limit_; }
  // Writes [2, [tuples...]] to out (nothing when empty: a batch holds one or more tuples).
  void WriteTo(Output& out) {
    if (count_ == 0) return;
    msgpack::packer<msgpack::sbuffer> pk(&out.buffer());
    pk.pack_array(2);
    pk.pack_uint64(kBatch);
    pk.pack_array(static_cast<uint32_t>(count_));
    out.buffer().write(tuples_.data(), tuples_.size());
    tuples_.clear();
    count_ = 0;
    out.MaybeFlush();
  }

 private:
  size_t limit_;
  size_t count_ = 0;
  msgpack::sbuffer tuples_{256 << 10};
  msgpack::packer<msgpack::sbuffer> pk_{&tuples_};
};

// Reads at most cap bytes of stdin into buf; 0 at end of input.
size_t ReadSome(char* buf, size_t cap) {
  while (true) {
    ssize_t r = ::read(0, buf, cap);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) Die(std::string("cannot read stdin: ") + std::strerror(errno));
  }
}

int RunLines(const Options& o) {
  Output out;
  WriteHello(o, out);
  PendingBatch batch(o.batch);
  std::string buf(kReadBlock, '\0');
  size_t have = 0;  // bytes of an unfinished line at the start of buf
  uint64_t line_no = 0;
  std::string key = o.file + ":";
  const size_t key_prefix = key.size();
  auto emit = [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    key.resize(key_prefix);
    key += std::to_string(++line_no);
    batch.Add(key, line);
    if (batch.full()) batch.WriteTo(out);
  };
  while (true) {
    if (buf.size() - have < kReadBlock / 2) buf.resize(buf.size() * 2);  // a very long line
    size_t n = ReadSome(buf.data() + have, buf.size() - have);
    if (n == 0) break;
    std::string_view data(buf.data(), have + n);
    size_t start = 0;
    while (true) {
      size_t nl = data.find('\n', start);
      if (nl == std::string_view::npos) break;
      emit(data.substr(start, nl - start));
      start = nl + 1;
    }
    have = data.size() - start;
    std::memmove(buf.data(), buf.data() + start, have);
    if (!InputReady(0)) {
      batch.WriteTo(out);
      out.Flush();
    }
  }
  if (have > 0) emit(std::string_view(buf.data(), have));  // a last line without newline
  batch.WriteTo(out);
  out.Flush();
  return 0;
}

std::string_view Text(const msgpack::object& o, const char* what) {
  if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
  if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
  Die(std::string("an output ") + what + " is not a string");
}

// Decodes the operator's messages from stdin; calls on_tuple(key, value) for each output tuple
// of each result, in order, and on_idle() whenever no more input is ready right now.
template <typename OnTuple, typename OnIdle>
void ReadResults(OnTuple on_tuple, OnIdle on_idle) {
  // Strings are referenced in the unpacker's buffer, not copied into the zone.
  msgpack::unpacker unpacker([](msgpack::type::object_type, size_t, void*) { return true; },
                             nullptr, kReadBlock);
  bool ready = false;
  while (true) {
    unpacker.reserve_buffer(kReadBlock);
    size_t n = ReadSome(unpacker.buffer(), unpacker.buffer_capacity());
    if (n == 0) break;
    unpacker.buffer_consumed(n);
    if (unpacker.nonparsed_size() > kMaxMessage) Die("an operator message over 1 GiB");
    msgpack::object_handle handle;
    while (true) {
      try {
        if (!unpacker.next(handle)) break;
      } catch (const std::exception& e) {
        Die(std::string("undecodable operator output (") + e.what() + ")");
      }
      const msgpack::object& msg = handle.get();
      if (msg.type != msgpack::type::ARRAY || msg.via.array.size == 0 ||
          msg.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER) {
        Die("an operator message is not [type, ...]");
      }
      uint64_t type = msg.via.array.ptr[0].via.u64;
      if (!ready) {
        if (type != kReady) Die("the operator's first message is not ready");
        ready = true;
        continue;
      }
      if (type == kState) continue;
      if (type != kResult || msg.via.array.size != 2 ||
          msg.via.array.ptr[1].type != msgpack::type::ARRAY) {
        Die("unexpected operator message of type " + std::to_string(type));
      }
      const msgpack::object_array& outputs = msg.via.array.ptr[1].via.array;
      for (uint32_t i = 0; i < outputs.size; ++i) {
        const msgpack::object& per_input = outputs.ptr[i];
        if (per_input.type != msgpack::type::ARRAY) Die("a result entry is not a list");
        for (uint32_t j = 0; j < per_input.via.array.size; ++j) {
          const msgpack::object& t = per_input.via.array.ptr[j];
          if (t.type != msgpack::type::ARRAY || t.via.array.size != 2) {
            Die("an output tuple is not [key, value]");
          }
          on_tuple(Text(t.via.array.ptr[0], "key"), Text(t.via.array.ptr[1], "value"));
        }
      }
    }
    if (!InputReady(0)) on_idle();
  }
  if (unpacker.nonparsed_size() != 0) Die("the operator's output ends inside a message");
  if (!ready) Die("the operator wrote nothing (no ready); did it start?");
}

int RunRelay(const Options& o) {
  Output out;
  WriteHello(o, out);  // at once: the next operator starts while the previous one works
  PendingBatch batch(o.batch);
  ReadResults(
      [&](std::string_view key, std::string_view value) {
        batch.Add(key, value);
        if (batch.full()) batch.WriteTo(out);
      },
      [&] {
        batch.WriteTo(out);
        out.Flush();
      });
  batch.WriteTo(out);
  out.Flush();
  return 0;
}

int RunValues() {
  Output out;
  ReadResults(
      [&](std::string_view, std::string_view value) {
        out.buffer().write(value.data(), value.size());
        out.buffer().write("\n", 1);
        out.MaybeFlush();
      },
      [&] { out.Flush(); });
  out.Flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout is reported by write(2), exit 1
  Options o = ParseArgs(argc, argv);
  if (o.mode == "lines") return RunLines(o);
  if (o.mode == "relay") return RunRelay(o);
  return RunValues();
}
