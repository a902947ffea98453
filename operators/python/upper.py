#!/usr/bin/env python3
"""upper: the value upper-cased, the key unchanged. Bytes that are not UTF-8 pass through as is."""
from rainstorm_op import run


def upper(key, value):
    return ((key, value.upper()),)


run(upper)
