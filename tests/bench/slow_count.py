#!/usr/bin/env python3
"""slow_count COST_US: bench-autoscale's middle stage (scripts/bench_autoscale.py).

A running count per user, kept per key group (rainstorm_op's keyed_state: snapshotted, restored
into a rebuilt task, moved with its group by a rescale), at a fixed cost of COST_US per tuple
that waits instead of computing, so that more tasks help on few cores. A task is paced by a
deadline that advances COST_US per tuple (not by one sleep per tuple, whose overshoot and the
Python work between calls would add to it), so a backlogged task takes 1e6 / COST_US tuples per
second, as long as the rest of its work per tuple fits in COST_US.

Input values are `user,...` lines, partitioned by column 0 (the user); each emits
(user, "user,count,ms") where ms is the wall-clock millisecond the tuple was processed: the
benchmark takes the stage's output pauses from those stamps.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "operators", "python"))
from rainstorm_op import run  # noqa: E402

if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) == 0:
    sys.stderr.write("usage: slow_count.py COST_US (a positive integer)\n")
    sys.exit(2)
COST = int(sys.argv[1]) / 1e6
due = 0.0  # when the tuples taken so far have been paid for (time.monotonic)


def slow_count(key, value, state):
    global due
    now = time.monotonic()
    # Backlogged (this tuple came within COST of the last one's due time), the cost runs on from
    # there, so the time spent between calls is paid out of it; idle, it starts now.
    due = max(due, now - COST) + COST
    if due > now:
        time.sleep(due - now)
    user = value.split(",", 1)[0]
    n = state.get(user, 0) + 1
    state[user] = n
    return [(user, f"{user},{n},{int(time.time() * 1000)}")]


run(slow_count, keyed_state=True, input_partition=0)
