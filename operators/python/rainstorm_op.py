"""rainstorm_op: write a RainStorm operator in Python (operators/PROTOCOL.md, version 1).

Usage::

    #!/usr/bin/env python3
    from rainstorm_op import run, context

    def upper(key, value):              # one input tuple -> zero or more output tuples
        yield key, value.upper()

    run(upper)                          # hello/ready, batches, flushing, end of input

`process(key, value)` returns or yields (key, value) tuples of str (or returns None for none).
Keys and values arrive as str; bytes that are not UTF-8 arrive as lone surrogates
("surrogateescape") and are written back as the same bytes, so any input round-trips.

Stateful operators pass `stateful=True`, `snapshot()` (returns any MessagePack-able value) and
`restore(state)` (called with an earlier snapshot, before any batch).

Or, better, they keep their state per key group (PROTOCOL.md "Keyed state") with
`keyed_state=True`: then `process(key, value, state)` gets a third argument, the dict of the
tuple's key group (made empty on first use), and the SDK snapshots and restores those dicts
itself. Keys that are equal (or equal in the partitioning column) always share a group, so a
count keyed by word reads and writes `state[word]`. Values in the dicts must be MessagePack-able.
This is what lets RainStorm move groups, with their state, between tasks: the SDK offers
regroup (PROTOCOL.md "Regroup") and sets or drops the dicts of the groups that move.

`context` is the hello message's dict (args, csv_header, job, stage, task, tasks...), filled in
before the first call to `process`; `sys.argv[1:]` holds the same args from the start.
`input_partition` is "key" (default), a column number N (= {"csv_column": N}), or a function of
the context returning either (to resolve a column name against context["csv_header"]).

While `run` runs, print() goes to stderr (the task's log): stdout carries the protocol only.
Exit status: 0 at end of input, 1 if a callback raised (traceback on stderr), 2 on bad input or
a protocol violation (one line on stderr).
"""
import os
import sys
import traceback

try:
    import msgpack
except ImportError:  # e.g. a pyenv python3 ahead of Debian's, which has python3-msgpack
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.orig_argv[1:])
    sys.stderr.write("rainstorm_op: the msgpack module is missing "
                     "(apt-get install python3-msgpack)\n")
    sys.exit(2)

__all__ = ["run", "context"]

HELLO, READY, BATCH, RESULT, SNAPSHOT, STATE, RESTORE, REGROUP = range(8)

context = {}  # the hello context; updated in place, so `from rainstorm_op import context` works


class ProtocolError(Exception):
    pass


def _text(x):
    """A key or value from the wire as str (BIN or a non-str is turned into str or refused)."""
    if type(x) is str:
        return x
    if type(x) is bytes:
        return x.decode("utf-8", "surrogateescape")
    raise ProtocolError(f"a key or value is a {type(x).__name__}, not a string")


