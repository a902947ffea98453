"""Tests of the Python operator SDK and the example operators: each operator runs as a real
subprocess and the test speaks operators/PROTOCOL.md to it over pipes.

    cd operators/python && python3 -m unittest -v test_operators
    meson test -C build python-operators
"""
import os
import re
import select
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

try:
    import msgpack
except ImportError:  # e.g. a pyenv python3 ahead of Debian's, which has python3-msgpack
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and os.access("/usr/bin/python3", os.X_OK):
        print(f"note: {sys.executable} has no msgpack; re-running under /usr/bin/python3",
              file=sys.stderr)
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.orig_argv[1:])
    raise

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL_MD = os.path.join(HERE, "..", "PROTOCOL.md")
TIMEOUT = 20  # seconds for any single answer; a hang fails the test instead of blocking it

CTX = {"version": 1, "job": "job-1", "stage": 1, "stages": 3, "task": 2, "tasks": 4,
       "args": [], "csv_header": "id,name,city"}

# Fixture operators, written to a temporary directory (they import rainstorm_op via PYTHONPATH).
FIXTURES = {
    "identity.py": """
        from rainstorm_op import run
        def identity(key, value):
            return ((key, value),)
        run(identity)
    """,
    "raising.py": """
        from rainstorm_op import run
        def process(key, value):
            if value == "boom":
                raise RuntimeError("user code failed on purpose")
            yield key, value
        run(process)
    """,
    "contextual.py": """
        import sys
        from rainstorm_op import run, context
        def process(key, value):
            print("a print goes to the log, not to the protocol")
            if value == context["csv_header"]:
                return None                                      # None: no output
            return [("task", str(context["task"])), ("args", " ".join(context["args"])),
                    ("argv", " ".join(sys.argv[1:]))]
        def partition(ctx):  # the column named by the first argument, resolved on the header
            return ctx["csv_header"].split(",").index(ctx["args"][0])
        run(process, name="ctx-op", input_partition=partition)
    """,
    "bad_state.py": """
        from rainstorm_op import run
        run(lambda k, v: [(k, v)], stateful=True, snapshot=lambda: object(),
            restore=lambda s: None)
    """,
}


