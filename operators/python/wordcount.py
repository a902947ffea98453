#!/usr/bin/env python3
"""wordcount: running word counts, stateful. Emits (word, "word,count") for every word of every
input value (words are split on whitespace, case kept), count included.

Counts are kept per task. They are global counts when every occurrence of a word reaches the
same task, which is what input_partition "key" gives when the previous stage keys tuples by word,
e.g. split.py:  source -> split.py -> wordcount.py.  Fed whole lines keyed by anything else (or
run as one task) it still works, but with several tasks each one counts only the lines it got.

The state is the {word: count} dict; the worker snapshots it and restores it into a rebuilt task.
"""
from rainstorm_op import run

counts = {}


def count(key, value):
    out = []
    for word in value.split():
        n = counts.get(word, 0) + 1
        counts[word] = n
        out.append((word, f"{word},{n}"))
    return out


def snapshot():
    return counts


def restore(state):
    counts.clear()
    counts.update(state or {})


run(count, stateful=True, input_partition="key", snapshot=snapshot, restore=restore)