def run(process, *, stateful=False, name=None, input_partition=None, snapshot=None,
        restore=None, keyed_state=False):
    """Serve the protocol on stdin/stdout until end of input, then exit (never returns)."""
    if keyed_state:
        if stateful or snapshot is not None or restore is not None:
            raise TypeError("run(keyed_state=True) keeps the state itself: no stateful=, "
                            "snapshot= or restore=")
        stateful = True
        groups = {}  # key group -> its state dict

        def snapshot():
            return {g: st for g, st in groups.items() if st}

        def restore(state):
            groups.clear()
            if state is None:
                return
            if type(state) is not dict or not all(type(g) is int and g >= 0 and type(st) is dict
                                                   for g, st in state.items()):
                raise ProtocolError("a keyed state is not a map of key group -> dict")
            groups.update(state)

        def regroup(moved):
            if type(moved) is not dict or not all(
                    type(g) is int and g >= 0 and (st is None or type(st) is dict)
                    for g, st in moved.items()):
                raise ProtocolError("a regroup is not a map of key group -> dict or nil")
            for g, st in moved.items():
                if st is None:
                    groups.pop(g, None)
                else:
                    groups[g] = st
    elif stateful and (snapshot is None or restore is None):
        raise TypeError("run(stateful=True) needs snapshot= and restore= callbacks")
    if name is None:
        name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    # Keep the real stdout for the protocol; anything else printed goes to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    fast = msgpack.Packer()  # strict UTF-8: the fast path
    lenient = msgpack.Packer(unicode_errors="surrogateescape")

    def send(message):
        try:
            data = fast.pack(message)
        except UnicodeEncodeError:  # a str holding surrogate-escaped bytes
            data = lenient.pack(message)
        out.write(data)
        out.flush()

    def answer(items, in_groups=None):
        if keyed_state:
            if in_groups is None:
                in_groups = [0] * len(items)
            elif type(in_groups) is not list or len(in_groups) != len(items) or \
                    not all(type(g) is int and g >= 0 for g in in_groups):
                raise ProtocolError("batch groups are not one key group number per tuple")
            try:
                out = []
                for (k, v), g in zip(items, in_groups):
                    st = groups.get(g)
                    if st is None:
                        st = groups[g] = {}
                    out.append(list(process(_text(k), _text(v), st) or ()))
                return out
            except Exception:
                if not all(type(t) is list and len(t) == 2 for t in items):
                    raise ProtocolError("a batch tuple is not a [key, value] pair of strings") \
                        from None
                raise
        try:  # the fast path: every key and value is a str, as the worker sends them
            return [list(process(k, v) or ()) if type(k) is str and type(v) is str
                    else list(process(_text(k), _text(v)) or ()) for k, v in items]
        except Exception:  # the batch's fault (exit 2) or the user's (exit 1)?
            if not all(type(t) is list and len(t) == 2 and type(t[0]) in (str, bytes)
                       and type(t[1]) in (str, bytes) for t in items):
                raise ProtocolError("a batch tuple is not a [key, value] pair of strings") \
                    from None
            raise

    unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False,
                                max_buffer_size=1 << 30)
    fed = 0
    greeted = batches = restored = False
    try:
        while True:
            chunk = os.read(0, 1 << 18)  # whatever is there: batches are pipelined
            if not chunk:
                if unpacker.tell() != fed:
                    raise ProtocolError("input ends inside a message")
                break
            fed += len(chunk)
            unpacker.feed(chunk)
            while True:
                try:
                    msg = next(unpacker)
                except StopIteration:
                    break
                except Exception as e:
                    raise ProtocolError(f"undecodable input ({e})") from None
                if type(msg) is not list or not msg or type(msg[0]) is not int:
                    raise ProtocolError(f"a message is not [type, ...]: {msg!r:.60}")
                kind = msg[0]
                if not greeted:
                    if kind != HELLO or len(msg) != 2 or type(msg[1]) is not dict:
                        raise ProtocolError(f"expected [0, context] first, got type {kind}")
                    context.update(msg[1])
                    part = input_partition(context) if callable(input_partition) \
                        else input_partition
                    if part is None:
                        part = "key"
                    elif type(part) is int:
                        part = {"csv_column": part}
                    greeted = True
                    ready = {"stateful": bool(stateful), "input_partition": part, "name": name}
                    if keyed_state:
                        ready["keyed_state"] = True
                        ready["regroup"] = True
                    send([READY, ready])
                elif kind == BATCH and len(msg) in (2, 3) and type(msg[1]) is list:
                    batches = True
                    send([RESULT, answer(msg[1], msg[2] if len(msg) == 3 else None)])
                elif kind == SNAPSHOT and len(msg) == 1 and stateful:
                    send([STATE, snapshot()])
                elif kind == RESTORE and len(msg) == 2 and stateful and not batches \
                        and not restored:
                    restored = True
                    restore(msg[1])
                elif kind == REGROUP and len(msg) == 2 and keyed_state:
                    regroup(msg[1])
                else:
                    raise ProtocolError(f"unexpected message type {kind} (length {len(msg)})"
                                        + ("" if stateful else " to a stateless operator"))
    except ProtocolError as e:
        sys.stderr.write(f"{name}: protocol error: {e}\n")
        sys.exit(2)
    except BrokenPipeError:
        sys.stderr.write(f"{name}: the worker closed its end of the pipe\n")
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
    sys.exit(0)