class Op:
    """One operator process and both ends of its pipes."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0, cwd=HERE, env=env)
        self.unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                         strict_map_key=False)

    def write(self, data):
        try:
            self.proc.stdin.write(data)
        except BrokenPipeError:  # the operator already quit; its exit status tells why
            pass

    def send(self, *messages, **pack_options):
        self.write(b"".join(msgpack.packb(m, **pack_options) for m in messages))

    def recv(self, timeout=TIMEOUT):
        """The next message from the operator; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError(f"no message from the operator within {timeout}s")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise AssertionError("the operator closed stdout; stderr: "
                                     + self.finish()[2])
            self.unpacker.feed(chunk)

    def close_stdin(self):
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            self.proc.stdin = None  # so that communicate() leaves it alone

    def finish(self):
        """Close stdin; return (exit status, the messages it still wrote, stderr)."""
        self.close_stdin()
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the operator did not exit within {TIMEOUT}s of end of input")
        self.unpacker.feed(out)
        return self.proc.returncode, list(self.unpacker), err.decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.close_stdin()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class OperatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="rainstorm-pyop-")
        for name, text in FIXTURES.items():
            with open(os.path.join(cls.tmp.name, name), "w") as f:
                f.write(textwrap.dedent(text))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def start(self, script, *args, env=None):
        """Start an example (a name in this directory) or a fixture (a name in FIXTURES)."""
        path = os.path.join(self.tmp.name if script in FIXTURES else HERE, script)
        env = dict(os.environ if env is None else env, PYTHONPATH=HERE)
        op = Op([sys.executable, path, *args], env=env)
        self.addCleanup(op.kill)
        return op

    def hello(self, op, ctx=None):
        op.send([0, dict(CTX) if ctx is None else ctx])
        ready = op.recv()
        self.assertEqual(ready[0], 1)
        return ready[1]

    def batch(self, op, *tuples):
        op.send([2, [list(t) for t in tuples]])
        result = op.recv()
        self.assertEqual(result[0], 3)
        self.assertEqual(len(result[1]), len(tuples))
        return result[1]

    def assertClean(self, op, messages=()):
        status, rest, err = op.finish()
        self.assertEqual((status, rest, err), (0, list(messages), ""))

    def assertProtocolError(self, op, messages=()):
        """Exit 2, exactly one line on stderr and no traceback, after answering `messages`."""
        status, rest, err = op.finish()
        self.assertEqual(status, 2, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("protocol error", err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(rest, list(messages))


class UpperTest(OperatorTest):
    def test_ready(self):
        op = self.start("upper.py")
        info = self.hello(op)
        self.assertEqual(info, {"stateful": False, "input_partition": "key", "name": "upper"})
        self.assertClean(op)

    def test_pipelined_batches_answered_in_order(self):
        op = self.start("upper.py")
        batches = [[[f"k{b}-{i}", f"value {b} {i}"] for i in range(b + 1)] for b in range(5)]
        op.send([0, CTX], *([2, b] for b in batches))  # everything before reading anything
        self.assertEqual(op.recv()[0], 1)
        for b in batches:
            self.assertEqual(op.recv(), [3, [[[k, v.upper()]] for k, v in b]])
        self.assertClean(op)

    def test_end_of_input_answers_every_batch_then_exits_0(self):
        op = self.start("upper.py")
        op.send([0, CTX], *([2, [["k", f"v{i}"]]] for i in range(50)))
        status, rest, err = op.finish()  # closes stdin at once
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(rest[0][0], 1)
        self.assertEqual(rest[1:], [[3, [[["k", f"V{i}"]]]] for i in range(50)])

    def test_unicode(self):
        op = self.start("upper.py")
        self.hello(op)
        self.assertEqual(self.batch(op, ("clé", "straße ßü"), ("", "")),
                         [[["clé", "STRASSE SSÜ"]], [["", ""]]])
        self.assertClean(op)

    def test_bytes_that_are_not_utf8_round_trip(self):
        # Decision: keys and values are bytes; whatever is not UTF-8 passes through unchanged,
        # the rest is upper-cased, whether it came as a MessagePack str or bin.
        op = self.start("upper.py")
        self.hello(op)
        op.send([2, [[b"k\xff", b"abc\xfe\x80z"], [b"\xc3", b"\xc3\xa9t\xe9"]]],
                use_bin_type=False)  # str type holding invalid UTF-8
        op.send([2, [[b"bin\xff", b"abc\xff"], ["str", b"bin"]]])  # bin type
        expected = [[3, [[[b"k\xff", b"ABC\xfe\x80Z"]], [[b"\xc3", "ÉT".encode() + b"\xe9"]]]],
                    [3, [[[b"bin\xff", b"ABC\xff"]], [[b"str", b"BIN"]]]]]
        for want in expected:
            got = op.recv()
            self.assertEqual(msgpack.packb(got, unicode_errors="surrogateescape"),
                             msgpack.packb(want, use_bin_type=False))  # str type, same bytes
        self.assertClean(op)

    def test_runs_as_an_executable(self):
        path = os.path.join(HERE, "upper.py")
        self.assertTrue(os.access(path, os.X_OK), "chmod +x upper.py")
        op = Op([path])  # through its #!/usr/bin/env python3 line
        self.addCleanup(op.kill)
        self.assertEqual(self.hello(op)["name"], "upper")
        self.assertEqual(self.batch(op, ("a", "b")), [[["a", "B"]]])
        self.assertClean(op)

    def test_all_examples_are_executable(self):
        for name in ("upper.py", "split.py", "wordcount.py", "template.py", "filter.py"):
            path = os.path.join(HERE, name)
            with open(path) as f:
                self.assertEqual(f.readline(), "#!/usr/bin/env python3\n", name)
            self.assertTrue(os.access(path, os.X_OK), f"chmod +x {name}")


class TemplateTest(OperatorTest):
    def test_template_rekeys_lines_by_their_first_column(self):
        op = self.start("template.py")
        self.assertEqual(self.hello(op)["name"], "template")
        self.assertEqual(self.batch(op, ("f:0", "id,name,city"), ("f:1", "7,ann,oslo")),
                         [[], [["7", "7,ann,oslo"]]])
        self.assertClean(op)


class FilterTest(OperatorTest):
    EVENTS = [("e:1", "1767225600002,u7,click,44"), ("e:2", "1767225600003,u8,view,1"),
              ("e:3", "1767225600004,u9,clicks,2"), ("e:4", "1767225600005,click,view,3"),
              ("e:5", "1767225600006,u1"), ("e:6", "1767225600007,u2,click,")]

    def test_ready_is_stateless_by_key(self):
        op = self.start("filter.py", "--column", "2", "click")
        self.assertEqual(self.hello(op), {"stateful": False, "input_partition": "key",
                                          "name": "filter"})
        self.assertClean(op)

    def test_column_equals_exactly(self):
        op = self.start("filter.py", "--column", "2", "click")
        self.hello(op)
        self.assertEqual(self.batch(op, *self.EVENTS),
                         [[list(self.EVENTS[0])], [], [], [], [], [list(self.EVENTS[5])]])
        self.assertClean(op)

    def test_column_equals_form_and_missing_column_is_empty(self):
        op = self.start("filter.py", "--column=3", "")
        self.hello(op)
        self.assertEqual(self.batch(op, ("k", "a,b,c,"), ("k", "a,b"), ("k", "a,b,c,d")),
                         [[["k", "a,b,c,"]], [["k", "a,b"]], []])
        self.assertClean(op)

    def test_quoted_csv_fields(self):
        op = self.start("filter.py", "--column", "1", 'say "hi", bye')
        self.hello(op)
        rows = [("k1", 'x,"say ""hi"", bye",z'), ("k2", 'x,say "hi", bye'),
                ("k3", '"a,b","say ""hi"", bye"'), ("k4", '"x,"say ""hi"", bye"')]
        self.assertEqual(self.batch(op, *rows), [[list(rows[0])], [], [list(rows[2])], []])
        self.assertClean(op)

    def test_substring_without_column(self):
        op = self.start("filter.py", "click")
        self.hello(op)
        self.assertEqual([len(o) for o in self.batch(op, *self.EVENTS)], [1, 0, 1, 1, 0, 1])
        self.assertClean(op)

    def test_every_tuple_alike_header_included(self):
        # With a column index the header line is data like any other (as with rainop-grep).
        op = self.start("filter.py", "--column", "2", "action")
        self.hello(op, dict(CTX, csv_header="ts,user,action,value"))
        self.assertEqual(self.batch(op, ("f:1", "ts,user,action,value")),
                         [[["f:1", "ts,user,action,value"]]])
        self.assertClean(op)

    def test_pipelined_batches_and_bytes_that_are_not_utf8(self):
        op = self.start("filter.py", "--column", "0", "\udcff")  # the lone surrogate of 0xff
        batches = [[[f"k{b}-{i}", f"{'x' if i % 2 else 'y'},{i}"] for i in range(b + 1)]
                   for b in range(5)]
        op.send([0, CTX], *([2, b] for b in batches))
        self.assertEqual(op.recv()[0], 1)
        for b in batches:
            self.assertEqual(op.recv(), [3, [[] for _ in b]])
        op.send([2, [[b"k", b"\xff,v"], [b"k", b"\xfe,v"]]], use_bin_type=False)
        self.assertEqual(op.recv(), [3, [[["k", "\udcff,v"]], []]])
        self.assertClean(op)

    def test_bad_arguments_exit_2_with_one_line(self):
        for args in ([], ["--column"], ["--column", "x", "v"], ["--column", "-1", "v"],
                     ["-x", "v"], ["a", "b"]):
            op = self.start("filter.py", *args)
            status, rest, err = op.finish()
            self.assertEqual((status, rest), (2, []), args)
            self.assertEqual(len(err.strip().splitlines()), 1, (args, err))
            self.assertIn("usage: filter.py", err)


class WordcountTest(OperatorTest):
    def test_ready_is_stateful(self):
        op = self.start("wordcount.py")
        self.assertEqual(self.hello(op), {"stateful": True, "input_partition": "key",
                                          "name": "wordcount", "keyed_state": True,
                                          "regroup": True})
        self.assertClean(op)

    def test_running_counts_snapshot_and_restore(self):
        op = self.start("wordcount.py")
        self.hello(op)
        self.assertEqual(self.batch(op, ("l1", "the cat the"), ("l2", ""), ("l3", "dog")),
                         [[["the", "the,1"], ["cat", "cat,1"], ["the", "the,2"]], [],
                          [["dog", "dog,1"]]])
        op.send([4])
        state = op.recv()
        self.assertEqual(state, [5, {0: {"the": 2, "cat": 1, "dog": 1}}])
        self.assertEqual(self.batch(op, ("l4", "cat")), [[["cat", "cat,2"]]])
        self.assertClean(op)

        # A rebuilt task: restored from the snapshot, it continues the counts from there.
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([6, state[1]])
        self.assertEqual(self.batch(op, ("l4", "cat  the\tbird")),
                         [[["cat", "cat,2"], ["the", "the,3"], ["bird", "bird,1"]]])
        op.send([4])
        self.assertEqual(op.recv(), [5, {0: {"the": 3, "cat": 2, "dog": 1, "bird": 1}}])
        self.assertClean(op)

    def test_snapshot_between_pipelined_batches(self):
        op = self.start("wordcount.py")
        op.send([0, CTX], [2, [["k", "a b"]]], [4], [2, [["k", "a"]]], [4])
        self.assertEqual([op.recv() for _ in range(5)][1:],
                         [[3, [[["a", "a,1"], ["b", "b,1"]]]], [5, {0: {"a": 1, "b": 1}}],
                          [3, [[["a", "a,2"]]]], [5, {0: {"a": 2, "b": 1}}]])
        self.assertClean(op)

    def test_state_with_bytes_that_are_not_utf8(self):
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([2, [[b"k", b"\xff \xff"]]], use_bin_type=False)
        self.assertEqual(op.recv(), [3, [[["\udcff", "\udcff,1"], ["\udcff", "\udcff,2"]]]])
        op.send([4])
        state = op.recv()
        self.assertEqual(state, [5, {0: {"\udcff": 2}}])
        self.assertClean(op)
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([6, state[1]], unicode_errors="surrogateescape")
        self.assertEqual(self.batch(op, (b"k", b"\xff")), [[["\udcff", "\udcff,3"]]])
        self.assertClean(op)

    def test_state_is_kept_per_key_group(self):
        # Batches carry each tuple's key group; each group counts apart, and the snapshot is
        # {group: counts}. A rebuilt task restored from it continues every group.
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([2, [["k", "a"], ["k", "a"], ["k", "a b"]], [3, 7, 3]])
        self.assertEqual(op.recv(), [3, [[["a", "a,1"]], [["a", "a,1"]],
                                         [["a", "a,2"], ["b", "b,1"]]]])
        op.send([4])
        state = op.recv()
        self.assertEqual(state, [5, {3: {"a": 2, "b": 1}, 7: {"a": 1}}])
        self.assertClean(op)
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([6, state[1]])
        op.send([2, [["k", "a"], ["k", "b"]], [7, 3]])
        self.assertEqual(op.recv(), [3, [[["a", "a,2"]], [["b", "b,2"]]]])
        self.assertClean(op)

    def test_regroup_sets_and_drops_groups_between_batches(self):
        # PROTOCOL.md "Regroup": a group handed over arrives with its state, a group given up
        # goes; the others are untouched, any number of times, after batches.
        op = self.start("wordcount.py")
        self.hello(op)
        op.send([2, [["k", "a"], ["k", "a"]], [3, 7]])
        self.assertEqual(op.recv(), [3, [[["a", "a,1"]], [["a", "a,1"]]]])
        op.send([7, {3: None, 9: {"a": 40}}])
        op.send([2, [["k", "a"], ["k", "a"], ["k", "a"]], [3, 7, 9]])
        self.assertEqual(op.recv(), [3, [[["a", "a,1"]], [["a", "a,2"]], [["a", "a,41"]]]])
        op.send([4])
        self.assertEqual(op.recv(), [5, {3: {"a": 1}, 7: {"a": 2}, 9: {"a": 41}}])
        op.send([7, {9: None}], [7, {}])
        op.send([4])
        self.assertEqual(op.recv(), [5, {3: {"a": 1}, 7: {"a": 2}}])
        self.assertClean(op)
        for bad in ({"x": {}}, {1: 5}, [1]):
            op = self.start("wordcount.py")
            op.send([0, CTX], [7, bad])
            self.assertEqual(op.recv()[0], 1)
            self.assertProtocolError(op)

    def test_bad_groups_or_keyed_state_are_protocol_errors(self):
        for msgs in ([[2, [["k", "a"]], [1, 2]]],       # one group per tuple
                     [[2, [["k", "a"]], [-1]]],         # a group number
                     [[2, [["k", "a"]], "x"]],
                     [[6, {"x": {}}]],                  # a state keyed by group numbers
                     [[6, {1: 5}]]):
            op = self.start("wordcount.py")
            self.hello(op)
            op.send(*msgs)
            self.assertProtocolError(op)

    def test_split_then_wordcount(self):
        split, count = self.start("split.py"), self.start("wordcount.py")
        self.hello(split)
        self.hello(count)
        lines = ["to be or", "not to be"]
        words = [t for outs in self.batch(split, *(("f:1", line) for line in lines))
                 for t in outs]
        self.assertEqual(words, [[w, w] for w in "to be or not to be".split()])
        self.assertEqual([o[0][1] for o in self.batch(count, *words)],
                         ["to,1", "be,1", "or,1", "not,1", "to,2", "be,2"])
        self.assertClean(split)
        self.assertClean(count)

    def test_restore_after_a_batch_is_a_protocol_error(self):
        op = self.start("wordcount.py")
        op.send([0, CTX], [2, [["k", "a"]]], [6, {}])
        self.assertProtocolError(op, [[1, {"stateful": True, "input_partition": "key",
                                           "name": "wordcount", "keyed_state": True,
                                           "regroup": True}],
                                      [3, [[["a", "a,1"]]]]])

    def test_restore_twice_is_a_protocol_error(self):
        op = self.start("wordcount.py")
        op.send([0, CTX], [6, {}], [6, {}])
        self.assertEqual(op.recv()[0], 1)
        self.assertProtocolError(op)


class ProtocolErrorTest(OperatorTest):
    """Bad input: exit 2 with one line on stderr (no traceback), whatever the input was."""

    def expect_error(self, data, after_hello=True):
        op = self.start("identity.py")
        if after_hello:
            self.hello(op)
        op.write(data)
        self.assertProtocolError(op)

    def test_garbage_bytes(self):
        self.expect_error(b"\xc1\xc1\xc1")  # 0xc1 is never valid MessagePack

    def test_text_instead_of_msgpack(self):
        self.expect_error(b"hello world\n", after_hello=False)

    def test_batch_before_hello(self):
        self.expect_error(msgpack.packb([2, [["k", "v"]]]), after_hello=False)

    def test_hello_that_is_not_a_map(self):
        self.expect_error(msgpack.packb([0, "context"]), after_hello=False)

    def test_message_that_is_not_an_array(self):
        self.expect_error(msgpack.packb({"type": 2}))

    def test_second_hello(self):
        self.expect_error(msgpack.packb([0, CTX]))

    def test_unknown_type(self):
        self.expect_error(msgpack.packb([9, []]))

    def test_operator_message_type_sent_to_operator(self):
        self.expect_error(msgpack.packb([3, []]))

    def test_snapshot_to_a_stateless_operator(self):
        self.expect_error(msgpack.packb([4]))

    def test_restore_to_a_stateless_operator(self):
        self.expect_error(msgpack.packb([6, {}]))

    def test_tuple_without_a_value(self):
        self.expect_error(msgpack.packb([2, [["k"]]]))

    def test_tuple_of_integers(self):
        self.expect_error(msgpack.packb([2, [["k", "v"], [1, 2]]]))

    def test_batch_that_is_not_a_list(self):
        self.expect_error(msgpack.packb([2, "kv"]))

    def test_input_ending_inside_a_message(self):
        self.expect_error(msgpack.packb([2, [["key", "value"]]])[:-3])


class SdkTest(OperatorTest):
    def test_exception_in_process_exits_1_with_its_traceback(self):
        op = self.start("raising.py")
        self.hello(op)
        self.assertEqual(self.batch(op, ("k", "fine")), [[["k", "fine"]]])
        op.send([2, [["k", "ok"], ["k", "boom"]]])
        status, rest, err = op.finish()
        self.assertEqual((status, rest), (1, []))
        self.assertIn("Traceback", err)
        self.assertIn("RuntimeError: user code failed on purpose", err)

    def test_unpackable_state_exits_1(self):
        op = self.start("bad_state.py")
        self.hello(op)
        op.send([4])
        status, rest, err = op.finish()
        self.assertEqual((status, rest), (1, []))
        self.assertIn("TypeError", err)

    def test_context_args_partition_prints_and_none(self):
        op = self.start("contextual.py", "city", "x")
        ctx = dict(CTX, args=["city", "x"])
        self.assertEqual(self.hello(op, ctx), {"stateful": False, "name": "ctx-op",
                                               "input_partition": {"csv_column": 2}})
        self.assertEqual(self.batch(op, ("f:0", "id,name,city"), ("f:1", "1,ann,oslo")),
                         [[], [["task", "2"], ["args", "city x"], ["argv", "city x"]]])
        status, rest, err = op.finish()
        self.assertEqual((status, rest), (0, []))
        self.assertEqual(err.count("a print goes to the log"), 2)

    def test_throughput_of_an_identity_operator(self):
        """Printed, not asserted: tuples/s through the SDK, batches of 1000 tuples."""
        batches, size = 300, 1000
        data = msgpack.packb([2, [[f"key{i}", f"value {i},some,csv,fields"]
                                  for i in range(size)]])
        op = self.start("identity.py")
        self.hello(op)
        writer = threading.Thread(target=lambda: (op.write(data * batches), op.close_stdin()))
        start = time.perf_counter()
        writer.start()
        tuples = sum(len(op.recv()[1]) for _ in range(batches))
        seconds = time.perf_counter() - start
        writer.join()
        self.assertEqual(tuples, batches * size)
        self.assertEqual(op.finish()[:2], (0, []))
        print(f"\n    identity operator: {tuples / seconds / 1e6:.2f} M tuples/s "
              f"({tuples} tuples in batches of {size}, {seconds:.2f} s)", file=sys.stderr)


class ProtocolDocExamplesTest(OperatorTest):
    """The two Python examples of operators/PROTOCOL.md, extracted and run as written."""

    @classmethod
    def example(cls, marker):
        with open(PROTOCOL_MD) as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        found = [b for b in blocks if marker in b]
        assert len(found) == 1, f"PROTOCOL.md: no single python example with {marker!r}"
        path = os.path.join(cls.tmp.name, "upper_example.py")
        with open(path, "w") as f:
            f.write(found[0])
        return path

    def check_upper_example(self, path):
        op = Op([sys.executable, path], env=dict(os.environ, PYTHONPATH=HERE))
        self.addCleanup(op.kill)
        op.send([0, CTX])  # stdin stays open, as with a real worker
        try:
            ready = op.recv(timeout=5)
        except AssertionError:
            raise AssertionError(
                f"{os.path.basename(path)} (from PROTOCOL.md) does not answer hello while stdin "
                "stays open. Note: msgpack.Unpacker(sys.stdin.buffer) waits until it has read "
                "read_size bytes (or end of input); read sys.stdin.buffer.raw instead") from None
        self.assertEqual(ready[0], 1)
        self.assertEqual(ready[1]["stateful"], False)
        self.assertEqual(self.batch(op, ("k", "abc"), ("k2", "x")),
                         [[["k", "ABC"]], [["k2", "X"]]])
        self.assertClean(op)

    def test_sdk_example(self):
        self.check_upper_example(self.example("from rainstorm_op import run"))

    def test_example_without_the_sdk(self):
        self.check_upper_example(self.example("import sys, msgpack"))


if __name__ == "__main__":
    unittest.main()
