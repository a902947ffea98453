#!/usr/bin/env python3
"""TEMPLATE: copy me (cp template.py myop.py; chmod +x myop.py) and edit process().

Run in a job like any operator: the worker starts `myop.py ARG...` once per task. Try it with:
    python3 -m unittest -v test_operators      # the tests show how to drive an operator by hand
Everything you print goes to the task's log (stderr); stdout belongs to the protocol.
"""
import sys

from rainstorm_op import run, context  # rainstorm_op.py must sit beside this file (or be on
                                       # PYTHONPATH); it needs python3-msgpack

# Command-line arguments of the operator (the same as context["args"]). Parse them here, once.
ARGS = sys.argv[1:]


def process(key, value):
    """Called once per input tuple, with str key and value (for a source: the line, without its
    newline). Return or yield zero or more (key, value) pairs of str; the output key routes the
    tuple to the next stage's tasks. context holds the job's details, e.g.:
        context["csv_header"]   first line of the input file (or None); a source emits it too,
                                so skip `value == context["csv_header"]` when you parse CSV
        context["task"], context["tasks"], context["stage"], context["job"]
    Raising an exception fails the task (the traceback lands in the task's log).
    """
    if value == context.get("csv_header"):
        return                      # the header line: no output
    fields = value.split(",")       # (the built-in operators parse quoted CSV; this does not)
    yield fields[0], value          # e.g. re-key every line by its first column


# For a stateful operator keep the state in a variable, add
#     def snapshot(): return state            # any MessagePack-able value: dict, list, str, int
#     def restore(saved): state.update(saved) # called before any tuple of a rebuilt task
# and pass stateful=True, snapshot=snapshot, restore=restore to run().
# input_partition="key" (default) routes this operator's input by key; input_partition=N routes
# it by CSV column N of the value instead, so equal values of column N meet in one task.
run(process, name="template")
