#!/usr/bin/env python3
"""wordcount: running word counts, stateful. Emits (word, "word,count") for every word of every
input value (words are split on whitespace, case kept), count included.

Counts are kept per key group. They are global counts when every occurrence of a word has the
same key, which is what the previous stage gives when it keys tuples by word, e.g. split.py:
source -> split.py -> wordcount.py.  Fed whole lines keyed by anything else it still works,
but each group counts only the lines it got.

The state is kept per key group (rainstorm_op's keyed_state): `state` is the {word: count}
dict of the tuple's group, which the SDK snapshots, restores into a rebuilt task, and which
moves with its group.
"""
from rainstorm_op import run


def count(key, value, state):
    out = []
    for word in value.split():
        n = state.get(word, 0) + 1
        state[word] = n
        out.append((word, f"{word},{n}"))
    return out


run(count, keyed_state=True, input_partition="key")
