#!/usr/bin/env python3
"""split: one output tuple (word, word) per whitespace-separated word of the value.

The first stage of a word count: keyed by word, its outputs reach wordcount.py's tasks by word.
"""
from rainstorm_op import run


def split(key, value):
    return [(word, word) for word in value.split()]


run(split)
