#!/usr/bin/env python3
"""filter: emits the tuples whose value matches, unchanged (the Python counterpart of
`rainop-grep`, used by `make bench-stream` to set the SDK against the C++ operators).

    filter.py [--column N] VALUE

  --column N  keep a tuple when CSV column N (0-based) of its value equals VALUE exactly (a row
              without column N has it empty; quoted fields follow RFC 4180, "" is one ")
  (without)   keep a tuple when its whole value contains VALUE

Stateless, input partitioned by key. Like the built-in operators with a column index, it treats
every tuple alike, the job's header line included. Bad arguments: one line on stderr, exit 2.
"""
import csv
import sys

USAGE = "usage: filter.py [--column N] VALUE"


def usage_error(message):
    sys.stderr.write(f"filter.py: {message} ({USAGE})\n")
    sys.exit(2)


def parse_args(argv):
    """(column or None, value) from the command line; exits 2 on a mistake."""
    column = None
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            print(__doc__.strip())
            sys.exit(0)
        if a == "--":
            rest.extend(argv[i + 1:])
            break
        if a == "--column" or a.startswith("--column="):
            if a == "--column":
                if i + 1 >= len(argv):
                    usage_error("--column wants a 0-based column index")
                text = argv[i + 1]
                i += 2
            else:
                text = a.split("=", 1)[1]
                i += 1
            if not text.isascii() or not text.isdigit():
                usage_error(f"--column wants a 0-based column index, got {text!r}")
            column = int(text)
            continue
        if a.startswith("-") and a != "-":
            usage_error(f"unknown option {a!r}")
        rest.append(a)
        i += 1
    if len(rest) != 1:
        usage_error("want exactly one VALUE" if rest else "no VALUE given")
    return column, rest[0]


def make_process(column, wanted):
    """The per-tuple function: returns ((key, value),) to keep the tuple, None to drop it."""
    if column is None:
        def contains(key, value):
            return ((key, value),) if wanted in value else None
        return contains

    def quoted_field(value):
        try:
            fields = next(csv.reader([value]), [])
        except csv.Error:  # e.g. a field over csv's size limit: read it without quoting
            fields = value.split(",")
        return fields[column] if column < len(fields) else ""

    def column_equals(key, value):
        if '"' in value:  # rare: a quoted field may hold commas
            field = quoted_field(value)
        else:
            parts = value.split(",", column + 1)
            field = parts[column] if column < len(parts) else ""
        return ((key, value),) if field == wanted else None
    return column_equals


def main():
    column, wanted = parse_args(sys.argv[1:])
    from rainstorm_op import run  # after the arguments: --help and mistakes need no msgpack
    run(make_process(column, wanted), name="filter")


if __name__ == "__main__":
    main()
